"""SQL of intake's scheduled visits (migration 005) and the eligibility reads they need.
Small functions taking a connection; ``$n`` parameters."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime

import asyncpg

S = "intake"


async def current(conn: asyncpg.Connection, appointment_id: str) -> asyncpg.Record | None:
    """The stored appointment, locked for its update."""
    return await conn.fetchrow(
        f"SELECT appointment_id, site_id, status, service_date, coverage_keys"
        f" FROM {S}.appointment WHERE appointment_id = $1 FOR UPDATE",
        appointment_id,
    )


async def store(
    conn: asyncpg.Connection,
    *,
    appointment_id: str,
    site_id: str,
    status: str,
    service_date: date,
    coverage_keys: dict[str, str],
    visit_json: str,
    checked_in: bool,
    now: datetime,
) -> None:
    """Insert or update an appointment; another date or other coverages put it back in the
    batch's sight (its earlier look was about another visit)."""
    await conn.execute(
        f"INSERT INTO {S}.appointment AS a (appointment_id, site_id, status, service_date,"
        " coverage_keys, visit, received_at, updated_at, checked_in_at)"
        " VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7::timestamptz, $7,"
        " CASE WHEN $8::bool THEN $7::timestamptz END)"
        " ON CONFLICT (appointment_id) DO UPDATE SET status = EXCLUDED.status,"
        " service_date = EXCLUDED.service_date, coverage_keys = EXCLUDED.coverage_keys,"
        " visit = EXCLUDED.visit, updated_at = EXCLUDED.updated_at,"
        " checked_in_at = COALESCE(EXCLUDED.checked_in_at, a.checked_in_at),"
        " batch_checked_at = CASE WHEN a.service_date = EXCLUDED.service_date"
        " AND a.coverage_keys = EXCLUDED.coverage_keys THEN a.batch_checked_at END",
        appointment_id,
        site_id,
        status,
        service_date,
        json.dumps(coverage_keys),
        visit_json,
        now,
        checked_in,
    )


async def batch_due(
    conn: asyncpg.Connection,
    statuses: Sequence[str],
    first: date,
    last: date,
    limit: int = 200,
) -> list[asyncpg.Record]:
    """Appointments still standing whose date is in [first, last] and that the batch has not
    looked at, locked (another instance takes the next ones)."""
    return await conn.fetch(
        f"SELECT appointment_id, site_id, status, service_date, visit FROM {S}.appointment"
        " WHERE batch_checked_at IS NULL AND service_date BETWEEN $2 AND $3"
        " AND status = ANY($1::text[]) ORDER BY service_date, appointment_id LIMIT $4"
        " FOR UPDATE SKIP LOCKED",
        list(statuses),
        first,
        last,
        limit,
    )


async def mark_batched(conn: asyncpg.Connection, ids: Sequence[str], now: datetime) -> None:
    await conn.execute(
        f"UPDATE {S}.appointment SET batch_checked_at = $2 WHERE appointment_id = ANY($1::text[])",
        list(ids),
        now,
    )


async def latest_checks(conn: asyncpg.Connection, keys: Sequence[str]) -> list[asyncpg.Record]:
    """The newest check of each coverage key, whoever asked (no PHI columns)."""
    return await conn.fetch(
        f"SELECT DISTINCT ON (coverage_key) coverage_key, trace_number, site_id, sequence,"
        f" payer_id, payer_name, service_date, attempt, requested_by, state, outcome, reason_code,"
        f" reason, summary, created_at, answered_at, retry_at FROM {S}.eligibility_check"
        " WHERE coverage_key = ANY($1::text[])"
        " ORDER BY coverage_key, created_at DESC, trace_number DESC",
        list(set(keys)),
    )


async def appointment(conn: asyncpg.Connection, appointment_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT appointment_id, site_id, status, service_date, coverage_keys, visit,"
        f" batch_checked_at, checked_in_at FROM {S}.appointment WHERE appointment_id = $1",
        appointment_id,
    )


async def held_waiting_on(conn: asyncpg.Connection, traces: Sequence[str]) -> list[str]:
    """Encounters whose held event waits on the coverages these checks asked about (a check
    sent for an appointment answers the encounter documented while it was on its way)."""
    if not traces:
        return []
    rows = await conn.fetch(
        f"SELECT DISTINCT h.encounter_id FROM {S}.eligibility_hold h"
        " CROSS JOIN LATERAL jsonb_each_text(h.coverage_keys) k"
        f" JOIN {S}.eligibility_check c ON c.coverage_key = k.value"
        " WHERE c.trace_number = ANY($1::text[])",
        list(traces),
    )
    return [r["encounter_id"] for r in rows]
