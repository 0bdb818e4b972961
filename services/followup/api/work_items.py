"""The biller work queue: depth, lease the next item, read one, act on it (reads and changes
of items audited)."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import asyncpg
import httpx
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from services.followup import repository as repo
from services.followup.actions import ActionError, ActionRequest, perform
from services.followup.api.deps import Biller, QueueWatcher, State, account_of
from services.followup.api.views import item_view
from services.followup.domain.missing_info import MISSING_INFORMATION
from shared import audit
from shared.auth import Principal, sites_filter
from shared.messaging import Emitter
from shared.service import ServiceCredentialsError, ServiceIdentity

router = APIRouter(prefix="/work")


@router.get("/depth")
async def depth(p: QueueWatcher, api: State):
    """Open items per site and category: queued, leased, waiting (appeals), urgent, overdue."""
    async with api.pool.acquire() as conn:
        return await repo.queue_depth(conn, sites_filter(p))


@router.post("/next")
async def lease_next(
    request: Request, p: Biller, api: State, category: str | None = None, site: str | None = None
):
    """Lease the highest-priority item of the caller's sites (optionally one category or site); 204 when none."""
    if site is not None and not p.can_access(site):
        raise HTTPException(403, f"site {site} is not one of yours")
    async with api.pool.acquire() as conn, conn.transaction():
        row = await repo.lease_next(
            conn, p.user_id, sites_filter(p), api.settings.auth.lease_seconds, category, site
        )
        if row is None:
            return Response(status_code=204)
        await repo.audit(conn, work_item_id=row["work_item_id"], user_id=p.user_id, action="lease")
        view = await item_view(conn, row["work_item_id"])
        await _audit(conn, request, p, "update", view)
        return view


@router.get("/{work_item_id}")
async def get_item(work_item_id: int, request: Request, p: Biller, api: State):
    """The item with its claim, appeals and trail; 404 for an unknown id, 403 for another site's."""
    async with api.pool.acquire() as conn, conn.transaction():
        await load_item(conn, work_item_id, p)
        view = await item_view(conn, work_item_id)
        await _audit(conn, request, p, "read", view)
        return with_missing_fields(view)


@router.post("/{work_item_id}/lease")
async def lease_item(work_item_id: int, request: Request, p: Biller, api: State):
    """Lease this item to the caller (a biller picking it from a work list rather than taking
    the next): an open item, one whose lease lapsed, or the caller's own (renewed). 409 when
    another biller holds it, or it waits for an appeal decision or is resolved."""
    async with api.pool.acquire() as conn, conn.transaction():
        await load_item(conn, work_item_id, p)
        row = await conn.fetchrow(
            f"UPDATE {repo.SCHEMA}.work_item SET status = 'leased', leased_by = $2,"
            " lease_token = CASE WHEN status = 'leased' AND leased_by = $2"
            "   AND lease_expires_at >= now() THEN lease_token ELSE $3 END,"
            " lease_expires_at = now() + make_interval(secs => $4), leased_at = now(), updated_at = now()"
            " WHERE work_item_id = $1 AND (status = 'open' OR (status = 'leased'"
            "   AND (lease_expires_at < now() OR leased_by = $2)))"
            " RETURNING work_item_id",
            work_item_id,
            p.user_id,
            uuid.uuid4(),
            float(api.settings.auth.lease_seconds),
        )
        if row is None:
            item = await repo.get_item(conn, work_item_id)
            why = {"waiting": "waits for an appeal decision", "resolved": "is resolved"}
            raise HTTPException(
                409,
                f"work item {work_item_id} {why.get(item['status'], 'is leased to another biller')}",
            )
        await repo.audit(conn, work_item_id=work_item_id, user_id=p.user_id, action="lease")
        view = await item_view(conn, work_item_id)
        await _audit(conn, request, p, "update", view)
        return with_missing_fields(view)


def with_missing_fields(view: dict) -> dict:
    """A missing-information item also lists the fields to fill (names, never values)."""
    if view.get("category") == MISSING_INFORMATION and view.get("evidence"):
        view["missing_fields"] = json.loads(view["evidence"]).get("missing_fields", [])
    return view


@router.post("/{work_item_id}/actions")
async def act(work_item_id: int, body: ActionRequest, request: Request, p: Biller, api: State):
    """correct | void | appeal | appeal_outcome | write_off | transfer_to_patient | resolve (see actions.py)."""
    ledger = None
    payments_url = api.settings.followup.payments_url
    if body.action == "write_off" and payments_url:
        async with api.pool.acquire() as conn:
            item = await load_item(conn, work_item_id, p)
        request_id = (request.scope.get("state") or {}).get("request_id")
        ledger = await payments_open_balance(
            payments_url, item["claim_id"], api.identity, request_id
        )
    emitter = Emitter(repo.SCHEMA)
    try:
        async with api.pool.acquire() as conn, conn.transaction():
            item = await load_item(conn, work_item_id, p, for_update=True)
            result = await perform(conn, item, body, p.user_id, emitter, ledger)
            await emitter.flush(conn)
            c = await repo.get_claim(conn, item["claim_id"])
            await audit.record(
                conn,
                repo.SCHEMA,
                request,
                p,
                "update",
                "work_item",
                [str(work_item_id), item["claim_id"], f"action={body.action}"],
                account_key=account_of(c) if c is not None else None,
                site_id=item["site_id"],
            )
    except ActionError as e:
        raise HTTPException(e.status_code, e.detail) from e
    api.notify()
    return result


async def _audit(conn: asyncpg.Connection, request: Request, p: Principal, action: str, view):
    claim = await repo.get_claim(conn, view["claim_id"])
    ids = [str(view["work_item_id"]), view["claim_id"]]
    who = account_of(claim) if claim is not None else None
    if action == "read":  # committed by the appender before the answer leaves
        await audit.read(
            conn,
            repo.SCHEMA,
            request,
            p,
            "work_item",
            ids,
            account_key=who,
            site_id=view["site_id"],
        )
    else:  # the change's record, in its transaction
        await audit.record(
            conn,
            repo.SCHEMA,
            request,
            p,
            action,
            "work_item",
            ids,
            account_key=who,
            site_id=view["site_id"],
        )


async def load_item(
    conn: asyncpg.Connection, work_item_id: int, p: Principal, *, for_update: bool = False
):
    """The work item, if the caller may see it: 404 when there is none, 403 for another site's."""
    item = await repo.get_item(conn, work_item_id, for_update=for_update)
    if item is None:
        raise HTTPException(404, f"work item {work_item_id} not found")
    if not p.can_access(item["site_id"]):
        raise HTTPException(403, f"work item {work_item_id} belongs to another site")
    return item


async def payments_open_balance(
    base_url: str, claim_id: str, identity: ServiceIdentity, request_id: str | None = None
) -> Decimal:
    """Payer + patient balance of a claim in payments' ledger (0 when payments does not know the
    claim), asked as followup's service identity."""
    try:
        headers = await identity.headers(request_id)
    except ServiceCredentialsError as e:
        raise HTTPException(503, f"payments balance unavailable: {e}") from e
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
            r = await client.get(f"/claims/{claim_id}/balance", headers=headers)
    except httpx.HTTPError as e:
        raise HTTPException(503, f"payments balance unavailable: {type(e).__name__}") from e
    if r.status_code == 404:
        return Decimal("0.00")
    if r.status_code != 200:
        raise HTTPException(503, f"payments balance unavailable: HTTP {r.status_code}")
    data = r.json()
    return Decimal(data["payer_balance"]) + Decimal(data["patient_balance"])
