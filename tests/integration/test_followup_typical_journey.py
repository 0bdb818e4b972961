"""Followup on the real stack: denials to work items, corrections, 276/277, aging, statements.

Only followup runs (as its own process; payments too where a test needs it); input events are published
straight to Kafka. Every test uses its own site id, so data left by earlier runs of
the same stack does not change what it sees.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from services.billing.domain.payer_rules import load_sample_payer_rules
from services.payments.domain.carcs import is_beyond_contract
from services.payments.domain.ledger import claim_balance, entry_for_claim_payment
from services.payments.domain.outcome import contractual_amount, remittance_outcome
from services.payments.domain.remittance import Adjustment as LedgerAdjustment
from services.payments.domain.remittance import ClaimPayment
from shared.auth import issue
from shared.events import (
    Address,
    Adjustment,
    ClaimLine,
    ClaimSubmitted,
    ClaimSubmittedPayload,
    CodedDiagnosis,
    CodedProcedure,
    Coverage,
    Encounter,
    EncounterCoded,
    EncounterCodedPayload,
    Organization,
    Person,
    RemittanceReceived,
    RemittanceReceivedPayload,
)
from shared.topics import CORRECTION_REQUESTED, STATEMENT_ISSUED
from tests.integration.pipeline_support import fetch, fetchval, wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
NPI = "1234567893"  # valid Luhn check digit with the 80840 prefix
BILLING_RULES = load_sample_payer_rules()


# --------------------------------------------------------------------------- the running service


class Followup:
    def __init__(self, settings, endpoints, supervisor, statements_dir: Path):
        self.settings = settings
        self.dsn = endpoints["postgres"]
        self.kafka = endpoints["kafka"]
        self.sup = supervisor
        self.url = f"http://127.0.0.1:{supervisor.by_name('followup')[0].http_port}"
        payments = supervisor.by_name("payments")
        self.payments_url = f"http://127.0.0.1:{payments[0].http_port}" if payments else None
        self.statements_dir = statements_dir
        self.producer = None

    def client(self, user="biller1", role="biller", sites=("*",)) -> httpx.AsyncClient:
        token = issue(self.settings.auth.token_secret, user, role, list(sites))
        return httpx.AsyncClient(
            base_url=self.url, headers={"authorization": f"Bearer {token}"}, timeout=30
        )

    async def publish(self, *events) -> None:
        for e in events:
            await self.producer.send_and_wait(e.topic, e.to_json(), key=e.key())


@asynccontextmanager
async def running_followup(
    settings, endpoints, *, with_payments=False, extra_env: dict[str, str] | None = None
):
    """Start payments (optional) and followup as processes against the session stack; stop them after."""
    from rcm.cli.demo import base_env, wait_http
    from rcm.localstack.supervisor import Supervisor
    from shared.kafka import ensure_topics, start_producer

    await ensure_topics(endpoints["kafka"])
    statements_dir = settings.run_path / "statements"
    sup = Supervisor(settings.run_path, base_env(settings, endpoints))
    env = {
        "RCM_FOLLOWUP_STATEMENTS_DIR": str(statements_dir),
        "RCM_MAILBOX_POLL_SECONDS": "0.2",
        **(extra_env or {}),
    }
    if with_payments:
        payments = sup.add("payments", http=True)
        env["RCM_FOLLOWUP_PAYMENTS_URL"] = f"http://127.0.0.1:{payments.http_port}"
    sup.add("followup", http=True, extra_env=env)
    sup.start_all()
    f = Followup(settings, endpoints, sup, statements_dir)
    try:
        for p in sup.processes:
            await wait_http(f"http://127.0.0.1:{p.http_port}/health", sup)
        f.producer = await start_producer(endpoints["kafka"])
        yield f
    finally:
        if f.producer is not None:
            await f.producer.stop()
        sup.stop_all()


@pytest.fixture(scope="module")
async def followup(settings, stack_endpoints):
    async with running_followup(settings, stack_endpoints) as f:
        yield f


# --------------------------------------------------------------------------- event factories


def new_site(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def person(first="Pat", last="Tester", mrn: str | None = "MRN1") -> Person:
    return Person(
        patient_id=mrn,
        first_name=first,
        last_name=last,
        birth_date=date(1980, 5, 17),
        gender="F",
        address=Address(line1="12 Main St", city="Springfield", state="IL", postal_code="62701"),
    )


def coded(
    site: str, encounter_id: str, dos: date, payer_id: str, mrn: str = "MRN1"
) -> EncounterCoded:
    enc = Encounter(
        encounter_id=encounter_id,
        site_id=site,
        service_date=dos,
        billing_provider=Organization(name="Test Urgent Care", npi=NPI, tax_id="123456789"),
        patient=person(mrn=mrn),
        coverages=[
            Coverage(payer_id=payer_id, payer_name=f"Payer {payer_id}", member_id="W1234567")
        ],
    )
    return EncounterCoded(
        site_id=site,
        encounter_id=encounter_id,
        payload=EncounterCodedPayload(
            encounter=enc,
            diagnoses=[CodedDiagnosis(code="S93401A")],
            procedures=[CodedProcedure(code="99213")],
        ),
    )


def submitted(
    site: str,
    claim_id: str,
    *,
    charge: str,
    dos: date,
    payer_id="AETNA1",
    submitted_at: datetime | None = None,
    mrn: str | None = "MRN1",
    encounter_id: str | None = None,
    frequency="1",
    original=None,
    guarantor=True,
) -> ClaimSubmitted:
    submitted_at = submitted_at or datetime.now(UTC)
    return ClaimSubmitted(
        site_id=site,
        encounter_id=encounter_id or f"E-{claim_id}",
        payload=ClaimSubmittedPayload(
            claim_id=claim_id,
            payer_id=payer_id,
            payer_name=f"Payer {payer_id}",
            total_charge=Decimal(charge),
            service_date=dos,
            submitted_at=submitted_at,
            interchange_control_number=f"{random.randint(1, 10**9 - 1):09d}",
            file_name=f"837P_{claim_id}.x12",
            frequency_code=frequency,
            original_claim_id=original,
            lines=[
                ClaimLine(
                    line_number=1,
                    code="99213",
                    units=Decimal(1),
                    charge=Decimal(charge),
                    service_date=dos,
                )
            ],
            guarantor=person(mrn=mrn) if guarantor else None,
            # billing's filing deadline (its payer rules are the one source of filing limits)
            filing_deadline=BILLING_RULES.filing_deadline(payer_id, "CI", dos),
        ),
    )


def remitted(
    site: str,
    claim_id: str,
    *,
    status="1",
    charge: str,
    paid: str,
    pr: str = "0",
    adjustments=(),
    remarks=(),
    payer_id="AETNA1",
    encounter_id: str | None = None,
) -> RemittanceReceived:
    adjs = [
        Adjustment(group=g, reason=r, amount=Decimal(a), beyond_contract=is_beyond_contract(g, r))
        for g, r, a in adjustments
    ]
    posted = entry_for_claim_payment(
        ClaimPayment(
            claim_id,
            status,
            Decimal(charge),
            Decimal(paid),
            Decimal(pr),
            "CI",
            adjustments=[
                LedgerAdjustment(a.group, a.reason, a.amount, None, "claim") for a in adjs
            ],
        ),
        claim_id,
        payer_id,
    )
    payer_change, patient_change = claim_balance(posted, claim_id)
    return RemittanceReceived(
        site_id=site,
        encounter_id=encounter_id or f"E-{claim_id}",
        payload=RemittanceReceivedPayload(
            remittance_id=f"{payer_id}:{uuid.uuid4().hex[:10]}:1",
            claim_id=claim_id,
            patient_control_number=claim_id,
            payer_id=payer_id,
            status_code=status,
            charge=Decimal(charge),
            paid=Decimal(paid),
            patient_responsibility=Decimal(pr),
            remarks=list(remarks),
            payment_date=date.today(),
            adjustments=adjs,
            # what payments decides and carries (the one rule for every consumer)
            outcome=remittance_outcome(status, Decimal(paid), Decimal(pr), adjs, False),
            contractual_adjustment=contractual_amount(adjs),
            payer_balance_change=payer_change,
            patient_balance_change=patient_change,
        ),
    )


async def items_of(f: Followup, claim_id: str, n: int = 1, timeout: float = 30) -> list:
    await wait_for(
        f.dsn,
        "SELECT count(*) FROM followup.work_item WHERE claim_id = $1",
        claim_id,
        predicate=lambda v: v >= n,
        timeout=timeout,
    )
    return await fetch(
        f.dsn,
        "SELECT * FROM followup.work_item WHERE claim_id = $1 ORDER BY work_item_id",
        claim_id,
    )


async def find_event(bootstrap: str, topic: str, match, timeout: float = 30) -> dict:
    """The first message on ``topic`` (from the beginning) whose JSON body satisfies ``match``."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for r in records:
                    body = json.loads(r.value)
                    if match(body):
                        return body
        raise AssertionError(f"no matching event on {topic} within {timeout}s")
    finally:
        await consumer.stop()


async def lease(client: httpx.AsyncClient, **params) -> dict:
    r = await client.post("/work/next", params=params)
    assert r.status_code == 200, r.text
    return r.json()


# --------------------------------------------------------------------------- tests


async def test_denial_becomes_classified_work_item_and_correction_emits_frequency_7(followup):
    site = new_site("deny")
    claim_id = f"C{uuid.uuid4().hex[:12].upper()}"
    dos = date.today() - timedelta(days=20)
    await followup.publish(submitted(site, claim_id, charge="180.00", dos=dos))
    await wait_for(
        followup.dsn,
        "SELECT count(*) FROM followup.claim WHERE claim_id = $1 AND submitted_at IS NOT NULL",
        claim_id,
    )
    await followup.publish(
        remitted(
            site,
            claim_id,
            status="4",
            charge="180.00",
            paid="0",
            adjustments=[("CO", "50", "180.00")],
            remarks=["N115"],
        )
    )
    [item] = await items_of(followup, claim_id)
    assert (item["category"], item["action"], item["group_code"], item["carc"]) == (
        "medical necessity",
        "appeal",
        "CO",
        "50",
    )
    assert item["amount"] == Decimal("180.00") and item["site_id"] == site
    assert item["deadline_date"] == date.today() + timedelta(
        days=180
    )  # AETNA* is commercial: 180 appeal days

    async with followup.client(sites=[site]) as client:
        depth = (await client.get("/work/depth")).json()
        assert depth[site]["medical necessity"]["queued"] == 1
        leased = await lease(client)
        assert (
            leased["work_item_id"] == item["work_item_id"]
            and leased["claim"]["payer_balance"] == "180.00"
        )
        assert (await client.post("/work/next")).status_code == 204  # nothing else for this site
        r = await client.post(
            f"/work/{item['work_item_id']}/actions",
            json={
                "lease_token": leased["lease_token"],
                "action": "correct",
                "reason": "add modifier and documentation",
                "diagnoses": ["S93.401A", "M25571"],
                "procedures": [{"code": "99213", "modifiers": ["25"]}],
            },
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "resolved" and r.json()["frequency_code"] == "7"
        view = (await client.get(f"/work/{item['work_item_id']}")).json()
    assert [a["action"] for a in view["audit"]] == ["lease", "correct"]
    event = await find_event(
        followup.kafka, CORRECTION_REQUESTED, lambda b: b["payload"]["claim_id"] == claim_id
    )
    assert event["payload"]["frequency_code"] == "7"
    assert event["payload"]["work_item_id"] == str(item["work_item_id"])
    assert [d["code"] for d in event["payload"]["diagnoses"]] == ["S93401A", "M25571"]
    assert event["payload"]["procedures"][0]["modifiers"] == ["25"]
    assert event["site_id"] == site and event["encounter_id"] == f"E-{claim_id}"


async def test_no_response_opens_work_item_and_writes_276_then_277_updates_history(followup):
    site = new_site("nr")
    claim_id = f"C{uuid.uuid4().hex[:12].upper()}"
    encounter_id = f"E-{claim_id}"
    dos = date.today() - timedelta(days=12)
    await followup.publish(
        coded(site, encounter_id, dos, "AETNA1"),
        submitted(
            site,
            claim_id,
            charge="95.00",
            dos=dos,
            submitted_at=datetime.now(UTC) - timedelta(days=10),
        ),
    )
    await wait_for(
        followup.dsn,
        "SELECT count(*) FROM followup.claim c JOIN followup.encounter_party p"
        " USING (encounter_id) WHERE c.claim_id = $1 AND c.submitted_at IS NOT NULL",
        claim_id,
    )
    async with followup.client(user="ops", role="service") as ops:
        # Four days after submission the commercial no-ack threshold (3 days) has passed ...
        r = await ops.post(
            "/jobs/no-response", params={"as_of": (date.today() - timedelta(days=6)).isoformat()}
        )
        assert r.status_code == 200, r.text
        file_name = r.json()["file_name"]
        assert file_name and file_name.startswith("276_")
        # ... and asking again the same day changes nothing for this claim (re-inquiry waits 14 days).
        again = await ops.post(
            "/jobs/no-response", params={"as_of": (date.today() - timedelta(days=6)).isoformat()}
        )
        assert again.status_code == 200, again.text
    [item] = await items_of(followup, claim_id)
    assert (item["category"], item["source_key"]) == (
        "no response",
        f"noresponse:{claim_id}:no_277ca",
    )
    # billing's filing deadline, carried on claim.submitted: Aster Health (AETNA1) 180 days
    # (followup's own AETNA* limit said 120 before billing became the one source)
    assert item["deadline_date"] == dos + timedelta(days=180)
    path = followup.settings.outbound_dir / file_name
    await wait_for(
        followup.dsn,
        "SELECT written_at IS NOT NULL FROM followup.outbound_file WHERE file_name = $1",
        file_name,
    )
    text = path.read_text()
    assert "ST*276*" in text and f"TRN*1*{claim_id}~" in text and f"REF*EJ*{claim_id}~" in text
    assert (
        "NM1*PR*2*PAYER AETNA1*****PI*AETNA1~" in text
        and f"*XX*{NPI}~" in text
        and "AMT*T3*95~" in text
    )
    assert await fetchval(
        followup.dsn, "SELECT last_inquiry_date FROM followup.claim WHERE claim_id = $1", claim_id
    ) == date.today() - timedelta(days=6)

    # The payer answers with a 277: the claim's history records it; an unknown claim opens an unclassified item.
    unknown = f"C{uuid.uuid4().hex[:12].upper()}"
    icn = f"{random.randint(1, 10**9 - 1):09d}"
    sample = (ROOT / "tests/fixtures/x12/followup/status_response.277").read_text()
    answer = (
        sample.replace("CLM001", claim_id)
        .replace("CLM002", unknown)
        .replace("CLM003", unknown + "X")
        .replace("000000777", icn)
    )
    inbound = followup.settings.inbound_dir
    (inbound / f".277_{icn}.tmp").write_text(answer)
    os.replace(inbound / f".277_{icn}.tmp", inbound / f"277_{icn}.x12")
    await wait_for(
        followup.dsn,
        "SELECT count(*) FROM followup.claim_status_history WHERE claim_id = $1 AND source = '277'",
        claim_id,
    )
    rows = await fetch(
        followup.dsn,
        "SELECT source, status_category, status_code, outcome, payer_claim_control_number"
        " FROM followup.claim_status_history WHERE claim_id = $1 ORDER BY history_id",
        claim_id,
    )
    assert [tuple(r) for r in rows] == [
        ("276", None, None, "inquiry sent", None),
        ("277", "F1", "65", "paid", "PCN1234567"),
    ]
    assert (
        await fetchval(
            followup.dsn,
            "SELECT last_status_category FROM followup.claim WHERE claim_id = $1",
            claim_id,
        )
        == "F1"
    )
    [odd] = await items_of(followup, unknown)
    assert odd["category"] == "unclassified"
    assert (inbound / "processed" / f"277_{icn}.x12").exists()
    async with followup.client(sites=[site]) as client:
        history = (await client.get(f"/claims/{claim_id}")).json()["status_history"]
    assert [h["source"] for h in history] == ["276", "277"]


AS_OF = date(2025, 6, 30)


async def test_aging_buckets_match_hand_computed_values(followup):
    site = new_site("aging")
    ids = {k: f"C{uuid.uuid4().hex[:12].upper()}" for k in ("a1", "a2", "a3", "a4")}
    at = lambda d: datetime(d.year, d.month, d.day, 15, tzinfo=UTC)  # noqa: E731
    await followup.publish(
        # a1: AETNA1, DOS 06-10 (20 days), nothing paid yet: 100.00 owed by the payer
        submitted(
            site,
            ids["a1"],
            charge="100.00",
            dos=date(2025, 6, 10),
            submitted_at=at(date(2025, 6, 12)),
            mrn="M1",
        ),
        # a2: AETNA1, DOS 04-15 (76 days), submitted 05-20 (41 days): paid 120, CO-45 50, PR-2 30 -> patient owes 30
        submitted(
            site,
            ids["a2"],
            charge="200.00",
            dos=date(2025, 4, 15),
            submitted_at=at(date(2025, 5, 20)),
            mrn="M1",
        ),
        # a3: MCR1, DOS 01-10 (171 days), denied CO-50: 300.00 stays with the payer
        submitted(
            site,
            ids["a3"],
            charge="300.00",
            dos=date(2025, 1, 10),
            submitted_at=at(date(2025, 1, 15)),
            payer_id="MCR1",
            mrn="M2",
        ),
        # a4: MCR1, DOS 03-05, overpaid 90 on 80: a 10.00 credit
        submitted(
            site,
            ids["a4"],
            charge="80.00",
            dos=date(2025, 3, 5),
            submitted_at=at(date(2025, 4, 10)),
            payer_id="MCR1",
            mrn="M2",
        ),
    )
    await wait_for(
        followup.dsn,
        "SELECT count(*) FROM followup.claim WHERE site_id = $1 AND submitted_at IS NOT NULL",
        site,
        predicate=lambda n: n == 4,
    )
    await followup.publish(
        remitted(
            site,
            ids["a2"],
            charge="200.00",
            paid="120.00",
            pr="30.00",
            adjustments=[("CO", "45", "50.00"), ("PR", "2", "30.00")],
        ),
        remitted(
            site,
            ids["a3"],
            status="4",
            charge="300.00",
            paid="0",
            adjustments=[("CO", "50", "300.00")],
            payer_id="MCR1",
        ),
        remitted(site, ids["a4"], charge="80.00", paid="90.00", payer_id="MCR1"),
    )
    await wait_for(
        followup.dsn,
        "SELECT count(*) FROM followup.claim WHERE site_id = $1 AND remitted_at IS NOT NULL",
        site,
        predicate=lambda n: n == 3,
    )
    async with followup.client(sites=[site]) as client:
        by_payer = (await client.get("/ar/aging", params={"as_of": AS_OF.isoformat()})).json()
        by_site = (
            await client.get(
                "/ar/aging",
                params={"as_of": AS_OF.isoformat(), "basis": "submission", "by": "site"},
            )
        ).json()
        by_patient = (
            await client.get("/ar/aging", params={"as_of": AS_OF.isoformat(), "by": "patient"})
        ).json()
        bad = await client.get("/ar/aging", params={"basis": "discharge"})
    assert bad.status_code == 422
    z = "0.00"
    assert by_payer["rows"] == {
        "AETNA1": {
            "0-30": "100.00",
            "31-60": z,
            "61-90": z,
            "91-120": z,
            "120+": z,
            "credit": z,
            "total": "100.00",
        },
        "MCR1": {
            "0-30": z,
            "31-60": z,
            "61-90": z,
            "91-120": z,
            "120+": "300.00",
            "credit": "-10.00",
            "total": "290.00",
        },
        "PATIENT": {
            "0-30": z,
            "31-60": z,
            "61-90": "30.00",
            "91-120": z,
            "120+": z,
            "credit": z,
            "total": "30.00",
        },
    }
    assert by_payer["grand_total"] == "420.00"
    assert by_site["rows"] == {
        site: {
            "0-30": "100.00",
            "31-60": "30.00",
            "61-90": z,
            "91-120": z,
            "120+": "300.00",
            "credit": "-10.00",
            "total": "420.00",
        }
    }
    from services.followup.parties import account_key

    assert {k: v["total"] for k, v in by_patient["rows"].items()} == {
        account_key(site, "M1", ""): "130.00",
        account_key(site, "M2", ""): "290.00",
    }

    # The same table from the command line.
    env = {
        **os.environ,
        "DATABASE_URL": followup.dsn,
        "RCM_RUN_DIR": str(followup.settings.run_path),
    }
    cmd = [
        sys.executable,
        "-m",
        "rcm.cli.main",
        "aging",
        "--as-of",
        AS_OF.isoformat(),
        "--sites",
        site,
    ]
    out = await asyncio.to_thread(
        subprocess.run, [*cmd, "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["rows"] == by_payer["rows"]
    table = await asyncio.to_thread(
        subprocess.run, [*cmd, "--by", "site"], env=env, capture_output=True, text=True, timeout=60
    )
    assert table.returncode == 0, table.stderr
    line = next(ln for ln in table.stdout.splitlines() if ln.startswith(site))
    assert line.split()[1:] == [
        "100.00",
        "0.00",
        "30.00",
        "0.00",
        "300.00",
        "-10.00",
        "420.00",
    ]  # service basis


async def test_statement_pdf_shows_amount_due_dunning_and_stops_when_paid(followup):
    from pypdf import PdfReader

    site = new_site("stmt")
    claim_id = f"C{uuid.uuid4().hex[:12].upper()}"
    mrn = f"M{uuid.uuid4().hex[:6]}"
    dos = date.today() - timedelta(days=15)
    await followup.publish(submitted(site, claim_id, charge="150.00", dos=dos, mrn=mrn))
    await wait_for(
        followup.dsn,
        "SELECT count(*) FROM followup.claim WHERE claim_id = $1 AND submitted_at IS NOT NULL",
        claim_id,
    )
    await followup.publish(
        remitted(
            site,
            claim_id,
            charge="150.00",
            paid="100.00",
            pr="40.00",
            adjustments=[("CO", "45", "10.00"), ("PR", "2", "40.00")],
        )
    )
    await wait_for(
        followup.dsn,
        "SELECT patient_balance FROM followup.claim WHERE claim_id = $1",
        claim_id,
        predicate=lambda v: v == Decimal("40.00"),
    )
    from services.followup.parties import account_key

    account = account_key(site, mrn, "")
    today = date.today()

    async def run(as_of: date) -> list[dict]:
        async with followup.client(user="ops", role="supervisor") as ops:
            r = await ops.post("/statements/run", params={"as_of": as_of.isoformat()})
        assert r.status_code == 200, r.text
        return [s for s in r.json()["issued"] if s["account_key"] == account]

    [first] = await run(today)
    assert (first["cycle"], first["amount_due"]) == (0, "40.00")
    text = "".join(
        page.extract_text()
        for page in PdfReader(followup.statements_dir / first["file_name"]).pages
    )
    assert (
        "Amount due: $40.00" in text
        and "Pat Tester" in text
        and "62701" in text
        and claim_id in text
    )
    event = await find_event(
        followup.kafka,
        STATEMENT_ISSUED,
        lambda b: b["payload"]["statement_id"] == first["statement_id"],
    )
    assert event["payload"]["amount_due"] == "40.00" and event["payload"]["claim_ids"] == [claim_id]
    assert event["payload"]["due_date"] == (today + timedelta(days=21)).isoformat()
    assert await run(today + timedelta(days=10)) == []  # not yet 30 days
    [second] = await run(today + timedelta(days=30))
    assert second["cycle"] == 1
    # A secondary payer pays the patient's 40.00: no further statements.
    await followup.publish(
        remitted(site, claim_id, status="2", charge="150.00", paid="40.00", payer_id="SEC1")
    )
    await wait_for(
        followup.dsn,
        "SELECT patient_balance FROM followup.claim WHERE claim_id = $1",
        claim_id,
        predicate=lambda v: v == Decimal("0.00"),
    )
    assert await run(today + timedelta(days=60)) == []

    # `rcm statements run` does the same from the command line (events go to followup's outbox).
    other, other_mrn = f"C{uuid.uuid4().hex[:12].upper()}", f"M{uuid.uuid4().hex[:6]}"
    await followup.publish(submitted(site, other, charge="60.00", dos=dos, mrn=other_mrn))
    await wait_for(
        followup.dsn,
        "SELECT count(*) FROM followup.claim WHERE claim_id = $1 AND submitted_at IS NOT NULL",
        other,
    )
    await followup.publish(
        remitted(
            site,
            other,
            charge="60.00",
            paid="35.00",
            pr="25.00",
            adjustments=[("PR", "3", "25.00")],
        )
    )
    await wait_for(
        followup.dsn,
        "SELECT patient_balance FROM followup.claim WHERE claim_id = $1",
        other,
        predicate=lambda v: v == Decimal("25.00"),
    )
    out_dir = followup.settings.run_path / f"cli-statements-{site}"
    env = {
        **os.environ,
        "DATABASE_URL": followup.dsn,
        "RCM_RUN_DIR": str(followup.settings.run_path),
    }
    cli = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "rcm.cli.main",
            "statements",
            "run",
            "--as-of",
            today.isoformat(),
            "--out",
            str(out_dir),
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    [mine] = [
        x
        for x in json.loads(cli.stdout)["issued"]
        if x["account_key"] == account_key(site, other_mrn, "")
    ]
    assert (mine["cycle"], mine["amount_due"]) == (0, "25.00")
    assert "Amount due: $25.00" in PdfReader(out_dir / mine["file_name"]).pages[0].extract_text()
    logs = (followup.settings.run_path / "logs" / "followup-0.log").read_text()
    assert "Tester" not in logs and mrn not in logs
