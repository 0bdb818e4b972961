"""Followup's work queue at its edges, on the real stack: sites, roles, leases, balances, odd input."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from services.followup.domain.priority import priority
from shared.topics import WRITEOFF_REQUESTED
from tests.integration.pipeline_support import fetch, fetchval, wait_for
from tests.integration.test_followup_typical_journey import (
    find_event,
    items_of,
    lease,
    new_site,
    remitted,
    running_followup,
    submitted,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def followup(settings, stack_endpoints):
    async with running_followup(settings, stack_endpoints) as f:
        yield f


def claim_id() -> str:
    return f"C{uuid.uuid4().hex[:12].upper()}"


async def denied_item(
    f,
    site: str,
    carc: str = "50",
    charge: str = "250.00",
    group: str = "CO",
    days_ago: int = 30,
    **kw,
):
    cid = claim_id()
    await f.publish(
        submitted(site, cid, charge=charge, dos=date.today() - timedelta(days=days_ago), **kw)
    )
    await wait_for(
        f.dsn,
        "SELECT count(*) FROM followup.claim WHERE claim_id = $1 AND submitted_at IS NOT NULL",
        cid,
    )
    await f.publish(
        remitted(
            site,
            cid,
            status="4",
            charge=charge,
            paid="0",
            adjustments=[(group, carc, charge)],
            payer_id=kw.get("payer_id", "AETNA1"),
        )
    )
    [item] = await items_of(f, cid)
    return item


async def test_other_sites_get_403_and_wrong_roles_are_refused(followup):
    mine, theirs = new_site("a"), new_site("b")
    item = await denied_item(followup, theirs)
    wid = item["work_item_id"]
    async with followup.client(sites=[mine]) as client:
        assert (await client.get(f"/work/{wid}")).status_code == 403
        r = await client.post(
            f"/work/{wid}/actions",
            json={"lease_token": str(uuid.uuid4()), "action": "resolve", "reason": "not mine"},
        )
        assert r.status_code == 403
        assert (await client.post("/work/next", params={"site": theirs})).status_code == 403
        assert (
            await client.post("/work/next")
        ).status_code == 204  # the other site's item is not offered
        assert (await client.get(f"/claims/{item['claim_id']}")).status_code == 403
        assert theirs not in (await client.get("/work/depth")).json()
    async with followup.client(role="coder", sites=[theirs]) as coder:
        assert (await coder.get(f"/work/{wid}")).status_code == 403
        assert (await coder.post("/jobs/no-response")).status_code == 403
    async with followup.client(sites=[theirs]) as biller:
        assert (
            await biller.post("/statements/run")
        ).status_code == 403  # jobs are for supervisors and services
        assert (await biller.get(f"/work/{wid}")).status_code == 200
    async with followup.client() as anyone:
        del anyone.headers["authorization"]
        assert (await anyone.get("/work/depth")).status_code == 401
    assert (
        await fetchval(
            followup.dsn, "SELECT status FROM followup.work_item WHERE work_item_id = $1", wid
        )
        == "open"
    )


async def test_write_off_above_open_balance_is_422_and_within_emits_writeoff_requested(followup):
    site = new_site("wo")
    item = await denied_item(followup, site, carc="197", charge="250.00")
    assert (item["category"], item["action"]) == ("authorization", "appeal")
    async with followup.client(sites=[site]) as client:
        leased = await lease(client)
        body = {
            "lease_token": leased["lease_token"],
            "action": "write_off",
            "reason": "no auth on file",
        }
        r = await client.post(
            f"/work/{item['work_item_id']}/actions", json={**body, "amount": "250.01"}
        )
        assert r.status_code == 422 and "exceeds the open balance 250.00" in r.json()["detail"]
        r = await client.post(
            f"/work/{item['work_item_id']}/actions", json={**body, "amount": "-5"}
        )
        assert r.status_code == 422
        r = await client.post(
            f"/work/{item['work_item_id']}/actions", json={**body, "amount": "250.00"}
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "resolved"
        again = await client.post(
            f"/work/{item['work_item_id']}/actions", json={**body, "amount": "1.00"}
        )
        assert again.status_code == 409  # resolved items take no more actions
    event = await find_event(
        followup.kafka, WRITEOFF_REQUESTED, lambda b: b["payload"]["claim_id"] == item["claim_id"]
    )
    assert (
        event["payload"]["amount"] == "250.00" and event["payload"]["category"] == "authorization"
    )
    assert (
        event["payload"]["request_id"] == r.json()["request_id"]
        and event["payload"]["requested_by"] == "biller1"
    )
    balances = (
        await fetch(
            followup.dsn,
            "SELECT payer_balance, patient_balance FROM followup.claim WHERE claim_id = $1",
            item["claim_id"],
        )
    )[0]
    assert tuple(balances) == (Decimal("0.00"), Decimal("0.00"))
    actions = await fetch(
        followup.dsn,
        "SELECT action FROM followup.work_audit WHERE work_item_id = $1 ORDER BY audit_id",
        item["work_item_id"],
    )
    assert [a["action"] for a in actions] == [
        "lease",
        "write_off",
    ]  # refused requests change and audit nothing


async def test_expired_lease_returns_the_item_to_the_queue(followup):
    site = new_site("lease")
    item = await denied_item(followup, site)
    wid = item["work_item_id"]
    async with (
        followup.client(user="first", sites=[site]) as first,
        followup.client(user="second", sites=[site]) as second,
    ):
        held = await lease(first)
        assert (await second.post("/work/next")).status_code == 204  # leased: not offered twice
        conn = await asyncpg.connect(followup.dsn)
        try:  # let the lease run out without waiting for it
            await conn.execute(
                "UPDATE followup.work_item SET lease_expires_at = now() - interval '1 second'"
                " WHERE work_item_id = $1",
                wid,
            )
        finally:
            await conn.close()
        assert (await second.get("/work/depth")).json()[site]["medical necessity"]["queued"] == 1
        taken = await lease(second)
        assert taken["work_item_id"] == wid and taken["lease_token"] != held["lease_token"]
        late = await first.post(
            f"/work/{wid}/actions",
            json={"lease_token": held["lease_token"], "action": "resolve", "reason": "done"},
        )
        assert late.status_code == 409
        r = await second.post(
            f"/work/{wid}/actions",
            json={
                "lease_token": taken["lease_token"],
                "action": "resolve",
                "reason": "payer reprocessed",
            },
        )
        assert r.status_code == 200 and r.json()["resolution"] == "payer reprocessed"
        view = (await second.get(f"/work/{wid}")).json()
    assert [(a["user_id"], a["action"]) for a in view["audit"]] == [
        ("first", "lease"),
        ("second", "lease"),
        ("second", "resolve"),
    ]
    assert (
        view["status"] == "resolved"
        and view["resolved_by"] == "second"
        and view["lease_token"] is None
    )


async def test_unknown_carc_and_remittance_for_unknown_claim_are_unclassified(followup):
    site = new_site("odd")
    cid = claim_id()
    await followup.publish(
        remitted(
            site, cid, status="4", charge="75.00", paid="0", adjustments=[("CO", "ZZ9", "75.00")]
        )
    )
    items = {i["source_key"].split(":")[0]: i for i in await items_of(followup, cid, n=2)}
    assert (
        items["unknown-claim"]["category"] == "unclassified"
        and items["unknown-claim"]["action"] == "review"
    )
    assert (items["denial"]["category"], items["denial"]["carc"]) == ("unclassified", "ZZ9")
    # The submission turns up late (another topic): its "unknown claim" item resolves itself.
    await followup.publish(
        submitted(site, cid, charge="75.00", dos=date.today() - timedelta(days=9))
    )
    await wait_for(
        followup.dsn,
        "SELECT status FROM followup.work_item WHERE work_item_id = $1",
        items["unknown-claim"]["work_item_id"],
        predicate=lambda s: s == "resolved",
    )
    assert (
        await fetchval(
            followup.dsn,
            "SELECT status FROM followup.work_item WHERE work_item_id = $1",
            items["denial"]["work_item_id"],
        )
        == "open"
    )


async def test_co29_recommends_write_off_or_appeal_from_the_submission_evidence(followup):
    site = new_site("tf")
    today = datetime.now(UTC)
    # Aster Health (AETNA1) allows 180 days from the date of service (billing's payer rules,
    # carried as the claim's filing deadline): first submitted 230 days after it, 50 days late.
    # (Followup's own 120-day AETNA* limit made a 200-day-old service 50 days late before.)
    late = await denied_item(
        followup,
        site,
        carc="29",
        charge="120.00",
        payer_id="AETNA1",
        days_ago=260,
        submitted_at=today - timedelta(days=30),
    )
    assert (late["category"], late["action"], late["recommendation"]) == (
        "timely filing",
        "write off",
        "write off",
    )
    assert (
        late["evidence"].startswith(f"Late: claim {late['claim_id']} first submitted")
        and "50 days after" in late["evidence"]
    )
    # First submitted in time, then replaced (frequency 7) late: the original submission is the evidence.
    cid = claim_id()
    dos = date.today() - timedelta(days=200)
    await followup.publish(
        submitted(site, cid, charge="90.00", dos=dos, submitted_at=today - timedelta(days=195))
    )
    replacement = claim_id()
    await followup.publish(
        submitted(
            site,
            replacement,
            charge="90.00",
            dos=dos,
            submitted_at=today - timedelta(days=20),
            frequency="7",
            original=cid,
            encounter_id=f"E-{cid}",
        )
    )
    await wait_for(
        followup.dsn,
        "SELECT count(*) FROM followup.claim WHERE claim_id = ANY($1) AND submitted_at IS NOT NULL",
        [cid, replacement],
        predicate=lambda n: n == 2,
    )
    await followup.publish(
        remitted(
            site,
            replacement,
            status="4",
            charge="90.00",
            paid="0",
            adjustments=[("CO", "29", "90.00")],
            encounter_id=f"E-{cid}",
        )
    )
    [timely] = await items_of(followup, replacement)
    assert (timely["action"], timely["recommendation"]) == ("appeal", "appeal")
    first = (today - timedelta(days=195)).date().isoformat()
    assert timely["evidence"].startswith(f"Timely: claim {cid} first submitted {first}")
    assert f"file 837P_{cid}.x12" in timely["evidence"] and "deadline" in timely["evidence"]
    assert (
        await fetchval(followup.dsn, "SELECT state FROM followup.claim WHERE claim_id = $1", cid)
        == "replaced"
    )


async def test_appeal_outcome_and_transfer_to_patient(followup):
    site = new_site("ap")
    item = await denied_item(followup, site, carc="50", charge="100.00")
    wid = item["work_item_id"]
    async with followup.client(sites=[site]) as client:
        leased = await lease(client)
        r = await client.post(
            f"/work/{wid}/actions",
            json={
                "lease_token": leased["lease_token"],
                "action": "appeal",
                "reason": "records attached",
            },
        )
        assert r.status_code == 200, r.text
        assert (r.json()["status"], r.json()["level"], r.json()["deadline_date"]) == (
            "waiting",
            1,
            item["deadline_date"].isoformat(),
        )
        assert (await client.get("/work/depth")).json()[site]["medical necessity"]["waiting"] == 1
        assert (
            await client.post("/work/next")
        ).status_code == 204  # waiting for the payer: not in the queue
        r = await client.post(
            f"/work/{wid}/actions", json={"action": "appeal_outcome", "outcome": "upheld"}
        )
        assert r.status_code == 200 and r.json()["status"] == "open"
        leased = await lease(client)
        body = {
            "lease_token": leased["lease_token"],
            "action": "transfer_to_patient",
            "reason": "non-covered, ABN on file",
        }
        assert (
            await client.post(f"/work/{wid}/actions", json={**body, "amount": "100.01"})
        ).status_code == 422
        r = await client.post(f"/work/{wid}/actions", json={**body, "amount": "60.00"})
        assert r.status_code == 200 and r.json()["status"] == "resolved"
        claim = (await client.get(f"/claims/{item['claim_id']}")).json()
    assert (claim["payer_balance"], claim["patient_balance"]) == ("40.00", "60.00")
    assert [(a["level"], a["outcome"]) for a in claim["appeals"]] == [(1, "upheld")]
    assert await fetchval(
        followup.dsn,
        "SELECT sum(amount) FROM followup.patient_transfer WHERE claim_id = $1",
        item["claim_id"],
    ) == Decimal("60.00")


async def test_priorities_escalate_as_deadlines_near(followup):
    site = new_site("esc")
    item = await denied_item(followup, site, carc="50", charge="400.00")
    deadline = item["deadline_date"]
    assert item["escalation"] == "normal" and item["priority"] == priority(Decimal("400.00"), 180)
    async with followup.client(user="ops", role="service") as ops:
        r = await ops.post(
            "/jobs/no-response", params={"as_of": (deadline - timedelta(days=10)).isoformat()}
        )
        assert r.status_code == 200, r.text
    row = (
        await fetch(
            followup.dsn,
            "SELECT priority, escalation FROM followup.work_item WHERE work_item_id = $1",
            item["work_item_id"],
        )
    )[0]
    assert (row["priority"], row["escalation"]) == (priority(Decimal("400.00"), 10), "urgent")
    async with followup.client(sites=[site]) as client:
        assert (await client.get("/work/depth")).json()[site]["medical necessity"]["urgent"] == 1


async def test_one_batch_with_two_remittances_of_a_claim_adds_both(followup):
    """Set-based writes see each key once: a batch's repeated claims and encounters must still apply in order."""
    from services.followup import repository as repo

    cid, enc = claim_id(), f"ENC-{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(followup.dsn)
    try:
        async with conn.transaction():
            await repo.upsert_submitted(
                conn,
                [
                    (
                        cid,
                        enc,
                        "s1",
                        "AETNA1",
                        "Aetna",
                        "1",
                        None,
                        Decimal("300.00"),
                        date(2026, 10, 1),
                        datetime.now(UTC),
                        "000000001",
                        None,
                        None,
                        "[]",
                        "CI",
                        "837P",
                        "f1.x12",
                        "acct",
                        Decimal("300.00"),
                        date(2027, 3, 30),  # billing's filing deadline (AETNA1: 180 days)
                    ),
                    # the same submission seen twice in one batch opens the balance once
                    (
                        cid,
                        enc,
                        "s1",
                        "AETNA1",
                        "Aetna",
                        "1",
                        None,
                        Decimal("300.00"),
                        date(2026, 10, 1),
                        datetime.now(UTC),
                        "000000001",
                        None,
                        None,
                        "[]",
                        "CI",
                        "837P",
                        "f1.x12",
                        "acct",
                        Decimal("300.00"),
                        date(2027, 3, 30),  # billing's filing deadline (AETNA1: 180 days)
                    ),
                ],
            )
            await repo.apply_amounts(
                conn,
                [
                    (
                        cid,
                        Decimal("100.00"),
                        Decimal("50.00"),
                        Decimal("0"),
                        Decimal("20.00"),
                        "partially_paid",
                        "PCCN1",
                        Decimal("-170.00"),
                        Decimal("20.00"),
                    ),
                    (
                        cid,
                        Decimal("50.00"),
                        Decimal("0"),
                        Decimal("0"),
                        Decimal("0"),
                        "paid",
                        None,
                        Decimal("-50.00"),
                        Decimal("0"),
                    ),
                ],
            )
            await repo.set_outcomes(
                conn, [(enc, "s1", cid, "paid"), (enc, "s1", cid, "partially_paid")]
            )
        row = await conn.fetchrow("SELECT * FROM followup.claim WHERE claim_id = $1", cid)
        outcome = await conn.fetchval(
            "SELECT outcome FROM followup.encounter_outcome WHERE encounter_id = $1", enc
        )
    finally:
        await conn.close()
    assert (row["paid"], row["contractual"], row["patient_responsibility"]) == (
        Decimal("150.00"),
        Decimal("50.00"),
        Decimal("20.00"),
    )
    assert (row["payer_balance"], row["patient_balance"]) == (Decimal("80.00"), Decimal("20.00"))
    assert row["state"] == "paid"  # the last remittance's state stands
    assert row["payer_claim_control_number"] == "PCCN1"  # kept: later remittances gave none
    assert outcome == "partially_paid"
