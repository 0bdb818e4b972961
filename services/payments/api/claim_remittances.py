"""GET /claims/{claim_id}/remittances: every 835 claim payment matched to one claim, oldest
first, with the transaction it came in (file, trace number, payment date) and what the ledger
took from it. For a claim page's timeline; audited as a read of the claim's remittances."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

from services.payments import repository as repo
from services.payments.api.deps import RemittanceReader, State
from shared import audit
from shared.jsonutil import plain

router = APIRouter()

_REMITTANCES = (
    "SELECT cp.remittance_id, cp.status_code, cp.charge, cp.paid, cp.patient_responsibility,"
    " cp.payer_claim_control_number, cp.state, cp.match_method, cp.reason, cp.created_at AS received_at,"
    " cp.posted_at, a.file_name, a.trace_number, a.payment_date, a.payment_method"
    f" FROM {repo.SCHEMA}.claim_payment cp JOIN {repo.SCHEMA}.remittance_advice a USING (advice_id)"
    " WHERE cp.claim_id = $1 ORDER BY cp.created_at, cp.remittance_id"
)


@router.get("/claims/{claim_id}/remittances")
async def claim_remittances(claim_id: str, request: Request, p: RemittanceReader, api: State):
    """404 when payments has not seen the claim, 403 for another site's claim."""
    async with api.pool.acquire() as conn, conn.transaction():
        claim = await conn.fetchrow(
            f"SELECT encounter_id, site_id FROM {repo.SCHEMA}.claim WHERE claim_id = $1", claim_id
        )
        if claim is None:
            raise HTTPException(404, f"claim {claim_id} not known to payments")
        if not p.can_access(claim["site_id"]):
            raise HTTPException(403, f"claim {claim_id} belongs to another site")
        rows = await conn.fetch(_REMITTANCES, claim_id)
        await audit.read_events(
            conn,
            repo.SCHEMA,
            audit.Actor.of(request, p),
            [
                audit.AuditEvent(
                    "read",
                    "remittance",
                    [claim_id, *(r["remittance_id"] for r in rows)],
                    account_key=claim["encounter_id"],
                    site_id=claim["site_id"],
                )
            ],
        )
    return {"claim_id": claim_id, "remittances": [plain(dict(r)) for r in rows]}
