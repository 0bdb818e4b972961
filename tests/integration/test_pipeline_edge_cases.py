"""Delivery guarantees on the real broker: redelivery, poison messages, a SIGKILLed service."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from rcm.cli.demo import coder_pool
from rcm.simulation.samples import generate_samples
from services.intake.domain.fhir import parse_intake
from shared.events import EncounterDocumented
from shared.kafka import start_producer
from shared.topics import ENCOUNTER_DOCUMENTED, dlq
from tests.conftest import FIXTURES
from tests.integration.pipeline_support import RECENT, fetch, fetchval, wait_for

pytestmark = pytest.mark.integration


async def _committed(bootstrap: str, group: str, tp: TopicPartition) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        meta = offsets.get(tp)
        return meta.offset if meta else -1
    finally:
        await admin.close()


async def _wait_committed_past(
    bootstrap: str, group: str, tp: TopicPartition, offset: int, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await _committed(bootstrap, group, tp) > offset:
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"group {group} never committed past {tp} offset {offset}")


def _documented(seed: int, n: int = 1) -> list[EncounterDocumented]:
    out = []
    for s in generate_samples(n, seed=seed, start_date=RECENT):
        enc = parse_intake(s.bundle)
        out.append(
            EncounterDocumented(site_id=enc.site_id, encounter_id=enc.encounter_id, payload=enc)
        )
    return out


async def test_redelivered_event_changes_nothing(pipeline):
    bootstrap = pipeline.endpoints["kafka"]
    event = _documented(seed=202)[0]
    producer = await start_producer(bootstrap)
    try:
        first = await (await producer.send(event.topic, event.to_json(), key=event.key()))
        await wait_for(
            pipeline.dsn,
            "SELECT count(*) FROM coding.encounter WHERE encounter_id = $1",
            event.encounter_id,
            predicate=lambda n: n == 1,
        )
        before = await fetch(
            pipeline.dsn,
            "SELECT status, suggestions::text, received_at FROM coding.encounter"
            " WHERE encounter_id = $1",
            event.encounter_id,
        )
        outbox_before = await fetchval(pipeline.dsn, "SELECT count(*) FROM coding.inbox")
        again = await (await producer.send(event.topic, event.to_json(), key=event.key()))
    finally:
        await producer.stop()
    assert again.partition == first.partition
    await _wait_committed_past(
        bootstrap, "rcm-coding", TopicPartition(event.topic, again.partition), again.offset
    )
    after = await fetch(
        pipeline.dsn,
        "SELECT status, suggestions::text, received_at FROM coding.encounter"
        " WHERE encounter_id = $1",
        event.encounter_id,
    )
    assert after == before
    assert await fetchval(pipeline.dsn, "SELECT count(*) FROM coding.inbox") == outbox_before
    assert (
        await fetchval(
            pipeline.dsn, "SELECT count(*) FROM coding.inbox WHERE event_id = $1", event.event_id
        )
        == 1
    )
    assert (
        await fetchval(
            pipeline.dsn,
            "SELECT count(*) FROM coding.dead_letter WHERE event_id = $1",
            event.event_id,
        )
        == 0
    )


async def test_poison_message_goes_to_dlq_and_partition_moves_on(pipeline):
    bootstrap = pipeline.endpoints["kafka"]
    good = _documented(seed=303)[0]
    producer = await start_producer(bootstrap)
    try:
        # Same key as the good event, so both land on one partition, poison first.
        bad = await (
            await producer.send(
                ENCOUNTER_DOCUMENTED,
                b'{"event_type": "encounter.documented", "payload": 1',
                key=good.key(),
            )
        )
        wrong = await (
            await producer.send(
                ENCOUNTER_DOCUMENTED,
                json.dumps(
                    {
                        "event_type": "encounter.documented",
                        "event_id": "not-a-uuid",
                        "site_id": "x",
                        "encounter_id": "E-BAD",
                        "payload": {"encounter_id": "E-BAD"},
                    }
                ).encode(),
                key=good.key(),
            )
        )
        ok = await (await producer.send(good.topic, good.to_json(), key=good.key()))
    finally:
        await producer.stop()
    assert (
        bad.partition == ok.partition == wrong.partition and bad.offset < wrong.offset < ok.offset
    )
    await wait_for(
        pipeline.dsn,
        "SELECT count(*) FROM coding.encounter WHERE encounter_id = $1",
        good.encounter_id,
        predicate=lambda n: n == 1,
    )
    rows = await fetch(
        pipeline.dsn,
        "SELECT source_offset, error FROM coding.dead_letter WHERE source_topic = $1"
        " AND source_partition = $2 AND source_offset = ANY($3::bigint[]) ORDER BY source_offset",
        ENCOUNTER_DOCUMENTED,
        bad.partition,
        [bad.offset, wrong.offset],
    )
    assert [r["source_offset"] for r in rows] == [bad.offset, wrong.offset]
    assert "JSON" in rows[0]["error"] or "json" in rows[0]["error"].lower()
    assert "event_id" in rows[1]["error"]
    # The DLQ topic carries the original bytes with the error in a header.
    consumer = AIOKafkaConsumer(
        dlq(ENCOUNTER_DOCUMENTED),
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    try:
        found = {}
        deadline = time.monotonic() + 30
        while len(found) < 2 and time.monotonic() < deadline:
            for _tp, msgs in (await consumer.getmany(timeout_ms=500)).items():
                for m in msgs:
                    h = dict(m.headers)
                    if h.get("source_partition") == str(bad.partition).encode():
                        found[int(h["source_offset"])] = (m.value, h["error"])
        assert set(found) >= {bad.offset, wrong.offset}
        assert found[bad.offset][0] == b'{"event_type": "encounter.documented", "payload": 1'
    finally:
        await consumer.stop()


async def test_sigkill_mid_stream_loses_and_duplicates_nothing(pipeline):
    bootstrap = pipeline.endpoints["kafka"]
    samples = [s for s in generate_samples(30, seed=404, start_date=RECENT)]
    events = []
    expected = {}
    for s in samples:
        enc = parse_intake(s.bundle)
        events.append(
            EncounterDocumented(site_id=enc.site_id, encounter_id=enc.encounter_id, payload=enc)
        )
        expected[enc.encounter_id] = s.expected
    ids = [e.encounter_id for e in events]
    stop = asyncio.Event()
    coders = asyncio.create_task(
        coder_pool(
            pipeline.coding_url,
            pipeline.settings.auth.token_secret,
            expected,
            stop,
            sorted({e.site_id for e in events}),
        )
    )
    producer = await start_producer(bootstrap)
    try:
        for e in events:
            await producer.send(e.topic, e.to_json(), key=e.key())
        await producer.flush()
    finally:
        await producer.stop()
    try:
        # Kill billing and payments as soon as work reaches them, then bring them back.
        await wait_for(
            pipeline.dsn,
            "SELECT count(*) FROM billing.claim WHERE encounter_id = ANY($1)",
            ids,
            predicate=lambda n: n >= 1,
            timeout=90,
            interval=0.05,
        )
        for name in ("billing", "payments"):
            proc = pipeline.supervisor.by_name(name)[0]
            proc.kill()
            assert not proc.alive()
            proc.start()
        await wait_for(
            pipeline.dsn,
            "SELECT count(*) FROM followup.encounter_outcome WHERE encounter_id = ANY($1)",
            ids,
            predicate=lambda n: n == len(ids),
            timeout=180,
        )
    finally:
        stop.set()
        await asyncio.wait_for(coders, 30)
    # Exactly one original claim per encounter and payer (a secondary's claim is an original to
    # the next payer); one posting per claim payment; no duplicate events applied.
    per_encounter = await fetch(
        pipeline.dsn,
        "SELECT encounter_id, count(*) AS n FROM billing.claim"
        " WHERE encounter_id = ANY($1) AND frequency_code = '1' AND cob_sequence = 'primary'"
        " GROUP BY 1",
        ids,
    )
    assert (
        await fetchval(
            pipeline.dsn,
            "SELECT count(*) FROM (SELECT 1 FROM billing.claim WHERE encounter_id = ANY($1)"
            " AND frequency_code = '1' GROUP BY encounter_id, cob_sequence HAVING count(*) > 1) x",
            ids,
        )
        == 0
    )
    assert len(per_encounter) == len(ids) and all(r["n"] == 1 for r in per_encounter)
    dup_files = await fetchval(
        pipeline.dsn,
        "SELECT count(*) FROM (SELECT claim_id FROM payer_sim.adjudication"
        " GROUP BY claim_id HAVING count(*) > 1) x",
    )
    assert dup_files == 0
    postings = await fetch(
        pipeline.dsn,
        # Per claim and payer: a crossover payer (Medicaid after Medicare) pays the forwarded
        # claim itself, so one claim may carry two payers' payments, each posted once.
        "SELECT e.claim_id, e.payer_id, count(*) AS n FROM payments.journal_entry e"
        " JOIN billing.claim c ON c.claim_id = e.claim_id WHERE c.encounter_id = ANY($1)"
        " AND e.kind = 'payment' GROUP BY 1, 2",
        ids,
    )
    assert postings and all(r["payer_id"] for r in postings)
    assert all(r["n"] == 1 for r in postings), [r for r in postings if r["n"] > 1]
    remits = await fetch(
        pipeline.dsn,
        # Per claim and payer (the remittance id starts with the payer id): a crossover
        # payer's 835 pays the claim the primary forwarded to it.
        "SELECT r.claim_id, count(*) AS n FROM followup.remittance r"
        " JOIN billing.claim c ON c.claim_id = r.claim_id WHERE c.encounter_id = ANY($1)"
        " GROUP BY 1, split_part(r.remittance_id, ':', 1) HAVING count(*) > 1",
        ids,
    )
    assert remits == []
    charges = await fetch(
        pipeline.dsn,
        "SELECT e.claim_id, count(*) AS n FROM payments.journal_entry e"
        " JOIN billing.claim c ON c.claim_id = e.claim_id WHERE c.encounter_id = ANY($1)"
        " AND e.kind = 'charge' GROUP BY 1 HAVING count(*) > 1",
        ids,
    )
    assert charges == []
    unbalanced = await fetchval(
        pipeline.dsn,
        "SELECT count(*) FROM (SELECT entry_id FROM payments.journal_line"
        " GROUP BY entry_id HAVING sum(amount) <> 0) x",
    )
    assert unbalanced == 0


async def test_malformed_acknowledgements_go_to_failed_and_files_keep_flowing(pipeline):
    inbound = pipeline.settings.inbound_dir
    good = (FIXTURES / "x12" / "billing" / "imsweb" / "x12_999_accepted.txt").read_text()
    icn = f"{uuid.uuid4().int % 10**9:09d}"  # fresh content: the mailbox ingests a file's bytes only once
    good = good.replace("000000286", icn)
    broken_999 = good[: len(good) * 2 // 3]  # ISA/GS/ST readable, the rest cut off
    (inbound / "broken_999.x12").write_text(broken_999)
    (inbound / "garbage.txt").write_text(f"this is not an X12 interchange at all {icn}\n")
    deadline = time.monotonic() + 60
    failed = inbound / "failed"

    def moved() -> bool:
        return (failed / "broken_999.x12").exists() and (failed / "garbage.txt").exists()

    while time.monotonic() < deadline and not moved():  # noqa: ASYNC110 - polling a directory
        await asyncio.sleep(0.3)
    for name in ("broken_999.x12", "garbage.txt"):
        assert (failed / name).exists(), f"{name} not moved to failed/"
        reason = (failed / f"{name}.reason.txt").read_text()
        assert reason.strip(), name
    assert "segment" in (failed / "broken_999.x12.reason.txt").read_text().lower()
    # The services are still alive and still process work.
    assert not pipeline.supervisor.dead()
