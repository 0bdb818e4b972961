"""Every read or change of PHI through the running services is on the audit record, and the
chain shows it when someone changes a record afterwards.

On the session's pipeline (every service a process): a coded encounter becomes a billing
claim; claims of a site of this test reach payments and followup as claim.submitted and an
835 in the inbound mailbox posts a denial, a patient balance and a payment for a claim
nobody knows. Then a biller, a supervisor and an auditor read and change what a workbench
would: claims, balances, remittance queues, work items with their notes, aging by patient,
the statement run, the audit trail itself. Each request carries its own request id; each
must have audit records in its service's schema naming its caller, role, address, and
every id it returned. ``rcm audit verify`` passes after, and names the record an UPDATE by
the schemas' owner (the local stack's superuser, trigger disabled) changed.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

import asyncpg
import httpx
import pytest

from rcm.cli.main import main
from shared.auth import issue
from shared.mailbox import write_atomically
from tests.integration.payments_support import Clp, era_835
from tests.integration.pipeline_support import wait_for
from tests.integration.test_followup_typical_journey import coded, submitted

pytestmark = pytest.mark.integration

RUN = uuid.uuid4().hex[:8]
SITE = f"aud-{RUN}"
PAYER = f"AUDP{RUN}".upper()


@dataclass
class Read:
    """One request that shows or changes PHI, and the ids its audit records must name."""

    service: str
    schema: str
    request_id: str
    user: str
    role: str
    ids: set[str] = field(default_factory=set)


@dataclass
class Caller:
    pipeline: object
    reads: list[Read] = field(default_factory=list)

    def url(self, service: str) -> str:
        port = self.pipeline.supervisor.by_name(service)[0].http_port  # type: ignore[attr-defined]
        return f"http://127.0.0.1:{port}"

    async def call(
        self, service: str, method: str, path: str, *, role: str, sites=(SITE,), ids=None, **kw
    ) -> httpx.Response:
        """Call as ``role`` of ``sites`` with a fresh request id; remember it as a PHI access
        whose audit records must name ``ids(response)`` (all it returned)."""
        user = f"audit-{role}-{RUN}"
        token = issue(self.pipeline.settings.auth.token_secret, user, role, list(sites))  # type: ignore[attr-defined]
        rid = f"audit-{uuid.uuid4().hex}"
        headers = {"authorization": f"Bearer {token}", "x-request-id": rid}
        async with httpx.AsyncClient(base_url=self.url(service), timeout=60) as client:
            r = await client.request(method, path, headers=headers, **kw)
        assert r.status_code < 300, f"{method} {path}: HTTP {r.status_code} {r.text[:300]}"
        assert r.headers["x-request-id"] == rid
        shown = ids(r.json()) if ids is not None else set()
        assert shown or ids is None, f"{method} {path} showed nothing: not a PHI read"
        self.reads.append(Read(service, service, rid, user, role, {str(i) for i in shown}))
        return r


async def _world(pipeline) -> dict[str, str]:
    """A billing claim of our own site, and claims in payments and followup with a denial (a
    work item), a patient balance and an unmatched payment, all through the real services."""
    from shared.kafka import start_producer

    dos = date.today() - timedelta(days=20)
    encounter = f"ENC-AUD{RUN}"
    denied, owing, held = f"AUD{RUN}D", f"AUD{RUN}O", f"AUD{RUN}H"
    unknown = f"AUD{RUN}U"
    producer = await start_producer(pipeline.endpoints["kafka"])
    try:
        for event in (
            coded(SITE, encounter, dos, "AETNA1", mrn=f"MRN{RUN}"),
            submitted(SITE, denied, charge="200.00", dos=dos, payer_id=PAYER, mrn=f"MRN{RUN}"),
            submitted(SITE, owing, charge="150.00", dos=dos, payer_id=PAYER, mrn=f"MRN{RUN}"),
            submitted(SITE, held, charge="100.00", dos=dos, payer_id=PAYER, mrn=f"MRN{RUN}"),
        ):
            await producer.send_and_wait(event.topic, event.to_json(), key=event.key())
    finally:
        await producer.stop()
    dsn = pipeline.dsn
    billing_claim = await wait_for(
        dsn, "SELECT claim_id FROM billing.claim WHERE encounter_id = $1", encounter, timeout=90
    )
    await wait_for(
        dsn,
        "SELECT count(*) FROM payments.claim WHERE claim_id = ANY($1::text[])",
        [denied, owing, held],
        predicate=lambda n: n == 3,
    )
    era = era_835(
        [
            Clp(
                denied, Decimal("200"), Decimal("0"), status="4", cas=[("CO", "50", Decimal("200"))]
            ),
            Clp(
                owing,
                Decimal("150"),
                Decimal("100"),
                pr=Decimal("40"),
                cas=[("CO", "45", Decimal("10")), ("PR", "2", Decimal("40"))],
            ),
            # out of balance (100 - 70 != 20): held with the reason
            Clp(held, Decimal("100"), Decimal("70"), cas=[("CO", "45", Decimal("20"))]),
            Clp(unknown, Decimal("77.77"), Decimal("7.77"), cas=[("CO", "45", Decimal("70"))]),
        ],
        payer_id=PAYER,
        trace=f"TRN{RUN}",
    )
    write_atomically(pipeline.settings.inbound_dir, f"audit-{RUN}.835", era)
    item = await wait_for(
        dsn, "SELECT work_item_id FROM followup.work_item WHERE claim_id = $1", denied, timeout=60
    )
    await wait_for(
        dsn,
        "SELECT patient_balance FROM followup.claim WHERE claim_id = $1",
        owing,
        predicate=lambda v: v == Decimal("40.00"),
    )
    return {
        "billing_claim": billing_claim,
        "denied": denied,
        "owing": owing,
        "unknown": unknown,
        "held": held,
        "item": str(item),
    }


async def test_every_phi_read_and_change_is_audited_and_verify_catches_a_changed_record(
    pipeline, monkeypatch, capsys
):
    w = await _world(pipeline)
    c = Caller(pipeline)
    claim_ids = lambda body: {body["claim_id"]}  # noqa: E731
    # billing
    await c.call("billing", "GET", f"/claims/{w['billing_claim']}", role="biller", ids=claim_ids)
    # payments
    await c.call(
        "payments", "GET", f"/claims/{w['denied']}/balance", role="supervisor", ids=claim_ids
    )
    await c.call(
        "payments",
        "GET",
        "/balances",
        role="biller",
        params={"payer_id": PAYER},
        ids=lambda rows: {r["claim_id"] for r in rows},
    )
    r = await c.call(
        "payments",
        "GET",
        "/remittances/unmatched",
        role="biller",
        sites=("*",),
        params={"limit": "5000"},
        ids=lambda rows: {r["remittance_id"] for r in rows},
    )
    assert w["unknown"] in {x["patient_control_number"] for x in r.json()}
    r = await c.call(
        "payments",
        "GET",
        "/remittances/held",
        role="auditor",
        params={"limit": "5000"},
        ids=lambda rows: {r["remittance_id"] for r in rows},
    )
    assert [x["patient_control_number"] for x in r.json()] == [w["held"]]  # of our site only
    # followup: the claim, the work item (leased, read, acted on), aging by patient, statements
    await c.call("followup", "GET", f"/claims/{w['denied']}", role="auditor", ids=claim_ids)
    leased = await c.call(
        "followup",
        "POST",
        "/work/next",
        role="biller",
        params={"site": SITE},
        ids=lambda item: {item["work_item_id"], item["claim_id"]},
    )
    assert leased.json()["work_item_id"] == int(w["item"])
    await c.call(
        "followup",
        "GET",
        f"/work/{w['item']}",
        role="biller",
        ids=lambda item: {item["work_item_id"], item["claim_id"]},
    )
    await c.call(
        "followup",
        "POST",
        f"/work/{w['item']}/actions",
        role="biller",
        json={
            "lease_token": leased.json()["lease_token"],
            "action": "resolve",
            "reason": "audit coverage test",
        },
        ids=lambda _: {w["item"], w["denied"]},
    )
    aging = await c.call(
        "followup",
        "GET",
        "/ar/aging",
        role="supervisor",
        params={"by": "patient"},
        ids=lambda t: set(t["rows"]),
    )
    assert aging.json()["rows"], "no patient account in the aging"
    statements = await c.call(
        "followup",
        "POST",
        "/statements/run",
        role="supervisor",
        ids=lambda out: {s["statement_id"] for s in out["issued"]},
    )
    assert [s["site_id"] for s in statements.json()["issued"]] == [SITE]
    # the audit trail, read by an auditor, is itself recorded
    for service in ("billing", "payments", "followup"):
        r = await c.call(
            service, "GET", "/audit", role="auditor", params={"user": f"audit-biller-{RUN}"}
        )
        assert r.json() and {x["site_id"] for x in r.json()} <= {SITE, None}
    # a time without a zone is UTC, as for rcm audit query
    since = f"{date.today() - timedelta(days=1)}T00:00:00"
    r = await c.call("followup", "GET", "/audit", role="auditor", params={"since": since})
    assert all(x["site_id"] == SITE for x in r.json())  # an auditor of one site sees its records

    # 100 % of them are on the record: caller, role, address, request, every id shown.
    dsn = pipeline.dsn
    conn = await asyncpg.connect(dsn)
    unaudited, first_read = [], None
    try:
        for read in c.reads:
            rows = await conn.fetch(
                f"SELECT seq, actor, role, client_address, resource_ids, account_key, site_id"
                f" FROM {read.schema}.audit_record WHERE request_id = $1 ORDER BY seq",
                read.request_id,
            )
            named = {i for r in rows for i in r["resource_ids"]} | {r["account_key"] for r in rows}
            if not rows or not read.ids <= named:
                unaudited.append((read.service, read.request_id, sorted(read.ids - named)))
                continue
            assert {(r["actor"], r["role"], r["client_address"]) for r in rows} == {
                (read.user, read.role, "127.0.0.1")
            }
            if read.service == "followup" and first_read is None and w["item"] in named:
                first_read = rows[0]
    finally:
        await conn.close()
    assert not unaudited, (
        f"{len(unaudited)} of {len(c.reads)} PHI accesses not audited: {unaudited}"
    )
    assert first_read is not None and first_read["account_key"] and first_read["site_id"] == SITE

    # The chains are intact; an owner's UPDATE is named by record; put back, intact again.
    monkeypatch.setenv("DATABASE_URL", dsn)
    assert await _verify(capsys) == (0, None)
    seq = first_read["seq"]
    await _as_owner(
        dsn, f"UPDATE followup.audit_record SET actor = 'someone-else' WHERE seq = {seq}"
    )
    code, broken = await _verify(capsys)
    assert code == 1
    assert broken == (
        f"rcm audit: followup: chain broken at record {seq}:"
        f" record {seq} was changed (it no longer matches its hash)"
    )
    await _as_owner(
        dsn,
        f"UPDATE followup.audit_record SET actor = '{first_read['actor']}' WHERE seq = {seq}",
    )
    assert await _verify(capsys) == (0, None)


async def _verify(capsys) -> tuple[int, str | None]:
    """``rcm audit verify`` over every schema: its exit status and the line of a broken chain."""
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["audit", "verify"])
    out = capsys.readouterr().out
    broken = [line for line in out.splitlines() if "chain broken" in line]
    return code, broken[0] if broken else None


async def _as_owner(dsn: str, statement: str) -> None:
    """What the owner of the schema (its owner role, or the stack's superuser) can still do:
    switch the append-only trigger off, change a record, switch it on again."""
    conn = await asyncpg.connect(dsn)
    try:
        owner = await conn.fetchval(
            "SELECT tableowner FROM pg_tables"
            " WHERE schemaname = 'followup' AND tablename = 'audit_record'"
        )
        assert owner == await conn.fetchval("SELECT current_user") or await conn.fetchval(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        )
        async with conn.transaction():
            await conn.execute("ALTER TABLE followup.audit_record DISABLE TRIGGER USER")
            await conn.execute(statement)
            await conn.execute("ALTER TABLE followup.audit_record ENABLE TRIGGER USER")
    finally:
        await conn.close()
