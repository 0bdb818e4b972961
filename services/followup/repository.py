"""SQL for the followup schema. Small functions taking a connection; ``$n`` parameters."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import NamedTuple

import asyncpg

from shared.db import columns_of, insert_rows, last_per_key
from shared.events import UNASSIGNED_SITE

SCHEMA = "followup"

# --------------------------------------------------------------------------- claim projection


class SubmittedClaimRow(NamedTuple):
    """A claim.submitted as the projection keeps it (``_SUBMITTED_COLUMNS`` order)."""

    claim_id: str
    encounter_id: str
    site_id: str
    payer_id: str
    payer_name: str
    frequency_code: str
    original_claim_id: str | None
    total_charge: Decimal
    service_date: date
    submitted_at: datetime
    interchange_control_number: str
    payer_claim_control_number: str | None
    guarantor: str | None  # JSON (PHI: statements only)
    lines: str  # JSON
    filing_indicator: str
    claim_type: str
    file_name: str
    account_key: str
    payer_balance: Decimal  # the charge it opens (0 for a void)
    filing_deadline: date  # billing's, as claim.submitted carries it


_SUBMITTED_TYPES = {
    "claim_id": "text",
    "encounter_id": "text",
    "site_id": "text",
    "payer_id": "text",
    "payer_name": "text",
    "frequency_code": "text",
    "original_claim_id": "text",
    "total_charge": "numeric",
    "service_date": "date",
    "submitted_at": "timestamptz",
    "interchange_control_number": "text",
    "payer_claim_control_number": "text",
    "guarantor": "jsonb",
    "lines": "jsonb",
    "filing_indicator": "text",
    "claim_type": "text",
    "file_name": "text",
    "account_key": "text",
    "payer_balance": "numeric",
    "filing_deadline": "date",
}
_SUBMITTED_COLUMNS = [(name, _SUBMITTED_TYPES[name]) for name in SubmittedClaimRow._fields]


async def upsert_submitted(conn: asyncpg.Connection, rows: list[SubmittedClaimRow]) -> None:
    """Project submitted claims.

    A remittance may have created the row first: keep its state and amounts. The charge
    opens the payer balance once, on the first submission seen (a void opens none).
    """
    # state is not a column of the rows: a new row starts 'submitted' (its column default is not set).
    await insert_rows(
        conn,
        f"{SCHEMA}.claim AS c",
        [*_SUBMITTED_COLUMNS, ("state", "text")],
        [(*r, "submitted") for r in last_per_key(rows)],
        "ON CONFLICT (claim_id) DO UPDATE SET payer_id = EXCLUDED.payer_id, payer_name = EXCLUDED.payer_name,"
        # a claim held on the unassigned site is submitted under the site intake placed it on
        f" site_id = CASE WHEN c.site_id = '{UNASSIGNED_SITE}' THEN EXCLUDED.site_id ELSE c.site_id END,"
        " frequency_code = EXCLUDED.frequency_code, original_claim_id = EXCLUDED.original_claim_id,"
        " total_charge = EXCLUDED.total_charge, service_date = EXCLUDED.service_date,"
        " submitted_at = EXCLUDED.submitted_at, interchange_control_number = EXCLUDED.interchange_control_number,"
        " guarantor = EXCLUDED.guarantor, lines = EXCLUDED.lines, filing_indicator = EXCLUDED.filing_indicator,"
        " claim_type = EXCLUDED.claim_type, file_name = EXCLUDED.file_name, account_key = EXCLUDED.account_key,"
        " filing_deadline = EXCLUDED.filing_deadline,"
        " payer_balance = c.payer_balance + CASE WHEN c.submitted_at IS NULL THEN EXCLUDED.payer_balance ELSE 0 END,"
        " updated_at = now()",
    )


async def mark_replaced(
    conn: asyncpg.Connection, original_ids: list[str], next_payer: set[str] = frozenset()
) -> None:
    """A replacement or void took the original's open payer balance off the books (as payments does);
    a next payer's original (``next_payer``) keeps it: payments moves it back to the patient and on
    to the replacement (``cob_balances.replace_next_payer_claims``)."""
    if original_ids:
        await conn.execute(
            f"UPDATE {SCHEMA}.claim SET state = 'replaced', payer_balance = CASE"
            " WHEN claim_id = ANY($2::text[]) THEN payer_balance ELSE least(payer_balance, 0) END,"
            " updated_at = now() WHERE claim_id = ANY($1::text[])",
            original_ids,
            sorted(next_payer),
        )


class ClaimStub(NamedTuple):
    claim_id: str
    encounter_id: str
    site_id: str
    state: str


async def ensure_claims(conn: asyncpg.Connection, rows: list[ClaimStub]) -> None:
    """A stub claim for events that outran claim.submitted (an existing claim is left, but
    one on the unassigned site takes the site intake later placed its encounter on)."""
    await insert_rows(
        conn,
        f"{SCHEMA}.claim AS c",
        [("claim_id", "text"), ("encounter_id", "text"), ("site_id", "text"), ("state", "text")],
        last_per_key(rows),  # an upsert must not see one claim twice
        "ON CONFLICT (claim_id) DO UPDATE SET site_id = EXCLUDED.site_id"
        f" WHERE c.site_id = '{UNASSIGNED_SITE}' AND EXCLUDED.site_id <> c.site_id",
    )


async def submitted_ids(conn: asyncpg.Connection, claim_ids: list[str]) -> set[str]:
    """The claims among ``claim_ids`` whose submission followup has seen."""
    rows = await conn.fetch(
        f"SELECT claim_id FROM {SCHEMA}.claim WHERE claim_id = ANY($1::text[]) AND submitted_at IS NOT NULL",
        claim_ids,
    )
    return {r["claim_id"] for r in rows}


async def set_state(
    conn: asyncpg.Connection,
    rows: list[tuple[str, str]],
    *,
    only_from: tuple[str, ...] | None = None,
) -> None:
    """(claim_id, state), one state per call (the handlers' shape); with ``only_from``, only claims now in one of those states."""
    if rows:
        cond = " AND c.state = ANY($3::text[])" if only_from else ""
        await conn.execute(
            f"UPDATE {SCHEMA}.claim c SET state = u.state, updated_at = now()"
            f" FROM unnest($1::text[], $2::text[]) AS u(claim_id, state) WHERE c.claim_id = u.claim_id{cond}",
            *columns_of(last_per_key(rows), 2),
            *([list(only_from)] if only_from else []),
        )


async def set_acknowledged(conn: asyncpg.Connection, claim_ids: list[str]) -> None:
    if claim_ids:
        await conn.execute(
            f"UPDATE {SCHEMA}.claim SET acknowledged_at = coalesce(acknowledged_at, now()), updated_at = now()"
            " WHERE claim_id = ANY($1::text[])",
            claim_ids,
        )


class Outcome(NamedTuple):
    encounter_id: str
    site_id: str
    claim_id: str
    outcome: str  # held | rejected | paid | partially_paid | denied


async def set_outcomes(conn: asyncpg.Connection, rows: list[Outcome]) -> None:
    """The latest outcome of each encounter (the last row of an encounter stands)."""
    await insert_rows(
        conn,
        f"{SCHEMA}.encounter_outcome",
        [("encounter_id", "text"), ("site_id", "text"), ("claim_id", "text"), ("outcome", "text")],
        last_per_key(rows),
        "ON CONFLICT (encounter_id) DO UPDATE SET claim_id = EXCLUDED.claim_id, outcome = EXCLUDED.outcome,"
        " at = now()",
    )


class RemittanceRow(NamedTuple):
    remittance_id: str
    claim_id: str
    status_code: str
    paid: Decimal
    patient_responsibility: Decimal
    adjustments: str  # JSON
    remarks: str  # JSON


async def record_remittances(conn: asyncpg.Connection, rows: list[RemittanceRow]) -> set[str]:
    """Record remittances; return the ids that are new (a redelivered one is skipped)."""
    if not rows:
        return set()
    got = await conn.fetch(
        f"INSERT INTO {SCHEMA}.remittance (remittance_id, claim_id, status_code, paid, patient_responsibility,"
        " adjustments, remarks) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::numeric[],"
        " $5::numeric[], $6::jsonb[], $7::jsonb[]) ON CONFLICT DO NOTHING RETURNING remittance_id",
        *map(list, zip(*rows, strict=True)),
    )
    return {r["remittance_id"] for r in got}


class Amounts(NamedTuple):
    """What one remittance adds to its claim, and the state it leaves the claim in."""

    claim_id: str
    paid: Decimal
    contractual: Decimal
    other: Decimal
    patient_responsibility: Decimal
    state: str
    payer_claim_control_number: str | None
    payer_delta: Decimal
    patient_delta: Decimal


async def apply_amounts(conn: asyncpg.Connection, rows: list[Amounts]) -> None:
    """Add remittances to their claims.

    Several remittances of one claim in a batch add up; the last one's state stands, and
    the last payer claim control number given.
    """
    if not rows:
        return
    totals: dict[str, list] = {}
    for claim_id, paid, contractual, other, pr, state, pccn, payer_delta, patient_delta in rows:
        t = totals.get(claim_id)
        if t is None:
            totals[claim_id] = [
                claim_id,
                paid,
                contractual,
                other,
                pr,
                state,
                pccn,
                payer_delta,
                patient_delta,
            ]
            continue
        for k, v in (
            (1, paid),
            (2, contractual),
            (3, other),
            (4, pr),
            (7, payer_delta),
            (8, patient_delta),
        ):
            t[k] += v
        t[5] = state
        t[6] = pccn if pccn is not None else t[6]
    await conn.execute(
        f"UPDATE {SCHEMA}.claim c SET paid = c.paid + u.paid, contractual = c.contractual + u.contractual,"
        " other_adjustments = c.other_adjustments + u.other, patient_responsibility = c.patient_responsibility + u.pr,"
        " state = u.state, payer_claim_control_number = coalesce(u.pccn, c.payer_claim_control_number),"
        " payer_balance = c.payer_balance + u.payer_delta, patient_balance = c.patient_balance + u.patient_delta,"
        " remitted_at = now(), updated_at = now()"
        " FROM unnest($1::text[], $2::numeric[], $3::numeric[], $4::numeric[], $5::numeric[], $6::text[], $7::text[],"
        " $8::numeric[], $9::numeric[]) AS u(claim_id, paid, contractual, other, pr, state, pccn, payer_delta, patient_delta)"
        " WHERE c.claim_id = u.claim_id",
        *columns_of(list(totals.values()), 9),
    )


async def adjust_balances(
    conn: asyncpg.Connection, claim_id: str, payer_delta: Decimal, patient_delta: Decimal
) -> None:
    await conn.execute(
        f"UPDATE {SCHEMA}.claim SET payer_balance = payer_balance + $2, patient_balance = patient_balance + $3,"
        " updated_at = now() WHERE claim_id = $1",
        claim_id,
        payer_delta,
        patient_delta,
    )


async def claim_sites(conn: asyncpg.Connection, claim_ids: list[str]) -> dict[str, asyncpg.Record]:
    rows = await conn.fetch(
        f"SELECT * FROM {SCHEMA}.claim WHERE claim_id = ANY($1::text[])", claim_ids
    )
    return {r["claim_id"]: r for r in rows}


async def get_claim(conn: asyncpg.Connection, claim_id: str, *, for_update: bool = False):
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(f"SELECT * FROM {SCHEMA}.claim WHERE claim_id = $1{lock}", claim_id)


async def submission_history(conn: asyncpg.Connection, claim_id: str) -> list[asyncpg.Record]:
    """This claim and the originals it replaced, oldest first (for timely-filing evidence)."""
    return await conn.fetch(
        f"WITH RECURSIVE chain AS (SELECT claim_id, original_claim_id, 0 AS depth FROM {SCHEMA}.claim WHERE claim_id = $1"
        f" UNION ALL SELECT c.claim_id, c.original_claim_id, chain.depth + 1 FROM {SCHEMA}.claim c"
        "  JOIN chain ON c.claim_id = chain.original_claim_id WHERE chain.depth < 20)"
        " SELECT c.claim_id, c.submitted_at, c.interchange_control_number, c.file_name, c.state, c.acknowledged_at"
        f" FROM chain JOIN {SCHEMA}.claim c USING (claim_id) WHERE c.submitted_at IS NOT NULL ORDER BY c.submitted_at",
        claim_id,
    )


class PartyRow(NamedTuple):
    """Who an encounter is about (PHI: 276 inquiries and statements only)."""

    encounter_id: str
    site_id: str
    account_key: str
    billing_provider: str  # JSON
    patient: str  # JSON
    subscriber: str | None  # JSON, when not the patient
    member_id: str | None
    relationship: str


async def upsert_parties(conn: asyncpg.Connection, rows: list[PartyRow]) -> None:
    """Keep each encounter's parties (the last row of an encounter stands)."""
    await insert_rows(
        conn,
        f"{SCHEMA}.encounter_party",
        [
            ("encounter_id", "text"),
            ("site_id", "text"),
            ("account_key", "text"),
            ("billing_provider", "jsonb"),
            ("patient", "jsonb"),
            ("subscriber", "jsonb"),
            ("member_id", "text"),
            ("relationship", "text"),
        ],
        last_per_key(rows),
        "ON CONFLICT (encounter_id) DO UPDATE SET account_key = EXCLUDED.account_key,"
        " billing_provider = EXCLUDED.billing_provider, patient = EXCLUDED.patient,"
        " subscriber = EXCLUDED.subscriber, member_id = EXCLUDED.member_id,"
        " relationship = EXCLUDED.relationship",
    )


class StatusRow(NamedTuple):
    """One line of a claim's status history (999/277CA/277 answers, 276 inquiries)."""

    claim_id: str
    source: str  # 999 | 277CA | 277 | 276
    status_category: str | None
    status_code: str | None
    outcome: str
    effective_date: date | None
    payer_claim_control_number: str | None
    file_name: str | None


async def record_status(conn: asyncpg.Connection, rows: list[StatusRow]) -> None:
    """Add lines to claims' status history."""
    await insert_rows(
        conn,
        f"{SCHEMA}.claim_status_history",
        [
            ("claim_id", "text"),
            ("source", "text"),
            ("status_category", "text"),
            ("status_code", "text"),
            ("outcome", "text"),
            ("effective_date", "date"),
            ("payer_claim_control_number", "text"),
            ("file_name", "text"),
        ],
        rows,
    )


async def status_history(conn: asyncpg.Connection, claim_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT source, status_category, status_code, outcome, effective_date, payer_claim_control_number,"
        f" file_name, recorded_at FROM {SCHEMA}.claim_status_history WHERE claim_id = $1 ORDER BY recorded_at, history_id",
        claim_id,
    )


# --------------------------------------------------------------------------- work items


class WorkItemRow(NamedTuple):
    """A biller work item to open, in the column order of ``open_work_items``."""

    source_key: str  # what opened it: an item opens once per source
    claim_id: str
    encounter_id: str
    site_id: str
    payer_id: str | None
    category: str
    action: str
    label: str
    group_code: str | None
    carc: str | None
    rarc: str  # JSON list
    amount: Decimal
    deadline_date: date | None
    priority: int
    escalation: str = "normal"
    recommendation: str | None = None
    evidence: str | None = None


async def open_work_items(conn: asyncpg.Connection, rows: list[WorkItemRow]) -> int:
    """Open work items (one per source key: a source seen before opens nothing); how many opened."""
    if not rows:
        return 0
    got = await conn.fetch(
        f"INSERT INTO {SCHEMA}.work_item (source_key, claim_id, encounter_id, site_id, payer_id, category, action, label,"
        " group_code, carc, rarc, amount, deadline_date, priority, escalation, recommendation, evidence)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],"
        " $8::text[], $9::text[], $10::text[], $11::jsonb[], $12::numeric[], $13::date[], $14::int[], $15::text[],"
        " $16::text[], $17::text[]) ON CONFLICT (source_key) DO NOTHING RETURNING work_item_id",
        *map(list, zip(*rows, strict=True)),
    )
    return len(got)


async def resolve_by_source(
    conn: asyncpg.Connection, source_keys: list[str], resolution: str
) -> int:
    """Resolve the unresolved items opened by ``source_keys`` (the condition that opened them
    went away), a biller's leased one too: its lease ends and the audit names whose it was.
    An item waiting on an answer (an appeal decision) stays for that answer."""
    if not source_keys:
        return 0
    # The CTE locks each row and re-reads its status after a biller's concurrent action commits,
    # so an item the biller resolved meanwhile is skipped, not resolved twice.
    got = await conn.fetch(
        f"WITH prior AS (SELECT work_item_id, status, leased_by FROM {SCHEMA}.work_item"
        "   WHERE source_key = ANY($1::text[]) AND status IN ('open', 'leased') FOR UPDATE)"
        f" UPDATE {SCHEMA}.work_item w SET status = 'resolved', resolution = $2, resolved_at = now(),"
        " resolved_by = 'system', lease_token = NULL, lease_expires_at = NULL, updated_at = now()"
        " FROM prior WHERE w.work_item_id = prior.work_item_id"
        " RETURNING w.work_item_id, prior.status AS prior_status, prior.leased_by",
        source_keys,
        resolution,
    )
    for r in got:
        detail = {"resolution": resolution}
        if r["prior_status"] == "leased":
            detail["lease_ended"] = r["leased_by"]
        await audit(
            conn,
            work_item_id=r["work_item_id"],
            user_id="system",
            action="auto_resolve",
            detail=detail,
        )
    return len(got)


async def queue_depth(
    conn: asyncpg.Connection, sites: list[str] | None
) -> dict[str, dict[str, dict[str, int]]]:
    """{site: {category: {queued, leased, waiting, urgent, overdue}}} of unresolved items."""
    rows = await conn.fetch(
        "SELECT site_id, category,"
        " count(*) FILTER (WHERE status = 'open' OR (status = 'leased' AND lease_expires_at < now())) AS queued,"
        " count(*) FILTER (WHERE status = 'leased' AND lease_expires_at >= now()) AS leased,"
        " count(*) FILTER (WHERE status = 'waiting') AS waiting,"
        " count(*) FILTER (WHERE escalation = 'urgent') AS urgent,"
        " count(*) FILTER (WHERE escalation = 'overdue') AS overdue"
        f" FROM {SCHEMA}.work_item WHERE status <> 'resolved' AND ($1::text[] IS NULL OR site_id = ANY($1))"
        " GROUP BY site_id, category ORDER BY site_id, category",
        sites,
    )
    out: dict[str, dict[str, dict[str, int]]] = {}
    for r in rows:
        out.setdefault(r["site_id"], {})[r["category"]] = {
            k: r[k] for k in ("queued", "leased", "waiting", "urgent", "overdue")
        }
    return out


async def lease_next(
    conn: asyncpg.Connection,
    user_id: str,
    sites: list[str] | None,
    lease_seconds: int,
    category: str | None = None,
    site: str | None = None,
):
    """Lease the highest-priority open (or lease-expired) item of the caller's sites, or None."""
    return await conn.fetchrow(
        f"UPDATE {SCHEMA}.work_item w SET status = 'leased', leased_by = $1, lease_token = $2,"
        " lease_expires_at = now() + make_interval(secs => $3), leased_at = now(), updated_at = now()"
        f" WHERE w.work_item_id = (SELECT work_item_id FROM {SCHEMA}.work_item"
        "   WHERE (status = 'open' OR (status = 'leased' AND lease_expires_at < now()))"
        "     AND ($4::text[] IS NULL OR site_id = ANY($4)) AND ($5::text IS NULL OR category = $5)"
        "     AND ($6::text IS NULL OR site_id = $6)"
        "   ORDER BY priority DESC, created_at, work_item_id LIMIT 1 FOR UPDATE SKIP LOCKED)"
        " RETURNING w.work_item_id",
        user_id,
        uuid.uuid4(),
        float(lease_seconds),
        sites,
        category,
        site,
    )


async def work_items_of(conn: asyncpg.Connection, claim_id: str) -> list[asyncpg.Record]:
    """The claim's work items (id, category, action, status), oldest first."""
    return await conn.fetch(
        f"SELECT work_item_id, category, action, status FROM {SCHEMA}.work_item"
        " WHERE claim_id = $1 ORDER BY work_item_id",
        claim_id,
    )


async def get_item(conn: asyncpg.Connection, work_item_id: int, *, for_update: bool = False):
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(
        f"SELECT * FROM {SCHEMA}.work_item WHERE work_item_id = $1{lock}", work_item_id
    )


async def set_item_status(
    conn: asyncpg.Connection,
    work_item_id: int,
    status: str,
    *,
    user_id: str,
    resolution: str | None = None,
) -> None:
    """Move an item on; leaving 'leased' always drops the lease."""
    await conn.execute(
        f"UPDATE {SCHEMA}.work_item SET status = $2, resolution = coalesce($3, resolution),"
        " resolved_at = CASE WHEN $2 = 'resolved' THEN now() END,"
        " resolved_by = CASE WHEN $2 = 'resolved' THEN $4 END,"
        " lease_token = CASE WHEN $2 = 'leased' THEN lease_token END,"
        " lease_expires_at = CASE WHEN $2 = 'leased' THEN lease_expires_at END, updated_at = now()"
        " WHERE work_item_id = $1",
        work_item_id,
        status,
        resolution,
        user_id,
    )


async def audit(
    conn: asyncpg.Connection,
    *,
    work_item_id: int,
    user_id: str,
    action: str,
    detail: dict | None = None,
) -> None:
    await conn.execute(
        f"INSERT INTO {SCHEMA}.work_audit (work_item_id, user_id, action, detail) VALUES ($1, $2, $3, $4)",
        work_item_id,
        user_id,
        action,
        None if detail is None else dumps(detail),
    )


async def audit_trail(conn: asyncpg.Connection, work_item_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT user_id, action, detail, at FROM {SCHEMA}.work_audit WHERE work_item_id = $1 ORDER BY at, audit_id",
        work_item_id,
    )


async def open_items_with_deadlines(
    conn: asyncpg.Connection, sites: list[str] | None = None
) -> list[asyncpg.Record]:
    """Unresolved items with a deadline (of ``sites``; all when None)."""
    return await conn.fetch(
        f"SELECT work_item_id, amount, deadline_date, priority, escalation FROM {SCHEMA}.work_item"
        " WHERE status <> 'resolved' AND deadline_date IS NOT NULL"
        "   AND ($1::text[] IS NULL OR site_id = ANY($1))",
        sites,
    )


class Reprioritized(NamedTuple):
    work_item_id: int
    priority: int
    escalation: str


async def set_priorities(conn: asyncpg.Connection, rows: list[Reprioritized]) -> None:
    """New priority and escalation of open items."""
    if rows:
        await conn.executemany(
            f"UPDATE {SCHEMA}.work_item SET priority = $2, escalation = $3, updated_at = now() WHERE work_item_id = $1",
            rows,
        )


# --------------------------------------------------------------------------- actions


async def insert_appeal(
    conn: asyncpg.Connection,
    *,
    work_item_id: int,
    claim_id: str,
    site_id: str,
    level: int,
    filed_by: str,
    deadline: date | None,
    note: str | None,
) -> int:
    return await conn.fetchval(
        f"INSERT INTO {SCHEMA}.appeal (work_item_id, claim_id, site_id, level, filed_by, deadline_date, note)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING appeal_id",
        work_item_id,
        claim_id,
        site_id,
        level,
        filed_by,
        deadline,
        note,
    )


async def pending_appeal(conn: asyncpg.Connection, work_item_id: int):
    return await conn.fetchrow(
        f"SELECT * FROM {SCHEMA}.appeal WHERE work_item_id = $1 AND outcome IS NULL ORDER BY appeal_id DESC LIMIT 1 FOR UPDATE",
        work_item_id,
    )


async def record_appeal_outcome(
    conn: asyncpg.Connection, appeal_id: int, outcome: str, amount: Decimal | None, user_id: str
) -> None:
    await conn.execute(
        f"UPDATE {SCHEMA}.appeal SET outcome = $2, amount_recovered = $3, outcome_by = $4, outcome_at = now()"
        " WHERE appeal_id = $1",
        appeal_id,
        outcome,
        amount,
        user_id,
    )


async def appeals_of(conn: asyncpg.Connection, claim_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT * FROM {SCHEMA}.appeal WHERE claim_id = $1 ORDER BY appeal_id", claim_id
    )


async def insert_writeoff(
    conn: asyncpg.Connection,
    *,
    request_id: uuid.UUID,
    work_item_id: int | None,
    claim_id: str,
    amount: Decimal,
    category: str,
    reason: str,
    requested_by: str,
) -> None:
    await conn.execute(
        f"INSERT INTO {SCHEMA}.writeoff_request (request_id, work_item_id, claim_id, amount, category, reason, requested_by)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        request_id,
        work_item_id,
        claim_id,
        amount,
        category,
        reason,
        requested_by,
    )


async def insert_transfer(
    conn: asyncpg.Connection,
    *,
    work_item_id: int | None,
    claim_id: str,
    amount: Decimal,
    reason: str | None,
    requested_by: str,
) -> int:
    return await conn.fetchval(
        f"INSERT INTO {SCHEMA}.patient_transfer (work_item_id, claim_id, amount, reason, requested_by)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING transfer_id",
        work_item_id,
        claim_id,
        amount,
        reason,
        requested_by,
    )


# --------------------------------------------------------------------------- no-response job


async def lock_no_response_run(conn: asyncpg.Connection) -> None:
    """One no-response pass at a time across instances, until the transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('rcm-followup-noresponse'))")


async def unanswered_claims(
    conn: asyncpg.Connection, sites: list[str] | None = None
) -> list[asyncpg.Record]:
    """Submitted claims with no 835 yet (originals and replacements, not voids or replaced ones),
    with parties; of ``sites`` (all when None)."""
    return await conn.fetch(
        "SELECT c.claim_id, c.encounter_id, c.site_id, c.payer_id, c.payer_name, c.filing_indicator, c.service_date,"
        " c.submitted_at, c.acknowledged_at, c.total_charge, c.payer_claim_control_number, c.last_inquiry_date,"
        " c.filing_deadline,"
        " p.billing_provider, p.patient, p.subscriber, p.member_id"
        f" FROM {SCHEMA}.claim c LEFT JOIN {SCHEMA}.encounter_party p USING (encounter_id)"
        " WHERE c.remitted_at IS NULL AND c.submitted_at IS NOT NULL AND c.frequency_code <> '8'"
        "   AND c.state IN ('submitted', 'accepted') AND ($1::text[] IS NULL OR c.site_id = ANY($1))",
        sites,
    )


async def mark_inquired(conn: asyncpg.Connection, claim_ids: list[str], as_of: date) -> None:
    if claim_ids:
        await conn.execute(
            f"UPDATE {SCHEMA}.claim SET last_inquiry_date = $2, updated_at = now() WHERE claim_id = ANY($1::text[])",
            claim_ids,
            as_of,
        )


async def set_status_categories(conn: asyncpg.Connection, rows: list[tuple[str, str]]) -> None:
    """(claim_id, status category): the category of each claim's latest 277 status."""
    await conn.executemany(
        f"UPDATE {SCHEMA}.claim SET last_status_category = $2, updated_at = now() WHERE claim_id = $1",
        rows,
    )


async def next_control_numbers(conn: asyncpg.Connection) -> tuple[int, int]:
    r = await conn.fetchrow(
        f"SELECT nextval('{SCHEMA}.interchange_control_number') AS i, nextval('{SCHEMA}.group_control_number') AS g"
    )
    return r["i"], r["g"]


# --------------------------------------------------------------------------- statements and aging


async def lock_statement_run(conn: asyncpg.Connection) -> None:
    """One statement run at a time across instances, until the transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('rcm-followup-statements'))")


async def patient_balances(
    conn: asyncpg.Connection, sites: list[str] | None = None
) -> list[asyncpg.Record]:
    """Claims with a patient balance (of ``sites``; all when None), grouped later by (site,
    account); PHI columns for the PDF only."""
    return await conn.fetch(
        "SELECT c.claim_id, c.encounter_id, c.site_id, c.service_date, c.total_charge, c.paid, c.payer_balance,"
        " c.patient_balance, c.lines, c.guarantor, c.submitted_at,"
        " coalesce(p.account_key, c.account_key, 'E' || c.encounter_id) AS account_key, p.billing_provider"
        f" FROM {SCHEMA}.claim c LEFT JOIN {SCHEMA}.encounter_party p USING (encounter_id)"
        " WHERE c.patient_balance <> 0 AND ($1::text[] IS NULL OR c.site_id = ANY($1))"
        " ORDER BY c.site_id, c.service_date, c.claim_id",
        sites,
    )


async def last_statements(conn: asyncpg.Connection) -> dict[tuple[str, str], asyncpg.Record]:
    rows = await conn.fetch(
        f"SELECT DISTINCT ON (site_id, account_key) site_id, account_key, cycle, statement_date FROM {SCHEMA}.statement"
        " ORDER BY site_id, account_key, cycle DESC"
    )
    return {(r["site_id"], r["account_key"]): r for r in rows}


async def insert_statement(
    conn: asyncpg.Connection,
    *,
    statement_id: str,
    site_id: str,
    account_key: str,
    encounter_id: str,
    claim_ids: list[str],
    amount_due: Decimal,
    cycle: int,
    statement_date: date,
    due_date: date,
    file_name: str,
) -> bool:
    return (
        await conn.fetchval(
            f"INSERT INTO {SCHEMA}.statement (statement_id, site_id, account_key, encounter_id, claim_ids, amount_due,"
            " cycle, statement_date, due_date, file_name) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            " ON CONFLICT DO NOTHING RETURNING true",
            statement_id,
            site_id,
            account_key,
            encounter_id,
            claim_ids,
            amount_due,
            cycle,
            statement_date,
            due_date,
            file_name,
        )
        is not None
    )


async def open_balances(conn: asyncpg.Connection, sites: list[str] | None) -> list[asyncpg.Record]:
    """Every claim with a non-zero payer or patient balance, for aging."""
    return await conn.fetch(
        "SELECT c.claim_id, c.site_id, coalesce(c.payer_id, '(unknown)') AS payer_id, c.service_date,"
        " c.submitted_at, c.payer_balance, c.patient_balance,"
        " coalesce(p.account_key, c.account_key, 'E' || c.encounter_id) AS account_key"
        f" FROM {SCHEMA}.claim c LEFT JOIN {SCHEMA}.encounter_party p USING (encounter_id)"
        " WHERE (c.payer_balance <> 0 OR c.patient_balance <> 0) AND c.service_date IS NOT NULL"
        "   AND ($1::text[] IS NULL OR c.site_id = ANY($1))",
        sites,
    )


def dumps(v) -> str:
    return json.dumps(v, default=str)
