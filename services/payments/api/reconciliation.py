"""Deposits announced by the payers against the cash posted from them."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, HTTPException

from services.payments import repository as repo
from services.payments.api.deps import Reconciler, State
from shared.jsonutil import plain

router = APIRouter()


@router.get("/reconciliation")
async def reconciliation(
    p: Reconciler,
    api: State,
    payer_id: str | None = None,
    since: date | None = None,
    until: date | None = None,
):
    """Deposits announced (BPR/TRN) against cash posted, per payer per payment date.

    ``difference = deposits - posted``; ``held`` and ``unmatched`` say how much of it
    is waiting, ``unexplained`` what is left after that (zero when the books reconcile).
    A deposit pays claims of any site, so only callers of every site may see them (403).
    Money totals per payer and day, no patient: not audited.
    """
    if not p.all_sites:
        raise HTTPException(403, "reconciliation covers every site: it needs an all-site caller")
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
