"""Inbox, outbox and dead letters: the transactional half of "nothing lost, nothing twice".

A consumer records the ids of the events it applies (inbox) and the events it
emits (outbox) in the same Postgres transaction as its state change. The relay
(``shared.relay``) publishes outbox rows afterwards; redelivered events find
their inbox row and are skipped.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

import asyncpg

from shared.db import insert_rows
from shared.events import Envelope
from shared.telemetry import current_traceparent
from shared.topics import dlq

_OUTBOX_COLUMNS = [
    ("event_id", "uuid"),
    ("topic", "text"),
    ("key", "bytea"),
    ("body", "bytea"),
    ("headers", "jsonb"),
]
_DLQ_NAMESPACE = uuid.UUID("6f1c1d2e-9a51-4b8e-8a57-6a0c3b2f7e11")


@dataclass(slots=True)
class Inbound:
    """One consumed event with where it came from and the span handling it."""

    event: Envelope
    topic: str
    partition: int
    offset: int
    traceparent: str | None = None


@dataclass
class Emitter:
    """Collects outgoing events during a transaction; ``flush`` writes them to the outbox."""

    schema: str
    rows: list[tuple] = field(default_factory=list)

    def emit(
        self, event: Envelope, *, cause: Inbound | None = None, traceparent: str | None = None
    ) -> None:
        """Queue ``event``; its trace continues from ``cause``, an explicit traceparent, or the current span."""
        if traceparent is None:
            traceparent = cause.traceparent if cause is not None else current_traceparent()
        headers = {"event_type": event.event_type}
        if traceparent:
            headers["traceparent"] = traceparent
        self.rows.append(
            (event.event_id, event.topic, event.key(), event.to_json(), json.dumps(headers))
        )

    async def flush(self, conn: asyncpg.Connection) -> int:
        if not self.rows:
            return 0
        n = len(self.rows)
        await insert_rows(conn, f"{self.schema}.outbox", _OUTBOX_COLUMNS, self.rows)
        self.rows.clear()
        return n


async def claim_new(
    conn: asyncpg.Connection, schema: str, inbounds: Iterable[Inbound]
) -> list[Inbound]:
    """Record event ids in the inbox; return only the events not seen before (in order)."""
    first: dict[uuid.UUID, Inbound] = {}
    for item in inbounds:
        first.setdefault(item.event.event_id, item)
    if not first:
        return []
    rows = await conn.fetch(
        f"INSERT INTO {schema}.inbox (event_id, topic)"
        " SELECT * FROM unnest($1::uuid[], $2::text[]) ON CONFLICT DO NOTHING RETURNING event_id",
        list(first),
        [i.topic for i in first.values()],
    )
    fresh = {r["event_id"] for r in rows}
    return [item for eid, item in first.items() if eid in fresh]


async def prune_inbox(
    conn: asyncpg.Connection, schema: str, retention_days: int, chunk: int = 10_000
) -> int:
    """Delete up to ``chunk`` inbox rows older than ``retention_days``; return how many.

    Safe once Kafka can no longer deliver those events again: the retention must be longer
    than the topics' log retention (a consumer group whose offsets expired starts over at
    the oldest message still kept).
    """
    status = await conn.execute(
        f"DELETE FROM {schema}.inbox WHERE event_id IN (SELECT event_id FROM {schema}.inbox"
        " WHERE received_at < now() - make_interval(days => $1) LIMIT $2)",
        retention_days,
        chunk,
    )
    return int(status.split()[-1])


def dlq_event_id(topic: str, partition: int, offset: int) -> uuid.UUID:
    """Deterministic, so a redelivered poison message is dead-lettered once."""
    return uuid.uuid5(_DLQ_NAMESPACE, f"{topic}/{partition}/{offset}")


async def dead_letter(
    conn: asyncpg.Connection,
    schema: str,
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    body: bytes | None,
    error: str,
    event_id: uuid.UUID | None = None,
    encounter_id: str | None = None,
) -> bool:
    """Record a poison message and queue it for ``<topic>.dlq``; False if already recorded."""
    error = error[:2000]
    inserted = await conn.fetchval(
        f"INSERT INTO {schema}.dead_letter"
        " (source_topic, source_partition, source_offset, event_id, encounter_id, error, body)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING id",
        topic,
        partition,
        offset,
        event_id,
        encounter_id,
        error,
        body or b"",
    )
    if inserted is None:
        return False
    headers = {
        "error": error,
        "source_topic": topic,
        "source_partition": str(partition),
        "source_offset": str(offset),
    }
    await conn.execute(
        f"INSERT INTO {schema}.outbox (event_id, topic, key, body, headers)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING",
        dlq_event_id(topic, partition, offset),
        dlq(topic),
        key or b"",
        body or b"",
        json.dumps(headers),
    )
    return True
