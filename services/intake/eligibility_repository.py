"""SQL of intake's eligibility checks, held encounters and eligibility work items
(migration 004). Small functions taking a connection; ``$n`` parameters."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import asyncpg

from services.intake.domain.eligibility.flow import Judgement, RetryPolicy
from shared.db import insert_rows

S = "intake"


@dataclass(frozen=True, slots=True)
class NewCheck:
    trace_number: str
    coverage_key: str
    encounter_id: str
    site_id: str
    sequence: str
    payer_id: str
    payer_name: str
    service_date: date
    request: dict  # PHI
    attempt: int
    requested_by: str
    file_name: str
    retry: RetryPolicy


_CHECK_COLUMNS = [
    ("trace_number", "text"),
    ("coverage_key", "text"),
    ("encounter_id", "text"),
    ("site_id", "text"),
    ("sequence", "text"),
    ("payer_id", "text"),
    ("payer_name", "text"),
    ("service_date", "date"),
    ("request", "jsonb"),
    ("attempt", "int"),
    ("retry_seconds", "float8"),
    ("retry_max_seconds", "float8"),
    ("max_attempts", "int"),
    ("requested_by", "text"),
    ("state", "text"),
    ("file_name", "text"),
]


_POLICY = "retry_seconds, retry_max_seconds, max_attempts"


def policy_of(row: asyncpg.Record) -> RetryPolicy:
    """The retry policy a check was sent under."""
    return RetryPolicy(
        timedelta(seconds=row["retry_seconds"]),
        timedelta(seconds=row["retry_max_seconds"]),
        row["max_attempts"],
    )


async def next_numbers(conn: asyncpg.Connection, traces: int) -> tuple[int, list[int]]:
    """An interchange control number and ``traces`` trace serials."""
    icn = await conn.fetchval(f"SELECT nextval('{S}.eligibility_interchange')")
    serials = await conn.fetchval(
        f"SELECT array_agg(nextval('{S}.eligibility_trace')) FROM generate_series(1, $1)", traces
    )
    return icn, list(serials or [])


async def insert_checks(conn: asyncpg.Connection, checks: Sequence[NewCheck]) -> None:
    await insert_rows(
        conn,
        f"{S}.eligibility_check",
        _CHECK_COLUMNS,
        [
            (
                c.trace_number,
                c.coverage_key,
                c.encounter_id,
                c.site_id,
                c.sequence,
                c.payer_id,
                c.payer_name,
                c.service_date,
                json.dumps(c.request),
                c.attempt,
                c.retry.base.total_seconds(),
                c.retry.cap.total_seconds(),
                c.retry.max_attempts,
                c.requested_by,
                "sent",
                c.file_name,
            )
            for c in checks
        ],
    )


async def latest_by_key(conn: asyncpg.Connection, keys: Sequence[str]) -> dict[str, asyncpg.Record]:
    """The newest check of each coverage key."""
    if not keys:
        return {}
    rows = await conn.fetch(
        f"SELECT DISTINCT ON (coverage_key) coverage_key, trace_number, state, summary,"
        f" answered_at, created_at FROM {S}.eligibility_check WHERE coverage_key = ANY($1::text[])"
        " ORDER BY coverage_key, created_at DESC, trace_number DESC",
        list(set(keys)),
    )
    return {r["coverage_key"]: r for r in rows}


async def checks_for_answer(
    conn: asyncpg.Connection, traces: Sequence[str], file_names: Sequence[str] = ()
) -> list[asyncpg.Record]:
    """The checks still waiting for an answer among ``traces``, or sent in one of the 270
    files ``file_names`` (a 271 rejecting a whole inquiry echoes no TRN), locked in trace
    order."""
    return await conn.fetch(
        f"SELECT trace_number, encounter_id, site_id, sequence, payer_id, payer_name, attempt,"
        f" state, file_name, {_POLICY} FROM {S}.eligibility_check"
        " WHERE (trace_number = ANY($1::text[]) OR file_name = ANY($2::text[]))"
        " AND state IN ('sent', 'retry') ORDER BY trace_number FOR UPDATE",
        list(traces),
        list(file_names),
    )


async def record_judgement(
    conn: asyncpg.Connection,
    trace_number: str,
    j: Judgement,
    now: datetime,
    answer_file: str | None,
) -> None:
    await conn.execute(
        f"UPDATE {S}.eligibility_check SET state = $2, outcome = $3, reason_code = $4,"
        " reason = $5, summary = $6::jsonb, retry_at = $9, answer_file = COALESCE($7, answer_file),"
        " answered_at = CASE WHEN $7::text IS NULL THEN answered_at ELSE $8 END"
        " WHERE trace_number = $1",
        trace_number,
        j.state,
        j.outcome,
        j.reason_code,
        j.reason,
        j.summary.model_dump_json() if j.state == "answered" else None,
        answer_file,
        now,
        now + j.retry_in if j.retry_in is not None else None,
    )


async def overdue_sent(
    conn: asyncpg.Connection, older_than: timedelta, limit: int = 500
) -> list[asyncpg.Record]:
    """Checks whose 270 went out longer ago than ``older_than`` with no 271, locked."""
    return await conn.fetch(
        f"SELECT trace_number, encounter_id, site_id, sequence, payer_id, payer_name, attempt,"
        f" state, {_POLICY} FROM {S}.eligibility_check WHERE state = 'sent' AND created_at < now() - $1::interval"
        " ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        older_than,
        limit,
    )


async def due_retries(conn: asyncpg.Connection, limit: int = 500) -> list[asyncpg.Record]:
    """Checks to ask again now, locked."""
    return await conn.fetch(
        f"SELECT trace_number, coverage_key, encounter_id, site_id, sequence, payer_id,"
        f" payer_name, service_date, request, attempt, {_POLICY} FROM {S}.eligibility_check"
        " WHERE state = 'retry' AND retry_at <= now()"
        " ORDER BY retry_at LIMIT $1 FOR UPDATE SKIP LOCKED",
        limit,
    )


async def mark_retried(conn: asyncpg.Connection, traces: Sequence[str]) -> None:
    await conn.execute(
        f"UPDATE {S}.eligibility_check SET state = 'retried' WHERE trace_number = ANY($1::text[])",
        list(traces),
    )


# --------------------------------------------------------------------------- held encounters


async def hold(
    conn: asyncpg.Connection,
    rows: Sequence[tuple],  # (event_id, encounter_id, version, keys json, event json, tp, until)
) -> None:
    await insert_rows(
        conn,
        f"{S}.eligibility_hold",
        [
            ("event_id", "uuid"),
            ("encounter_id", "text"),
            ("document_version", "int"),
            ("coverage_keys", "jsonb"),
            ("event", "jsonb"),
            ("traceparent", "text"),
            ("release_at", "timestamptz"),
        ],
        rows,
    )


async def held_encounters(conn: asyncpg.Connection, encounter_ids: Sequence[str]) -> set[str]:
    rows = await conn.fetch(
        f"SELECT DISTINCT encounter_id FROM {S}.eligibility_hold"
        " WHERE encounter_id = ANY($1::text[])",
        list(set(encounter_ids)),
    )
    return {r["encounter_id"] for r in rows}


async def due_holds(conn: asyncpg.Connection, limit: int = 500) -> list[str]:
    rows = await conn.fetch(
        f"SELECT DISTINCT encounter_id FROM {S}.eligibility_hold WHERE release_at <= now() LIMIT $1",
        limit,
    )
    return [r["encounter_id"] for r in rows]


async def holds_of(conn: asyncpg.Connection, encounter_ids: Sequence[str]) -> list[asyncpg.Record]:
    """The held events of these encounters, oldest version first, locked in that order."""
    return await conn.fetch(
        f"SELECT event_id, encounter_id, coverage_keys, event, traceparent,"
        f" release_at <= now() AS due FROM {S}.eligibility_hold"
        " WHERE encounter_id = ANY($1::text[]) ORDER BY encounter_id, document_version FOR UPDATE",
        sorted(set(encounter_ids)),
    )


async def unhold(conn: asyncpg.Connection, event_ids: Sequence) -> None:
    await conn.execute(
        f"DELETE FROM {S}.eligibility_hold WHERE event_id = ANY($1::uuid[])", list(event_ids)
    )


# --------------------------------------------------------------------------- work items


async def open_work_item(
    conn: asyncpg.Connection,
    *,
    site_id: str,
    encounter_id: str,
    sequence: str,
    payer_id: str,
    kind: str,
    reason_code: str,
    message: str,
    trace_number: str,
) -> None:
    """One open item per encounter, coverage and reason: the same rejection again adds none."""
    await conn.execute(
        f"INSERT INTO {S}.eligibility_work_item (site_id, encounter_id, sequence, payer_id, kind,"
        " reason_code, message, trace_number) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)"
        " ON CONFLICT (encounter_id, sequence, reason_code) WHERE status = 'open' DO NOTHING",
        site_id,
        encounter_id,
        sequence,
        payer_id,
        kind,
        reason_code,
        message,
        trace_number,
    )


async def resolve_work_items(conn: asyncpg.Connection, encounter_id: str, sequence: str) -> None:
    """A coverage the payer has now answered for: its open items are done."""
    await conn.execute(
        f"UPDATE {S}.eligibility_work_item SET status = 'resolved', resolved_at = now()"
        " WHERE encounter_id = $1 AND sequence = $2 AND status = 'open'",
        encounter_id,
        sequence,
    )


async def work_items(
    conn: asyncpg.Connection, sites: list[str] | None, status: str | None, limit: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT id, site_id, encounter_id, sequence, payer_id, kind, reason_code, message,"
        f" status, opened_at, resolved_at FROM {S}.eligibility_work_item"
        " WHERE ($1::text[] IS NULL OR site_id = ANY($1::text[]))"
        " AND ($2::text IS NULL OR status = $2) ORDER BY opened_at, id LIMIT $3",
        sites,
        status,
        limit,
    )


# --------------------------------------------------------------------------- reads for the API


async def latest_document(conn: asyncpg.Connection, encounter_id: str) -> asyncpg.Record | None:
    """The newest stored version of an encounter (PHI)."""
    return await conn.fetchrow(
        f"SELECT site_id, version, document FROM {S}.encounter_document WHERE encounter_id = $1"
        " ORDER BY version DESC LIMIT 1",
        encounter_id,
    )


async def encounter_checks(conn: asyncpg.Connection, encounter_id: str) -> list[asyncpg.Record]:
    """The newest check of each coverage of an encounter (no PHI columns)."""
    return await conn.fetch(
        f"SELECT DISTINCT ON (sequence) trace_number, site_id, sequence, payer_id, payer_name,"
        f" service_date, attempt, requested_by, state, outcome, reason_code, reason, summary,"
        f" created_at, answered_at, retry_at FROM {S}.eligibility_check WHERE encounter_id = $1"
        " ORDER BY sequence, created_at DESC, trace_number DESC",
        encounter_id,
    )
