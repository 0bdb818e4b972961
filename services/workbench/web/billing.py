"""The biller's screens: work lists by category, a work item with its actions, a claim's timeline."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from services.workbench.coalesce import scope
from services.workbench.domain import actions, billing_data, timeline
from services.workbench.domain.figures import money
from services.workbench.sessions import Session
from services.workbench.upstream import UpstreamError
from services.workbench.web.render import is_htmx, page
from services.workbench.web.security import Ctx, area_guard

router = APIRouter(prefix="/billing")
Biller = area_guard("billing")
SORTS = ("priority", "age", "amount", "deadline")


@router.get("")
async def worklists(
    request: Request,
    ctx: Ctx,
    s: Session = Biller,
    category: str = Query("", max_length=64),
    site: str = Query("", max_length=32),
    payer: str = Query("", max_length=32),
    # text: the filter form sends an empty field as ""; anything but a day count is ignored
    min_age_days: str = Query("", max_length=8),
    min_amount: str = Query("", max_length=16),
    sort: str = Query("priority", max_length=16),
):
    depth = await ctx.shared.get(
        scope(s, "followup-depth"),
        lambda: ctx.upstream.get("followup", "/work/depth", s.access_token),
    )
    categories = sorted({c for per_site in depth.values() for c in per_site})
    filters = {
        "category": category,
        "site": site,
        "payer": payer,
        "min_age_days": min(int(min_age_days), 3650)
        if min_age_days.isascii() and min_age_days.isdigit()
        else None,
        "min_amount": min_amount if min_amount and money(min_amount) > 0 else "",
        "sort": sort if sort in SORTS else "priority",
    }
    items: list = []
    listing = True
    try:
        items = await ctx.upstream.get(
            "followup", "/work", s.access_token, params={**filters, "limit": 200}
        )
    except UpstreamError as e:
        if not e.missing_endpoint:
            raise
        listing = False
    return page(
        request,
        "billing_lists.html",
        {
            "depth": sorted(depth.items()),
            "categories": categories,
            "sites": sorted(depth),
            "filters": filters,
            "sorts": SORTS,
            "items": items,
            "listing": listing,
        },
        user=s,
    )


@router.post("/next")
async def take_next(request: Request, ctx: Ctx, s: Session = Biller):
    form = await request.form()
    params = {"category": form.get("category") or None, "site": form.get("site") or None}
    reply = await ctx.upstream.post("followup", "/work/next", s.access_token, params=params)
    if reply.status == 204:
        message = "Nothing to work in that list right now."
        if is_htmx(request):
            return page(request, "partials/flash.html", {"messages": [message]}, user=s)
        return RedirectResponse("/billing", 303)
    url = f"/billing/items/{int(reply.body['work_item_id'])}"
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, 303)


def _leased_to(item: dict, user_id: str) -> bool:
    expires = item.get("lease_expires_at") or ""
    return (
        item.get("status") == "leased"
        and item.get("leased_by") == user_id
        and expires > datetime.now(UTC).isoformat()
    )


@router.get("/items/{work_item_id}")
async def item_page(request: Request, work_item_id: int, ctx: Ctx, s: Session = Biller):
    item = await ctx.upstream.get("followup", f"/work/{work_item_id}", s.access_token)
    missing = item.get("missing_fields") or []
    return page(
        request,
        "billing_item.html",
        {
            "item": item,
            "claim": item.get("claim") or {},
            "actions": actions.LABELS,
            "mine": _leased_to(item, s.user_id),
            "fill": billing_data.form_for(missing) if missing else None,
        },
        user=s,
    )


@router.post("/items/{work_item_id}/lease")
async def lease(request: Request, work_item_id: int, ctx: Ctx, s: Session = Biller):
    """Take an item picked from a list (followup leases it to the biller), then show it."""
    try:
        await ctx.upstream.post("followup", f"/work/{work_item_id}/lease", s.access_token)
    except UpstreamError as e:
        if e.status != 409:
            raise
        return page(request, "partials/action_result.html", {"problems": [e.message]}, user=s)
    url = f"/billing/items/{work_item_id}"
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, 303)


@router.post("/items/{work_item_id}/billing-data")
async def fill_billing_data(request: Request, work_item_id: int, ctx: Ctx, s: Session = Biller):
    """The missing-information form: billing rebuilds the held claim with the fields and sends
    it when clean (or holds it again naming what is still missing)."""
    raw = await request.form()
    form = {k: v for k, v in raw.items() if isinstance(v, str)}
    item = await ctx.upstream.get("followup", f"/work/{work_item_id}", s.access_token)
    body, problems = billing_data.read(form, item.get("missing_fields") or [])
    claim_id = item["claim_id"]
    if not problems:
        try:
            reply = await ctx.upstream.call(
                "billing", "PATCH", f"/claims/{claim_id}/billing-data", s.access_token, json=body
            )
        except UpstreamError as e:
            if e.status not in (409, 422):
                raise
            problems = [e.message]
    if problems:
        return page(
            request,
            "partials/fill_result.html",
            {"problems": problems},
            user=s,
            status=422 if not is_htmx(request) else 200,
        )
    # Followup resolves the item (ending the biller's lease) when the claim goes out or is
    # held again for what is still missing.
    status = (reply.body or {}).get("status")
    return page(
        request,
        "partials/fill_result.html",
        {"claim_id": claim_id, "status": status, "filled": (reply.body or {}).get("filled") or []},
        user=s,
    )


@router.post("/items/{work_item_id}/actions")
async def act(request: Request, work_item_id: int, ctx: Ctx, s: Session = Biller):
    """An action, after the biller confirmed it (the first post shows what will happen)."""
    raw = await request.form()
    form = {k: v for k, v in raw.items() if isinstance(v, str)}
    item = await ctx.upstream.get("followup", f"/work/{work_item_id}", s.access_token)
    parsed = actions.read(form, item.get("lease_token"))
    if parsed.problems:
        return page(
            request,
            "partials/action_result.html",
            {"problems": parsed.problems},
            user=s,
            status=422 if not is_htmx(request) else 200,
        )
    if form.get("confirmed") != "yes":
        return page(
            request,
            "partials/action_confirm.html",
            {"parsed": parsed, "form": form, "item": item, "work_item_id": work_item_id},
            user=s,
        )
    try:
        reply = await ctx.upstream.post(
            "followup", f"/work/{work_item_id}/actions", s.access_token, json=parsed.request
        )
    except UpstreamError as e:
        if e.status in (409, 422):
            return page(request, "partials/action_result.html", {"problems": [e.message]}, user=s)
        raise
    return page(
        request,
        "partials/action_result.html",
        {
            "done": parsed.label,
            "result": reply.body or {},
            "work_item_id": work_item_id,
            "claim_id": (item.get("claim") or {}).get("claim_id"),
        },
        user=s,
    )


async def _optional(coro):
    """A service's part of the claim page; None when it does not know the claim (404)."""
    try:
        return await coro
    except UpstreamError as e:
        if e.status == 404:
            return None
        raise


@router.get("/claims/{claim_id}")
async def claim_page(request: Request, claim_id: str, ctx: Ctx, s: Session = Biller):
    if not (0 < len(claim_id) <= 64) or not claim_id.replace("-", "").replace("_", "").isalnum():
        return page(
            request,
            "error.html",
            {"title": "Not found", "message": "No such claim."},
            user=s,
            status=404,
        )
    billing_claim, followup_claim, balance, remitted = await asyncio.gather(
        _optional(ctx.upstream.get("billing", f"/claims/{claim_id}", s.access_token)),
        _optional(ctx.upstream.get("followup", f"/claims/{claim_id}", s.access_token)),
        _optional(ctx.upstream.get("payments", f"/claims/{claim_id}/balance", s.access_token)),
        _optional(ctx.upstream.get("payments", f"/claims/{claim_id}/remittances", s.access_token)),
    )
    if billing_claim is None and followup_claim is None:
        return page(
            request,
            "error.html",
            {"title": "Not found", "message": "No service knows this claim."},
            user=s,
            status=404,
        )
    work_ids = [int(w["work_item_id"]) for w in (followup_claim or {}).get("work_items") or []]
    audits = {}
    for wid, got in zip(
        work_ids,
        await asyncio.gather(
            *(
                _optional(ctx.upstream.get("followup", f"/work/{w}", s.access_token))
                for w in work_ids
            )
        ),
        strict=True,
    ):
        audits[wid] = (got or {}).get("audit") or []
    return page(
        request,
        "billing_claim.html",
        {
            "claim_id": claim_id,
            "billing": billing_claim or {},
            "followup": followup_claim or {},
            "balance": balance,
            "entries": timeline.build(
                billing_claim, followup_claim, audits, (remitted or {}).get("remittances")
            ),
        },
        user=s,
    )
