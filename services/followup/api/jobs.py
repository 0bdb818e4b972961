"""The periodic jobs, run on demand (for ops and tests): no-response pass, patient statements."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter

from services.followup.api.deps import Ops, State, today
from services.followup.noresponse_job import no_response_pass
from services.followup.statements_run import run_statements

router = APIRouter()


@router.post("/jobs/no-response")
async def no_response(p: Ops, api: State, as_of: date | None = None):
    """Run the no-response pass now (the service also runs it on its interval)."""
    return await no_response_pass(api.pool, api.settings, api.context, as_of or today())


@router.post("/statements/run")
async def statements(p: Ops, api: State, as_of: date | None = None):
    s = api.settings
    return await run_statements(
        api.pool,
        as_of or today(),
        statements_dir=s.statements_path,
        threshold=s.followup.statement_threshold,
        on_commit=api.notify,
    )
