"""Message handlers of the coding service."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import asyncpg

from services.coding import repository as repo
from services.coding.domain import engine
from shared.consumer import Handler
from shared.events import EncounterCoded, EncounterDocumented
from shared.messaging import Emitter, Inbound
from shared.service import Runtime
from shared.telemetry import context_from_traceparent, tracer


def make_handler(rt: Runtime) -> Handler:
    threshold = rt.settings.rules.auto_threshold

    async def on_documented(
        conn: asyncpg.Connection, items: list[Inbound], emitter: Emitter
    ) -> None:
        """Code each documented encounter: auto-finalise it (emit encounter.coded) or queue it for a coder.

        An encounter id already coded or queued is skipped (re-sent documentation does
        not re-open finished work); engine failures propagate and dead-letter the event.
        """
        docs = [
            (item, item.event.payload)
            for item in items
            if isinstance(item.event, EncounterDocumented)
        ]
        # The engine is CPU work: run it off the event loop so Kafka heartbeats and the
        # HTTP API keep going while a batch is coded.
        results = await asyncio.to_thread(_code_all, docs, threshold)
        rows, queue, coded = [], [], []
        now = datetime.now(UTC)
        for (item, enc), (result, suggestions, edits) in zip(docs, results, strict=True):
            common = dict(
                encounter_id=enc.encounter_id,
                site_id=enc.site_id,
                service_date=enc.service_date,
                route=result.route,
                suggestions=suggestions,
                edits=edits,
            )
            if result.route == "auto":
                payload = result.to_payload(enc, coded_by="auto")
                # The row holds the document already: the coded result is stored without it.
                final = payload.model_dump_json(exclude={"encounter"})
                rows.append(
                    repo.encounter_row(
                        enc.model_dump_json(),
                        status="coded",
                        coded_by="auto",
                        final=final,
                        coded_at=now,
                        **common,
                    )
                )
                coded.append(
                    (
                        EncounterCoded(
                            site_id=enc.site_id, encounter_id=enc.encounter_id, payload=payload
                        ),
                        item,
                    )
                )
            else:
                rows.append(
                    repo.encounter_row(
                        enc.model_dump_json(),
                        status="review",
                        coded_by=None,
                        final=None,
                        coded_at=None,
                        **common,
                    )
                )
                queue.append((enc.encounter_id, enc.site_id))
        new = await repo.insert_encounters(conn, rows)
        await repo.enqueue(conn, [q for q in queue if q[0] in new])
        for event, item in coded:
            if event.encounter_id in new:
                emitter.emit(event, cause=item)

    return on_documented


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
