"""Scheduled visits over intake's HTTP API (docs/eligibility.md, "Scheduled visits"):

- ``POST /appointments``: FHIR R4 Appointments (a Bundle of any type with the patient's
  Patient, Coverage, Practitioner, Location and Organization resources, one resource, or
  NDJSON), for the sender's sites; 202 with what became of each, the 270s a check-in sent.
- ``GET /appointments/{appointment_id}/eligibility``: the newest check of each coverage of
  the visit, whoever asked; for registration staff before and at check-in (audited: PHI).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse

from services.intake import appointments as flow
from services.intake import appointments_repository as repo
from services.intake.domain.appointments import read_appointments
from services.intake.domain.problems import Problem
from services.intake.eligibility_api import audit_check_read
from shared.auth import Principal
from shared.service import Runtime

SENDERS = ("integration",)
READERS = ("integration", "biller", "supervisor", "auditor")
MAP_IN_THREAD_BYTES = 256 * 1024  # as encounters: a whole-patient bundle takes a while

AppointmentId = Annotated[str, PathParam(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9\-.]+$")]


def appointments_router(rt: Runtime) -> APIRouter:
    router = APIRouter(tags=["appointments"])
    sender = rt.auth.require(*SENDERS)
    reader = rt.auth.require(*READERS)

    @router.post("/appointments", status_code=202)
    async def post_appointments(request: Request, p: Principal = sender):
        """Store each Appointment of the body as its visit; 422 when none can be read (each
        problem named by its path, no value), 403 (nothing stored) when one is for a site
        that is not the sender's, 409 when its id is another site's appointment."""
        from services.intake.api import unsafe_text  # (api includes this router)

        body = await request.body()
        if problem := unsafe_text(body):
            return JSONResponse(status_code=422, content={"detail": [problem]})
        registry = await rt.context.registry.get(rt.pool)
        codes = rt.context.codes
        # A sender of one site needs no Location naming it: its appointments are that site's.
        own = next(iter(p.sites)) if len(p.sites) == 1 and not p.all_sites else None

        def read():
            return read_appointments(
                body,
                registry=registry,
                concept_maps=codes.concept_maps,
                snomed_map=codes.snomed_map,
                site_id=own,
            )

        got = await asyncio.to_thread(read) if len(body) > MAP_IN_THREAD_BYTES else read()
        problems = [x.as_dict() for x in got.problems]
        if not got.appointments:
            return JSONResponse(status_code=422, content={"detail": problems or [_NONE]})
        for a in got.appointments:
            if not p.can_access(a.visit.site_id):
                raise HTTPException(403, f"{a.source}: the appointment is for a site not yours")
        async with rt.pool.acquire() as conn, conn.transaction():
            stored = await flow.accept_appointments(conn, got.appointments)
        statuses = {s.status for s in stored}
        code = 202 if "accepted" in statuses else 409
        content: dict = {"appointments": [s.as_json() for s in stored]}
        if problems:
            content["problems"] = problems
        return JSONResponse(status_code=code, content=content)

    @router.get("/appointments/{appointment_id}/eligibility")
    async def appointment_eligibility(
        appointment_id: AppointmentId, request: Request, p: Principal = reader
    ):
        """The visit's coverages and the newest check of each (``not_asked`` when none)."""
        async with rt.pool.acquire() as conn, conn.transaction():
            row = await repo.appointment(conn, appointment_id)
            if row is None:
                raise HTTPException(404, "appointment not found")
            site = row["site_id"]
            if not p.can_access(site):
                raise HTTPException(403, "the appointment belongs to another site")
            coverages = await flow.eligibility_of(conn, row)
            await audit_check_read(
                conn,
                request,
                p,
                site,
                row["visit"],
                [c["trace_number"] for c in coverages if c.get("trace_number")],
                flow.filed_under(appointment_id),
            )
        return {
            "appointment_id": appointment_id,
            "site_id": site,
            "status": row["status"],
            "service_date": row["service_date"].isoformat(),
            "checked_in_at": row["checked_in_at"].isoformat() if row["checked_in_at"] else None,
            "batch_checked_at": (
                row["batch_checked_at"].isoformat() if row["batch_checked_at"] else None
            ),
            "coverages": coverages,
        }

    return router


_NONE = Problem("$", "expected an Appointment").as_dict()
