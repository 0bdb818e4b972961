"""The service endpoints the workbench's screens are built from, on the real stack (PostgreSQL
and Kafka of the session): followup's work list with its filters and sorts, leasing an item
picked from the list and acting on it, the denial summary by payer; billing's claim with its
codes; payments' remittances of a claim; ``GET /ops/status`` (lag, dead letters, outbox,
mailboxes); and a workbench process that starts with no Kafka at all.

Each service's app is built as ``rcm serve`` serves it (``shared.service.http_app``) on a real
runtime; data is seeded through the services' own handlers under per-run sites and payers.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import uuid
from datetime import date, timedelta
from decimal import Decimal

import httpx
import pytest

from shared import db, ops
from shared.auth import DevSigner
from shared.messaging import Emitter, Inbound
from shared.service import Runtime, http_app
from tests.integration.payments_support import Clp, era_835
from tests.integration.payments_support import submitted as payments_submitted
from tests.integration.test_followup_typical_journey import remitted, submitted

pytestmark = pytest.mark.integration

RUN = uuid.uuid4().hex[:8]
SITE, OTHER = f"wbe-{RUN}", f"wbo-{RUN}"
PAYER_A, PAYER_B = f"WBA{RUN}".upper(), f"WBB{RUN}".upper()
DOS = date.today() - timedelta(days=20)


class Relay:
    """Stands in for the outbox relay: nothing is published from here."""

    def notify(self) -> None:
        pass


@pytest.fixture(scope="module")
async def apps(stack_endpoints, tmp_path_factory):
    base = tmp_path_factory.mktemp("wb-endpoints")
    env = {
        "DATABASE_URL": stack_endpoints["postgres"],
        "KAFKA_BOOTSTRAP_SERVERS": stack_endpoints["kafka"],
        "RCM_RUN_DIR": str(base / "run"),
        "RCM_MAILBOX_INBOUND": str(base / "inbound"),
        "RCM_MAILBOX_OUTBOUND": str(base / "outbound"),
    }
    pools, out = [], {}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        for name in ("followup", "billing", "payments"):
            spec = importlib.import_module(f"services.{name}.app").spec()
            settings = spec.settings()
            pool = await db.create_pool(settings.dsn, max_size=4)
            pools.append(pool)
            async with pool.acquire() as conn:
                await db.migrate(conn, spec.schema, spec.package_dir)
            rt = Runtime(settings=settings, pool=pool, relay=Relay(), stop=asyncio.Event())  # type: ignore[arg-type]
            if spec.build_context:
                rt.context = await spec.build_context(rt)
            out[name] = (spec, rt, http_app(spec, rt))
        try:
            yield out
        finally:
            for pool in pools:
                await pool.close()


def token(rt: Runtime, role: str, sites, user: str | None = None) -> str:
    signer = DevSigner.build(rt.settings.auth, rt.settings.runtime)
    return signer.sign(user or f"wbe-{role}-{RUN}", [role], list(sites), 600)


@contextlib.asynccontextmanager
async def client(apps, service: str, role: str, sites=(SITE,), user: str | None = None):
    _, rt, app = apps[service]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://wbe",
        headers={"authorization": f"Bearer {token(rt, role, sites, user)}"},
        timeout=60,
    ) as c:
        yield c


async def _handle(rt: Runtime, schema: str, handler, *events) -> None:
    async with rt.pool.acquire() as conn, conn.transaction():
        await handler(
            conn,
            [Inbound(event=e, topic=e.topic, partition=0, offset=0) for e in events],
            Emitter(schema),
        )


# Denials of SITE: claim -> (payer, charge, adjustments); one paid claim per payer besides.
DENIALS = {
    f"WD1{RUN}": (PAYER_A, "300.00", [("CO", "50", "300.00")]),
    f"WD2{RUN}": (PAYER_A, "120.00", [("CO", "50", "120.00")]),
    f"WD3{RUN}": (PAYER_A, "80.00", [("CO", "197", "80.00")]),
    f"WD4{RUN}": (PAYER_B, "200.00", [("CO", "29", "200.00")]),
}
PAID = {f"WP1{RUN}": PAYER_A, f"WP2{RUN}": PAYER_B, f"WP3{RUN}": PAYER_B}
OTHER_DENIAL = f"WDO{RUN}"


@pytest.fixture(scope="module")
async def followup(apps):
    spec, rt, _ = apps["followup"]
    handler = spec.handler(rt)
    await _handle(
        rt,
        "followup",
        handler,
        *(
            submitted(SITE, cid, charge=charge, dos=DOS, payer_id=payer)
            for cid, (payer, charge, _) in DENIALS.items()
        ),
        *(submitted(SITE, cid, charge="100.00", dos=DOS, payer_id=p) for cid, p in PAID.items()),
        submitted(OTHER, OTHER_DENIAL, charge="90.00", dos=DOS, payer_id=PAYER_A),
    )
    await _handle(
        rt,
        "followup",
        handler,
        *(
            remitted(
                SITE, cid, status="4", charge=charge, paid="0", adjustments=adjs, payer_id=payer
            )
            for cid, (payer, charge, adjs) in DENIALS.items()
        ),
        *(
            remitted(
                SITE,
                cid,
                charge="100.00",
                paid="90.00",
                adjustments=[("CO", "45", "10.00")],
                payer_id=p,
            )
            for cid, p in PAID.items()
        ),
        remitted(
            OTHER,
            OTHER_DENIAL,
            status="4",
            charge="90.00",
            paid="0",
            adjustments=[("CO", "50", "90.00")],
            payer_id=PAYER_A,
        ),
    )
    rows = await rt.pool.fetch(
        "SELECT claim_id, work_item_id FROM followup.work_item WHERE claim_id = ANY($1)",
        [*DENIALS, OTHER_DENIAL],
    )
    items = {r["claim_id"]: r["work_item_id"] for r in rows}
    assert set(items) == {*DENIALS, OTHER_DENIAL}, items
    # WD3's item opened ten days ago (the list's age is days since an item opened)
    await rt.pool.execute(
        "UPDATE followup.work_item SET created_at = now() - interval '10 days'"
        " WHERE work_item_id = $1",
        items[f"WD3{RUN}"],
    )
    return items


async def test_the_work_list_filters_sorts_and_keeps_to_the_callers_sites(apps, followup):
    async with client(apps, "followup", "biller") as c:
        r = await c.get("/work", params={"sort": "amount"})
        assert r.status_code == 200, r.text
        got = r.json()
        assert [i["claim_id"] for i in got] == [f"WD1{RUN}", f"WD4{RUN}", f"WD2{RUN}", f"WD3{RUN}"]
        assert [i["amount"] for i in got] == ["300.00", "200.00", "120.00", "80.00"]
        assert {i["site_id"] for i in got} == {SITE} and OTHER_DENIAL not in r.text
        first = got[0]
        assert first["carc"] == "50" and first["group_code"] == "CO" and first["status"] == "open"
        assert first["payer_id"] == PAYER_A and first["age_days"] == 0
        assert "guarantor" not in first and "patient" not in json.dumps(first)

        async def claims(**params) -> list[str]:
            r = await c.get("/work", params=params)
            assert r.status_code == 200, r.text
            return [i["claim_id"] for i in r.json()]

        assert await claims(payer=PAYER_B) == [f"WD4{RUN}"]
        assert await claims(min_amount="120.00", sort="amount") == [
            f"WD1{RUN}",
            f"WD4{RUN}",
            f"WD2{RUN}",
        ]
        assert await claims(min_age_days=7) == [f"WD3{RUN}"]
        assert (await claims(sort="age"))[:1] == [f"WD3{RUN}"]  # oldest first
        category = first["category"]
        assert set(await claims(category=category)) == {f"WD1{RUN}", f"WD2{RUN}"}
        assert await claims(site=SITE, payer=PAYER_A, min_amount="100", sort="amount") == [
            f"WD1{RUN}",
            f"WD2{RUN}",
        ]
        # another site, by filter: refused; bad input: 422 naming the field
        r = await c.get("/work", params={"site": OTHER})
        assert r.status_code == 403
        r = await c.get("/work", params={"min_amount": "lots"})
        assert r.status_code == 422 and "min_amount" in r.text
        r = await c.get("/work", params={"sort": "patient"})
        assert r.status_code == 422 and "sort" in r.text
    async with client(apps, "followup", "biller", sites=(OTHER,)) as c:
        r = await c.get("/work")
        assert [i["claim_id"] for i in r.json()] == [OTHER_DENIAL]
    async with client(apps, "followup", "coder") as c:
        assert (await c.get("/work")).status_code == 403
    _, rt, _ = apps["followup"]
    audited = await rt.pool.fetchval(
        "SELECT resource_ids FROM followup.audit_record WHERE actor = $1"
        " AND resource_type = 'work_list' ORDER BY seq LIMIT 1",
        f"wbe-biller-{RUN}",
    )
    assert "sort=amount" in audited and f"WD1{RUN}" in audited


async def test_a_biller_leases_an_item_picked_from_the_list_and_acts_on_it(apps, followup):
    item = followup[f"WD2{RUN}"]
    async with client(apps, "followup", "biller", user=f"first-{RUN}") as first:
        r = await first.post(f"/work/{item}/lease")
        assert r.status_code == 200, r.text
        lease = r.json()
        assert lease["status"] == "leased" and lease["leased_by"] == f"first-{RUN}"
        again = (await first.post(f"/work/{item}/lease")).json()  # renewed, same lease
        assert again["lease_token"] == lease["lease_token"]
        assert again["lease_expires_at"] >= lease["lease_expires_at"]
        async with client(apps, "followup", "biller", user=f"second-{RUN}") as second:
            r = await second.post(f"/work/{item}/lease")
            assert r.status_code == 409 and "another biller" in r.json()["detail"]
        listed = (await first.get("/work", params={"payer": PAYER_A})).json()
        assert {i["work_item_id"]: i["status"] for i in listed}[item] == "leased"
        r = await first.post(
            f"/work/{item}/actions",
            json={
                "action": "resolve",
                "reason": "payer reprocessed on the phone",
                "lease_token": lease["lease_token"],
            },
        )
        assert r.status_code == 200, r.text
        r = await first.post(f"/work/{item}/lease")
        assert r.status_code == 409 and "resolved" in r.json()["detail"]
    async with client(apps, "followup", "biller", sites=(OTHER,)) as c:
        assert (await c.post(f"/work/{followup[f'WD1{RUN}']}/lease")).status_code == 403
        assert (await c.post("/work/999999999/lease")).status_code == 404


async def test_the_denial_summary_gives_rate_and_top_reasons_by_payer(apps, followup):
    async with client(apps, "followup", "supervisor") as c:
        r = await c.get("/denials/summary")
    assert r.status_code == 200, r.text
    got = r.json()
    assert set(got) == {PAYER_A, PAYER_B}
    a, b = got[PAYER_A], got[PAYER_B]
    assert (a["claims"], a["denied"], a["denial_rate"]) == (4, 3, 0.75)
    assert (b["claims"], b["denied"], b["denial_rate"]) == (3, 1, 0.3333)
    assert [(x["reason"], x["count"]) for x in a["top_reasons"]] == [("CO-50", 2), ("CO-197", 1)]
    assert [(x["reason"], x["count"]) for x in b["top_reasons"]] == [("CO-29", 1)]
    assert all(x["label"] for x in a["top_reasons"])
    # the other site's caller sees its own denial only
    async with client(apps, "followup", "ops", sites=(OTHER,)) as c:
        other = (await c.get("/denials/summary")).json()
    assert other == {
        PAYER_A: {
            "claims": 1,
            "denied": 1,
            "denial_rate": 1.0,
            "top_reasons": [other[PAYER_A]["top_reasons"][0]],
        }
    }
    assert other[PAYER_A]["top_reasons"][0]["reason"] == "CO-50"
    async with client(apps, "followup", "coder") as c:
        assert (await c.get("/denials/summary")).status_code == 403


async def test_billing_shows_the_claims_codes(apps):
    from services.billing import repository as billing
    from tests.integration.test_followup_typical_journey import coded

    _, rt, _ = apps["billing"]
    claim_id = f"WBC{RUN}"
    payload = coded(SITE, f"ENC-WB{RUN}", DOS, "AETNA1").payload
    payload = payload.model_copy(
        update={
            "diagnoses": [
                *payload.diagnoses,
                payload.diagnoses[0].model_copy(update={"code": "W010XXA"}),
            ],
            "coded_by": "coder-north",
        }
    )
    async with rt.pool.acquire() as conn:
        await billing.insert_claims(
            conn,
            [
                billing.ClaimRow(
                    claim_id,
                    f"ENC-WB{RUN}",
                    SITE,
                    "AETNA1",
                    "professional",
                    "1",
                    None,
                    None,
                    Decimal("120.00"),
                    DOS,
                    payload.model_dump_json(),
                    None,
                )
            ],
        )
    async with client(apps, "billing", "biller") as c:
        r = await c.get(f"/claims/{claim_id}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [d["code"] for d in body["diagnoses"]] == ["S93401A", "W010XXA"]
    assert body["procedures"] == [
        {
            "code": "99213",
            "system": "cpt",
            "modifiers": [],
            "units": "1",
            "diagnosis_pointers": [1],
        }
    ]
    assert body["coded_by"] == "coder-north"
    assert "patient" not in body and "W1234567" not in r.text  # the member id stays in billing
    async with client(apps, "billing", "biller", sites=(OTHER,)) as c:
        assert (await c.get(f"/claims/{claim_id}")).status_code == 403


async def test_payments_lists_a_claims_remittances(apps):
    from services.payments.handlers import handle
    from services.payments.posting import apply_era

    _, rt, _ = apps["payments"]
    claim_id = f"WBR{RUN}"
    await _handle(
        rt,
        "payments",
        handle,
        payments_submitted(claim_id, Decimal("150.00"), payer_id=PAYER_A, site_id=SITE),
    )
    for n, (paid, status) in enumerate(((Decimal("0"), "4"), (Decimal("100.00"), "1"))):
        era = era_835(
            [
                Clp(
                    claim_id,
                    Decimal("150.00"),
                    paid,
                    status=status,
                    cas=[("CO", "50" if status == "4" else "45", Decimal("150.00") - paid)],
                )
            ],
            payer_id=PAYER_A,
            trace=f"TRN{n}{RUN}",
        )
        async with rt.pool.acquire() as conn, conn.transaction():
            await apply_era(conn, era, f"wbe-{n}-{RUN}.835", Emitter("payments"))
    async with client(apps, "payments", "biller") as c:
        r = await c.get(f"/claims/{claim_id}/remittances")
        assert r.status_code == 200, r.text
        got = r.json()["remittances"]
        assert [(x["status_code"], x["paid"], x["state"]) for x in got] == [
            ("4", "0.00", "posted"),
            ("1", "100.00", "posted"),
        ]
        assert [x["file_name"] for x in got] == [f"wbe-0-{RUN}.835", f"wbe-1-{RUN}.835"]
        assert [x["trace_number"] for x in got] == [f"TRN0{RUN}", f"TRN1{RUN}"]
        assert (await c.get(f"/claims/NOPE{RUN}/remittances")).status_code == 404
    async with client(apps, "payments", "biller", sites=(OTHER,)) as c:
        assert (await c.get(f"/claims/{claim_id}/remittances")).status_code == 403


async def _group_behind_by_two(bootstrap: str, group: str, topic: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for n in range(3):
            await producer.send_and_wait(topic, f"r{n}".encode())
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        for _ in range(30):  # the group coordinator of a fresh broker takes a moment
            try:
                await consumer.commit({tp: 1})
                return
            except Exception:
                await asyncio.sleep(1)
        raise AssertionError("could not commit the group's offset")
    finally:
        await consumer.stop()


async def test_ops_status_reports_lag_dead_letters_backlog_and_mailboxes(apps, followup):
    spec, rt, _ = apps["followup"]
    topic = f"rcm.wbe-{RUN}.v1"
    inbound = rt.settings.inbound_dir
    inbound.mkdir(parents=True, exist_ok=True)
    (inbound / f"WBE{RUN}.277").write_text("ISA*00*...")
    async with rt.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO followup.dead_letter (source_topic, source_partition, source_offset, error, body)"
            " VALUES ($1, 0, 1, 'test', '\\x00'::bytea), ($1, 0, 2, 'test', '\\x00'::bytea)",
            topic,
        )
        await conn.execute(
            "INSERT INTO followup.outbox (event_id, topic, key, body) VALUES ($1, $2, 'k', 'b')",
            uuid.uuid4(),
            topic,
        )
    try:
        status = ops.OpsStatus("followup", "followup", rt.pool, rt.settings, consumes=True, ttl=0)
        snap = await status.snapshot()
        async with rt.pool.acquire() as conn:
            assert snap["outbox_backlog"] == await conn.fetchval(
                "SELECT count(*) FROM followup.outbox"
            )
            assert snap["dead_letters"] == await conn.fetchval(
                "SELECT count(*) FROM followup.dead_letter"
            )
        assert snap["dead_letters_by_topic"][topic] == 2
        assert snap["consumer_group"] == "rcm-followup"
        # the lag of a consumer group on the session's broker: 3 records, 1 committed
        lagging = ops.OpsStatus(f"wbe-{RUN}", "followup", rt.pool, rt.settings, consumes=True)
        await _group_behind_by_two(rt.settings.kafka_servers, f"rcm-wbe-{RUN}", f"wbe-lag-{RUN}")
        lag = await lagging.snapshot()
        assert (lag["consumer_lag"], lag.get("lag_error")) == (2, None)
        assert snap["mailboxes"]["inbound"]["waiting"] >= 1
        assert set(snap["mailboxes"]) == {"inbound", "outbound"}
        assert snap["work_queue_depth"][SITE] == await rt.pool.fetchval(
            "SELECT count(*) FROM followup.work_item WHERE site_id = $1 AND status <> 'resolved'",
            SITE,
        )

        # over HTTP: ops and supervisors, with the work queues of their own sites only
        async with client(apps, "followup", "ops", sites=(OTHER,)) as c:
            r = await c.get("/ops/status")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["dead_letters_by_topic"][topic] == 2
        assert set(body["work_queue_depth"]) == {OTHER} and "claims_by_state" not in body
        for role in ("biller", "coder", "auditor"):
            async with client(apps, "followup", role) as c:
                assert (await c.get("/ops/status")).status_code == 403
        # a broker that is away: the lag says so, the rest still answers
        away = rt.settings.model_copy(
            update={
                "connections": rt.settings.connections.model_copy(
                    update={"kafka_bootstrap_servers": "127.0.0.1:9"}
                )
            }
        )
        snap = await ops.OpsStatus("followup", "followup", rt.pool, away, consumes=True).snapshot()
        assert snap["consumer_lag"] is None and "Kafka unavailable" in snap["lag_error"]
        assert snap["dead_letters_by_topic"][topic] == 2
    finally:
        async with rt.pool.acquire() as conn:
            await conn.execute("DELETE FROM followup.dead_letter WHERE source_topic = $1", topic)
            await conn.execute("DELETE FROM followup.outbox WHERE topic = $1", topic)
        (inbound / f"WBE{RUN}.277").unlink()


async def test_the_workbench_starts_without_kafka(stack_endpoints, tmp_path):
    """It neither consumes nor emits: with no broker reachable, `rcm serve workbench` starts
    and serves (a producer or a topic check would fail its start)."""
    import os
    import socket
    import sys
    import time

    from services.workbench.app import spec

    s = spec()
    assert s.kafka is False and not s.topics
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": stack_endpoints["postgres"],
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",  # nothing listens there
        "RCM_RUN_DIR": str(tmp_path),
        "RCM_WORKBENCH_SIGN_IN": "dev",
        "RCM_WORKBENCH_COOKIE_SECURE": "false",
    }
    proc = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "rcm.cli.main", "serve", "workbench", "--http-port", str(port)],
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        deadline, health = time.monotonic() + 60, None
        async with httpx.AsyncClient(timeout=2) as c:
            while time.monotonic() < deadline and proc.returncode is None:
                with contextlib.suppress(httpx.HTTPError):
                    health = (await c.get(f"http://127.0.0.1:{port}/health")).status_code
                    if health == 200:
                        break
                await asyncio.sleep(0.3)
            if health != 200:
                proc.terminate()
                _, err = await proc.communicate()
                raise AssertionError(f"workbench did not start: {err.decode()[-2000:]}")
            r = await c.get(f"http://127.0.0.1:{port}/signin")
            assert r.status_code == 200 and "coder-north" in r.text
    finally:
        if proc.returncode is None:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 30)
