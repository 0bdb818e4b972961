"""HTTP API of the payments service: balances, unmatched remittances, reconciliation."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException

from services.payments import repository as repo
from shared.service import Runtime


def create_app(rt: Runtime) -> FastAPI:
    app = FastAPI(title="rcm payments", version="1")
    pool = rt.pool

    @app.get("/health")
    async def health():
        async with pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
        return {"status": "ok"}

    @app.get("/claims/{claim_id}/balance")
    async def balance(claim_id: str):
        async with pool.acquire() as conn:
            rows = await repo.claim_balances(conn, [claim_id])
        if not rows:
            raise HTTPException(404, f"claim {claim_id} not known to payments")
        r = rows[0]
        return {"claim_id": claim_id, "payer_balance": str(r["payer_balance"]),
                "patient_balance": str(r["patient_balance"]), "total_charge": str(r["total_charge"])}  # fmt: skip

    @app.get("/remittances/unmatched")
    async def unmatched():
        async with pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT remittance_id, patient_control_number, payer_id, status_code, charge, paid, reason, created_at"
                f" FROM {repo.S}.claim_payment WHERE state = 'unmatched' ORDER BY created_at"
            )
        return [{**dict(r), "charge": str(r["charge"]), "paid": str(r["paid"])} for r in rows]

    @app.get("/reconciliation")
    async def reconciliation():
        """Deposits announced (BPR/TRN) against cash posted, per payer per payment date."""
        async with pool.acquire() as conn:
            rows = await reconciliation_rows(conn)
        return [{k: (str(v) if k in ("deposits", "posted", "difference") else v) for k, v in r.items()} for r in rows]

    return app


async def reconciliation_rows(conn) -> list[dict]:
    rows = await conn.fetch(
        "SELECT ra.payer_key AS payer_id, ra.payment_date, count(*) AS advices,"
        " sum(ra.payment_amount) FILTER (WHERE ra.status = 'posted') AS deposits,"
        " coalesce(sum(cash.amount), 0) AS posted, count(*) FILTER (WHERE ra.status = 'held') AS held"
        f" FROM {repo.S}.remittance_advice ra LEFT JOIN LATERAL (SELECT sum(l.amount) AS amount"
        f"   FROM {repo.S}.journal_entry e JOIN {repo.S}.journal_line l USING (entry_id)"
        "   WHERE e.advice_id = ra.advice_id AND l.account = 'cash_clearing') cash ON true"
        " GROUP BY 1, 2 ORDER BY 1, 2"
    )
    out = []
    for r in rows:
        deposits = r["deposits"] or 0
        out.append({"payer_id": r["payer_id"], "payment_date": r["payment_date"], "advices": r["advices"],
                    "deposits": deposits, "posted": r["posted"], "difference": deposits - r["posted"],
                    "held": r["held"]})  # fmt: skip
    return out
