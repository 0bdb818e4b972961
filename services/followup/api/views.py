"""How the API shows claims and work items (no PHI: no guarantor, no lines)."""

from __future__ import annotations

import json

import asyncpg

from services.followup import repository as repo
from services.followup.domain.deadlines import days_left
from shared import clock
from shared.jsonutil import plain

_CLAIM_KEYS = (
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


def claim_summary(c) -> dict:
    """The claim without PHI (no guarantor, no lines)."""
    return plain({k: c[k] for k in _CLAIM_KEYS})


async def item_view(conn: asyncpg.Connection, work_item_id: int) -> dict:
    """A work item with its claim, its appeals and its audit trail."""
    item = await repo.get_item(conn, work_item_id)
    c = await repo.get_claim(conn, item["claim_id"])
    d = item["deadline_date"]
    view = plain(item)
    view.pop("source_key", None)
    view["rarc"] = json.loads(item["rarc"]) if isinstance(item["rarc"], str) else item["rarc"]
    view["lease_token"] = str(item["lease_token"]) if item["lease_token"] else None
    view["days_to_deadline"] = days_left(d, clock.today()) if d else None
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
