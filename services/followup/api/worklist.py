"""The biller's work lists: unresolved items of the caller's sites, filtered and sorted
(``GET /work``); denial rate and top denial reasons by payer (``GET /denials/summary``).

Neither shows PHI. A work list names claims, so each page read is audited as one record naming
its filters and the ids it shows; the summary holds counts and codes only.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Literal

import asyncpg
from fastapi import APIRouter, HTTPException, Query, Request

from services.followup import repository as repo
from services.followup.api.deps import Biller, QueueWatcher, State
from services.followup.domain.deadlines import days_left
from shared import audit
from shared.auth import sites_filter
from shared.jsonutil import plain

router = APIRouter()

# The order of each sort, with the item id last so that pages are stable.
SORTS = {
    "priority": "priority DESC, created_at, work_item_id",
    "age": "created_at, work_item_id",
    "amount": "amount DESC, priority DESC, work_item_id",
    "deadline": "deadline_date NULLS LAST, priority DESC, work_item_id",
}
_LIST_COLUMNS = (
    "work_item_id, claim_id, encounter_id, site_id, payer_id, category, action, label, group_code,"
    " carc, rarc, amount, deadline_date, priority, escalation, status, leased_by,"
    " lease_expires_at, created_at, (current_date - created_at::date) AS age_days"
)
MAX_AMOUNT = Decimal("10000000000")
CODE_TEXT = r"^[A-Za-z0-9 /._-]+$"  # categories, sites, payers: no other characters to search for


def _amount(raw: str | None) -> Decimal | None:
    if raw is None or raw == "":
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise HTTPException(422, "min_amount: an amount such as 100.00") from None
    if not value.is_finite() or value < 0 or value >= MAX_AMOUNT:
        raise HTTPException(422, "min_amount: a positive amount below 10,000,000,000")
    return value


async def work_list(
    conn: asyncpg.Connection,
    *,
    sites: list[str] | None,
    category: str | None,
    site: str | None,
    payer: str | None,
    min_age_days: int | None,
    min_amount: Decimal | None,
    sort: str,
    limit: int,
) -> list[asyncpg.Record]:
    """Unresolved items (queued, leased, waiting) matching every filter given."""
    return await conn.fetch(
        f"SELECT {_LIST_COLUMNS} FROM {repo.SCHEMA}.work_item WHERE status <> 'resolved'"
        " AND ($1::text[] IS NULL OR site_id = ANY($1)) AND ($2::text IS NULL OR category = $2)"
        " AND ($3::text IS NULL OR site_id = $3) AND ($4::text IS NULL OR payer_id = $4)"
        " AND ($5::int IS NULL OR created_at::date <= current_date - $5)"
        " AND ($6::numeric IS NULL OR amount >= $6)"
        f" ORDER BY {SORTS[sort]} LIMIT $7",
        sites,
        category,
        site,
        payer,
        min_age_days,
        min_amount,
        limit,
    )


def _list_view(r: asyncpg.Record, today) -> dict:
    view = plain(dict(r))
    view["rarc"] = json.loads(r["rarc"]) if isinstance(r["rarc"], str) else r["rarc"]
    lapsed = r["lease_expires_at"] is None or r["lease_expires_at"] < datetime.now(UTC)
    expired = r["status"] == "leased" and lapsed
    view["status"] = "open" if expired else r["status"]  # a lapsed lease is back in the queue
    d = r["deadline_date"]
    view["days_to_deadline"] = days_left(d, today) if d else None
    return view


@router.get("/work")
async def list_items(
    request: Request,
    p: Biller,
    api: State,
    category: str | None = Query(None, min_length=1, max_length=64, pattern=CODE_TEXT),
    site: str | None = Query(None, min_length=1, max_length=64, pattern=CODE_TEXT),
    payer: str | None = Query(None, min_length=1, max_length=80, pattern=CODE_TEXT),
    min_age_days: int | None = Query(None, ge=0, le=3650),
    min_amount: str | None = Query(None, max_length=16),
    sort: Literal["priority", "age", "amount", "deadline"] = "priority",
    limit: int = Query(200, gt=0, le=500),
):
    """Unresolved work items of the caller's sites (open, leased, waiting), filtered by
    category, site, payer, age in days since the item opened and amount at least; sorted by
    priority (default), age (oldest first), amount (largest first) or deadline (soonest
    first). ``site`` of another site: 403."""
    if site is not None and not p.can_access(site):
        raise HTTPException(403, f"site {site} is not one of yours")
    amount = _amount(min_amount)
    filters = {
        "category": category,
        "site": site,
        "payer": payer,
        "min_age_days": min_age_days,
        "min_amount": amount,
        "sort": sort,
    }
    async with api.pool.acquire() as conn, conn.transaction():
        rows = await work_list(conn, sites=sites_filter(p), limit=limit, **filters)
        today = await conn.fetchval("SELECT current_date")
        # One record for the page: the filters, and every item and claim id it shows.
        ids = [f"{k}={v}" for k, v in filters.items() if v is not None]
        ids += [x for r in rows for x in (str(r["work_item_id"]), r["claim_id"])]
        await audit.read_events(
            conn,
            repo.SCHEMA,
            audit.Actor.of(request, p),
            [audit.AuditEvent("read", "work_list", ids)],
        )
    return [_list_view(r, today) for r in rows]


async def denial_summary(
    conn: asyncpg.Connection, sites: list[str] | None, days: int, top: int
) -> dict[str, dict]:
    """Per payer, of remittances received in the last ``days`` days for the sites: claims
    adjudicated, claims denied (an 835 claim status 4), and the denial reasons (group code and
    CARC of the work items those remittances opened) most often seen."""
    rates = await conn.fetch(
        "SELECT coalesce(c.payer_id, '') AS payer_id, count(DISTINCT r.claim_id) AS claims,"
        " count(DISTINCT r.claim_id) FILTER (WHERE r.status_code = '4') AS denied"
        f" FROM {repo.SCHEMA}.remittance r JOIN {repo.SCHEMA}.claim c USING (claim_id)"
        " WHERE r.received_at >= now() - make_interval(days => $2)"
        " AND ($1::text[] IS NULL OR c.site_id = ANY($1)) GROUP BY 1 ORDER BY 1",
        sites,
        days,
    )
    reasons = await conn.fetch(
        "SELECT payer_id, reason, label, n FROM ("
        " SELECT coalesce(payer_id, '') AS payer_id, concat_ws('-', group_code, carc) AS reason,"
        " min(label) AS label, count(*) AS n,"
        " row_number() OVER (PARTITION BY coalesce(payer_id, '')"
        "   ORDER BY count(*) DESC, concat_ws('-', group_code, carc)) AS rank"
        f" FROM {repo.SCHEMA}.work_item WHERE carc IS NOT NULL"
        " AND created_at >= now() - make_interval(days => $2)"
        " AND ($1::text[] IS NULL OR site_id = ANY($1)) GROUP BY 1, 2) x"
        " WHERE rank <= $3 ORDER BY payer_id, rank",
        sites,
        days,
        top,
    )
    out: dict[str, dict] = {}
    for r in rates:
        claims, denied = r["claims"], r["denied"]
        out[r["payer_id"]] = {
            "claims": claims,
            "denied": denied,
            "denial_rate": round(denied / claims, 4) if claims else None,
            "top_reasons": [],
        }
    for r in reasons:
        entry = out.setdefault(
            r["payer_id"], {"claims": 0, "denied": 0, "denial_rate": None, "top_reasons": []}
        )
        entry["top_reasons"].append({"reason": r["reason"], "label": r["label"], "count": r["n"]})
    return out


@router.get("/denials/summary")
async def denials_summary(
    p: QueueWatcher,
    api: State,
    days: int = Query(90, gt=0, le=3650),
    top: int = Query(5, gt=0, le=20),
):
    """Denial rate and top denial reasons by payer, of the caller's sites, over the last
    ``days`` days: {payer_id: {claims, denied, denial_rate, top_reasons: [{reason, label,
    count}]}}. Counts and codes only (no claim, no patient): not an audited read."""
    async with api.pool.acquire() as conn:
        return await denial_summary(conn, sites_filter(p), days, top)
