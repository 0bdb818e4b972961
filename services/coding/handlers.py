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
from services.coding.domain import queries as qd
from services.coding.domain.model import CodingResult
from shared.consumer import Handler
from shared.events import (
    UNASSIGNED_SITE,
    Encounter,
    EncounterCoded,
    EncounterCodedPayload,
    EncounterDocumented,
)
from shared.messaging import Emitter, Inbound
from shared.service import Runtime
from shared.telemetry import context_from_traceparent, tracer


def make_handler(rt: Runtime) -> Handler:
    """Coding's batch handler, bound to the auto-finalisation threshold."""
    return partial(on_documented, threshold=rt.settings.rules.auto_threshold)


async def on_documented(
    conn: asyncpg.Connection, items: list[Inbound], emitter: Emitter, *, threshold: Decimal
) -> None:
    """Code each documented encounter: auto-finalise it (emit encounter.coded) or queue it for
    a coder, with drafts of the provider queries its documentation calls for.

    Re-sent documentation (intake's ``document_version`` above the stored one) replaces the
    document and is coded again (``_apply_newer``); the same or an older version is a no-op.
    A newer version naming another site is a permanent error (dead-lettered), except that an
    encounter on the unassigned site moves to the site its newer version names (intake placed
    it once its site was known); engine failures propagate and dead-letter the event.
    """
    latest: dict[str, tuple[Inbound, Encounter]] = {}  # one per encounter: its newest version
    for item in items:
        if isinstance(item.event, EncounterDocumented):
            enc = item.event.payload
            seen = latest.get(enc.encounter_id)
            if seen is None or enc.document_version > seen[1].document_version:
                latest[enc.encounter_id] = (item, enc)
    known = await repo.known_encounters(conn, sorted(latest))
    work: list[tuple[Inbound, Encounter]] = []
    for eid, (item, enc) in latest.items():
        k = known.get(eid)
        if k is None:
            work.append((item, enc))
        elif enc.document_version > k["document_version"]:
            if enc.site_id != k["site_id"] and k["site_id"] != UNASSIGNED_SITE:
                raise ValueError(f"encounter {eid}: a newer version names another site")
            # answered queries' addenda belong to the record whatever the EHR re-sends
            note = qd.amended_note(enc.note, list(k["addenda"]))
            work.append((item, enc.model_copy(update={"note": note})))
    # The engine is CPU work: run it off the event loop so Kafka heartbeats and the
    # HTTP API keep going while a batch is coded.
    results = await asyncio.to_thread(_code_all, work, threshold)
    now = datetime.now(UTC)
    rows, queue, coded, drafts = [], [], [], []
    for (item, enc), (result, suggestions, edits, found) in zip(work, results, strict=True):
        k = known.get(enc.encounter_id)
        if k is not None:
            if not await _apply_newer(conn, emitter, item, enc, k, result, suggestions, edits, now):
                drafts += _drafts(enc, found, k["query_reasons"])
            continue
        row, payload = encounter_row(enc, result, suggestions, edits, now, item.traceparent)
        rows.append(row)
        if payload is not None:
            event = EncounterCoded(
                site_id=enc.site_id, encounter_id=enc.encounter_id, payload=payload
            )
            coded.append((event, item))
        else:
            queue.append((enc.encounter_id, enc.site_id))
            drafts += _drafts(enc, found, ())
    new = await repo.insert_encounters(conn, rows)
    await repo.enqueue(conn, [q for q in queue if q[0] in new])
    for event, item in coded:
        if event.encounter_id in new:
            emitter.emit(event, cause=item)
    await repo.insert_queries(
        conn, [d for d in drafts if d.encounter_id in new or d.encounter_id in known]
    )


async def _apply_newer(
    conn: asyncpg.Connection,
    emitter: Emitter,
    item: Inbound,
    enc: Encounter,
    known,
    result: CodingResult,
    suggestions: str,
    edits: str,
    now: datetime,
) -> bool:
    """A newer document version of a known encounter replaces the old one and is coded again.

    An encounter only the engine ever coded is finalised again when the engine routes the new
    version ``auto`` (encounter.coded again, carrying the version, so billing can rebuild a
    claim it has not sent). Once coders had it (a work item exists: queued, leased, waiting or
    completed), the new version goes back to them: a lease is dropped, a completed item is
    re-opened, an item waiting for a provider's answer keeps waiting. True when finalised.
    """
    auto = known["item_status"] is None and result.route == "auto"
    row, payload = encounter_row(enc, result, suggestions, edits, now, item.traceparent)
    if not auto:
        row = row._replace(
            status="review", route="review", coded_by=None, final_coding=None, coded_at=None
        )
    await repo.redocument(conn, row)
    await repo.audit(
        conn,
        encounter_id=enc.encounter_id,
        work_item_id=None,
        user_id="system",
        action="redocument",
        before={"document_version": known["document_version"]},
        after={"document_version": enc.document_version, "route": row.route},
    )
    if auto and payload is not None:
        emitter.emit(
            EncounterCoded(site_id=enc.site_id, encounter_id=enc.encounter_id, payload=payload),
            cause=item,
        )
        return True
    await repo.reopen(conn, enc.encounter_id, enc.site_id, waiting=known["open_query"])
    return False


def _drafts(
    enc: Encounter, found: list[qd.QueryDraft], raised: tuple | list
) -> list[repo.QueryRow]:
    """Rows for the engine's query drafts of an encounter going to coders (one per reason
    not yet raised for it)."""
    npi = enc.rendering_provider.npi if enc.rendering_provider else None
    return [
        repo.QueryRow(
            encounter_id=enc.encounter_id,
            site_id=enc.site_id,
            provider_npi=npi,
            origin="engine",
            reason=d.reason,
            question=d.question,
            indicators=json.dumps(
                [{"text": i.text, "start": i.start, "end": i.end} for i in d.indicators]
            ),
            options=json.dumps(list(d.options)),
            document_version=enc.document_version,
            created_by="engine",
        )
        for d in found
        if d.reason not in raised
    ]


def encounter_row(
    enc: Encounter,
    result: CodingResult,
    suggestions: str,
    edits: str,
    now: datetime,
    traceparent: str | None = None,
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
        document_version=enc.document_version,
        traceparent=traceparent,
    )
    return row, payload


def code_and_render(enc: Encounter, threshold: Decimal) -> tuple[CodingResult, str, str]:
    """The engine's result for ``enc`` with its suggestions and edits as stored (JSON)."""
    result = engine.code_encounter(enc, threshold=threshold)
    return (
        result,
        json.dumps(engine.offline_json(result)),
        json.dumps([e.model_dump() for e in result.edits]),
    )


def _code_all(docs: list[tuple[Inbound, Encounter]], threshold: Decimal) -> list[tuple]:
    """Code each encounter in its own span (continuing the encounter's trace): the result,
    its suggestions and edits (JSON), and, for one going to coders, the query drafts."""
    t = tracer()
    out = []
    for item, enc in docs:
        with t.start_as_current_span(
            "coding cac",
            context=context_from_traceparent(item.traceparent),
            attributes={"rcm.encounter_id": enc.encounter_id},
        ) as span:
            result, suggestions, edits = code_and_render(enc, threshold)
            span.set_attribute("rcm.route", result.route)
            drafts = (
                qd.engine_drafts(enc.note, json.loads(suggestions))
                if result.route == "review"
                else []
            )
        out.append((result, suggestions, edits, drafts))
    return out
