"""The remittance queues: claim payments waiting for their claim, and those held out of balance."""

from __future__ import annotations

from fastapi import APIRouter, Query

from services.payments import repository as repo
from services.payments.api.deps import State
from shared.jsonutil import plain

router = APIRouter(prefix="/remittances")


@router.get("/unmatched")
async def unmatched(api: State, limit: int = Query(1000, gt=0)):
    """Claim payments waiting for a claim they can be matched to, oldest first."""
    async with api.pool.acquire() as conn:
        rows = await repo.queue(conn, "unmatched", min(limit, api.page_limit))
    return [plain(r) for r in rows]


@router.get("/held")
async def held(api: State, limit: int = Query(1000, gt=0)):
    """Claim payments held because they (or their transaction) do not balance, with the reason."""
    async with api.pool.acquire() as conn:
        rows = await repo.queue(conn, "held", min(limit, api.page_limit))
    return [plain(r) for r in rows]
