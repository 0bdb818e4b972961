"""HTTP API of the coding service: the coder work queue (encounters arrive as encounter.documented)."""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal

from fastapi import APIRouter, FastAPI, HTTPException, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field, ValidationError

from services.coding import repository as repo
from services.coding.domain import engine
from shared import icd10cm
from shared.auth import Principal, principal_dependency
from shared.events import (
    CodedDiagnosis,
    CodedProcedure,
    EncounterCoded,
    EncounterCodedPayload,
)
from shared.events import Encounter as EncounterModel
from shared.http import TELEMETRY, add_health
from shared.messaging import Emitter
from shared.notify import ChannelWatch
from shared.service import Runtime


class FinalProcedure(BaseModel):
    code: str = Field(min_length=4, max_length=7)
    modifiers: list[str] = Field(default_factory=list, max_length=4)
    units: Decimal = Decimal(1)
    diagnosis_pointers: list[int] = Field(default_factory=lambda: [1], min_length=1, max_length=4)


class Override(BaseModel):
    code: str  # the edit code being overridden
    reason: str = Field(min_length=3, max_length=500)


class CompleteRequest(BaseModel):
    lease_token: uuid.UUID
    diagnoses: list[str] = Field(min_length=1, max_length=12)
    procedures: list[FinalProcedure] = Field(min_length=1, max_length=50)
    overrides: list[Override] = Field(default_factory=list)


MAX_WAIT_SECONDS = 30  # a long poll's limit: below common proxy idle timeouts


def procedure_system(code: str) -> str:
    return "hcpcs" if code[:1].isalpha() else "cpt"


def create_app(rt: Runtime) -> FastAPI:
    app = FastAPI(title="rcm coding", version="1", telemetry=TELEMETRY)
    add_health(app, rt.pool)
    app.include_router(work_router(rt))
    return app


def work_router(rt: Runtime) -> APIRouter:
    """The coder work queue: depth, lease (long-polled), review, complete, coder statistics."""
    router = APIRouter(tags=["work queue"])
    pool = rt.pool
    lease_seconds = rt.settings.auth.lease_seconds
    coder = principal_dependency(rt.settings.auth.token_secret, frozenset({"coder", "supervisor"}))

    def sites_of(p: Principal) -> list[str] | None:
        return None if "*" in p.sites else sorted(p.sites)

    @router.get("/work/depth")
    async def depth(p: Principal = coder):
        async with pool.acquire() as conn:
            return await repo.queue_depth(conn, sites_of(p))

    async def lease(p: Principal):
        async with pool.acquire() as conn, conn.transaction():
            item = await repo.lease_next(conn, p.user_id, sites_of(p), lease_seconds)
            if item is not None:
                await repo.audit(
                    conn,
                    encounter_id=item["encounter_id"],
                    work_item_id=item["work_item_id"],
                    user_id=p.user_id,
                    action="lease",
                )
            return item

    @router.post("/work/next")
    async def lease_next(p: Principal = coder, wait: float = Query(0, ge=0, le=MAX_WAIT_SECONDS)):
        """Lease the oldest item of the caller's sites; 204 when there is none.

        ``wait`` (seconds) long-polls: the request waits for queued work instead of the
        coder asking again and again. Any instance's queueing wakes it (NOTIFY); it also
        looks again every second, since leases expire by time.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        watch: ChannelWatch = rt.context.work_watch
        while True:
            with watch.waiting(sites_of(p)) as woken:  # before looking: no wake-up is lost
                item = await lease(p)
                if item is not None:
                    return _item_view(item)
                left = deadline - loop.time()
                if left <= 0:
                    return Response(status_code=204)
                try:
                    await asyncio.wait_for(woken.wait(), min(left, 1.0))
                except TimeoutError:
                    pass

    @router.get("/work/{work_item_id}")
    async def get_item(work_item_id: int, p: Principal = coder):
        async with pool.acquire() as conn:
            item = await repo.get_item(conn, work_item_id)
        if item is None:
            raise HTTPException(404, f"work item {work_item_id} not found")
        if not p.can_access(item["site_id"]):
            raise HTTPException(403, f"work item {work_item_id} belongs to another site")
        return _item_view(item)

    @router.post("/work/{work_item_id}/complete")
    async def complete(work_item_id: int, body: CompleteRequest, p: Principal = coder):
        """Finalise coding: validated again; blocking edits must be fixed or overridden with a reason."""
        emitter = Emitter(repo.S)
        async with pool.acquire() as conn, conn.transaction():
            item = await repo.get_item(conn, work_item_id, for_update=True)
            if item is None:
                raise HTTPException(404, f"work item {work_item_id} not found")
            if not p.can_access(item["site_id"]):
                raise HTTPException(403, f"work item {work_item_id} belongs to another site")
            if item["status"] == "completed":
                raise HTTPException(409, f"work item {work_item_id} is already completed")
            if item["leased_by"] != p.user_id or item["lease_token"] != body.lease_token:
                raise HTTPException(
                    409, f"work item {work_item_id} is not leased to you (lease expired or taken)"
                )
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
            try:
                payload = EncounterCodedPayload(
                    encounter=enc,
                    diagnoses=[
                        CodedDiagnosis(code=c, description=icd10cm.description(c)) for c in dx
                    ],
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
                    coded_by=p.user_id,
                )
            except ValidationError as e:
                raise HTTPException(422, e.errors(include_input=False, include_url=False)) from e
            final = payload.model_dump(mode="json", include={"diagnoses", "procedures"})
            await repo.complete_item(conn, work_item_id, p.user_id, final)
            suggested = json.loads(item["suggestions"])
            before = {
                "diagnoses": [d["code"] for d in suggested["diagnoses"]],
                "procedures": [x["code"] for x in suggested["procedures"]],
            }
            after = {"diagnoses": dx, "procedures": [x["code"] for x in procs]}
            await repo.audit(
                conn,
                encounter_id=item["encounter_id"],
                work_item_id=work_item_id,
                user_id=p.user_id,
                action="complete",
                before=before,
                after=after,
                reason="; ".join(f"{k}: {v}" for k, v in overridden.items()) or None,
            )
            emitter.emit(
                EncounterCoded(site_id=enc.site_id, encounter_id=enc.encounter_id, payload=payload)
            )
            await emitter.flush(conn)
        rt.relay.notify()
        return {
            "work_item_id": work_item_id,
            "encounter_id": item["encounter_id"],
            "status": "completed",
            "edits_overridden": sorted(overridden),
        }

    @router.get("/coders/stats")
    async def stats(p: Principal = coder):
        async with pool.acquire() as conn:
            return await repo.coder_stats(conn, sites_of(p))

    return router


def _item_view(item) -> Response:
    """A work item as JSON; the stored documents are spliced in as they are (decoding them to
    re-encode them was most of a lease request's time)."""
    head = json.dumps(
        {
            "work_item_id": item["work_item_id"],
            "encounter_id": item["encounter_id"],
            "site_id": item["site_id"],
            "status": item["status"],
            "lease_token": str(item["lease_token"]) if item["lease_token"] else None,
            "lease_expires_at": item["lease_expires_at"].isoformat()
            if item["lease_expires_at"]
            else None,
            "note": item["note"],
        }
    )
    body = f'{head[:-1]}, "encounter": {item["encounter"]}, "suggestions": {item["suggestions"]}, "edits": {item["edits"]}}}'
    return Response(body, media_type="application/json")
