"""Eligibility over intake's HTTP API (docs/eligibility.md), for the caller's sites only:

- ``POST /eligibility/checks`` ``{"encounter_id"}``: a 270 now for every coverage of the
  encounter's newest version, whatever is fresh (202 with the checks' trace numbers).
- ``GET /encounters/{encounter_id}/eligibility``: the newest check of each coverage: its
  state, the payer's answer (the summary billing reads), the AAA reason, a pending retry.
- ``GET /eligibility/work-items``: registration and review work AAA rejections opened.

Results hold PHI (whom a payer covers, with what): every answer is audited.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from services.intake import eligibility_flow as flow
from services.intake import eligibility_repository as repo
from shared import audit
from shared.auth import Principal, sites_filter
from shared.events import Encounter
from shared.service import Runtime

CHECKERS = ("integration", "biller", "supervisor")
READERS = ("integration", "biller", "supervisor", "auditor")
WORK_READERS = ("biller", "supervisor")


def storable(value: str) -> str:
    """Text PostgreSQL can store and look up: no control character, no lone surrogate."""
    if any(ord(c) < 0x20 or 0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise ValueError("holds a character an encounter id cannot hold")
    return value


EncounterId = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(storable)]


class CheckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    encounter_id: EncounterId


def eligibility_router(rt: Runtime) -> APIRouter:
    router = APIRouter(tags=["eligibility"])
    checker = rt.auth.require(*CHECKERS)
    reader = rt.auth.require(*READERS)
    work_reader = rt.auth.require(*WORK_READERS)

    @router.post("/eligibility/checks", status_code=202)
    async def check_now(body: CheckBody, request: Request, p: Principal = checker):
        """Ask the payers now (409 when checks are off, 404 unknown encounter, 403 another
        site's, 422 when no coverage can be asked about: each named, without values)."""
        cfg = flow.current()
        if cfg is None or cfg.settings.mode == "off":
            raise HTTPException(409, "eligibility checks are off (RCM_INTAKE_ELIGIBILITY_MODE)")
        async with rt.pool.acquire() as conn, conn.transaction():
            doc = await repo.latest_document(conn, body.encounter_id)
            if doc is None:
                raise HTTPException(404, "encounter not found")
            if not p.can_access(doc["site_id"]):
                raise HTTPException(403, "the encounter belongs to another site")
            try:
                enc = Encounter.model_validate_json(doc["document"])
            except ValidationError:  # stored before intake mapped everything it keeps
                raise HTTPException(
                    422,
                    [{"path": "encounter_id", "message": "its stored document is no encounter"}],
                ) from None
            asks, bad = flow.asks_for(enc, cfg, None, f"on_demand:{p.user_id}"[:100])
            if not asks:
                detail = [{"path": _path(s), "message": why} for s, why in bad] or [
                    {"path": "coverages", "message": "the encounter has no coverage (self-pay)"}
                ]
                raise HTTPException(422, detail)
            await flow.open_unsendable(conn, enc, bad)
            traces = await flow.send(conn, cfg, asks)
            await audit.record(
                conn,
                repo.S,
                request,
                p,
                "create",
                "eligibility_check",
                traces,
                account_key=audit.account_key(
                    enc.site_id, enc.patient.patient_id, enc.encounter_id
                ),
                site_id=enc.site_id,
            )
        return {
            "encounter_id": enc.encounter_id,
            "checks": [
                {"trace_number": t, "sequence": a.sequence, "payer_id": a.request.payer_id}
                for t, a in zip(traces, asks, strict=True)
            ],
            "not_sent": [{"sequence": s, "reason": why} for s, why in bad],
        }

    @router.get("/encounters/{encounter_id}/eligibility")
    async def latest(encounter_id: str, request: Request, p: Principal = reader):
        """The newest check of each coverage (none yet: an empty list)."""
        try:
            storable(encounter_id)
        except ValueError as e:
            raise HTTPException(422, [{"path": "encounter_id", "message": str(e)}]) from None
        async with rt.pool.acquire() as conn, conn.transaction():
            doc = await repo.latest_document(conn, encounter_id)
            if doc is None:
                raise HTTPException(404, "encounter not found")
            site = doc["site_id"]
            if not p.can_access(site):
                raise HTTPException(403, "the encounter belongs to another site")
            rows = await repo.encounter_checks(conn, encounter_id)
            await audit_check_read(
                conn,
                request,
                p,
                site,
                doc["document"],
                [r["trace_number"] for r in rows],
                encounter_id,
            )
        order = {"primary": 0, "secondary": 1, "tertiary": 2}
        return {
            "encounter_id": encounter_id,
            "site_id": site,
            "coverages": [_check_json(r) for r in sorted(rows, key=lambda r: order[r["sequence"]])],
        }

    @router.get("/eligibility/work-items")
    async def work_items(
        request: Request,
        p: Principal = work_reader,
        status: Literal["open", "resolved"] | None = "open",
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ):
        """Registration and review work from AAA rejections, oldest first (no PHI in them)."""
        async with rt.pool.acquire() as conn, conn.transaction():
            rows = await repo.work_items(conn, sites_filter(p), status, limit)
            await audit.record(
                conn,
                repo.S,
                request,
                p,
                "read",
                "eligibility_work_item",
                [str(r["id"]) for r in rows],
            )
        return {
            "items": [
                {
                    "id": r["id"],
                    "site_id": r["site_id"],
                    "encounter_id": r["encounter_id"],
                    "coverage": r["sequence"],
                    "payer_id": r["payer_id"],
                    "kind": r["kind"],
                    "reason_code": r["reason_code"],
                    "message": r["message"],
                    "status": r["status"],
                    "opened_at": r["opened_at"].isoformat(),
                    "resolved_at": r["resolved_at"].isoformat() if r["resolved_at"] else None,
                }
                for r in rows
            ]
        }

    return router


async def audit_check_read(
    conn, request: Request, p: Principal, site: str, stored: str, traces: list[str], account: str
) -> None:
    """Audit a read of eligibility checks (an encounter's or a scheduled visit's): the checks'
    trace numbers, or the account when none was asked yet, under the patient of the stored
    JSON (``stored``: the encounter document or the appointment's visit)."""
    patient_id = (json.loads(stored).get("patient") or {}).get("patient_id")
    await audit.record(
        conn,
        repo.S,
        request,
        p,
        "read",
        "eligibility_check",
        traces or [account],
        account_key=audit.account_key(site, patient_id, account),
        site_id=site,
    )


def _check_json(r) -> dict:
    def at(v):
        return v.isoformat() if v is not None else None

    return {
        "coverage": r["sequence"],
        "payer_id": r["payer_id"],
        "payer_name": r["payer_name"],
        "service_date": r["service_date"].isoformat(),
        "trace_number": r["trace_number"],
        "attempt": r["attempt"],
        "requested_by": r["requested_by"].split(":", 1)[0],
        "state": r["state"],
        "outcome": r["outcome"],
        "reason_code": r["reason_code"],
        "reason": r["reason"],
        "eligibility": json.loads(r["summary"]) if r["summary"] else None,
        "sent_at": at(r["created_at"]),
        "answered_at": at(r["answered_at"]),
        "retry_at": at(r["retry_at"]),
    }


def _path(sequence: str) -> str:
    return "encounter" if sequence == "encounter" else f"coverages.{sequence}"
