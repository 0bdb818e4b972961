"""The supervisor and ops dashboard, and an encounter's trace as a timeline."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from services.workbench.coalesce import scope
from services.workbench.domain import trace
from services.workbench.domain.figures import aging_bars, coder_figures, queue_totals, rate
from services.workbench.sessions import Session
from services.workbench.upstream import UpstreamError
from services.workbench.web.render import page
from services.workbench.web.security import Ctx, area_guard

router = APIRouter()
Dashboard = area_guard("dashboard")
OPS_SERVICES = ("intake", "coding", "billing", "payments", "followup")
ENCOUNTER_ID = re.compile(r"^[A-Za-z0-9._:-]{1,38}$")
MAX_TRACE_BYTES = 64 * 1024 * 1024  # the tail of the span file read for one trace


@dataclass
class Section:
    data: Any = None
    note: str | None = None  # why there is no data, for the person reading


async def _section(coro) -> Section:
    try:
        return Section(await coro)
    except UpstreamError as e:
        if e.status == 401:  # this session's token, refused: sign in again (and share nothing)
            raise
        if e.missing_endpoint:
            return Section(note=f"{e.service} does not offer this yet")
        if e.status == 403:
            return Section(note="not open to your role")
        if e.status in (0, 503) or e.status >= 500:
            return Section(note=f"{e.service} is unavailable")
        return Section(note=e.message)


@router.get("/dashboard")
async def dashboard(request: Request, ctx: Ctx, s: Session = Dashboard):
    up, t = ctx.upstream, s.access_token
    names = ["coding_depth", "followup_depth", "coders", "routes", "denials", "aging"]
    ops_services = [name for name in OPS_SERVICES if up.configured(name)]

    async def sections() -> list[Section]:
        calls = [
            up.get("coding", "/work/depth", t),
            up.get("followup", "/work/depth", t),
            up.get("coding", "/coders/stats", t),
            up.get("coding", "/stats/routes", t),
            up.get("followup", "/denials/summary", t),
            up.get("followup", "/ar/aging", t, params={"by": "payer"}),
        ]
        return await asyncio.gather(*(_section(c) for c in calls))

    async def operations() -> list[Section]:
        calls = [up.get(name, "/ops/status", t) for name in ops_services]
        return await asyncio.gather(*(_section(c) for c in calls))

    # Counts and codes only, the same for every caller of these roles and sites: one set of
    # calls serves a burst of page loads. The services' /ops/status (consumer lag from Kafka,
    # a few hundred ms under load) is refreshed behind the page once it has been read.
    results, status = await asyncio.gather(
        ctx.shared.get(scope(s, "dashboard"), sections),
        ctx.shared.get(scope(s, "dashboard-ops"), operations, behind=True),
    )
    got = dict(zip(names, results, strict=True))
    ops = dict(zip(ops_services, status, strict=True))
    coding_depth, followup_depth = got["coding_depth"], got["followup_depth"]
    routes = got["routes"]
    return page(
        request,
        "dashboard.html",
        {
            "coding_depth": coding_depth,
            "coding_totals": queue_totals(coding_depth.data or {}),
            "followup_depth": followup_depth,
            "followup_totals": queue_totals(followup_depth.data or {}),
            "coders": Section(
                [coder_figures(r) for r in got["coders"].data or []], got["coders"].note
            ),
            "routes": routes,
            "route_rates": {
                site: rate(v.get("auto", 0), int(v.get("auto", 0)) + int(v.get("review", 0)))
                for site, v in (routes.data or {}).items()
                if isinstance(v, dict)
            },
            "denials": got["denials"],
            "aging": got["aging"],
            "aging_bars": aging_bars(got["aging"].data or {}),
            "ops": ops,
        },
        user=s,
    )


@router.get("/traces")
async def trace_lookup(request: Request, ctx: Ctx, s: Session = Dashboard, encounter_id: str = ""):
    if not ENCOUNTER_ID.match(encounter_id):
        return page(
            request,
            "error.html",
            {"title": "Trace", "message": "Enter an encounter id (letters, digits, . _ : -)."},
            user=s,
            status=400,
        )
    return RedirectResponse(f"/traces/{encounter_id}", 303)


@router.get("/traces/{encounter_id}")
async def trace_page(request: Request, encounter_id: str, ctx: Ctx, s: Session = Dashboard):
    if not ENCOUNTER_ID.match(encounter_id):
        return page(
            request,
            "error.html",
            {"title": "Not found", "message": "No such encounter."},
            user=s,
            status=404,
        )
    template = ctx.settings.workbench.trace_url
    if template:
        return RedirectResponse(template.replace("{encounter_id}", encounter_id), 303)
    bars = await ctx.shared.get(
        ("trace", encounter_id),  # the same for everyone the page is open to
        lambda: asyncio.to_thread(_read_trace, ctx.settings.traces_file, encounter_id),
    )
    return page(request, "trace.html", {"encounter_id": encounter_id, "bars": bars}, user=s)


def _read_trace(path, encounter_id: str) -> list[trace.TraceBar]:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - MAX_TRACE_BYTES))
            data = f.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return trace.bars(trace.spans_of(data.splitlines(), encounter_id))
