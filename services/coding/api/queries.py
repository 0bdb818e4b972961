"""Queries to providers (docs/coding-queries.md): a coder drafts one from a work item, the
wording is checked (compliant, non-leading, nothing about money), it is sent (the item waits
out of the queue), the provider's answer comes back through the EHR integration as an
addendum to the note, coding runs again on the amended note and the item returns to the
queue. Each step is audited and carried as a ``coding.query`` event in the encounter's trace.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import asyncpg
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.coding import query_events
from services.coding import repository as repo
from services.coding.api.deps import (
    Answerer,
    Coder,
    QueryReader,
    State,
    StatsReader,
    Text,
    record,
)
from services.coding.api.views import query_view
from services.coding.api.work_items import load_item
from services.coding.domain import queries as qd
from services.coding.handlers import code_and_render
from shared.auth import Principal, sites_filter
from shared.events import Encounter as EncounterModel
from shared.messaging import Emitter
from shared.telemetry import context_from_traceparent, tracer

router = APIRouter(tags=["provider queries"])


class IndicatorIn(BaseModel):
    quote: Text = Field(min_length=2, max_length=500)  # copied from the note, as it stands
    start: int | None = Field(None, ge=0)  # where in the note, when the quote occurs twice


class QueryIn(BaseModel):
    reason: Text = Field("other", max_length=40)
    question: Text = Field(min_length=1, max_length=1000)
    indicators: list[IndicatorIn] = Field(min_length=1, max_length=qd.MAX_INDICATORS)
    # the clinically reasonable answers; "other" and "clinically undetermined" are added
    options: list[Text] = Field(min_length=1, max_length=qd.MAX_OPTIONS)
    provider_npi: str | None = Field(None, pattern=r"^\d{10}$")  # default: rendering provider


class CancelIn(BaseModel):
    reason: Text = Field(min_length=3, max_length=500)


class AnswerIn(BaseModel):
    answer: Text = Field(min_length=1, max_length=200)  # one of the query's options, as offered
    text: Text | None = Field(None, max_length=4000)  # the provider's own words
    answered_by: Text | None = Field(None, max_length=100)  # the provider's id in the EHR


def _refused(problems: list[qd.Problem], message: str, status: int = 422):
    raise HTTPException(
        status,
        {
            "message": message,
            "problems": [{"field": x.field, "message": x.message} for x in problems],
        },
    )


@router.post("/work/{work_item_id}/queries", status_code=201)
async def draft(work_item_id: int, body: QueryIn, request: Request, p: Coder, api: State):
    """A draft query about the item's encounter; 422 naming each rule the wording breaks."""
    async with api.pool.acquire() as conn, conn.transaction():
        await repo.lock_encounter_of_item(conn, work_item_id)
        item = await load_item(conn, work_item_id, p, for_update=True)
        if item["status"] == "completed":
            raise HTTPException(409, f"work item {work_item_id} is completed: nothing to query")
        enc = EncounterModel.model_validate_json(item["encounter"])
        note = enc.note or ""
        try:
            indicators = qd.locate(note, [(i.quote, i.start) for i in body.indicators])
        except qd.QueryDraftError as e:
            _refused(e.problems, "the clinical indicators must be quoted from the note")
        d = qd.QueryDraft(
            body.reason, body.question.strip(), indicators, qd.with_standard_options(body.options)
        )
        if problems := qd.validate(d, note):
            _refused(problems, "the query does not follow compliant query practice")
        npi = body.provider_npi or (enc.rendering_provider.npi if enc.rendering_provider else None)
        [q] = await repo.insert_queries(
            conn, [query_row(enc, d, npi, origin="coder", created_by=p.user_id)]
        )
        await record(conn, request, p, "create", "provider_query", _ids(q), item)
    return JSONResponse(query_view(q), status_code=201)


def query_row(enc: EncounterModel, d: qd.QueryDraft, npi: str | None, *, origin, created_by):
    return repo.QueryRow(
        encounter_id=enc.encounter_id,
        site_id=enc.site_id,
        provider_npi=npi,
        origin=origin,
        reason=d.reason,
        question=d.question,
        indicators=json.dumps(
            [{"text": i.text, "start": i.start, "end": i.end} for i in d.indicators]
        ),
        options=json.dumps(list(d.options)),
        document_version=enc.document_version,
        created_by=created_by,
    )


@router.get("/queries")
async def list_queries(
    request: Request,
    p: QueryReader,
    api: State,
    status: str | None = Query(None, pattern="^(" + "|".join(qd.STATES) + ")$"),
    encounter_id: str | None = Query(None, max_length=38, pattern=r"^[^\x00-\x1f]+$"),
    limit: int = Query(100, gt=0, le=500),
):
    """Queries of the caller's sites (the EHR integration pulls ``status=sent`` to deliver
    them); each one shown is an audited read."""
    async with api.pool.acquire() as conn, conn.transaction():
        rows = await repo.list_queries(conn, sites_filter(p), status, encounter_id, limit)
        keys = await repo.patient_ids(conn, sorted({q["encounter_id"] for q in rows}))
        for q in rows:
            await record(conn, request, p, "read", "provider_query", _ids(q), _keyed(q, keys))
    return [query_view(q) for q in rows]


@router.get("/queries/stats")
async def stats(p: StatsReader, api: State, days: int = Query(90, ge=1, le=3660)):
    """Per provider, of the queries sent in the last ``days``: answered, open, escalated,
    cancelled, the answer rate (answered of those not cancelled) and the turnaround (hours
    from sent to answered)."""
    since = datetime.now(UTC) - timedelta(days=days)
    async with api.pool.acquire() as conn:
        rows = await repo.query_stats(conn, sites_filter(p), since)

    def hours(seconds) -> float | None:
        return None if seconds is None else round(float(seconds) / 3600, 2)

    return {
        "since": since.isoformat(),
        "providers": [
            {
                "provider_npi": r["provider_npi"] or None,
                "sent": r["sent"],
                "answered": r["answered"],
                "open": r["open"],
                "escalated": r["escalated"],
                "cancelled": r["cancelled"],
                "answer_rate": round(r["answered"] / (r["sent"] - r["cancelled"]), 3)
                if r["sent"] > r["cancelled"]
                else None,
                "avg_turnaround_hours": hours(r["avg_seconds"]),
                "median_turnaround_hours": hours(r["median_seconds"]),
            }
            for r in rows
        ],
    }


@router.get("/queries/{query_id}")
async def get_query(query_id: int, request: Request, p: QueryReader, api: State):
    async with api.pool.acquire() as conn, conn.transaction():
        q = await _load(conn, query_id, p)
        keys = await repo.patient_ids(conn, [q["encounter_id"]])
        await record(conn, request, p, "read", "provider_query", _ids(q), _keyed(q, keys))
    return query_view(q)


@router.post("/queries/{query_id}/send")
async def send(query_id: int, request: Request, p: Coder, api: State):
    """Send a draft to the provider: checked again against the note as it stands now; the
    encounter's work item waits, out of the queue, until the answer (or a cancel)."""
    async with api.pool.acquire() as conn, conn.transaction():
        enc_row = await _lock(conn, query_id)
        q = await _load(conn, query_id, p, for_update=True)
        _step(q, "send")
        item = await repo.item_of_encounter(conn, q["encounter_id"], for_update=True)
        if item is not None and item["status"] == "completed":
            raise HTTPException(409, f"query {query_id}: the encounter is already coded")
        if item is not None and _leased_by_another(item, p):
            raise HTTPException(409, f"query {query_id}: the work item is leased by another coder")
        note = EncounterModel.model_validate_json(enc_row["encounter"]).note or ""
        d = qd.QueryDraft(
            q["reason"],
            q["question"],
            tuple(qd.Indicator(**i) for i in json.loads(q["indicators"])),
            tuple(json.loads(q["options"])),
        )
        if problems := qd.validate(d, note):
            _refused(
                problems,
                "the documentation changed since the draft (or the draft is not compliant):"
                " draft the query again",
                status=409,
            )
        q = await repo.set_query_state(conn, query_id, "sent", p.user_id)
        await repo.hold(conn, q["encounter_id"])
        await _emit(conn, q, enc_row)
        await record(conn, request, p, "update", "provider_query", _ids(q, "send"), enc_row)
    api.notify()
    return query_view(q)


@router.post("/queries/{query_id}/answer")
async def answer(query_id: int, body: AnswerIn, request: Request, p: Answerer, api: State):
    """The provider's answer (through the EHR integration): appended to the note as an
    addendum, coding runs again on the amended note, and the work item returns to the
    queue for a coder to finish (unless another query is still open)."""
    async with api.pool.acquire() as conn, conn.transaction():
        enc_row = await _lock(conn, query_id)
        q = await _load(conn, query_id, p, for_update=True)
        _step(q, "answer")
        if problems := qd.check_answer(json.loads(q["options"]), body.answer, body.text):
            _refused(problems, "the answer must be one of the offered options")
        added = qd.addendum(query_id, body.answer, body.text, datetime.now(UTC).date())
        enc = EncounterModel.model_validate_json(enc_row["encounter"])
        amended = enc.model_copy(update={"note": qd.amended_note(enc.note, [added])})
        threshold = api.settings.rules.auto_threshold
        with _span("coding recode", enc_row):
            _, suggestions, edits = await asyncio.to_thread(code_and_render, amended, threshold)
        await repo.recode(conn, enc.encounter_id, amended.model_dump_json(), suggestions, edits)
        q = await repo.set_query_state(
            conn,
            query_id,
            "answered",
            body.answered_by or p.user_id,
            answer=body.answer,
            addendum=added,
        )
        if not await repo.open_queries(conn, enc.encounter_id):
            await repo.release(conn, enc.encounter_id)
        await _emit(conn, q, enc_row)
        await record(conn, request, p, "update", "provider_query", _ids(q, "answer"), enc_row)
    api.notify()
    return query_view(q)


@router.post("/queries/{query_id}/cancel")
async def cancel(query_id: int, body: CancelIn, request: Request, p: Coder, api: State):
    """Withdraw a draft or an unanswered query (with the reason); the item returns to the
    queue when no other query is open."""
    async with api.pool.acquire() as conn, conn.transaction():
        enc_row = await _lock(conn, query_id)
        q = await _load(conn, query_id, p, for_update=True)
        was_open = q["status"] in qd.OPEN
        _step(q, "cancel")
        q = await repo.set_query_state(
            conn, query_id, "cancelled", p.user_id, cancel_reason=body.reason
        )
        if was_open:
            if not await repo.open_queries(conn, q["encounter_id"]):
                await repo.release(conn, q["encounter_id"])
            await _emit(conn, q, enc_row)
        await record(conn, request, p, "update", "provider_query", _ids(q, "cancel"), enc_row)
    api.notify()
    return query_view(q)


@router.post("/queries/{query_id}/close")
async def close(query_id: int, request: Request, p: Coder, api: State):
    """The coder has used the answer: the query is closed (completing the encounter closes
    answered queries too)."""
    async with api.pool.acquire() as conn, conn.transaction():
        enc_row = await _lock(conn, query_id)
        q = await _load(conn, query_id, p, for_update=True)
        _step(q, "close")
        q = await repo.set_query_state(conn, query_id, "closed", p.user_id)
        await record(conn, request, p, "update", "provider_query", _ids(q, "close"), enc_row)
    return query_view(q)


# --------------------------------------------------------------------------- helpers


async def _lock(conn: asyncpg.Connection, query_id: int):
    """The query's encounter row, locked first (the order the consumer locks in)."""
    encounter_id = await repo.encounter_of_query(conn, query_id)
    if encounter_id is None:
        raise HTTPException(404, f"query {query_id} not found")
    return await repo.lock_encounter(conn, encounter_id)


async def _load(conn: asyncpg.Connection, query_id: int, p: Principal, *, for_update=False):
    q = await repo.get_query(conn, query_id, for_update=for_update)
    if q is None:
        raise HTTPException(404, f"query {query_id} not found")
    if not p.can_access(q["site_id"]):
        raise HTTPException(403, f"query {query_id} belongs to another site")
    return q


def _step(q, action: str) -> str:
    try:
        return qd.next_state(q["status"], action)
    except qd.QueryStateError as e:
        raise HTTPException(409, f"query {q['query_id']}: {e}") from e


def _leased_by_another(item, p: Principal) -> bool:
    return (
        item["status"] == "leased"
        and item["leased_by"] != p.user_id
        and item["lease_expires_at"] is not None
        and item["lease_expires_at"] > datetime.now(UTC)
    )


def _span(name: str, enc_row):
    return tracer().start_as_current_span(
        name,
        context=context_from_traceparent(enc_row["traceparent"]),
        attributes={"rcm.encounter_id": enc_row["encounter_id"]},
    )


async def _emit(conn: asyncpg.Connection, q, enc_row) -> None:
    """The query's event, in the encounter's trace, through the outbox."""
    emitter = Emitter(repo.SCHEMA)
    with _span(f"coding query {q['status']}", enc_row):
        query_events.emit(emitter, q)
    await emitter.flush(conn)


def _ids(q, what: str | None = None) -> list[str]:
    ids = [str(q["query_id"]), q["encounter_id"]]
    return ids + [f"action={what}"] if what else ids


def _keyed(q, patient_ids: dict[str, str | None]) -> dict:
    return {
        "site_id": q["site_id"],
        "encounter_id": q["encounter_id"],
        "patient_id": patient_ids.get(q["encounter_id"]),
    }
