"""GET /claims/{claim_id}: a claim with its status history, for callers of its site (audited)."""

from __future__ import annotations

import json

from fastapi import APIRouter, HTTPException, Request

from services.billing import repository as repo
from services.billing.api.deps import ClaimReader, State
from shared import audit

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
        await audit.record(
            conn,
            repo.SCHEMA,
            request,
            p,
            "read",
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
        "history": [
            {
                "status": h["status"],
                "at": h["at"].isoformat(),
                "detail": json.loads(h["detail"]) if h["detail"] else None,
            }
            for h in history
        ],
    }
