"""Ledger-derived balances: one claim's, and a page of claims' (for A/R)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query

from services.payments import repository as repo
from services.payments.api.deps import State
from shared.jsonutil import plain

router = APIRouter()


@router.get("/claims/{claim_id}/balance")
async def balance(claim_id: str, api: State):
    """One claim's ledger balances; 404 when payments has not seen the claim."""
    async with api.pool.acquire() as conn:
        rows = await repo.claim_balances(conn, [claim_id])
    if not rows:
        raise HTTPException(404, f"claim {claim_id} not known to payments")
    return _balance(rows[0])


@router.get("/balances")
async def balances(
    api: State,
    site_id: str | None = None,
    payer_id: str | None = None,
    open_only: bool = False,
    after: str | None = None,
    limit: int = Query(1000, gt=0),
):
    """Ledger-derived balances per claim (for A/R), by claim id; page on with ``after=<last claim_id>``."""
    async with api.pool.acquire() as conn:
        rows = await repo.balances(
            conn,
            site_id=site_id,
            payer_id=payer_id,
            open_only=open_only,
            after=after,
            limit=min(limit, api.page_limit),
        )
    return [_balance(r) for r in rows]


def _balance(r) -> dict:
    return plain(
        {
            k: r[k]
            for k in (
                "claim_id",
                "site_id",
                "payer_id",
                "service_date",
                "total_charge",
                "billed",
                "paid",
                "contractual",
                "other_adjustments",
                "payer_balance",
                "patient_balance",
            )
        }
    ) | {"open_balance": str(r["payer_balance"] + r["patient_balance"])}
