"""The outbox relay and a message the broker can never take (issue 18, item 5).

The probe: a 50 MB note became an outbox row the producer refused
(``MessageSizeTooLargeError``) on every pass, and every later encounter of the service
waited behind it until someone deleted the row by hand. Now the relay moves such a row
to the schema's dead letters (original bytes, reason) and publishes the rest.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import MessageSizeTooLargeError

from shared import db
from shared.kafka import ensure_topics, start_producer
from shared.relay import OutboxRelay

pytestmark = pytest.mark.integration


@pytest.fixture
async def outbox(stack_endpoints):
    """A fresh schema with the messaging tables, a pool and a producer on the real stack."""
    pool = await db.create_pool(stack_endpoints["postgres"], min_size=1, max_size=3)
    schema = f"relay_{uuid.uuid4().hex[:10]}"
    async with pool.acquire() as conn:
        await db.migrate(conn, schema, None)
    producer = await start_producer(stack_endpoints["kafka"])
    try:
        yield pool, schema, producer
    finally:
        await producer.stop()
        async with pool.acquire() as conn:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pool.close()


async def _queue(pool, schema: str, topic: str, key: str, body: bytes) -> uuid.UUID:
    event_id = uuid.uuid4()
    await pool.execute(
        f"INSERT INTO {schema}.outbox (event_id, topic, key, body, headers) VALUES ($1,$2,$3,$4,$5)",
        event_id,
        topic,
        key.encode(),
        body,
        json.dumps({"event_type": "test.relay"}),
    )
    return event_id


async def _read(bootstrap: str, topic: str, n: int, timeout: float = 30) -> list[tuple[str, int]]:
    """(key, body length) of the first ``n`` messages of ``topic``."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    out: list[tuple[str, int]] = []
    try:
        async with asyncio.timeout(timeout):
            while len(out) < n:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    out += [(r.key.decode(), len(r.value)) for r in records]
    finally:
        await consumer.stop()
    return out


async def test_an_oversized_row_is_dead_lettered_and_the_rows_behind_it_are_published(
    outbox, stack_endpoints
):
    pool, schema, producer = outbox
    bootstrap = stack_endpoints["kafka"]
    topic = f"rcm.test.relay-{uuid.uuid4().hex[:8]}.v1"
    await ensure_topics(bootstrap, [topic], partitions=1)
    big = b'{"note": "' + b"x" * (3 * 1024 * 1024) + b'"}'  # a 3 MB note in an event

    # The finding: the producer refuses this record, every time it is offered.
    for _ in range(2):
        with pytest.raises(MessageSizeTooLargeError):
            await producer.send(topic, big, key=b"ENC-BIG")

    await _queue(pool, schema, topic, "ENC-1", b'{"n": 1}')
    big_id = await _queue(pool, schema, topic, "ENC-BIG", big)
    await _queue(pool, schema, topic, "ENC-2", b'{"n": 2}')

    relay = OutboxRelay(pool, schema, producer)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop, idle_seconds=0.1))
    try:
        assert await _read(bootstrap, topic, 2) == [("ENC-1", 8), ("ENC-2", 8)]
        # Rows queued after it flow too: the relay is not stuck on the big one.
        await _queue(pool, schema, topic, "ENC-3", b'{"n": 3}')
        relay.notify()
        assert (await _read(bootstrap, topic, 3))[2] == ("ENC-3", 8)
    finally:
        stop.set()
        relay.notify()
        await task
    assert await pool.fetchval(f"SELECT count(*) FROM {schema}.outbox") == 0
    dead = await pool.fetch(
        f"SELECT source_topic, source_partition, event_id, encounter_id, error, body"
        f" FROM {schema}.dead_letter"
    )
    assert len(dead) == 1
    row = dead[0]
    assert (row["source_topic"], row["source_partition"], row["event_id"]) == (topic, -1, big_id)
    assert row["encounter_id"] == "ENC-BIG"
    assert row["body"] == big  # the original bytes are kept
    assert row["error"].startswith("not published: the record is about")
    assert "above the producer's maximum request size of 1048576 bytes" in row["error"]
    assert relay.dead_lettered == 1


async def test_a_row_above_its_topics_limit_is_dead_lettered_before_the_broker_refuses_it(
    outbox, stack_endpoints
):
    """The topic's max.message.bytes below the producer's max_request_size: the relay asks
    the broker for it, so the row is never offered. (Offered, the broker would refuse its
    batch and the idempotent producer could not write that partition again.)"""
    pool, schema, producer = outbox
    bootstrap = stack_endpoints["kafka"]
    topic = f"rcm.test.relay-small-{uuid.uuid4().hex[:8]}.v1"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, 1, 1, topic_configs={"max.message.bytes": "4096"})]
        )
    finally:
        await admin.close()
    await ensure_topics(bootstrap, [topic], partitions=1)  # waits for its leader

    await _queue(pool, schema, topic, "ENC-A", b"a" * 100)
    await _queue(pool, schema, topic, "ENC-MID", b"m" * 20_000)  # under 1 MB, over 4 KB
    await _queue(pool, schema, topic, "ENC-B", b"b" * 100)
    relay = OutboxRelay(pool, schema, producer)
    assert await relay.relay_once() == 3
    assert await _read(bootstrap, topic, 2) == [("ENC-A", 100), ("ENC-B", 100)]
    dead = await pool.fetch(f"SELECT encounter_id, error, body FROM {schema}.dead_letter")
    assert [(r["encounter_id"], len(r["body"])) for r in dead] == [("ENC-MID", 20_000)]
    assert "above the topic's max.message.bytes of 4096 bytes" in dead[0]["error"]
    assert await pool.fetchval(f"SELECT count(*) FROM {schema}.outbox") == 0

    # The partition still takes the next rows.
    await _queue(pool, schema, topic, "ENC-C", b"c" * 100)
    assert await relay.relay_once() == 1
    assert (await _read(bootstrap, topic, 3))[2] == ("ENC-C", 100)


@pytest.mark.parametrize(
    "service", ["billing", "coding", "followup", "intake", "payments", "workbench"]
)
async def test_dead_letters_are_readable_only_by_the_schemas_owner(stack_endpoints, service):
    """Dead letters keep the original bytes (PHI): revoked from PUBLIC by each service's
    migrations, even where an earlier grant to PUBLIC was made."""
    from pathlib import Path

    import services

    pool = await db.create_pool(stack_endpoints["postgres"], min_size=1, max_size=1)
    schema = f"dlpriv_{uuid.uuid4().hex[:10]}"
    reader = f"dlreader_{uuid.uuid4().hex[:10]}"
    try:
        async with pool.acquire() as conn:
            await db.migrate(conn, schema, None)  # the shared tables first
            await conn.execute(f"GRANT SELECT ON {schema}.dead_letter TO PUBLIC")  # a loose grant
            await db.migrate(conn, schema, Path(services.__file__).parent / service)
            await conn.execute(f"CREATE ROLE {reader} NOLOGIN")
            await conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {reader}")
            await conn.execute(f"GRANT SELECT ON {schema}.outbox TO {reader}")
            can = await conn.fetchrow(
                "SELECT has_table_privilege($1, $2, 'SELECT') AS reader,"
                " has_table_privilege('public', $2, 'SELECT') AS public,"
                " has_table_privilege(current_user, $2, 'SELECT') AS owner",
                reader,
                f"{schema}.dead_letter",
            )
            assert dict(can) == {"reader": False, "public": False, "owner": True}
            await conn.execute(f"SET ROLE {reader}")
            try:
                assert await conn.fetchval(f"SELECT count(*) FROM {schema}.outbox") == 0
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.fetch(f"SELECT body FROM {schema}.dead_letter")
            finally:
                await conn.execute("RESET ROLE")
    finally:
        async with pool.acquire() as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await conn.execute(f"DROP ROLE IF EXISTS {reader}")
        await pool.close()
