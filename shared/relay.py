"""The outbox relay: publishes committed outbox rows to Kafka, then deletes them.

Rows are claimed with ``FOR UPDATE SKIP LOCKED`` inside a transaction that also
holds a per-schema advisory lock, so with several instances of a service one
relay publishes at a time and per-key order is kept. Publishing happens before
the delete commits: a crash in between republishes (at-least-once), and
consumers drop the duplicate through their inbox. Nothing relies on "ids
greater than the last seen" (sequences commit out of order).

A row the broker can never take (larger than the producer's maximum request size, or
than its topic's ``max.message.bytes`` when the broker tells it; checked before
sending) is moved to the schema's ``dead_letter`` table with the reason and its
original bytes, in the same transaction that deletes the published rows: it no
longer blocks every row behind it. It is not sent to ``<topic>.dlq`` (it would be
refused there too); ``rcm status`` counts it with the other dead letters. A batch the
broker refuses anyway (a broker limit below the producer's, not readable per topic) is
logged as the configuration error it is, and retried.
"""

from __future__ import annotations

import asyncio
import json
import logging

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError, RecordListTooLargeError
from aiokafka.protocol.admin import DescribeConfigsRequest
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from shared.logs import log

_log = logging.getLogger("rcm.relay")
# What a broker answers for a record or batch above its size limit.
TOO_LARGE = (MessageSizeTooLargeError, RecordListTooLargeError)
# aiokafka's default max_request_size, used when the producer does not say.
DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024
_TOPIC = 2  # DescribeConfigs resource type
# Bytes a record's framing and headers may add to its key, body and JSON headers, at most.
_MARGIN = 4096


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        schema: str,
        producer: AIOKafkaProducer,
        batch_size: int = 2000,
        max_message_bytes: int | None = None,
    ):
        self.pool = pool
        self.schema = schema
        self.producer = producer
        self.batch_size = batch_size
        # A record estimated above this is never sent: the producer would refuse it on every
        # pass. Default: the producer's own max_request_size.
        self.max_message_bytes = max_message_bytes or getattr(
            producer, "_max_request_size", DEFAULT_MAX_REQUEST_BYTES
        )
        self._limits: dict[str, int | None] = {}  # topic -> its max.message.bytes, if known
        self.wake = asyncio.Event()
        self.published = 0
        self.dead_lettered = 0
        self.lock_busy = False  # the last pass found another instance's relay publishing

    def notify(self) -> None:
        """Called after a commit that wrote outbox rows: publish without waiting for the poll."""
        self.wake.set()

    async def run(
        self, stop: asyncio.Event, idle_seconds: float = 1.0, busy_seconds: float = 0.05
    ) -> None:
        """Publish until ``stop``; between passes wait for a notify, or ``idle_seconds`` at most.

        Commits notify their own relay, so the idle poll only picks up what another instance
        left behind (a crash). When another instance's relay holds the lock, its pass may have
        begun before our commit: try again after ``busy_seconds``, not after an idle poll.
        """
        backoff = 0.2
        while not stop.is_set():
            self.wake.clear()  # before the query: a commit during it sets it again, so no wake-up is lost
            self.lock_busy = False
            try:
                n = await self.relay_once()
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as e:  # broker or database away: keep trying, bounded backoff
                log(
                    _log,
                    logging.WARNING,
                    "outbox relay failed; retrying",
                    error_type=type(e).__name__,
                    component=self.schema,
                )
                n = 0
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5)
            if n < self.batch_size:
                try:
                    await asyncio.wait_for(
                        self.wake.wait(), busy_seconds if self.lock_busy else idle_seconds
                    )
                except TimeoutError:
                    pass

    async def relay_once(self) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            # Asynchronous commit for this transaction only: a delete lost in a crash means the
            # rows are published again, which consumers drop through their inbox. It spares a
            # WAL flush (an fsync, ~1.6 ms of CPU here) per relay pass.
            locked = await conn.fetchval(
                "SELECT pg_try_advisory_xact_lock(hashtext($1))"
                " FROM set_config('synchronous_commit', 'off', true)",
                f"rcm-relay-{self.schema}",
            )
            if not locked:
                self.lock_busy = True
                return 0
            rows = await conn.fetch(
                f"SELECT id, event_id, topic, key, body, headers FROM {self.schema}.outbox"
                " ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                self.batch_size,
            )
            if not rows:
                return 0
            # The stored traceparent (the span that wrote the row) goes out as is, so the
            # consumer's span continues the encounter's trace.
            sent, dead = [], []
            limits = {t: await self._limit(t) for t in {r["topic"] for r in rows}}
            for r in rows:
                headers = json.loads(r["headers"])
                kafka_headers = [(k, str(v).encode()) for k, v in headers.items()]
                limit, what = limits[r["topic"]]
                # Far below the limit (the usual event): no need for the exact estimate.
                if len(r["body"]) + len(r["key"]) + len(r["headers"]) + _MARGIN > limit:
                    size = DefaultRecordBatchBuilder.estimate_size_in_bytes(
                        r["key"], r["body"], kafka_headers
                    )
                    if size > limit:
                        reason = f"the record is about {size} bytes, above {what} of {limit} bytes"
                        dead.append((r, reason))
                        continue
                try:
                    future = await self.producer.send(
                        r["topic"], r["body"], key=r["key"], headers=kafka_headers
                    )
                except TOO_LARGE as e:  # the producer's own check, should it count otherwise
                    dead.append((r, f"the producer refused it as too large ({type(e).__name__})"))
                    continue
                sent.append((r, future))
            results = await asyncio.gather(*(f for _, f in sent), return_exceptions=True)
            for (r, _), result in zip(sent, results, strict=True):
                if isinstance(result, TOO_LARGE):
                    # A batch above a limit the broker did not tell us: nothing to learn about
                    # which row is at fault, and the idempotent producer cannot write to that
                    # partition again (its sequence numbers ran ahead). Say so and retry.
                    self._limits.pop(r["topic"], None)
                    log(
                        _log,
                        logging.ERROR,
                        "the broker refused a batch as too large: its message.max.bytes (or the"
                        " topic's max.message.bytes) is below the producer's max_request_size;"
                        " raise it, then restart the service",
                        component=self.schema,
                        topic=r["topic"],
                        error_type=type(result).__name__,
                    )
                if isinstance(result, BaseException):
                    raise result  # broker away, topic missing...: the whole pass is retried
            for r, reason in dead:
                await self._dead_letter(conn, r, reason)
            await conn.execute(
                f"DELETE FROM {self.schema}.outbox WHERE id = ANY($1::bigint[])",
                [r["id"] for r in rows],
            )
        self.published += len(rows) - len(dead)
        self.dead_lettered += len(dead)
        return len(rows)

    async def _limit(self, topic: str) -> tuple[int, str]:
        """The largest record ``topic`` takes: the producer's max_request_size, or the topic's
        max.message.bytes when the broker tells it (asked once per topic) and it is lower."""
        own = (self.max_message_bytes, "the producer's maximum request size")
        if topic not in self._limits:
            self._limits[topic] = await topic_max_message_bytes(self.producer, topic)
        known = self._limits[topic]
        if known is not None and known < own[0]:
            return known, "the topic's max.message.bytes"
        return own

    async def _dead_letter(self, conn: asyncpg.Connection, row, reason: str) -> None:
        """Keep an unpublishable row (original bytes, reason) in the schema's dead letters.

        Source partition -1 and the outbox row's id as offset: it never reached a partition.
        """
        headers = json.loads(row["headers"])
        # A DLQ row's event_id is made up from its source offset: not the event's.
        event_id = None if row["topic"].endswith(".dlq") else row["event_id"]
        encounter_id = row["key"].decode("utf-8", errors="replace") or None
        await conn.execute(
            f"INSERT INTO {self.schema}.dead_letter"
            " (source_topic, source_partition, source_offset, event_id, encounter_id, error, body)"
            " VALUES ($1, -1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            row["topic"],
            row["id"],
            event_id,
            encounter_id,
            f"not published: {reason}",
            row["body"],
        )
        log(
            _log,
            logging.ERROR,
            "outbox row dead-lettered: the broker cannot take it",
            component=self.schema,
            topic=row["topic"],
            event_id=str(row["event_id"]),
            event_type=headers.get("event_type"),
            encounter_id=encounter_id,
            error=reason,
        )


async def topic_max_message_bytes(producer: AIOKafkaProducer, topic: str) -> int | None:
    """The topic's ``max.message.bytes`` as its broker reports it; None when the broker does
    not say (no DescribeConfigs right, or the broker is slow): the caller then relies on the
    producer's own limit."""
    client = producer.client
    node = client.get_random_node()
    if node is None:
        return None
    try:
        response = await asyncio.wait_for(
            client.send(node, DescribeConfigsRequest([(_TOPIC, topic, ["max.message.bytes"])])),
            5,
        )
        for resource in response.resources:
            if resource[0] == 0:  # no error
                for entry in resource[4]:
                    if entry[0] == "max.message.bytes" and entry[1]:
                        return int(entry[1])
    except Exception as e:  # the limit is an optimisation of the check, never a reason to stop
        log(
            _log,
            logging.INFO,
            "topic limit unknown; using the producer's",
            topic=topic,
            error_type=type(e).__name__,
        )
    return None
