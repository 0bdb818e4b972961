"""The remittance queues: claim payments waiting for their claim, and those held out of balance.

A claim payment matched to no claim belongs to no site yet: only callers of every site see
the unmatched queue's entries. Every entry shown is audited.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from services.payments import repository as repo
from services.payments.api.deps import RemittanceReader, State
from shared import audit
from shared.auth import Principal, sites_filter
from shared.jsonutil import plain

router = APIRouter(prefix="/remittances")


@router.get("/unmatched")
async def unmatched(
    request: Request, p: RemittanceReader, api: State, limit: int = Query(1000, gt=0)
):
    """Claim payments waiting for a claim they can be matched to, oldest first."""
    return await _queue(request, p, api, "unmatched", limit)


@router.get("/held")
async def held(request: Request, p: RemittanceReader, api: State, limit: int = Query(1000, gt=0)):
    """Claim payments held because they (or their transaction) do not balance, with the reason."""
    return await _queue(request, p, api, "held", limit)


async def _queue(request: Request, p: Principal, api, state: str, limit: int) -> list[dict]:
    async with api.pool.acquire() as conn, conn.transaction():
        rows = await repo.queue(conn, state, min(limit, api.page_limit), sites_filter(p))
        await audit.read_events(
            conn,
            repo.SCHEMA,
            audit.Actor.of(request, p),
            [
                audit.AuditEvent(
                    "read",
                    "remittance",
                    [r["remittance_id"], r["patient_control_number"]],
                    account_key=r["encounter_id"],
                    site_id=r["site_id"],
                )
                for r in rows
            ],
        )
    return [plain(r) for r in rows]
