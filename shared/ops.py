"""Operational state, read the same way by the metrics loop and `rcm status`.

Each service reports only its own schema (outbox backlog, dead letters, its work
queues, its claims) plus its consumer group's lag.
"""

from __future__ import annotations

import asyncpg
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

# Work queues per schema: (table, open condition).
WORK_QUEUES = {
    "coding": "status <> 'completed'",
    "billing": "status = 'open'",
    "followup": "status <> 'resolved'",
}
CLAIM_STATES = {"billing": "SELECT status, count(*) FROM billing.claim GROUP BY 1"}


async def schema_snapshot(conn: asyncpg.Connection, schema: str) -> dict:
    out: dict = {
        "outbox_backlog": await conn.fetchval(f"SELECT count(*) FROM {schema}.outbox"),
        "dead_letters": await conn.fetchval(f"SELECT count(*) FROM {schema}.dead_letter"),
        "pending_files": await conn.fetchval(
            f"SELECT count(*) FROM {schema}.outbound_file WHERE written_at IS NULL"
        ),
        "failed_files": await conn.fetchval(
            f"SELECT count(*) FROM {schema}.mailbox_file WHERE status = 'failed'"
        ),
    }
    if schema in WORK_QUEUES:
        rows = await conn.fetch(
            f"SELECT site_id, count(*) FROM {schema}.work_item WHERE {WORK_QUEUES[schema]} GROUP BY 1"
        )
        out["work_queue_depth"] = {r[0]: r[1] for r in rows}
    if schema in CLAIM_STATES:
        out["claims_by_state"] = {r[0]: r[1] for r in await conn.fetch(CLAIM_STATES[schema])}
    return out


async def group_lag(bootstrap: str, groups: list[str]) -> dict[str, int]:
    """Messages not yet committed, per consumer group (sum over partitions)."""
    from shared.kafka import client_security

    security = client_security()  # RCM_KAFKA_*: TLS and SASL as every client of the process
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000, **security)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=5000, **security)
    try:  # started inside: a broker that is away (or a caller's timeout) still closes both clients
        await admin.start()
        await consumer.start()
        out = {}
        for g in groups:
            offsets = await admin.list_consumer_group_offsets(g)
            committed = {tp: m.offset for tp, m in offsets.items() if m.offset >= 0}
            if not committed:
                out[g] = 0
                continue
            ends = await consumer.end_offsets(list(committed))
            out[g] = sum(max(0, ends[tp] - off) for tp, off in committed.items())
        return out
    finally:
        await consumer.stop()
        await admin.close()
