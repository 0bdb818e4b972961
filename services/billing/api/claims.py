"""GET /claims/{claim_id}: a claim with its codes and status history, for callers of its site (audited);
PATCH /claims/{claim_id}/billing-data: a biller fills a held claim's missing fields (audited)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Request

from services.billing import repository as repo
from services.billing.api.deps import ClaimEditor, ClaimReader, State
from services.billing.domain import billing_data
from services.billing.release import REBUILDABLE, Rebuild, rebuild
from shared import audit
from shared.events import EncounterCodedPayload
from shared.messaging import Emitter

router = APIRouter()


@router.get("/claims/{claim_id}")
async def get_claim(claim_id: str, request: Request, p: ClaimReader, api: State):
    """404 for an unknown id, 403 for another site's claim (claim ids are opaque, not PHI)."""
    async with api.pool.acquire() as conn, conn.transaction():
        claim, history = await repo.claim_with_history(conn, claim_id)
        if claim is None:
            raise HTTPException(404, f"claim {claim_id} not found")
        if not p.can_access(claim["site_id"]):
            raise HTTPException(403, f"claim {claim_id} belongs to another site")
        await audit.read(
            conn,
            repo.SCHEMA,
            request,
            p,
            "claim",
            [claim_id],
            account_key=claim["encounter_id"],
            site_id=claim["site_id"],
        )
    return {
        "claim_id": claim_id,
        "encounter_id": claim["encounter_id"],
        "site_id": claim["site_id"],
        "payer_id": claim["payer_id"],
        "status": claim["status"],
        "claim_type": claim["claim_type"],
        "frequency_code": claim["frequency_code"],
        "original_claim_id": claim["original_claim_id"],
        "payer_claim_control_number": claim["payer_claim_control_number"],
        "total_charge": str(claim["total_charge"]),
        "service_date": claim["service_date"].isoformat(),
        "interchange_control_number": claim["interchange_control_number"],
        "file_name": claim["file_name"],
        **_codes(claim["coded"]),
        "history": [
            {
                "status": h["status"],
                "at": h["at"].isoformat(),
                "detail": json.loads(h["detail"]) if h["detail"] else None,
            }
            for h in history
        ],
    }


def _codes(coded) -> dict:
    """The codes the claim was built from (diagnoses in pointer order, procedures with their
    modifiers, units and pointers) and who coded them; nothing else of the coded encounter,
    which holds the patient."""
    c = json.loads(coded) if isinstance(coded, str) else coded
    return {
        "diagnoses": [
            {"code": d["code"], "description": d.get("description")}
            for d in c.get("diagnoses") or []
        ],
        "procedures": [
            {
                "code": x["code"],
                "system": x.get("system", "cpt"),
                "modifiers": x.get("modifiers") or [],
                "units": str(x.get("units", "1")),
                "diagnosis_pointers": x.get("diagnosis_pointers") or [],
            }
            for x in c.get("procedures") or []
        ],
        "coded_by": c.get("coded_by"),
    }


@router.patch("/claims/{claim_id}/billing-data")
async def fill_billing_data(
    claim_id: str,
    request: Request,
    p: ClaimEditor,
    api: State,
    body: Annotated[Any, Body()] = None,
):
    """Supply a held claim's missing fields (``domain.billing_data``); the claim is rebuilt,
    re-scrubbed and sent when clean, else held again naming what is still missing.

    404 unknown claim, 403 another site's, 409 a claim already sent (a correction is the
    way then), 422 naming each bad field path (never its value).
    """
    emitter = Emitter(repo.SCHEMA)
    async with api.pool.acquire() as conn, conn.transaction():
        claim = await repo.lock_claim(conn, claim_id)
        if claim is None:
            raise HTTPException(404, f"claim {claim_id} not found")
        if not p.can_access(claim["site_id"]):
            raise HTTPException(403, f"claim {claim_id} belongs to another site")
        if claim["status"] not in REBUILDABLE or claim["frequency_code"] != "1":
            raise HTTPException(
                409, f"claim {claim_id} is {claim['status']}: only a held original is filled in"
            )
        try:
            data = billing_data.parse(body)
            coded = billing_data.apply(
                EncounterCodedPayload.model_validate_json(claim["coded"]), data
            )
        except billing_data.BillingDataError as e:
            raise HTTPException(422, e.problems) from None
        await rebuild(conn, [Rebuild(claim_id, coded, None)], emitter, api.context)
        await emitter.flush(conn)
        status = (await repo.lock_claim(conn, claim_id))["status"]
        filled = sorted(_paths(data.model_dump(exclude_none=True)))
        await audit.record(
            conn,
            repo.SCHEMA,
            request,
            p,
            "update",
            "claim",
            [claim_id, *(f"filled={f}" for f in filled)],
            account_key=claim["encounter_id"],
            site_id=claim["site_id"],
        )
    api.notify()
    return {"claim_id": claim_id, "status": status, "filled": filled}


def _paths(d: dict, prefix: str = "") -> list[str]:
    """The field paths of a nested dict (names only)."""
    out = []
    for k, v in d.items():
        out += _paths(v, f"{prefix}{k}.") if isinstance(v, dict) else [f"{prefix}{k}"]
    return out
