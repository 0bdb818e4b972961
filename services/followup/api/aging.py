"""A/R aging of the caller's sites."""

from __future__ import annotations

from datetime import date
from typing import Literal

from fastapi import APIRouter, HTTPException, Request

from services.followup import repository as repo
from services.followup.aging_view import aging_table, table_json
from services.followup.api.deps import AgingReader, State
from shared import audit, clock
from shared.auth import sites_filter

router = APIRouter()


@router.get("/ar/aging")
async def aging(
    request: Request,
    p: AgingReader,
    api: State,
    basis: Literal["service", "submission"] = "service",
    by: Literal["payer", "site", "patient"] = "payer",
    as_of: date | None = None,
):
    """A/R aging of the caller's sites from followup's ledger-mirroring balances.

    Audited: by patient, one record per account shown; otherwise one for the table. Operations
    see it by payer or site, not by patient account (403).
    """
    if by == "patient" and p.roles <= {"ops"}:
        raise HTTPException(403, "aging by patient account is not open to operations")
    as_of = as_of or clock.today()
    async with api.pool.acquire() as conn, conn.transaction():
        t = await aging_table(conn, as_of, basis, by, sites_filter(p))
        ids = [f"by={by}", f"basis={basis}", f"as_of={as_of.isoformat()}"]
        events = (
            [audit.AuditEvent("read", "aging", ids, account_key=a) for a in sorted(t.rows)]
            if by == "patient"
            else [audit.AuditEvent("read", "aging", ids)]
        )
        await audit.append(conn, repo.SCHEMA, audit.Actor.of(request, p), events)
    return table_json(t)
