"""Applying a batch of consumed events: one Postgres transaction, inbox first.

The happy path applies the whole micro-batch in one transaction (inbox rows,
state changes, outbox rows). If the handler fails for a reason that is not
transient, the batch is replayed one event per transaction so that only the
event at fault is dead-lettered and the partition moves on. Transient failures
(database or broker away) propagate: FastStream then seeks back and the batch
is redelivered after a pause.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

import asyncpg
from opentelemetry import context as otel_context

from shared.events import parse_event
from shared.logs import describe_error, log
from shared.messaging import Emitter, Inbound, claim_new, dead_letter
from shared.metrics import METRICS
from shared.telemetry import EventSpan, event_spans, tracer

_log = logging.getLogger("rcm.consumer")
_ROOT = otel_context.Context()  # no parent: a batch is no one encounter's child

Handler = Callable[[asyncpg.Connection, list[Inbound], Emitter], Awaitable[None]]


def is_transient(exc: BaseException) -> bool:
    """Errors worth retrying the same batch for, as opposed to a bad event or a bug."""
    if isinstance(exc, (OSError, TimeoutError, ConnectionError, asyncpg.InterfaceError)):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", "") or ""
        # 08 connection, 40 serialization/deadlock, 53 resources, 57 operator intervention (shutdown)
        return state[:2] in {"08", "40", "53", "57"}
    return False


def is_lock_conflict(exc: BaseException) -> bool:
    """A lost lock race (deadlock, serialization failure): transient, and worth running again at once."""
    return isinstance(exc, (asyncpg.DeadlockDetectedError, asyncpg.SerializationError))


class BatchApplier:
    def __init__(
        self,
        *,
        service: str,
        schema: str,
        pool: asyncpg.Pool,
        handler: Handler,
        on_commit: Callable[[], None] | None = None,
        retry_pause: float = 1.0,
    ):
        self.service = service
        self.schema = schema
        self.pool = pool
        self.handler = handler
        self.on_commit = on_commit
        self.retry_pause = retry_pause

    async def __call__(self, records: Sequence) -> None:
        if not isinstance(records, (tuple, list)):
            records = (records,)
        started = time.perf_counter()
        make_span = event_spans().start
        items: list[Inbound] = []
        poison: list[tuple[object, str]] = []
        spans: list[EventSpan] = []
        for r in records:
            try:
                event = parse_event(r.value)
            except Exception as e:  # schema violation: a dead letter, not a crash
                poison.append((r, f"{type(e).__name__}: {_short(e)}"))
                continue
            span = make_span(
                f"{self.service} handle {event.event_type}",
                r.headers,
                {
                    "rcm.encounter_id": event.encounter_id,
                    "rcm.event_id": str(event.event_id),
                    "messaging.source": r.topic,
                    "messaging.kafka.offset": r.offset,
                },
            )
            spans.append(span)
            items.append(Inbound(event, r.topic, r.partition, r.offset, span.traceparent))
        links = [span.link() for span in spans]  # None where the span is not recorded
        try:
            try:
                await self._apply(items, poison, links)
            except Exception as e:
                if is_transient(e):
                    raise
                log(
                    _log,
                    logging.ERROR,
                    "batch failed; isolating the event at fault",
                    error_type=type(e).__name__,
                    count=len(items),
                    service=self.service,
                )
                await self._apply_one_by_one(items, poison, links)
        except Exception as e:
            for span in spans:
                span.end(type(e).__name__)
            METRICS.failed(self.service, len(records))
            log(
                _log,
                logging.WARNING,
                "batch will be redelivered",
                error_type=type(e).__name__,
                service=self.service,
                count=len(records),
            )
            await asyncio.sleep(
                0 if is_lock_conflict(e) else self.retry_pause
            )  # an outage gets a pause
            raise
        for span in spans:
            span.end()
        METRICS.processed(self.service, records, time.perf_counter() - started, dead=len(poison))
        if self.on_commit:
            self.on_commit()

    async def _apply(
        self, items: list[Inbound], poison: list[tuple[object, str]], links=()
    ) -> None:
        emitter = Emitter(self.schema)
        # One transaction applies many encounters' events: its span starts a trace of its own and
        # links to each event's span (`rcm trace` shows it under them).
        links = [link for link in links if link is not None]
        with tracer().start_as_current_span(
            f"{self.service} db transaction",
            context=_ROOT,
            links=links,
            attributes={"rcm.batch": len(items)},
        ):
            async with self.pool.acquire() as conn, conn.transaction():
                for record, error in poison:
                    await _dead_letter(conn, self.schema, record, error)
                fresh = await claim_new(conn, self.schema, items)
                if fresh:
                    await self.handler(conn, fresh, emitter)
                await emitter.flush(conn)

    async def _apply_one_by_one(
        self, items: list[Inbound], poison: list[tuple[object, str]], links: list
    ) -> None:
        await self._apply([], poison)
        for item, link in zip(items, links, strict=True):
            try:
                await self._apply([item], [], [link])
            except Exception as e:
                if is_transient(e):
                    raise
                log(
                    _log,
                    logging.ERROR,
                    "event dead-lettered",
                    event_id=str(item.event.event_id),
                    encounter_id=item.event.encounter_id,
                    error_type=type(e).__name__,
                )
                async with self.pool.acquire() as conn, conn.transaction():
                    # The inbox row makes a redelivery of this event a no-op too.
                    await claim_new(conn, self.schema, [item])
                    await dead_letter(
                        conn,
                        self.schema,
                        topic=item.topic,
                        partition=item.partition,
                        offset=item.offset,
                        key=item.event.key(),
                        body=item.event.to_json(),
                        error=f"{type(e).__name__}: {_short(e)}",
                        event_id=item.event.event_id,
                        encounter_id=item.event.encounter_id,
                    )


async def _dead_letter(conn: asyncpg.Connection, schema: str, record, error: str) -> None:
    await dead_letter(
        conn,
        schema,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        body=record.value,
        error=error,
    )


def _short(e: BaseException) -> str:
    return describe_error(e)
