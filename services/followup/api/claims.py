"""A claim as followup sees it, for callers of its site (audited)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

from services.followup import repository as repo
from services.followup.api.deps import Reader, State, account_of
from services.followup.api.views import claim_summary
from shared import audit
from shared.jsonutil import plain

router = APIRouter()


@router.get("/claims/{claim_id}")
async def claim(claim_id: str, request: Request, p: Reader, api: State):
    """The claim as followup sees it: balances, status history (276/277/277CA), appeals, work
    items. 404 for an unknown id, 403 for another site's claim."""
    async with api.pool.acquire() as conn, conn.transaction():
        c = await repo.get_claim(conn, claim_id)
        if c is None:
            raise HTTPException(404, f"claim {claim_id} not known to followup")
        if not p.can_access(c["site_id"]):
            raise HTTPException(403, f"claim {claim_id} belongs to another site")
        history = await repo.status_history(conn, claim_id)
        appeals = await repo.appeals_of(conn, claim_id)
        items = await repo.work_items_of(conn, claim_id)
        await audit.read(
            conn,
            repo.SCHEMA,
            request,
            p,
            "claim",
            [claim_id],
            account_key=account_of(c),
            site_id=c["site_id"],
        )
    return {
        **claim_summary(c),
        "status_history": [plain(r) for r in history],
        "appeals": [plain(a) for a in appeals],
        "work_items": [dict(r) for r in items],
    }
