"""The shared connection pool and the local PostgreSQL: what a released connection keeps; when plans are made again."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import asyncpg
import pytest

from shared import db

pytestmark = pytest.mark.integration


async def test_a_released_connection_comes_back_without_the_open_transaction(
    stack_endpoints,
) -> None:
    pool = await db.create_pool(stack_endpoints["postgres"], min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            pid = conn.get_server_pid()
            await conn.execute("CREATE TEMP TABLE IF NOT EXISTS pool_probe (n int)")
            await conn.execute("BEGIN")  # left open, as by a task cancelled mid-transaction
            await conn.execute("INSERT INTO pool_probe VALUES (1)")
        async with pool.acquire() as conn:
            assert conn.get_server_pid() == pid  # the same session, reused
            assert not conn.is_in_transaction()
            assert (
                await conn.fetchval("SELECT count(*) FROM pool_probe") == 0
            )  # the insert was rolled back
    finally:
        await pool.close()


async def test_a_cached_statement_is_planned_again_once_its_table_grew(stack_endpoints) -> None:
    """A generic plan made while a table was small does not outlive the pool's statement lifetime."""
    pool = await db.create_pool(
        stack_endpoints["postgres"], min_size=1, max_size=1, statement_lifetime=1
    )
    plans: list[str] = []
    try:
        async with pool.acquire() as conn:
            await conn.execute("CREATE TEMP TABLE plan_probe (id text PRIMARY KEY, n int)")
            await conn.execute(
                "INSERT INTO plan_probe SELECT 's' || g, g FROM generate_series(1, 40) g"
            )
            await conn.execute("ANALYZE plan_probe")  # statistics of a new deployment's small table
            # Every plan comes back to this session as a LOG message.
            await conn.execute("LOAD 'auto_explain'")
            await conn.execute(
                "SET auto_explain.log_min_duration = 0; SET client_min_messages = log"
            )

            def listener(_conn, message) -> None:
                plans.append(message.message)

            conn.add_log_listener(listener)
            query = "SELECT n FROM plan_probe WHERE id = ANY($1::text[])"
            for _ in range(8):  # past the five custom plans after which a generic plan sticks
                await conn.fetch(query, ["s1", "s2"])
            await conn.execute(
                "INSERT INTO plan_probe SELECT 'k' || g, g FROM generate_series(1, 50000) g"
            )
            await asyncio.sleep(1.2)
            plans.clear()
            await conn.fetch(query, ["k7", "k9"])
            await asyncio.sleep(0.1)  # log messages arrive asynchronously
            conn.remove_log_listener(listener)
    finally:
        await pool.close()
    plan = "\n".join(p for p in plans if "plan_probe" in p)
    assert "plan_probe_pkey" in plan and "Seq Scan" not in plan, plan


async def test_queued_outbound_files_are_written_once_in_order_and_cleared(
    stack_endpoints, tmp_path
) -> None:
    """The file writer writes a batch of queued files (one worker-thread trip) and marks each written."""
    from shared import mailbox

    pool = await db.create_pool(stack_endpoints["postgres"], min_size=1, max_size=2)
    schema = f"probe_{tmp_path.name[-8:].lower().replace('-', '_')}"
    try:
        async with pool.acquire() as conn:
            await db.migrate(conn, schema, None)
            async with conn.transaction():
                for i in range(5):
                    await mailbox.add_outbound(
                        conn, schema, tmp_path / "out", f"F{i}.x12", f"ISA*{i}~"
                    )
        assert await mailbox.write_pending(pool, schema, limit=3) == 3
        assert await mailbox.write_pending(pool, schema, limit=3) == 2
        assert await mailbox.write_pending(pool, schema) == 0
        written = sorted(p.name for p in (tmp_path / "out").iterdir())
        assert written == [f"F{i}.x12" for i in range(5)]  # no temp files left behind
        assert [(tmp_path / "out" / f"F{i}.x12").read_text() for i in range(5)] == [
            f"ISA*{i}~" for i in range(5)
        ]
        async with pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT written_at IS NOT NULL AS done, content FROM {schema}.outbound_file"
            )
            assert len(rows) == 5 and all(r["done"] and r["content"] == "" for r in rows)
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await pool.close()


async def test_a_batch_whose_handler_fails_on_one_event_applies_the_rest_and_dead_letters_that_one(
    stack_endpoints, tmp_path, monkeypatch
) -> None:
    """Replayed one event per transaction: only the event at fault is dead-lettered, and each
    replay transaction links to its event's span."""
    from collections import namedtuple

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from shared import consumer, telemetry
    from shared.events import ClaimAccepted, ClaimAckPayload

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(
        telemetry,
        "_event_spans",
        telemetry.EventSpans(provider.sampler, SimpleSpanProcessor(exporter)),
    )
    monkeypatch.setattr(consumer, "tracer", lambda: provider.get_tracer("test"))
    Record = namedtuple("Record", "topic partition offset key value headers")
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    records = [
        Record(
            ClaimAccepted.topic,
            0,
            i,
            f"E{i}".encode(),
            ClaimAccepted(
                site_id="s",
                encounter_id=f"E{i}",
                payload=ClaimAckPayload(claim_id=f"C{i}", source="999"),
            ).to_json(),
            [("traceparent", tp.encode())],
        )
        for i in range(3)
    ]
    schema = f"probe_{tmp_path.name[-8:].lower().replace('-', '_')}"
    applied: list[str] = []

    async def handler(conn, items, emitter) -> None:
        for item in items:
            if item.event.payload.claim_id == "C1":
                raise KeyError("a bug met by this event only")
            applied.append(item.event.payload.claim_id)

    pool = await db.create_pool(stack_endpoints["postgres"], min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            await db.migrate(conn, schema, None)
        await consumer.BatchApplier(service="probe", schema=schema, pool=pool, handler=handler)(
            records
        )
        assert applied == ["C0", "C0", "C2"]  # the batch (rolled back), then one by one
        async with pool.acquire() as conn:
            dead = await conn.fetch(f"SELECT encounter_id, error FROM {schema}.dead_letter")
            assert [(r["encounter_id"], r["error"].split(":")[0]) for r in dead] == [
                ("E1", "KeyError")
            ]
            assert await conn.fetchval(f"SELECT count(*) FROM {schema}.inbox") == 3
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await pool.close()
    spans = exporter.get_finished_spans()
    events = {
        s.attributes["rcm.encounter_id"]: s
        for s in spans
        if s.name == "probe handle claim.accepted"
    }
    assert set(events) == {"E0", "E1", "E2"} and all(
        s.parent.span_id == int(tp[36:52], 16) for s in events.values()
    )
    single = [
        s for s in spans if s.name == "probe db transaction" and s.attributes["rcm.batch"] == 1
    ]
    assert sorted(s.links[0].context.span_id for s in single) == sorted(
        s.context.span_id for s in events.values()
    )
    whole = [
        s for s in spans if s.name == "probe db transaction" and s.attributes["rcm.batch"] == 3
    ]
    assert len(whole) == 1 and len(whole[0].links) == 3 and whole[0].parent is None


async def test_the_local_postgres_replans_a_statement_soon_after_its_table_grew(
    stack_endpoints,
) -> None:
    """A new deployment's tables are analyzed while small; generic plans made then seq-scan them.

    The local stack's autovacuum visits every 5 s (not every minute): its ANALYZE of the grown
    table invalidates those plans, so even a statement prepared long ago (or a foreign-key
    check, which no client re-prepares) uses the index again within seconds.
    """
    if os.environ.get("RCM_TEST_STACK") == "containers" or os.environ.get("DATABASE_URL"):
        pytest.skip("autovacuum's schedule is the external server's")
    conn = await asyncpg.connect(
        stack_endpoints["postgres"]
    )  # asyncpg keeps its statements for 5 minutes
    schema = f"plan_probe_{uuid.uuid4().hex[:8]}"
    query = f"SELECT n FROM {schema}.claim WHERE claim_id = ANY($1::text[])"

    async def seq_scans(runs: int) -> int:
        async with conn.transaction():
            before = await conn.fetchval(
                "SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relid = $1::regclass",
                f"{schema}.claim",
            )
            for _ in range(runs):
                await conn.fetch(query, ["s1", "s2"])
            after = await conn.fetchval(
                "SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relid = $1::regclass",
                f"{schema}.claim",
            )
        return after - before

    try:
        await conn.execute(
            f"CREATE SCHEMA {schema}; CREATE TABLE {schema}.claim (claim_id text PRIMARY KEY, n int)"
        )
        await conn.execute(
            f"INSERT INTO {schema}.claim SELECT 's' || g, g FROM generate_series(1, 40) g"
        )
        await conn.execute(
            f"ANALYZE {schema}.claim"
        )  # as autovacuum does to a new deployment's small table
        await seq_scans(8)  # past the five custom plans: the generic plan sticks
        await conn.execute(
            f"INSERT INTO {schema}.claim SELECT 'k' || g, g FROM generate_series(1, 50000) g"
        )
        assert await seq_scans(5) == 5  # the generic plan still scans the whole (now big) table
        deadline = (
            time.monotonic() + 15
        )  # three naptimes; the server's default (a minute) would not do
        while not await conn.fetchval(
            "SELECT autoanalyze_count > 0 FROM pg_stat_user_tables WHERE relid = $1::regclass",
            f"{schema}.claim",
        ):
            assert time.monotonic() < deadline, (
                "autovacuum did not analyze the grown table within 15 s"
            )
            await asyncio.sleep(0.5)
        assert await seq_scans(5) == 0
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()


async def test_inbox_rows_past_their_retention_are_pruned_and_recent_ones_kept(
    stack_endpoints,
) -> None:
    from shared.service import _inbox_pruning

    schema = f"inbox_probe_{uuid.uuid4().hex[:8]}"
    pool = await db.create_pool(stack_endpoints["postgres"], min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            await db.migrate(conn, schema, None)
            await conn.execute(
                f"INSERT INTO {schema}.inbox (event_id, topic, received_at)"
                " SELECT gen_random_uuid(), 't', now() - make_interval(days => d) FROM unnest($1::int[]) AS d",
                [9] * 25 + [30] * 5 + [7] * 3 + [0] * 4,
            )
            assert (
                await conn.fetchval(
                    "SELECT count(*) FROM pg_indexes WHERE schemaname = $1"
                    " AND indexname = 'inbox_received_brin'",
                    schema,
                )
                == 1
            )
        stop = asyncio.Event()
        pruning = asyncio.create_task(_inbox_pruning(pool, schema, 8, stop, every=0.2, first=0))
        deadline = time.monotonic() + 10
        while await pool.fetchval(f"SELECT count(*) FROM {schema}.inbox") > 7:
            assert time.monotonic() < deadline, "old inbox rows were not pruned"
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.wait_for(pruning, 5)
        ages = await pool.fetch(
            f"SELECT extract(day FROM now() - received_at)::int AS d FROM {schema}.inbox ORDER BY 1"
        )
        assert [r["d"] for r in ages] == [0] * 4 + [7] * 3  # within the retention: kept
    finally:
        await pool.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await pool.close()


async def test_a_batch_that_lost_a_lock_race_is_redelivered_at_once(stack_endpoints) -> None:
    """A deadlock victim's batch goes back to the broker without the outage pause (here a minute)."""
    from collections import namedtuple

    from shared import consumer
    from shared.events import ClaimAccepted, ClaimAckPayload

    Record = namedtuple("Record", "topic partition offset key value headers")
    records = [
        Record(
            ClaimAccepted.topic,
            0,
            0,
            b"E0",
            ClaimAccepted(
                site_id="s", encounter_id="E0", payload=ClaimAckPayload(claim_id="C0", source="999")
            ).to_json(),
            [],
        )
    ]
    schema = f"probe_{uuid.uuid4().hex[:8]}"

    async def handler(conn, items, emitter) -> None:
        raise asyncpg.exceptions.DeadlockDetectedError("deadlock detected")

    pool = await db.create_pool(stack_endpoints["postgres"], min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            await db.migrate(conn, schema, None)
        applier = consumer.BatchApplier(
            service="probe", schema=schema, pool=pool, handler=handler, retry_pause=60
        )
        with pytest.raises(asyncpg.exceptions.DeadlockDetectedError):
            await asyncio.wait_for(applier(records), 10)
        async with pool.acquire() as conn:  # rolled back: the redelivery will apply it
            assert await conn.fetchval(f"SELECT count(*) FROM {schema}.inbox") == 0
            assert await conn.fetchval(f"SELECT count(*) FROM {schema}.dead_letter") == 0
    finally:
        await pool.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await pool.close()
