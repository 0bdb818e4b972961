"""Deposits announced by the payers against the cash posted from them."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter

from services.payments import repository as repo
from services.payments.api.deps import State
from shared.jsonutil import plain

router = APIRouter()


@router.get("/reconciliation")
async def reconciliation(
    api: State, payer_id: str | None = None, since: date | None = None, until: date | None = None
):
    """Deposits announced (BPR/TRN) against cash posted, per payer per payment date.

    ``difference = deposits - posted``; ``held`` and ``unmatched`` say how much of it
    is waiting, ``unexplained`` what is left after that (zero when the books reconcile).
    """
    async with api.pool.acquire() as conn:
        rows = await repo.reconciliation(conn, payer_id=payer_id, since=since, until=until)
    out = []
    for r in rows:
        difference = r["deposits"] - r["posted"]
        out.append(
            plain(
                {
                    **dict(r),
                    "difference": difference,
                    "unexplained": difference - r["held"] - r["unmatched"],
                }
            )
        )
    return out
