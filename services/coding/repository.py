"""SQL for the coding schema. Small functions taking a connection; ``$n`` parameters."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from typing import NamedTuple

import asyncpg

from shared.notify import notify

SCHEMA = "coding"
S = SCHEMA  # the name coding's api.py reads (it is being rewritten; then this alias goes)
WORK_CHANNEL = (
    "rcm_coding_work"  # NOTIFY'd when items are queued: wakes coders long-polling /work/next
)




class EncounterRow(NamedTuple):
    """A coded or queued encounter, in the column order of ``insert_encounters``."""

    encounter_id: str
    site_id: str
    service_date: date
    status: str  # coded | review
    route: str  # auto | review
    coded_by: str | None
    encounter: str  # JSON: the documented encounter
    suggestions: str  # JSON: the engine's result
    edits: str  # JSON
    final_coding: str | None  # JSON: the coded result (without the encounter), once coded
    coded_at: datetime | None


async def insert_encounters(conn: asyncpg.Connection, rows: list[EncounterRow]) -> set[str]:
    """Insert coded/review encounters; return the ids that were new (re-sent ones are skipped)."""
    if not rows:
        return set()
    inserted = await conn.fetch(
        f"INSERT INTO {SCHEMA}.encounter (encounter_id, site_id, service_date, status, route, coded_by,"
        " encounter, suggestions, edits, final_coding, coded_at)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::text[], $6::text[],"
        " $7::jsonb[], $8::jsonb[], $9::jsonb[], $10::jsonb[], $11::timestamptz[])"
        " ON CONFLICT (encounter_id) DO NOTHING RETURNING encounter_id",
        *map(list, zip(*rows, strict=True)),
    )
    return {r["encounter_id"] for r in inserted}


async def enqueue(conn: asyncpg.Connection, items: list[tuple[str, str]]) -> None:
    """Queue (encounter_id, site_id) items for coders; waiting coders wake when this commits."""
    if items:
        await conn.executemany(
            f"INSERT INTO {SCHEMA}.work_item (encounter_id, site_id, status) VALUES ($1, $2, 'queued')"
            " ON CONFLICT (encounter_id) DO NOTHING",
            items,
        )
        await notify(conn, WORK_CHANNEL, (site for _, site in items))  # a coder per queued item


async def queue_depth(
    conn: asyncpg.Connection, sites: list[str] | None
) -> dict[str, dict[str, int]]:
    rows = await conn.fetch(
        f"SELECT site_id, count(*) FILTER (WHERE status = 'queued' OR lease_expires_at < now()) AS queued,"
        " count(*) FILTER (WHERE status = 'leased' AND lease_expires_at >= now()) AS leased"
        f" FROM {SCHEMA}.work_item WHERE status <> 'completed' AND ($1::text[] IS NULL OR site_id = ANY($1))"
        " GROUP BY site_id ORDER BY site_id",
        sites,
    )
    return {r["site_id"]: {"queued": r["queued"], "leased": r["leased"]} for r in rows}


# A work item with what a coder reviews: the encounter (its note also on its own), suggestions, edits.
_ITEM = "w.*, e.encounter, e.encounter->>'note' AS note, e.suggestions, e.edits, e.status AS encounter_status"


async def lease_next(
    conn: asyncpg.Connection, user_id: str, sites: list[str] | None, lease_seconds: int
):
    """Lease the oldest queued (or lease-expired) item of the caller's sites; the item, or None."""
    return await conn.fetchrow(
        f"UPDATE {SCHEMA}.work_item w SET status = 'leased', leased_by = $1, lease_token = $2,"
        " lease_expires_at = now() + make_interval(secs => $3), leased_at = now()"
        f" FROM {SCHEMA}.encounter e"
        f" WHERE w.work_item_id = (SELECT work_item_id FROM {SCHEMA}.work_item"
        "   WHERE (status = 'queued' OR (status = 'leased' AND lease_expires_at < now()))"
        "     AND ($4::text[] IS NULL OR site_id = ANY($4))"
        "   ORDER BY created_at, work_item_id LIMIT 1 FOR UPDATE SKIP LOCKED)"
        f" AND e.encounter_id = w.encounter_id RETURNING {_ITEM}",
        user_id,
        uuid.uuid4(),
        float(lease_seconds),
        sites,
    )


async def get_item(conn: asyncpg.Connection, work_item_id: int, *, for_update: bool = False):
    lock = " FOR UPDATE OF w" if for_update else ""
    return await conn.fetchrow(
        f"SELECT {_ITEM} FROM {SCHEMA}.work_item w JOIN {SCHEMA}.encounter e USING (encounter_id)"
        f" WHERE w.work_item_id = $1{lock}",
        work_item_id,
    )


async def complete_item(
    conn: asyncpg.Connection, work_item_id: int, user_id: str, final: dict
) -> None:
    row = await conn.fetchrow(
        f"UPDATE {SCHEMA}.work_item SET status = 'completed', completed_at = now(), completed_by = $2"
        " WHERE work_item_id = $1 RETURNING encounter_id",
        work_item_id,
        user_id,
    )
    await conn.execute(
        f"UPDATE {SCHEMA}.encounter SET status = 'coded', coded_by = $2, final_coding = $3, coded_at = now()"
        " WHERE encounter_id = $1",
        row["encounter_id"],
        user_id,
        json.dumps(final),
    )


async def audit(
    conn,
    *,
    encounter_id: str,
    work_item_id: int | None,
    user_id: str,
    action: str,
    before=None,
    after=None,
    reason: str | None = None,
) -> None:
    await conn.execute(
        f"INSERT INTO {SCHEMA}.coding_audit (encounter_id, work_item_id, user_id, action, before, after, reason)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        encounter_id,
        work_item_id,
        user_id,
        action,
        None if before is None else json.dumps(before),
        None if after is None else json.dumps(after),
        reason,
    )


async def coder_stats(conn: asyncpg.Connection, sites: list[str] | None) -> list[dict]:
    rows = await conn.fetch(
        "SELECT w.completed_by AS user_id, count(*) AS completed,"
        " avg(extract(epoch FROM w.completed_at - w.leased_at)) AS avg_handling_seconds,"
        " count(*) FILTER (WHERE a.before IS DISTINCT FROM a.after) AS changed"
        f" FROM {SCHEMA}.work_item w JOIN {SCHEMA}.coding_audit a ON a.work_item_id = w.work_item_id AND a.action = 'complete'"
        " WHERE w.status = 'completed' AND ($1::text[] IS NULL OR w.site_id = ANY($1))"
        " GROUP BY w.completed_by ORDER BY w.completed_by",
        sites,
    )
    return [
        {
            "user_id": r["user_id"],
            "completed": r["completed"],
            "avg_handling_seconds": round(float(r["avg_handling_seconds"] or 0), 1),
            "changed_suggestions": r["changed"],
        }
        for r in rows
    ]
