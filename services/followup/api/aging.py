"""A/R aging of the caller's sites."""

from __future__ import annotations

from datetime import date
from typing import Literal

from fastapi import APIRouter

from services.followup.aging_view import aging_table, table_json
from services.followup.api.deps import Reader, State, sites_of, today

router = APIRouter()


@router.get("/ar/aging")
async def aging(
    p: Reader,
    api: State,
    basis: Literal["service", "submission"] = "service",
    by: Literal["payer", "site", "patient"] = "payer",
    as_of: date | None = None,
):
    """A/R aging of the caller's sites from followup's ledger-mirroring balances."""
    async with api.pool.acquire() as conn:
        t = await aging_table(conn, as_of or today(), basis, by, sites_of(p))
    return table_json(t)
