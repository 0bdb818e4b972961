"""GET /claims/{claim_id}: a claim with its status history, for callers of its site."""

from __future__ import annotations

import json

from fastapi import APIRouter, HTTPException

from services.billing import repository as repo
from services.billing.api.deps import Caller, State

router = APIRouter()


@router.get("/claims/{claim_id}")
async def get_claim(claim_id: str, p: Caller, api: State):
    async with api.pool.acquire() as conn:
        claim, history = await repo.claim_with_history(conn, claim_id)
    if claim is None:
        raise HTTPException(404, f"claim {claim_id} not found")
    if not p.can_access(claim["site_id"]):
        raise HTTPException(403, f"claim {claim_id} belongs to another site")
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
        "history": [
            {
                "status": h["status"],
                "at": h["at"].isoformat(),
                "detail": json.loads(h["detail"]) if h["detail"] else None,
            }
            for h in history
        ],
    }
