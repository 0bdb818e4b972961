"""Message handlers of the coding service."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial

import asyncpg

from services.coding import repository as repo
from services.coding.domain import engine
from services.coding.domain.model import CodingResult
from shared.consumer import Handler
from shared.events import Encounter, EncounterCoded, EncounterCodedPayload, EncounterDocumented
from shared.messaging import Emitter, Inbound
from shared.service import Runtime
from shared.telemetry import context_from_traceparent, tracer


def make_handler(rt: Runtime) -> Handler:
    """Coding's batch handler, bound to the auto-finalisation threshold."""
    return partial(on_documented, threshold=rt.settings.rules.auto_threshold)


async def on_documented(
    conn: asyncpg.Connection, items: list[Inbound], emitter: Emitter, *, threshold: Decimal
) -> None:
    """Code each documented encounter: auto-finalise it (emit encounter.coded) or queue it for a coder.

    An encounter id already coded or queued is skipped (re-sent documentation does
    not re-open finished work); engine failures propagate and dead-letter the event.
    """
    docs = [
        (item, item.event.payload) for item in items if isinstance(item.event, EncounterDocumented)
    ]
    # The engine is CPU work: run it off the event loop so Kafka heartbeats and the
    # HTTP API keep going while a batch is coded.
    results = await asyncio.to_thread(_code_all, docs, threshold)
    rows, queue, coded = [], [], []
    now = datetime.now(UTC)
    for (item, enc), (result, suggestions, edits) in zip(docs, results, strict=True):
        row, payload = encounter_row(enc, result, suggestions, edits, now)
        rows.append(row)
        if payload is not None:
            event = EncounterCoded(
                site_id=enc.site_id, encounter_id=enc.encounter_id, payload=payload
            )
            coded.append((event, item))
        else:
            queue.append((enc.encounter_id, enc.site_id))
    new = await repo.insert_encounters(conn, rows)
    await repo.enqueue(conn, [q for q in queue if q[0] in new])
    for event, item in coded:
        if event.encounter_id in new:
            emitter.emit(event, cause=item)


def encounter_row(
    enc: Encounter, result: CodingResult, suggestions: str, edits: str, now: datetime
) -> tuple[repo.EncounterRow, EncounterCodedPayload | None]:
    """The encounter's row and, when it was coded automatically, its encounter.coded payload.

    An encounter routed to review is stored without a final coding, for a coder to finish.
    """
    auto = result.route == "auto"
    payload = result.to_payload(enc, coded_by="auto") if auto else None
    row = repo.EncounterRow(
        encounter_id=enc.encounter_id,
        site_id=enc.site_id,
        service_date=enc.service_date,
        status="coded" if auto else "review",
        route=result.route,
        coded_by="auto" if auto else None,
        encounter=enc.model_dump_json(),
        suggestions=suggestions,
        edits=edits,
        # The row holds the document already: the coded result is stored without it.
        final_coding=payload.model_dump_json(exclude={"encounter"}) if payload else None,
        coded_at=now if auto else None,
    )
    return row, payload


def _code_all(docs, threshold) -> list[tuple]:
    """Code each encounter in its own span (continuing the encounter's trace)."""
    t = tracer()
    out = []
    for item, enc in docs:
        with t.start_as_current_span(
            "coding cac",
            context=context_from_traceparent(item.traceparent),
            attributes={"rcm.encounter_id": enc.encounter_id},
        ) as span:
            result = engine.code_encounter(enc, threshold=threshold)
            span.set_attribute("rcm.route", result.route)
        out.append(
            (
                result,
                json.dumps(engine.offline_json(result)),
                json.dumps([e.model_dump() for e in result.edits]),
            )
        )
    return out
