"""Ledger-derived balances: one claim's, and a page of claims' (for A/R); every read audited."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, Request

from services.payments import repository as repo
from services.payments.api.deps import BalanceReader, State
from shared import audit
from shared.auth import sites_filter
from shared.jsonutil import plain

router = APIRouter()


@router.get("/claims/{claim_id}/balance")
async def balance(claim_id: str, request: Request, p: BalanceReader, api: State):
    """One claim's ledger balances; 404 when payments has not seen the claim, 403 for another
    site's claim."""
    async with api.pool.acquire() as conn, conn.transaction():
        rows = await repo.claim_balances(conn, [claim_id])
        if not rows:
            raise HTTPException(404, f"claim {claim_id} not known to payments")
        (row,) = rows
        if not p.can_access(row["site_id"]):
            raise HTTPException(403, f"claim {claim_id} belongs to another site")
        await audit.read_events(conn, repo.SCHEMA, audit.Actor.of(request, p), [_read(row)])
    return _balance(row)


@router.get("/balances")
async def balances(
    request: Request,
    p: BalanceReader,
    api: State,
    site_id: str | None = None,
    payer_id: str | None = None,
    open_only: bool = False,
    after: str | None = None,
    limit: int = Query(1000, gt=0),
):
    """Ledger-derived balances per claim (for A/R) of the caller's sites, by claim id; page on
    with ``after=<last claim_id>``. ``site_id`` of another site: 403."""
    if site_id is not None and not p.can_access(site_id):
        raise HTTPException(403, f"site {site_id} is not one of the caller's sites")
    async with api.pool.acquire() as conn, conn.transaction():
        rows = await repo.balances(
            conn,
            site_id=site_id,
            payer_id=payer_id,
            open_only=open_only,
            after=after,
            limit=min(limit, api.page_limit),
            sites=sites_filter(p),
        )
        await audit.read_events(
            conn, repo.SCHEMA, audit.Actor.of(request, p), [_read(r) for r in rows]
        )
    return [_balance(r) for r in rows]


def _read(r) -> audit.AuditEvent:
    """The audit event of one claim's balance read (the encounter is the account payments knows)."""
    return audit.AuditEvent(
        "read", "balance", [r["claim_id"]], account_key=r["encounter_id"], site_id=r["site_id"]
    )


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
