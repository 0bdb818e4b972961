"""The periodic jobs, run on demand (for ops, schedulers and tests): no-response pass, patient
statements. A caller of some sites runs them over those sites only; each run is audited."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, HTTPException, Request

from services.followup import repository as repo
from services.followup.api.deps import JobRunner, State
from services.followup.noresponse_job import no_response_pass
from services.followup.statements_run import run_statements
from shared import audit, clock
from shared.auth import Principal, sites_filter

router = APIRouter()


def _scope(p: Principal) -> list[str]:
    return ["sites=*"] if p.all_sites else [f"sites={','.join(sorted(p.sites))}"]


@router.post("/jobs/no-response")
async def no_response(request: Request, p: JobRunner, api: State, as_of: date | None = None):
    """Run the no-response pass now over the caller's sites (the service also runs it, over every
    site, on its interval)."""
    as_of = as_of or clock.today()
    result = await no_response_pass(api.pool, api.settings, api.context, as_of, sites_filter(p))
    async with api.pool.acquire() as conn:
        await audit.record(
            conn,
            repo.SCHEMA,
            request,
            p,
            "job",
            "no_response_run",
            [f"as_of={as_of.isoformat()}", *_scope(p)],
        )
    return result


@router.post("/statements/run")
async def statements(request: Request, p: JobRunner, api: State, as_of: date | None = None):
    """Patient statements due on ``as_of`` (today when not given; never an earlier day) for the
    caller's sites. Each statement issued is audited with its account."""
    as_of = as_of or clock.today()
    if as_of < clock.today():
        raise HTTPException(422, "as_of: statements cannot be back-dated (before today)")
    s = api.settings
    result = await run_statements(
        api.pool,
        as_of,
        statements_dir=s.statements_path,
        threshold=s.followup.statement_threshold,
        on_commit=api.notify,
        sites=sites_filter(p),
    )
    events = [
        audit.AuditEvent("job", "statement_run", [f"as_of={as_of.isoformat()}", *_scope(p)])
    ] + [
        audit.AuditEvent(
            "create",
            "statement",
            [st["statement_id"]],
            account_key=st["account_key"],
            site_id=st["site_id"],
        )
        for st in result["issued"]
    ]
    async with api.pool.acquire() as conn:
        await audit.append(conn, repo.SCHEMA, audit.Actor.of(request, p), events)
    return result
