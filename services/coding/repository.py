"""SQL for the coding schema. Small functions taking a connection; ``$n`` parameters."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from typing import NamedTuple

import asyncpg

from shared.notify import notify

SCHEMA = "coding"
S = SCHEMA  # the name codesets.py reads
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
    document_version: int = 1  # intake's version of the documentation
    traceparent: str | None = None  # the trace it arrived in, continued by a coder's completion


async def insert_encounters(conn: asyncpg.Connection, rows: list[EncounterRow]) -> set[str]:
    """Insert coded/review encounters; return the ids that were new (known ones are skipped:
    ``known_encounters`` first, to apply a newer version with ``redocument``)."""
    if not rows:
        return set()
    inserted = await conn.fetch(
        f"INSERT INTO {SCHEMA}.encounter (encounter_id, site_id, service_date, status, route, coded_by,"
        " encounter, suggestions, edits, final_coding, coded_at, document_version, traceparent)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::text[], $6::text[],"
        " $7::jsonb[], $8::jsonb[], $9::jsonb[], $10::jsonb[], $11::timestamptz[], $12::int[],"
        " $13::text[])"
        " ON CONFLICT (encounter_id) DO NOTHING RETURNING encounter_id",
        *map(list, zip(*rows, strict=True)),
    )
    return {r["encounter_id"] for r in inserted}


async def known_encounters(conn: asyncpg.Connection, encounter_ids: list[str]) -> dict:
    """The stored state of those of ``encounter_ids`` coding has seen, locked for the batch:
    version, status, work item, and the addenda answered queries added to the note."""
    if not encounter_ids:
        return {}
    rows = await conn.fetch(
        f"SELECT e.encounter_id, e.site_id, e.document_version, e.status,"
        f" (SELECT status FROM {SCHEMA}.work_item w WHERE w.encounter_id = e.encounter_id)"
        "   AS item_status,"
        f" (SELECT coalesce(array_agg(q.addendum ORDER BY q.answered_at), '{{}}')"
        f"   FROM {SCHEMA}.provider_query q"
        "   WHERE q.encounter_id = e.encounter_id AND q.addendum IS NOT NULL) AS addenda,"
        f" (SELECT coalesce(array_agg(DISTINCT q.reason), '{{}}') FROM {SCHEMA}.provider_query q"
        "   WHERE q.encounter_id = e.encounter_id AND q.status <> 'cancelled') AS query_reasons,"
        f" EXISTS (SELECT 1 FROM {SCHEMA}.provider_query q WHERE q.encounter_id = e.encounter_id"
        "   AND q.status IN ('sent', 'escalated')) AS open_query"
        f" FROM {SCHEMA}.encounter e WHERE e.encounter_id = ANY($1::text[])"
        " ORDER BY e.encounter_id FOR UPDATE OF e",
        encounter_ids,
    )
    return {r["encounter_id"]: r for r in rows}


async def redocument(conn: asyncpg.Connection, row: EncounterRow) -> None:
    """Replace a known encounter's document and coding with a newer version's; its work item
    and queries follow the version's site (an encounter leaving the unassigned site)."""
    await conn.execute(
        f"UPDATE {SCHEMA}.encounter SET status = $2, route = $3, coded_by = $4, encounter = $5,"
        " suggestions = $6, edits = $7, final_coding = $8, coded_at = $9, document_version = $10,"
        " traceparent = coalesce($11, traceparent), site_id = $12 WHERE encounter_id = $1",
        row.encounter_id,
        row.status,
        row.route,
        row.coded_by,
        row.encounter,
        row.suggestions,
        row.edits,
        row.final_coding,
        row.coded_at,
        row.document_version,
        row.traceparent,
        row.site_id,
    )
    for table in ("work_item", "provider_query"):
        await conn.execute(
            f"UPDATE {SCHEMA}.{table} SET site_id = $2 WHERE encounter_id = $1 AND site_id <> $2",
            row.encounter_id,
            row.site_id,
        )


async def recode(
    conn: asyncpg.Connection, encounter_id: str, encounter: str, suggestions: str, edits: str
) -> None:
    """The amended document (an addendum) and the engine's new suggestions; still for review."""
    await conn.execute(
        f"UPDATE {SCHEMA}.encounter SET encounter = $2, suggestions = $3, edits = $4"
        " WHERE encounter_id = $1",
        encounter_id,
        encounter,
        suggestions,
        edits,
    )


async def reopen(
    conn: asyncpg.Connection, encounter_id: str, site_id: str, *, waiting: bool
) -> None:
    """Put the encounter's work item (new, completed or leased) back for coders, any lease
    dropped; ``waiting`` while a query to the provider is open (out of the queue)."""
    status = "waiting" if waiting else "queued"
    await conn.execute(
        f"INSERT INTO {SCHEMA}.work_item (encounter_id, site_id, status) VALUES ($1, $2, $3)"
        " ON CONFLICT (encounter_id) DO UPDATE SET status = EXCLUDED.status, leased_by = NULL,"
        " site_id = EXCLUDED.site_id,"
        " lease_token = NULL, lease_expires_at = NULL, leased_at = NULL, completed_at = NULL,"
        " completed_by = NULL",
        encounter_id,
        site_id,
        status,
    )
    if not waiting:
        await notify(conn, WORK_CHANNEL, [site_id])


async def hold(conn: asyncpg.Connection, encounter_id: str) -> None:
    """The encounter's open work item waits for the provider: out of the queue, lease dropped."""
    await conn.execute(
        f"UPDATE {SCHEMA}.work_item SET status = 'waiting', leased_by = NULL, lease_token = NULL,"
        " lease_expires_at = NULL WHERE encounter_id = $1 AND status <> 'completed'",
        encounter_id,
    )


async def release(conn: asyncpg.Connection, encounter_id: str) -> None:
    """A waiting work item goes back to the queue (no query is open any more)."""
    site = await conn.fetchval(
        f"UPDATE {SCHEMA}.work_item SET status = 'queued' WHERE encounter_id = $1"
        " AND status = 'waiting' RETURNING site_id",
        encounter_id,
    )
    if site is not None:
        await notify(conn, WORK_CHANNEL, [site])


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
    """Open items per site: queued (or lease expired), leased, waiting for a provider's answer."""
    rows = await conn.fetch(
        f"SELECT site_id, count(*) FILTER (WHERE status = 'queued' OR (status = 'leased' AND lease_expires_at < now())) AS queued,"
        " count(*) FILTER (WHERE status = 'leased' AND lease_expires_at >= now()) AS leased,"
        " count(*) FILTER (WHERE status = 'waiting') AS waiting"
        f" FROM {SCHEMA}.work_item WHERE status <> 'completed' AND ($1::text[] IS NULL OR site_id = ANY($1))"
        " GROUP BY site_id ORDER BY site_id",
        sites,
    )
    return {
        r["site_id"]: {"queued": r["queued"], "leased": r["leased"], "waiting": r["waiting"]}
        for r in rows
    }


# A work item with what a coder reviews: the encounter (its note also on its own), suggestions,
# edits; the version, trace and patient key (for the audit record) beside them.
_ITEM = (
    "w.*, e.encounter, e.encounter->>'note' AS note, e.suggestions, e.edits,"
    " e.status AS encounter_status, e.document_version, e.traceparent,"
    " e.encounter->'patient'->>'patient_id' AS patient_id"
)


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


async def lock_encounter_of_item(conn: asyncpg.Connection, work_item_id: int) -> None:
    """Lock the item's encounter row before the item's: the order the consumer takes them in
    (a newer document version), so the two never wait on each other."""
    await conn.execute(
        f"SELECT 1 FROM {SCHEMA}.encounter WHERE encounter_id ="
        f" (SELECT encounter_id FROM {SCHEMA}.work_item WHERE work_item_id = $1) FOR UPDATE",
        work_item_id,
    )


async def get_item(conn: asyncpg.Connection, work_item_id: int, *, for_update: bool = False):
    lock = " FOR UPDATE OF w" if for_update else ""
    return await conn.fetchrow(
        f"SELECT {_ITEM} FROM {SCHEMA}.work_item w JOIN {SCHEMA}.encounter e USING (encounter_id)"
        f" WHERE w.work_item_id = $1{lock}",
        work_item_id,
    )


async def renew_lease(conn: asyncpg.Connection, work_item_id: int, lease_seconds: int) -> datetime:
    """The item's lease runs ``lease_seconds`` from now; the new expiry."""
    return await conn.fetchval(
        f"UPDATE {SCHEMA}.work_item SET lease_expires_at = now() + make_interval(secs => $2)"
        " WHERE work_item_id = $1 RETURNING lease_expires_at",
        work_item_id,
        float(lease_seconds),
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


async def coder_stats(
    conn: asyncpg.Connection, sites: list[str] | None, user_id: str | None = None
) -> list[dict]:
    """Items each coder completed on the given sites (one coder's own, with ``user_id``):
    count, mean handling time from lease to completion, how many changed the suggestions."""
    rows = await conn.fetch(
        "SELECT w.completed_by AS user_id, count(*) AS completed,"
        " avg(extract(epoch FROM w.completed_at - w.leased_at)) AS avg_handling_seconds,"
        " count(*) FILTER (WHERE a.before IS DISTINCT FROM a.after) AS changed"
        f" FROM {SCHEMA}.work_item w JOIN {SCHEMA}.coding_audit a ON a.work_item_id = w.work_item_id AND a.action = 'complete'"
        " WHERE w.status = 'completed' AND ($1::text[] IS NULL OR w.site_id = ANY($1))"
        " AND ($2::text IS NULL OR w.completed_by = $2)"
        " GROUP BY w.completed_by ORDER BY w.completed_by",
        sites,
        user_id,
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


async def route_counts(
    conn: asyncpg.Connection, sites: list[str] | None, since: datetime
) -> list[asyncpg.Record]:
    """(site_id, day, auto, review): encounters received per site and day (UTC) by the route
    the engine gave them."""
    return await conn.fetch(
        "SELECT site_id, (received_at AT TIME ZONE 'UTC')::date AS day,"
        " count(*) FILTER (WHERE route = 'auto') AS auto,"
        " count(*) FILTER (WHERE route = 'review') AS review"
        f" FROM {SCHEMA}.encounter WHERE received_at >= $2"
        " AND ($1::text[] IS NULL OR site_id = ANY($1)) GROUP BY 1, 2 ORDER BY 1, 2",
        sites,
        since,
    )


# --------------------------------------------------------------------------- provider queries


class QueryRow(NamedTuple):
    encounter_id: str
    site_id: str
    provider_npi: str | None
    origin: str  # coder | engine
    reason: str
    question: str
    indicators: str  # JSON [{text, start, end}]
    options: str  # JSON [text]
    document_version: int
    created_by: str


_QUERY_COLUMNS = ", ".join(QueryRow._fields)


async def insert_queries(conn: asyncpg.Connection, rows: list[QueryRow]) -> list[asyncpg.Record]:
    """New drafts; the stored queries."""
    if not rows:
        return []
    return await conn.fetch(
        f"INSERT INTO {SCHEMA}.provider_query ({_QUERY_COLUMNS}, status)"
        " SELECT *, 'draft' FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],"
        " $6::text[], $7::jsonb[], $8::jsonb[], $9::int[], $10::text[]) RETURNING *",
        *map(list, zip(*rows, strict=True)),
    )


async def get_query(conn: asyncpg.Connection, query_id: int, *, for_update: bool = False):
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(
        f"SELECT * FROM {SCHEMA}.provider_query WHERE query_id = $1{lock}", query_id
    )


async def lock_encounter(conn: asyncpg.Connection, encounter_id: str):
    """The encounter row, locked (before its work item and queries: the consumer's order)."""
    return await conn.fetchrow(
        f"SELECT encounter_id, site_id, status, document_version, traceparent, encounter,"
        f" encounter->'patient'->>'patient_id' AS patient_id FROM {SCHEMA}.encounter"
        " WHERE encounter_id = $1 FOR UPDATE",
        encounter_id,
    )


async def encounter_of_query(conn: asyncpg.Connection, query_id: int) -> str | None:
    return await conn.fetchval(
        f"SELECT encounter_id FROM {SCHEMA}.provider_query WHERE query_id = $1", query_id
    )


async def patient_ids(conn: asyncpg.Connection, encounter_ids: list[str]) -> dict[str, str | None]:
    """The patient id (MRN) of each encounter, for the account key of an audit record."""
    rows = await conn.fetch(
        f"SELECT encounter_id, encounter->'patient'->>'patient_id' AS patient_id"
        f" FROM {SCHEMA}.encounter WHERE encounter_id = ANY($1::text[])",
        encounter_ids,
    )
    return {r["encounter_id"]: r["patient_id"] for r in rows}


async def item_of_encounter(
    conn: asyncpg.Connection, encounter_id: str, *, for_update: bool = False
):
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(
        f"SELECT * FROM {SCHEMA}.work_item WHERE encounter_id = $1{lock}", encounter_id
    )


async def queries_of(conn: asyncpg.Connection, encounter_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT * FROM {SCHEMA}.provider_query WHERE encounter_id = $1 ORDER BY query_id",
        encounter_id,
    )


async def list_queries(
    conn: asyncpg.Connection,
    sites: list[str] | None,
    status: str | None,
    encounter_id: str | None,
    limit: int,
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT * FROM {SCHEMA}.provider_query WHERE ($1::text[] IS NULL OR site_id = ANY($1))"
        " AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR encounter_id = $3)"
        " ORDER BY query_id LIMIT $4",
        sites,
        status,
        encounter_id,
        limit,
    )


async def set_query_state(
    conn: asyncpg.Connection, query_id: int, status: str, user_id: str, **fields
) -> asyncpg.Record:
    """Move a query to ``status``, stamping who and when for that state, plus ``fields``
    (answer, addendum, cancel_reason)."""
    stamps = {
        "sent": ("sent_by", "sent_at"),
        "answered": ("answered_by", "answered_at"),
        "closed": ("closed_by", "closed_at"),
        "escalated": (None, "escalated_at"),
        "cancelled": ("closed_by", "closed_at"),
    }[status]
    sets, args = ["status = $2"], [query_id, status]
    who, when = stamps
    if who:
        args.append(user_id)
        sets.append(f"{who} = ${len(args)}")
    sets.append(f"{when} = now()")
    for name, value in fields.items():
        if name not in ("answer", "addendum", "cancel_reason"):
            raise ValueError(f"not a query field: {name}")
        args.append(value)
        sets.append(f"{name} = ${len(args)}")
    return await conn.fetchrow(
        f"UPDATE {SCHEMA}.provider_query SET {', '.join(sets)} WHERE query_id = $1 RETURNING *",
        *args,
    )


async def settle_queries(conn: asyncpg.Connection, encounter_id: str, user_id: str) -> None:
    """At completion: answered queries are closed, drafts never sent are cancelled."""
    await conn.execute(
        f"UPDATE {SCHEMA}.provider_query SET status = CASE status WHEN 'answered' THEN 'closed'"
        " ELSE 'cancelled' END, closed_by = $2, closed_at = now(),"
        " cancel_reason = CASE status WHEN 'draft' THEN 'not sent: the encounter was completed'"
        " ELSE cancel_reason END"
        " WHERE encounter_id = $1 AND status IN ('answered', 'draft')",
        encounter_id,
        user_id,
    )


async def open_queries(conn: asyncpg.Connection, encounter_id: str) -> list[asyncpg.Record]:
    """The encounter's queries waiting for the provider (sent or escalated)."""
    return await conn.fetch(
        f"SELECT query_id, status FROM {SCHEMA}.provider_query WHERE encounter_id = $1"
        " AND status IN ('sent', 'escalated') ORDER BY query_id",
        encounter_id,
    )


async def escalate_due(conn: asyncpg.Connection, sent_before: datetime) -> list[asyncpg.Record]:
    """Sent queries still unanswered since before ``sent_before``: escalated now, returned
    with their encounter's trace."""
    return await conn.fetch(
        f"WITH due AS (SELECT query_id FROM {SCHEMA}.provider_query"
        "   WHERE status = 'sent' AND sent_at < $1 ORDER BY query_id LIMIT 500 FOR UPDATE SKIP LOCKED)"
        f" UPDATE {SCHEMA}.provider_query q SET status = 'escalated', escalated_at = now()"
        f" FROM due, {SCHEMA}.encounter e WHERE q.query_id = due.query_id"
        " AND e.encounter_id = q.encounter_id RETURNING q.*, e.traceparent",
        sent_before,
    )


async def query_stats(
    conn: asyncpg.Connection, sites: list[str] | None, since: datetime
) -> list[asyncpg.Record]:
    """Per provider, of the queries sent since ``since``: how many were answered, are open,
    escalated or cancelled, and the turnaround (sent to answered) of the answered ones."""
    return await conn.fetch(
        "SELECT coalesce(provider_npi, '') AS provider_npi, count(*) AS sent,"
        " count(*) FILTER (WHERE answered_at IS NOT NULL) AS answered,"
        " count(*) FILTER (WHERE status IN ('sent', 'escalated')) AS open,"
        " count(*) FILTER (WHERE escalated_at IS NOT NULL) AS escalated,"
        " count(*) FILTER (WHERE status = 'cancelled') AS cancelled,"
        " avg(extract(epoch FROM answered_at - sent_at)) AS avg_seconds,"
        " percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM answered_at - sent_at))"
        "   AS median_seconds"
        f" FROM {SCHEMA}.provider_query WHERE sent_at >= $2"
        " AND ($1::text[] IS NULL OR site_id = ANY($1)) GROUP BY 1 ORDER BY 1",
        sites,
        since,
    )
