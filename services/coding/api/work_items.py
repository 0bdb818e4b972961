"""The coder work queue: depth, lease the next item (long-polled), read one, renew its lease,
check codes against the edits, complete it. Every read of an item (it carries the note) and
every change is audited; a completion continues the encounter's trace."""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal
from typing import Annotated

import asyncpg
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, ValidationError

from services.coding import repository as repo
from services.coding.api.deps import Coder, QueueWatcher, State, Text, record, record_read
from services.coding.api.views import item_view
from services.coding.domain import engine
from shared import icd10cm
from shared.auth import Principal, sites_filter
from shared.events import (
    CodedDiagnosis,
    CodedProcedure,
    EncounterCoded,
    EncounterCodedPayload,
)
from shared.events import Encounter as EncounterModel
from shared.messaging import Emitter
from shared.notify import ChannelWatch
from shared.telemetry import context_from_traceparent, tracer

router = APIRouter(prefix="/work", tags=["work queue"])
MAX_WAIT_SECONDS = 30  # a long poll's limit: below common proxy idle timeouts


class FinalProcedure(BaseModel):
    code: Text = Field(min_length=4, max_length=7)
    modifiers: list[Text] = Field(default_factory=list, max_length=4)
    units: Decimal = Decimal(1)
    diagnosis_pointers: list[int] = Field(default_factory=lambda: [1], min_length=1, max_length=4)


class Override(BaseModel):
    code: Text = Field(max_length=64)  # the edit code being overridden
    reason: Text = Field(min_length=3, max_length=500)


class Codes(BaseModel):
    diagnoses: list[Annotated[Text, Field(max_length=16)]] = Field(min_length=1, max_length=12)
    procedures: list[FinalProcedure] = Field(min_length=1, max_length=50)


class CompleteRequest(Codes):
    lease_token: uuid.UUID
    overrides: list[Override] = Field(default_factory=list)


class RenewRequest(BaseModel):
    lease_token: uuid.UUID


def procedure_system(code: str) -> str:
    return "hcpcs" if code[:1].isalpha() else "cpt"


@router.get("/depth")
async def depth(p: QueueWatcher, api: State):
    """Open items per site: queued, leased, waiting for a provider's answer."""
    async with api.pool.acquire() as conn:
        return await repo.queue_depth(conn, sites_filter(p))


@router.post("/next")
async def lease_next(
    request: Request, p: Coder, api: State, wait: float = Query(0, ge=0, le=MAX_WAIT_SECONDS)
):
    """Lease the oldest item of the caller's sites; 204 when there is none.

    ``wait`` (seconds) long-polls: the request waits for queued work instead of the coder
    asking again and again. Any instance's queueing wakes it (NOTIFY); it also looks again
    every second, since leases expire by time.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    watch: ChannelWatch = api.context.work_watch
    while True:
        with watch.waiting(sites_filter(p)) as woken:  # before looking: no wake-up is lost
            got = await _lease(request, p, api)
            if got is not None:
                return got
            left = deadline - loop.time()
            if left <= 0:
                return Response(status_code=204)
            try:
                await asyncio.wait_for(woken.wait(), min(left, 1.0))
            except TimeoutError:
                pass


async def _lease(request: Request, p: Principal, api: State) -> Response | None:
    async with api.pool.acquire() as conn, conn.transaction():
        item = await repo.lease_next(
            conn, p.user_id, sites_filter(p), api.settings.auth.lease_seconds
        )
        if item is None:
            return None
        await repo.audit(
            conn,
            encounter_id=item["encounter_id"],
            work_item_id=item["work_item_id"],
            user_id=p.user_id,
            action="lease",
        )
        queries = await repo.queries_of(conn, item["encounter_id"])
        await record(
            conn, request, p, "update", "work_item", _ids(item, "lease"), item
        )  # the lease is a change, and the answer a read of the note
        return item_view(item, queries)


@router.get("/{work_item_id}")
async def get_item(work_item_id: int, request: Request, p: Coder, api: State):
    """The item with its encounter, note, suggestions, edits and queries (audited)."""
    async with api.pool.acquire() as conn, conn.transaction():
        item = await load_item(conn, work_item_id, p)
        queries = await repo.queries_of(conn, item["encounter_id"])
        await record_read(conn, request, p, "work_item", _ids(item), item)
        return item_view(item, queries)


@router.post("/{work_item_id}/renew")
async def renew(work_item_id: int, body: RenewRequest, p: Coder, api: State):
    """Extend the caller's lease by the lease time; 409 when the lease is not the caller's."""
    async with api.pool.acquire() as conn, conn.transaction():
        item = await load_item(conn, work_item_id, p, for_update=True)
        _check_lease(item, p, body.lease_token, work_item_id)
        until = await repo.renew_lease(conn, work_item_id, api.settings.auth.lease_seconds)
    return {"work_item_id": work_item_id, "lease_expires_at": until.isoformat()}


@router.post("/{work_item_id}/validate")
async def validate(work_item_id: int, body: Codes, p: Coder, api: State):
    """The coding edits the given codes raise for this encounter (nothing is stored; the
    answer holds edits only, no PHI, so it is not an audited read)."""
    async with api.pool.acquire() as conn:
        item = await load_item(conn, work_item_id, p)
    enc = EncounterModel.model_validate_json(item["encounter"])
    dx = [icd10cm.normalize(c) for c in body.diagnoses]
    edits = engine.validate_final_codes(enc, dx, [pr.model_dump() for pr in body.procedures])
    return {"work_item_id": work_item_id, "edits": [e.model_dump() for e in edits]}


@router.post("/{work_item_id}/complete")
async def complete(
    work_item_id: int, body: CompleteRequest, request: Request, p: Coder, api: State
):
    """Finalise coding: validated again; blocking edits must be fixed or overridden with a
    reason; refused (409) while a query to the provider is open. Emits encounter.coded in the
    encounter's trace."""
    emitter = Emitter(repo.SCHEMA)
    async with api.pool.acquire() as conn, conn.transaction():
        await repo.lock_encounter_of_item(conn, work_item_id)
        item = await load_item(conn, work_item_id, p, for_update=True)
        if item["status"] == "completed":
            raise HTTPException(409, f"work item {work_item_id} is already completed")
        if open_ := await repo.open_queries(conn, item["encounter_id"]):
            q = open_[0]
            raise HTTPException(
                409,
                f"query {q['query_id']} to the provider is open ({q['status']}): the encounter "
                "cannot be finalised until it is answered or cancelled",
            )
        _check_lease(item, p, body.lease_token, work_item_id)
        enc = EncounterModel.model_validate_json(item["encounter"])
        dx = [icd10cm.normalize(c) for c in body.diagnoses]
        procs = [pr.model_dump() for pr in body.procedures]
        edits = engine.validate_final_codes(enc, dx, procs)
        overridden = {o.code: o.reason for o in body.overrides}
        unresolved = [e for e in edits if e.severity == "blocking" and e.code not in overridden]
        if unresolved:
            raise HTTPException(
                422,
                {
                    "message": "blocking coding edits remain; fix them or override with a reason",
                    "edits": [e.model_dump() for e in unresolved],
                },
            )
        payload = _payload(enc, dx, body, edits, p.user_id)
        final = payload.model_dump(mode="json", include={"diagnoses", "procedures"})
        await repo.complete_item(conn, work_item_id, p.user_id, final)
        await repo.settle_queries(conn, item["encounter_id"], p.user_id)
        await _history(conn, item, p, dx, procs, overridden)
        with tracer().start_as_current_span(
            "coding complete",
            context=context_from_traceparent(item["traceparent"]),
            attributes={"rcm.encounter_id": enc.encounter_id, "rcm.work_item_id": work_item_id},
        ):
            emitter.emit(
                EncounterCoded(site_id=enc.site_id, encounter_id=enc.encounter_id, payload=payload)
            )
        await emitter.flush(conn)
        # last: the chain's head stays locked from here to the commit only
        await record(conn, request, p, "update", "work_item", _ids(item, "complete"), item)
    api.notify()
    return {
        "work_item_id": work_item_id,
        "encounter_id": item["encounter_id"],
        "document_version": item["document_version"],
        "status": "completed",
        "edits_overridden": sorted(overridden),
    }


def _payload(enc, dx: list[str], body: CompleteRequest, edits, user_id: str):
    try:
        return EncounterCodedPayload(
            encounter=enc,
            diagnoses=[CodedDiagnosis(code=c, description=icd10cm.description(c)) for c in dx],
            procedures=[
                CodedProcedure(
                    code=pr.code,
                    system=procedure_system(pr.code),
                    modifiers=pr.modifiers,
                    units=pr.units,
                    diagnosis_pointers=pr.diagnosis_pointers,
                )
                for pr in body.procedures
            ],
            edits=edits,
            route="review",
            coded_by=user_id,
            code_set_version=icd10cm.VERSION,
        )
    except ValidationError as e:
        raise HTTPException(422, e.errors(include_input=False, include_url=False)) from e


async def _history(conn, item, p: Principal, dx, procs, overridden: dict[str, str]) -> None:
    """The coder's changes to the suggestions (coding_audit: before/after codes, reasons)."""
    suggested = json.loads(item["suggestions"])
    before = {
        "diagnoses": [d["code"] for d in suggested["diagnoses"]],
        "procedures": [x["code"] for x in suggested["procedures"]],
    }
    after = {"diagnoses": dx, "procedures": [x["code"] for x in procs]}
    await repo.audit(
        conn,
        encounter_id=item["encounter_id"],
        work_item_id=item["work_item_id"],
        user_id=p.user_id,
        action="complete",
        before=before,
        after=after,
        reason="; ".join(f"{k}: {v}" for k, v in overridden.items()) or None,
    )


def _check_lease(item, p: Principal, token: uuid.UUID, work_item_id: int) -> None:
    if item["status"] != "leased" or item["leased_by"] != p.user_id or item["lease_token"] != token:
        raise HTTPException(
            409, f"work item {work_item_id} is not leased to you (lease expired or taken)"
        )


def _ids(item, what: str | None = None) -> list[str]:
    ids = [str(item["work_item_id"]), item["encounter_id"]]
    return ids + [f"action={what}"] if what else ids


async def load_item(
    conn: asyncpg.Connection, work_item_id: int, p: Principal, *, for_update: bool = False
):
    """The work item, if the caller may see it: 404 when there is none, 403 for another site's."""
    item = await repo.get_item(conn, work_item_id, for_update=for_update)
    if item is None:
        raise HTTPException(404, f"work item {work_item_id} not found")
    if not p.can_access(item["site_id"]):
        raise HTTPException(403, f"work item {work_item_id} belongs to another site")
    return item
