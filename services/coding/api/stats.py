"""Figures for coders and their leads: coder productivity, auto vs review per site and day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Query

from services.coding import repository as repo
from services.coding.api.deps import QueueWatcher, State, StatsReader
from shared.auth import sites_filter

router = APIRouter(tags=["statistics"])
ALL_CODERS = frozenset({"supervisor", "ops"})  # roles that see every coder of their sites


@router.get("/coders/stats")
async def coder_stats(p: QueueWatcher, api: State):
    """Per coder of the caller's sites: items completed, mean handling time, suggestions
    changed. A coder sees only its own figures; supervisors and operations every coder's."""
    own = None if p.roles & ALL_CODERS else p.user_id
    async with api.pool.acquire() as conn:
        return await repo.coder_stats(conn, sites_filter(p), own)


@router.get("/stats/routes")
async def route_stats(p: StatsReader, api: State, days: int = Query(30, ge=1, le=366)):
    """Encounters the engine finalised (auto) and sent to coders (review), per site of the
    caller's: totals over the last ``days`` and per day (UTC)."""
    since = datetime.now(UTC) - timedelta(days=days)
    async with api.pool.acquire() as conn:
        rows = await repo.route_counts(conn, sites_filter(p), since)
    out: dict[str, dict] = {}
    for r in rows:
        site = out.setdefault(r["site_id"], {"auto": 0, "review": 0, "days": {}})
        site["auto"] += r["auto"]
        site["review"] += r["review"]
        site["days"][r["day"].isoformat()] = {"auto": r["auto"], "review": r["review"]}
    return out
