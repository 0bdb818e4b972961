"""HTTP API of the payments service: balances, remittance queues, reconciliation (read-only)."""

from __future__ import annotations

from datetime import date

from fastapi import FastAPI, HTTPException, Query

from services.payments import repository as repo
from shared.http import TELEMETRY, add_health
from shared.jsonutil import plain
from shared.service import Runtime


def create_app(rt: Runtime) -> FastAPI:
    app = FastAPI(title="rcm payments", version="1", telemetry=TELEMETRY)
    pool = rt.pool
    rules = getattr(rt.settings, "payments", None)
    page_limit = rules.page_limit if rules is not None else 5000

    add_health(app, pool)

    @app.get("/claims/{claim_id}/balance")
    async def balance(claim_id: str):
        """One claim's ledger balances; 404 when payments has not seen the claim."""
        async with pool.acquire() as conn:
            rows = await repo.claim_balances(conn, [claim_id])
        if not rows:
            raise HTTPException(404, f"claim {claim_id} not known to payments")
        return _balance(rows[0])

    @app.get("/balances")
    async def balances(
        site_id: str | None = None,
        payer_id: str | None = None,
        open_only: bool = False,
        after: str | None = None,
        limit: int = Query(1000, gt=0),
    ):
        """Ledger-derived balances per claim (for A/R), by claim id; page on with ``after=<last claim_id>``."""
        async with pool.acquire() as conn:
            rows = await repo.balances(
                conn,
                site_id=site_id,
                payer_id=payer_id,
                open_only=open_only,
                after=after,
                limit=min(limit, page_limit),
            )
        return [_balance(r) for r in rows]

    @app.get("/remittances/unmatched")
    async def unmatched(limit: int = Query(1000, gt=0)):
        """Claim payments waiting for a claim they can be matched to, oldest first."""
        async with pool.acquire() as conn:
            rows = await repo.queue(conn, "unmatched", min(limit, page_limit))
        return [plain(r) for r in rows]

    @app.get("/remittances/held")
    async def held(limit: int = Query(1000, gt=0)):
        """Claim payments held because they (or their transaction) do not balance, with the reason."""
        async with pool.acquire() as conn:
            rows = await repo.queue(conn, "held", min(limit, page_limit))
        return [plain(r) for r in rows]

    @app.get("/reconciliation")
    async def reconciliation(
        payer_id: str | None = None, since: date | None = None, until: date | None = None
    ):
        """Deposits announced (BPR/TRN) against cash posted, per payer per payment date.

        ``difference = deposits - posted``; ``held`` and ``unmatched`` say how much of it
        is waiting, ``unexplained`` what is left after that (zero when the books reconcile).
        """
        async with pool.acquire() as conn:
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

    return app


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
