"""Coordination of benefits on the real stack, beyond the plain secondary claim: a crossover
(Medicare forwards the claim to Medicaid; nothing is billed; a work item when Medicaid's 835
never comes), a secondary held because the primary's adjudication does not match the claim,
a redelivered primary remittance (one secondary claim), and a tertiary claim."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from rcm.simulation.payer.domain import FeeSchedule, adjudicate, read_837
from rcm.simulation.payer.domain.write_835 import (
    PayeeInfo,
    PayerInfo,
    Remittance,
    build_era_file,
)
from services.billing.cob_flow import check_crossovers
from services.billing.context import BillingContext
from services.billing.domain.cob_remit import cob_claim_id
from services.billing.settings import BillingSettings
from shared.events import Address, RemittanceReceived, parse_event
from shared.kafka import start_producer
from shared.mailbox import write_atomically
from shared.topics import REMITTANCE_RECEIVED
from shared.x12 import split_segments
from tests.integration.cob_support import (
    MEDICAID,
    MEDICARE,
    RULES,
    SUPPLEMENT,
    TERTIARY,
    claim_segments,
    medicare_encounters,
    primary_claim_id,
    read_outbound,
    send_and_code,
)
from tests.integration.pipeline_support import fetch, fetchval, wait_for
from tests.unit.billing.test_billing_cob import lines_2430, loops_2320
from tests.x12_support import pyx12_validate

pytestmark = pytest.mark.integration

D = Decimal
PAID = ("paid", "partially_paid", "denied")


def _clean(f: dict) -> bool:
    return not f["ack_rejected"] and not f["denied"]


async def _history(dsn: str, claim_id: str) -> list[str]:
    rows = await fetch(
        dsn,
        "SELECT status FROM billing.claim_history WHERE claim_id = $1 ORDER BY history_id",
        claim_id,
    )
    return [r["status"] for r in rows]


async def _posted(dsn: str, claim_id: str) -> list[tuple[str, str]]:
    rows = await fetch(
        dsn,
        "SELECT payer_id, status_code FROM payments.claim_payment WHERE claim_id = $1"
        " AND state = 'posted' ORDER BY created_at",
        claim_id,
    )
    return [(r["payer_id"], r["status_code"]) for r in rows]


async def test_crossover_waits_for_medicaids_835_and_opens_work_when_it_never_comes(pipeline):
    dsn = pipeline.dsn
    answered = medicare_encounters(
        21101, [MEDICARE, MEDICAID], "xo", want=lambda f: _clean(f) and not f["crossover_lost"]
    )
    lost = medicare_encounters(
        21102, [MEDICARE, MEDICAID], "xl", want=lambda f: _clean(f) and f["crossover_lost"]
    )
    ids = await send_and_code(pipeline, answered + lost)
    came, never = primary_claim_id(answered[0]), primary_claim_id(lost[0])
    # Medicare's 835 (CLP02 19, MA18, NM1*TT) posts for both; billing waits for Medicaid's.
    await wait_for(
        dsn,
        "SELECT count(*) FROM billing.crossover_wait WHERE primary_claim_id = ANY($1)",
        [came, never],
        predicate=lambda n: n == 2,
        timeout=120,
    )
    # Medicaid's own 835 on the same claim posts as secondary; the wait is over.
    await wait_for(
        dsn,
        "SELECT status FROM billing.crossover_wait WHERE primary_claim_id = $1",
        came,
        predicate=lambda s: s == "received",
        timeout=60,
    )
    assert await _posted(dsn, came) == [("MCR01", "19"), ("MCD01", "2")]
    # The simulator writes both payers' payments in one file: Medicare's posted alone means
    # Medicaid's never came.
    assert await _posted(dsn, never) == [("MCR01", "19")]
    history = await _history(dsn, came)
    assert "crossover" in history and "crossover_received" in history
    assert "crossover_received" not in await _history(dsn, never)
    assert (
        await fetchval(
            dsn,
            "SELECT adjudication->>'status' FROM billing.prior_adjudication"
            " WHERE primary_claim_id = $1 AND cob_sequence = 'secondary'",
            came,
        )
        == "2"
    )
    # Nothing is billed to Medicaid by the provider: the payer already had the claim.
    assert (
        await fetchval(
            dsn,
            "SELECT count(*) FROM billing.claim WHERE encounter_id = ANY($1)"
            " AND cob_sequence <> 'primary'",
            ids,
        )
        == 0
    )

    # The timer: once the wait is due, the check opens one biller work item, only for the
    # claim whose 835 never came, once however often it runs.
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "UPDATE billing.crossover_wait SET due_at = now() - interval '1 minute'"
            " WHERE primary_claim_id = ANY($1)",
            [came, never],
        )
        # What the billing service's loop runs, with its context (chargemasters).
        ctx = BillingContext.from_settings(BillingSettings())
        assert await check_crossovers(conn, datetime.now(UTC), ctx) >= 1
        assert await check_crossovers(conn, datetime.now(UTC), ctx) == 0
        items = await conn.fetch(
            "SELECT claim_id, kind, status, reasons FROM billing.work_item"
            " WHERE claim_id = ANY($1) AND kind = 'crossover_overdue'",
            [came, never],
        )
        waits = dict(
            await conn.fetch(
                "SELECT primary_claim_id, status FROM billing.crossover_wait"
                " WHERE primary_claim_id = ANY($1)",
                [came, never],
            )
        )
    finally:
        await conn.close()
    assert [(i["claim_id"], i["status"]) for i in items] == [(never, "open")]
    assert "MCD01" in items[0]["reasons"] and "CROSSOVER_835_OVERDUE" in items[0]["reasons"]
    assert waits == {came: "received", never: "overdue"}
    history = await _history(dsn, never)
    assert history[-2:] == ["crossover_overdue", "secondary_held"]
    # Medicaid's claim, built from Medicare's 835 and held for a biller (who may bill it
    # directly): claim.held puts it on the billers' work list in followup.
    held = cob_claim_id(never, "secondary")
    assert await fetchval(dsn, "SELECT status FROM billing.claim WHERE claim_id = $1", held) == (
        "held"
    )
    assert "CROSSOVER_835_OVERDUE" in await fetchval(
        dsn,
        "SELECT reasons FROM billing.work_item WHERE claim_id = $1 AND kind = 'scrub_hold'",
        held,
    )
    await wait_for(
        dsn,
        "SELECT count(*) FROM followup.work_item WHERE claim_id = $1",
        held,
        predicate=lambda n: n == 1,
        timeout=60,
    )
    assert (
        await fetchval(
            dsn,
            "SELECT count(*) FROM billing.claim WHERE claim_id = $1",
            cob_claim_id(came, "secondary"),
        )
        == 0
    )


async def _rejected_primary(pipeline, seed: int, tag: str):
    """An encounter (Medicare + Medigap) whose primary claim the simulator rejects at its front
    door, so that no 835 of its own ever comes; the claim as the payer read it from the 837."""
    sample = medicare_encounters(
        seed, [MEDICARE, SUPPLEMENT], tag, want=lambda f: f["ack_rejected"]
    )[0]
    await send_and_code(pipeline, [sample])
    cid = primary_claim_id(sample)
    await wait_for(
        pipeline.dsn,
        "SELECT status FROM billing.claim WHERE claim_id = $1",
        cid,
        predicate=lambda s: s == "rejected",
        timeout=60,
    )
    name = await fetchval(
        pipeline.dsn, "SELECT file_name FROM billing.claim WHERE claim_id = $1", cid
    )
    text = await read_outbound(pipeline.settings.outbound_dir, name)
    return sample, cid, next(c for c in read_837(text).claims if c.claim_id == cid)


def _drop_835(pipeline, sub, decided, payer_id: str, payer_name: str) -> None:
    """``decided`` paid by ``payer_id`` in an 835 written into the inbound mailbox."""
    n = 900_000_000 + (time.time_ns() // 1000) % 99_999_999
    era = build_era_file(
        [
            Remittance(
                [decided],
                payer=PayerInfo(
                    payer_id,
                    payer_name,
                    Address(line1="1 Payer Way", city="Columbus", state="OH", postal_code="43215"),
                ),
                payee=PayeeInfo(
                    sub.billing_provider_name,
                    sub.billing_provider_npi or "",
                    sub.billing_provider_tax_id or "",
                ),
                trace_number=f"HAND{n}",
                payment_date=datetime.now(UTC).date(),
            )
        ],
        sender_id="CLEARINGHOUSE",
        receiver_id="RCMBILLING",
        interchange_control_number=n,
        group_control_number=n,
        created_at=datetime.now(UTC),
    )
    write_atomically(pipeline.settings.inbound_dir, f"835_hand_{n}.x12", era)


def _decide(sub):
    return adjudicate(
        sub, replace(RULES, denial_rate=D("0")), FeeSchedule.from_csv(), datetime.now(UTC).date()
    )


async def test_a_primary_adjudication_that_does_not_match_the_claim_holds_the_secondary(
    pipeline,
):
    dsn = pipeline.dsn
    # The only remittance is the one written here, line 1 adjudicated at 10.00 less than billed.
    sample, cid, sub = await _rejected_primary(pipeline, 21201, "hold")
    first = sub.lines[0]
    assert first.charge > 10
    changed = replace(
        sub,
        lines=(replace(first, charge=first.charge - 10), *sub.lines[1:]),
        total_charge=sub.total_charge - 10,
    )
    _drop_835(pipeline, sub, _decide(changed), "MCR01", "Medicare Part B (Demo MAC)")
    await wait_for(
        dsn,
        "SELECT status FROM billing.claim WHERE encounter_id = $1 AND cob_sequence = 'secondary'",
        sample.encounter.encounter_id,
        predicate=lambda s: s == "held",
        timeout=60,
    )
    sec = (
        await fetch(
            dsn,
            "SELECT claim_id, payer_id, file_name FROM billing.claim WHERE encounter_id = $1"
            " AND cob_sequence = 'secondary'",
            sample.encounter.encounter_id,
        )
    )[0]
    assert sec["payer_id"] == "BCBS01" and sec["file_name"] is None  # never sent
    reasons = await fetchval(
        dsn,
        "SELECT reasons FROM billing.work_item WHERE claim_id = $1 AND kind = 'scrub_hold'",
        sec["claim_id"],
    )
    assert "COB" in reasons
    assert (
        f"line 1 ({first.code}) adjudicated at {first.charge - 10}, billed at {first.charge}"
        in (reasons)
    )
    detail = await fetchval(
        dsn,
        "SELECT detail FROM billing.claim_history WHERE claim_id = $1 AND status = 'secondary_held'",
        cid,
    )
    assert sec["claim_id"] in detail and "adjudicated at" in detail
    # claim.held: the billers' work list (followup) has it, with the reason.
    await wait_for(
        dsn,
        "SELECT count(*) FROM followup.work_item WHERE claim_id = $1",
        sec["claim_id"],
        predicate=lambda n: n == 1,
        timeout=60,
    )


async def _remittance_event(bootstrap: str, claim_id: str, payer_id: str, timeout: float = 30):
    """The remittance.received event payments published for ``claim_id`` from ``payer_id``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (topic,) = await admin.describe_topics([REMITTANCE_RECEIVED])
    finally:
        await admin.close()
    parts = [TopicPartition(REMITTANCE_RECEIVED, p["partition"]) for p in topic["partitions"]]
    assert parts
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for r in records:
                    e = parse_event(r.value)
                    if isinstance(e, RemittanceReceived) and e.payload.claim_id == claim_id:
                        if e.payload.payer_id == payer_id:
                            return r.value, e
                        seen.append(e.payload.payer_id)
        raise AssertionError(f"no remittance.received for {claim_id} from {payer_id} ({seen})")
    finally:
        await consumer.stop()


async def test_a_redelivered_primary_remittance_bills_the_secondary_once(pipeline):
    dsn = pipeline.dsn
    sample = medicare_encounters(21301, [MEDICARE, SUPPLEMENT], "redo", want=_clean)[0]
    await send_and_code(pipeline, [sample])
    cid = primary_claim_id(sample)
    sec_id = cob_claim_id(cid, "secondary")
    await wait_for(
        dsn,
        "SELECT status FROM billing.claim WHERE claim_id = $1",
        sec_id,
        predicate=lambda s: s in PAID,
        timeout=120,
    )
    raw, event = await _remittance_event(pipeline.endpoints["kafka"], cid, "MCR01")
    # The same event again (a redelivery), and the same remittance under a new event id (as
    # if payments had published it twice).
    copy = event.model_copy(update={"event_id": uuid.uuid4()})
    producer = await start_producer(pipeline.endpoints["kafka"])
    try:
        await producer.send_and_wait(event.topic, raw, key=event.key())
        await producer.send_and_wait(copy.topic, copy.to_json(), key=copy.key())
    finally:
        await producer.stop()
    await wait_for(
        dsn,
        "SELECT count(*) FROM billing.inbox WHERE event_id = $1",
        copy.event_id,
        predicate=lambda n: n == 1,
        timeout=60,
    )
    await asyncio.sleep(1)  # anything a second claim would set off has had time to start
    rows = await fetch(
        dsn,
        "SELECT claim_id, cob_sequence FROM billing.claim WHERE encounter_id = $1"
        " ORDER BY cob_sequence",
        sample.encounter.encounter_id,
    )
    assert [(r["claim_id"], r["cob_sequence"]) for r in rows] == [
        (cid, "primary"),
        (sec_id, "secondary"),
    ]
    assert (await _history(dsn, cid)).count("secondary_billed") == 1
    assert (await _history(dsn, sec_id)).count("submitted") == 1
    sent = [
        p.name
        for p in (pipeline.settings.outbound_dir / "processed").iterdir()
        if p.is_file() and f"CLM*{sec_id}*" in p.read_text()
    ]
    assert len(sent) == 1, sent
    assert [p for p, _ in await _posted(dsn, sec_id)] == ["BCBS01"]
    assert (
        await fetchval(
            dsn,
            "SELECT count(*) FROM billing.dead_letter WHERE event_id = ANY($1)",
            [event.event_id, copy.event_id],
        )
        == 0
    )


async def test_tertiary_claim_carries_both_prior_payers(pipeline):
    dsn = pipeline.dsn
    sample = medicare_encounters(21401, [MEDICARE, SUPPLEMENT, TERTIARY], "ter", want=_clean)[0]
    ids = await send_and_code(pipeline, [sample])
    cid = primary_claim_id(sample)
    ter_id = cob_claim_id(cid, "tertiary")
    await wait_for(
        dsn,
        "SELECT status FROM billing.claim WHERE claim_id = $1",
        ter_id,
        predicate=lambda s: s in PAID,
        timeout=180,
    )
    pccn = {
        r["payer_id"]: r["payer_claim_control_number"]
        for r in await fetch(
            dsn,
            "SELECT payer_id, payer_claim_control_number FROM payments.claim_payment"
            " WHERE claim_id = ANY($1) AND state = 'posted'",
            [cid, cob_claim_id(cid, "secondary")],
        )
    }
    assert set(pccn) == {"MCR01", "BCBS01"}
    name = await fetchval(dsn, "SELECT file_name FROM billing.claim WHERE claim_id = $1", ter_id)
    text = await read_outbound(pipeline.settings.outbound_dir, name)
    segs, _ = split_segments(text)
    sbr, clm = claim_segments(segs, ter_id)
    assert sbr[1] == "T" and sbr[9] == "CI"
    first, second = loops_2320(clm)
    assert first[0][1] == "P" and second[0][1] == "S"
    assert ["NM1", "PR", "2"] == [x for x in first if x[:2] == ["NM1", "PR"]][0][:3]
    assert [x for x in first if x[:2] == ["NM1", "PR"]][0][9] == "MCR01"
    assert [x for x in second if x[:2] == ["NM1", "PR"]][0][9] == "BCBS01"
    assert ["REF", "F8", pccn["MCR01"]] in first and ["REF", "F8", pccn["BCBS01"]] in second
    for loop in (first, second):
        assert any(x[:2] == ["AMT", "D"] for x in loop)
        assert any(x[:2] == ["DTP", "573"] for x in loop)
    for lx, loops in lines_2430(clm).items():
        assert [loop[0][1] for loop in loops] == ["MCR01", "BCBS01"], lx
    ok, errors = pyx12_validate(text)
    assert ok, errors[:5]
    # Each payer billed once: primary, secondary, tertiary; all three paid by their payer.
    assert (
        await fetchval(
            dsn,
            "SELECT count(*) FROM billing.claim WHERE encounter_id = ANY($1) AND frequency_code = '1'",
            ids,
        )
        == 3
    )
    assert [p for p, _ in await _posted(dsn, ter_id)] == ["UHC001"]
    history = await _history(dsn, cid)  # the primary's timeline names both later claims
    assert history.count("secondary_billed") == 1 and history.count("tertiary_billed") == 1


async def test_a_primary_835_naming_its_payer_by_another_id_still_bills_the_secondary(pipeline):
    dsn = pipeline.dsn
    # Medicare's 835 names itself by its contractor number (REF*2U), not the 837's payer id:
    # still Medicare's decision, not a crossover to some other payer.
    sample, cid, sub = await _rejected_primary(pipeline, 21202, "otherid")
    decided = _decide(sub)
    _drop_835(pipeline, sub, decided, "15202", "CGS ADMINISTRATORS JURISDICTION 15")
    sec_id = cob_claim_id(cid, "secondary")
    await wait_for(
        dsn,
        "SELECT status FROM billing.claim WHERE claim_id = $1",
        sec_id,
        predicate=lambda s: s in PAID,
        timeout=90,
    )
    assert (
        await fetchval(
            dsn,
            "SELECT payer_id FROM billing.prior_adjudication WHERE primary_claim_id = $1"
            " AND cob_sequence = 'primary'",
            cid,
        )
        == "15202"
    )
    assert "crossover_received" not in await _history(dsn, cid)
    name = await fetchval(dsn, "SELECT file_name FROM billing.claim WHERE claim_id = $1", sec_id)
    text = await read_outbound(pipeline.settings.outbound_dir, name)
    sbr, clm = claim_segments(split_segments(text)[0], sec_id)
    assert (sbr[1], sbr[9]) == ("S", "BL")
    (prior,) = loops_2320(clm)
    assert ["REF", "F8", decided.payer_claim_control_number] in prior
    assert [p for p, _ in await _posted(dsn, sec_id)] == ["BCBS01"]
