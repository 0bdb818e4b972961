"""HTTP API of the followup service: the biller work queue, A/R aging, and the jobs (for ops and tests).

Billers (role ``biller`` or ``supervisor``) see and act on the items of their
sites only (403 otherwise). Jobs take role ``supervisor`` or ``service``.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Literal

import httpx
from fastapi import FastAPI, HTTPException
from fastapi.responses import Response

from services.followup import repository as repo
from services.followup.actions import ActionError, ActionRequest, perform
from services.followup.aging_view import aging_table, table_json
from services.followup.domain.deadlines import days_left
from services.followup.noresponse_job import run_no_response
from services.followup.statements_run import run_statements
from shared.auth import Principal, principal_dependency
from shared.http import TELEMETRY, add_health
from shared.jsonutil import plain
from shared.messaging import Emitter
from shared.service import Runtime

BILLERS = frozenset({"biller", "supervisor"})
OPS = frozenset({"supervisor", "service"})
READERS = frozenset({"biller", "supervisor", "service"})


def create_app(rt: Runtime) -> FastAPI:
    app = FastAPI(title="rcm followup", version="1", telemetry=TELEMETRY)
    pool = rt.pool
    s = rt.settings
    secret = s.auth.token_secret
    biller = principal_dependency(secret, BILLERS)
    ops = principal_dependency(secret, OPS)
    reader = principal_dependency(secret, READERS)

    def sites_of(p: Principal) -> list[str] | None:
        return None if "*" in p.sites else sorted(p.sites)

    def today() -> date:
        return datetime.now(UTC).date()

    async def load_item(conn, work_item_id: int, p: Principal, *, for_update: bool = False):
        item = await repo.get_item(conn, work_item_id, for_update=for_update)
        if item is None:
            raise HTTPException(404, f"work item {work_item_id} not found")
        if not p.can_access(item["site_id"]):
            raise HTTPException(403, f"work item {work_item_id} belongs to another site")
        return item

    add_health(app, pool)

    @app.get("/work/depth")
    async def depth(p: Principal = biller):
        """Open items per site and category: queued, leased, waiting (appeals), urgent, overdue."""
        async with pool.acquire() as conn:
            return await repo.queue_depth(conn, sites_of(p))

    @app.post("/work/next")
    async def lease_next(
        p: Principal = biller, category: str | None = None, site: str | None = None
    ):
        """Lease the highest-priority item of the caller's sites (optionally one category or site); 204 when none."""
        if site is not None and not p.can_access(site):
            raise HTTPException(403, f"site {site} is not one of yours")
        async with pool.acquire() as conn, conn.transaction():
            row = await repo.lease_next(
                conn, p.user_id, sites_of(p), s.auth.lease_seconds, category, site
            )
            if row is None:
                return Response(status_code=204)
            await repo.audit(
                conn, work_item_id=row["work_item_id"], user_id=p.user_id, action="lease"
            )
            return await item_view(conn, row["work_item_id"])

    @app.get("/work/{work_item_id}")
    async def get_item(work_item_id: int, p: Principal = biller):
        async with pool.acquire() as conn:
            await load_item(conn, work_item_id, p)
            return await item_view(conn, work_item_id)

    @app.post("/work/{work_item_id}/actions")
    async def act(work_item_id: int, body: ActionRequest, p: Principal = biller):
        """correct | void | appeal | appeal_outcome | write_off | transfer_to_patient | resolve (see actions.py)."""
        ledger = None
        if body.action == "write_off" and s.followup.payments_url:
            async with pool.acquire() as conn:
                item = await load_item(conn, work_item_id, p)
            ledger = await payments_open_balance(s.followup.payments_url, item["claim_id"])
        emitter = Emitter(repo.S)
        try:
            async with pool.acquire() as conn, conn.transaction():
                item = await load_item(conn, work_item_id, p, for_update=True)
                result = await perform(conn, item, body, p.user_id, emitter, ledger)
                await emitter.flush(conn)
        except ActionError as e:
            raise HTTPException(e.status_code, e.detail) from e
        rt.relay.notify()
        return result

    @app.get("/claims/{claim_id}")
    async def claim(claim_id: str, p: Principal = biller):
        """The claim as followup sees it: balances, status history (276/277/277CA), appeals, work items."""
        async with pool.acquire() as conn:
            c = await repo.get_claim(conn, claim_id)
            if c is None:
                raise HTTPException(404, f"claim {claim_id} not known to followup")
            if not p.can_access(c["site_id"]):
                raise HTTPException(403, f"claim {claim_id} belongs to another site")
            history = await repo.status_history(conn, claim_id)
            appeals = await repo.appeals_of(conn, claim_id)
            items = await conn.fetch(
                f"SELECT work_item_id, category, action, status FROM {repo.S}.work_item"
                " WHERE claim_id = $1 ORDER BY work_item_id",
                claim_id,
            )
        return {
            **claim_summary(c),
            "status_history": [plain(r) for r in history],
            "appeals": [plain(a) for a in appeals],
            "work_items": [dict(r) for r in items],
        }

    @app.get("/ar/aging")
    async def aging(
        p: Principal = reader,
        basis: Literal["service", "submission"] = "service",
        by: Literal["payer", "site", "patient"] = "payer",
        as_of: date | None = None,
    ):
        """A/R aging of the caller's sites from followup's ledger-mirroring balances."""
        async with pool.acquire() as conn:
            t = await aging_table(conn, as_of or today(), basis, by, sites_of(p))
        return table_json(t)

    @app.post("/jobs/no-response")
    async def no_response(p: Principal = ops, as_of: date | None = None):
        """Run the no-response pass now (the service also runs it on its interval)."""
        result = await run_no_response(
            pool,
            as_of or today(),
            outbound_dir=s.outbound_dir,
            policies=rt.context.policies,
            sender_id=s.followup.sender_id,
            receiver_id=s.followup.receiver_id,
        )
        if result["file_name"]:
            rt.context.files_written.set()
        return result

    @app.post("/statements/run")
    async def statements(p: Principal = ops, as_of: date | None = None):
        return await run_statements(
            pool,
            as_of or today(),
            statements_dir=s.statements_path,
            threshold=s.followup.statement_threshold,
            on_commit=rt.relay.notify,
        )

    return app


async def payments_open_balance(base_url: str, claim_id: str) -> Decimal:
    """Payer + patient balance of a claim in payments' ledger (0 when payments does not know the claim)."""
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
            r = await client.get(f"/claims/{claim_id}/balance")
    except httpx.HTTPError as e:
        raise HTTPException(503, f"payments balance unavailable: {type(e).__name__}") from e
    if r.status_code == 404:
        return Decimal("0.00")
    if r.status_code != 200:
        raise HTTPException(503, f"payments balance unavailable: HTTP {r.status_code}")
    data = r.json()
    return Decimal(data["payer_balance"]) + Decimal(data["patient_balance"])


def claim_summary(c) -> dict:
    """The claim without PHI (no guarantor, no lines)."""
    keys = (
        "claim_id",
        "encounter_id",
        "site_id",
        "payer_id",
        "state",
        "frequency_code",
        "original_claim_id",
        "total_charge",
        "paid",
        "payer_balance",
        "patient_balance",
        "service_date",
        "submitted_at",
        "acknowledged_at",
        "remitted_at",
        "payer_claim_control_number",
        "last_inquiry_date",
        "last_status_category",
    )
    return plain({k: c[k] for k in keys})


async def item_view(conn, work_item_id: int) -> dict:
    item = await repo.get_item(conn, work_item_id)
    c = await repo.get_claim(conn, item["claim_id"])
    d = item["deadline_date"]
    view = plain(item)
    view.pop("source_key", None)
    view["rarc"] = json.loads(item["rarc"]) if isinstance(item["rarc"], str) else item["rarc"]
    view["lease_token"] = str(item["lease_token"]) if item["lease_token"] else None
    view["days_to_deadline"] = days_left(d, datetime.now(UTC).date()) if d else None
    view["claim"] = claim_summary(c) if c is not None else None
    view["appeals"] = [
        plain(a)
        for a in await repo.appeals_of(conn, item["claim_id"])
        if a["work_item_id"] == work_item_id
    ]
    view["audit"] = [
        plain(a) | {"detail": json.loads(a["detail"]) if a["detail"] else None}
        for a in await repo.audit_trail(conn, work_item_id)
    ]
    return view
