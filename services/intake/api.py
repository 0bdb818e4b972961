"""HTTP API of the intake service: encounter documents in, master data registries.

- ``POST /encounters``: a FHIR R4 input (any bundle type, several encounters allowed) or the
  native encounter JSON; each encounter is versioned and emitted (``services.intake.accept``).
- ``GET /encounters/{id}/versions``: the versions received (metadata only, no PHI).
- ``POST /hl7``: HL7 v2 messages (one, or a file of several), handled as the MLLP listener
  handles them (``services.intake.hl7_intake``); the answer is their ACKs (ER7 text).
- ``GET /sites``, ``GET|PUT /sites/{site_id}``, ``GET /payers``, ``GET|PUT /payers/{payer_id}``.

A 422 lists every problem as ``{"path", "message"}`` and never echoes an input value.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

from fastapi import APIRouter, FastAPI, HTTPException, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from services.intake import repository as repo
from services.intake.accept import Outcome
from services.intake.appointments_api import appointments_router
from services.intake.eligibility_api import eligibility_router
from services.intake.hl7_intake import PARSE_IN_THREAD_BYTES
from services.intake.limits import IntakeLimits, oversized
from services.intake.mapping import Mapped, parse
from services.intake.masterdata import PayerBody, SiteBody, payer_json, site_json
from shared.auth import Principal
from shared.events import UNASSIGNED_SITE
from shared.http import TELEMETRY, add_health, harden
from shared.service import Runtime
from shared.telemetry import current_traceparent
from shared.text import Unstorable, unstorable_json

# Who may do what (docs/security.md): EHR feeds post encounters for their own sites; people read
# the registries of their sites; supervisors maintain them.
SENDERS = ("integration",)
VERSION_READERS = ("integration", "biller", "supervisor", "auditor")
REGISTRY_READERS = ("coder", "biller", "supervisor", "integration")
REGISTRY_EDITORS = ("supervisor",)
# Bodies above this are mapped off the event loop (a whole-patient bundle takes a while).
MAP_IN_THREAD_BYTES = 256 * 1024

ER7 = "x-application/hl7-v2+er7"  # HL7 over HTTP's media type for v2 messages in ER7 encoding

RegistryId = Annotated[
    str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
]


def create_app(rt: Runtime) -> FastAPI:
    app = FastAPI(title="rcm intake", version="1", telemetry=TELEMETRY)
    add_health(app, rt.pool)
    harden(app, rt.settings)  # access log, body limit (413), value-free errors

    # Intake names every problem ``{"path", "message"}``, the shape its mapping reports in.
    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, e: RequestValidationError):
        return JSONResponse(status_code=422, content={"detail": problems_of(e.errors())})

    app.include_router(encounters_router(rt))
    app.include_router(hl7_router(rt))
    app.include_router(sites_router(rt))
    app.include_router(payers_router(rt))
    app.include_router(eligibility_router(rt))
    app.include_router(appointments_router(rt))  # scheduled visits' checks
    return app


def problems_of(errors) -> list[dict[str, str]]:
    """Validation errors as ``{"path", "message"}``: the location and message, never the input."""
    out = []
    for err in errors:
        path = ""
        for part in err.get("loc", ()):
            path = (
                f"{path}[{part}]"
                if isinstance(part, int)
                else (f"{path}.{part}" if path else str(part))
            )
        message = err.get("msg", "invalid").removeprefix("Value error, ")
        out.append({"path": path or "$", "message": message})
    return out


# --------------------------------------------------------------------------- encounters


def unsafe_text(body: bytes) -> dict[str, str] | None:
    """A body PostgreSQL cannot store as text or JSON (shared.text), named without its value;
    None when the body is safe."""
    flaw = unstorable_json(body)
    return None if flaw is None else {"path": "$", "message": _UNSAFE_BODY[flaw]}


_UNSAFE_BODY = {
    Unstorable.NOT_UTF8: "the body is not UTF-8 text",
    Unstorable.NUL: "the body holds a NUL character, which no field may hold",
    Unstorable.LONE_SURROGATE: "the body holds a lone surrogate, which is not text",
}


def encounters_router(rt: Runtime) -> APIRouter:
    router = APIRouter(tags=["encounters"])
    sender = rt.auth.require(*SENDERS)
    reader = rt.auth.require(*VERSION_READERS)
    limits = IntakeLimits()  # per-note and per-encounter sizes (services.intake.limits)

    @router.post("/encounters", status_code=202)
    async def post_encounters(request: Request, p: Principal = sender):
        """Map, version and emit each encounter of the body; 422 when none can be an encounter,
        403 (nothing stored) when one is for a site that is not the sender's."""
        body = await request.body()
        if problem := unsafe_text(body):
            return JSONResponse(status_code=422, content={"detail": [problem]})
        registry = await rt.context.registry.get(rt.pool)
        codes = rt.context.codes
        if len(body) > MAP_IN_THREAD_BYTES:
            mapped = await asyncio.to_thread(parse, body, registry=registry, codes=codes)
        else:
            mapped = parse(body, registry=registry, codes=codes)
        if not mapped.encounters:
            problems = mapped.problems or [{"path": "$", "message": "expected an encounter"}]
            return JSONResponse(status_code=422, content={"detail": problems})
        for n, m in enumerate(mapped.encounters):
            if not p.can_access(m.encounter.site_id):
                raise HTTPException(403, f"encounter {n} is for a site that is not one of yours")
        if too_large := oversized(mapped.encounters, limits):  # nothing stored or emitted
            return JSONResponse(status_code=413, content={"detail": too_large})
        # One encounter continues the request's trace; several get a trace each.
        one = len(mapped.encounters) == 1
        parents = [current_traceparent()] if one else [None] * len(mapped.encounters)
        # Only a sender that may send for the unassigned site may move an encounter off it.
        may_place = [p.can_access(UNASSIGNED_SITE)] * len(mapped.encounters)
        outcomes = await rt.context.acceptor.accept(mapped.encounters, parents, may_place)
        return _response(outcomes, mapped)

    @router.get("/encounters/{encounter_id}/versions")
    async def versions(encounter_id: str, p: Principal = reader):
        """The versions of an encounter received so far, oldest first (metadata, no documents)."""
        async with rt.pool.acquire() as conn:
            rows = await repo.document_versions(conn, encounter_id)
        if not rows:
            raise HTTPException(404, "encounter not found")
        if not p.can_access(rows[-1]["site_id"]):  # its site now (it may have left unassigned)
            raise HTTPException(403, "the encounter belongs to another site")
        return {
            "encounter_id": encounter_id,
            "site_id": rows[-1]["site_id"],
            "versions": [
                {
                    "document_version": r["version"],
                    "content_hash": r["content_hash"],
                    "event_id": str(r["event_id"]),
                    "source": r["source"],
                    "received_at": r["received_at"].isoformat(),
                    "warnings": r["warnings"],
                    "missing": json.loads(r["missing"]),
                }
                for r in rows
            ],
        }

    return router


# --------------------------------------------------------------------------- HL7 v2


def hl7_router(rt: Runtime) -> APIRouter:
    router = APIRouter(tags=["hl7"])
    integration = rt.auth.require("integration")  # the process's one Authenticator

    @router.post("/hl7")
    async def post_hl7(request: Request, p: Principal = integration):
        """HL7 v2 messages (one, or a file of several: any segment terminator, FHS/BHS
        batches), each stored, assembled into its visit and emitted as over MLLP; the answer
        (200) is one ACK per message, in order, sent once they are committed. 403 when a
        message names a site not the caller's (nothing stored); 422 when the body holds no
        message; 503 when nothing could be stored (send again)."""
        body = await request.body()
        hl7 = rt.context.hl7
        registry = await rt.context.registry.get(rt.pool)
        if len(body) > PARSE_IN_THREAD_BYTES:
            items, problems = await asyncio.to_thread(hl7.read_body, body, registry)
        else:
            items, problems = hl7.read_body(body, registry)
        if not items:
            detail = [x.as_dict() for x in problems] or [
                {"path": "$", "message": "expected an HL7 v2 message (MSH segment)"}
            ]
            return JSONResponse(status_code=422, content={"detail": detail})
        for n, item in enumerate(items, 1):
            site = item.received.site_id
            if site is not None and not p.can_access(site):
                raise HTTPException(403, f"message {n} is for a site that is not one of yours")
        try:
            answers = await hl7.take(items)
        except Exception as e:  # logged by the queue; the sender sends again
            raise HTTPException(503, "the messages could not be stored; send them again") from e
        return Response("".join(a.ack for a in answers), media_type=ER7 + "; charset=utf-8")

    return router


def _response(outcomes: list[Outcome], mapped: Mapped) -> JSONResponse:
    """One encounter and no problem: the flat shape; otherwise a list under ``encounters``."""
    statuses = {o.status for o in outcomes}
    if len(outcomes) == 1 and not mapped.problems:
        [o] = outcomes
        if o.status == "conflict":
            msg = "the encounter id belongs to another site's encounter"
            return JSONResponse(
                status_code=409, content={"detail": [{"path": "$", "message": msg}]}
            )
        content = o.as_json()
        if mapped.warnings and o.status == "accepted":
            content["warnings"] = mapped.warnings + content["warnings"]
        return JSONResponse(status_code=202 if o.status == "accepted" else 200, content=content)
    code = 202 if "accepted" in statuses else (409 if statuses == {"conflict"} else 200)
    content: dict = {"encounters": [o.as_json() for o in outcomes]}
    if mapped.problems:
        content["problems"] = mapped.problems
    if mapped.warnings:
        content["warnings"] = mapped.warnings
    return JSONResponse(status_code=code, content=content)


# --------------------------------------------------------------------------- registries


def sites_router(rt: Runtime) -> APIRouter:
    router = APIRouter(tags=["sites"])
    reader = rt.auth.require(*REGISTRY_READERS)
    editor = rt.auth.require(*REGISTRY_EDITORS)

    async def _sites(conn, site_ids: list[str] | None) -> list[dict]:
        found = await repo.sites(conn, site_ids)
        by_site: dict[str, list] = {}
        for p in await repo.providers(conn, [s.site_id for s in found]):
            by_site.setdefault(p.site_id, []).append(p)
        return [site_json(s, by_site.get(s.site_id, [])) for s in found]

    @router.get("/sites")
    async def list_sites(p: Principal = reader):
        """The sites the caller may see, with their rendering providers."""
        async with rt.pool.acquire() as conn:
            return await _sites(conn, None if "*" in p.sites else sorted(p.sites))

    @router.get("/sites/{site_id}")
    async def get_site(site_id: RegistryId, p: Principal = reader):
        if not p.can_access(site_id):
            raise HTTPException(403, "the site is not one of yours")
        async with rt.pool.acquire() as conn:
            found = await _sites(conn, [site_id])
        if not found:
            raise HTTPException(404, "site not found")
        return found[0]

    @router.put("/sites/{site_id}")
    async def put_site(site_id: RegistryId, body: SiteBody, p: Principal = editor):
        """Create or replace a site with exactly these providers; applies to the next encounter."""
        if not p.can_access(site_id):
            raise HTTPException(403, "the site is not one of yours")
        site, providers = body.to_domain(site_id)
        async with rt.pool.acquire() as conn, conn.transaction():
            await repo.upsert_sites(conn, [site])
            await repo.replace_site_providers(conn, site_id, providers)
            stored = (await _sites(conn, [site_id]))[0]
        rt.context.registry.invalidate()
        return stored

    return router


def payers_router(rt: Runtime) -> APIRouter:
    router = APIRouter(tags=["payers"])
    reader = rt.auth.require(*REGISTRY_READERS)
    editor = rt.auth.require(*REGISTRY_EDITORS)

    @router.get("/payers")
    async def list_payers(_: Principal = reader):
        async with rt.pool.acquire() as conn:
            return [payer_json(x) for x in await repo.payers(conn)]

    @router.get("/payers/{payer_id}")
    async def get_payer(payer_id: RegistryId, _: Principal = reader):
        async with rt.pool.acquire() as conn:
            found = await repo.payers(conn, [payer_id])
        if not found:
            raise HTTPException(404, "payer not found")
        return payer_json(found[0])

    @router.put("/payers/{payer_id}")
    async def put_payer(payer_id: RegistryId, body: PayerBody, _: Principal = editor):
        """Create or replace a payer; applies to the next encounter."""
        payer = body.to_domain(payer_id)
        async with rt.pool.acquire() as conn, conn.transaction():
            await repo.upsert_payers(conn, [payer])
        rt.context.registry.invalidate()
        return payer_json(payer)

    return router
