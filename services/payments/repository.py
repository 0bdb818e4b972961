"""SQL for the payments schema: claims, remittance advices, claim payments, the ledger.

Every function takes the caller's connection (the caller owns the transaction) and
writes many rows per statement (``unnest`` arrays), so posting a file costs a
handful of round trips whatever its size.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import NamedTuple

import asyncpg

from services.payments.domain.ledger import JournalLine
from shared.db import columns_of, insert_rows

SCHEMA = "payments"


class Entry(NamedTuple):
    """One journal entry to post: its lines, and what it is for (``source`` posts once)."""

    kind: str  # charge | transfer | payment | reversal | plb | writeoff | replaced
    source: str
    claim_id: str | None
    payer_id: str | None
    advice_id: int | None
    lines: list[JournalLine]


# --------------------------------------------------------------------------- claims


class ClaimRow(NamedTuple):
    """A submitted claim, in the column order of ``insert_claims``."""

    claim_id: str
    encounter_id: str
    site_id: str
    payer_id: str
    payer_name: str
    frequency_code: str
    original_claim_id: str | None
    payer_claim_control_number: str | None
    total_charge: Decimal
    service_date: date
    submitted_at: datetime
    traceparent: str | None
    lines: str  # JSON: the claim's lines (codes, modifiers, dates) for matching by service line


async def insert_claims(conn: asyncpg.Connection, rows: list[ClaimRow]) -> set[str]:
    """Insert submitted claims; return the ids that were new (a claim id seen before is left)."""
    if not rows:
        return set()
    got = await conn.fetch(
        f"INSERT INTO {SCHEMA}.claim (claim_id, encounter_id, site_id, payer_id, payer_name, frequency_code,"
        " original_claim_id, payer_claim_control_number, total_charge, service_date, submitted_at, traceparent, lines)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],"
        " $8::text[], $9::numeric[], $10::date[], $11::timestamptz[], $12::text[], $13::jsonb[])"
        " ON CONFLICT DO NOTHING RETURNING claim_id",
        *columns_of(rows, 13),
    )
    return {r["claim_id"] for r in got}


async def claim_routing(conn: asyncpg.Connection, ids: list[str]) -> dict[str, asyncpg.Record]:
    """Site, encounter and trace of each claim: what an emitted event needs."""
    rows = await conn.fetch(
        f"SELECT claim_id, site_id, encounter_id, traceparent FROM {SCHEMA}.claim WHERE claim_id = ANY($1::text[])",
        ids,
    )
    return {r["claim_id"]: r for r in rows}


async def lock_matching(conn: asyncpg.Connection) -> None:
    """Serialise matching remittances against registering claims, until the transaction ends.

    Without it a file could find no claim while a claim.submitted batch, not yet
    committed, finds no waiting remittance: the remittance would stay unmatched.
    """
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('rcm-payments-matching'))")


_CANDIDATE = "claim_id, payer_id, total_charge, payer_claim_control_number"


async def candidates_by_number(
    conn: asyncpg.Connection, pcns: list[str], pccns: list[str]
) -> list[asyncpg.Record]:
    """Claims whose id is a CLP01 or whose payer claim control number is a CLP07 (without their lines)."""
    return await conn.fetch(
        f"SELECT {_CANDIDATE}, NULL AS lines FROM {SCHEMA}.claim WHERE claim_id = ANY($1::text[])"
        " OR payer_claim_control_number = ANY($2::text[])",
        pcns,
        pccns,
    )


async def candidates_by_charge(
    conn: asyncpg.Connection, payer_id: str, charges: list[Decimal]
) -> list[asyncpg.Record]:
    """Claims of ``payer_id`` with one of ``charges`` still awaiting their payment (the service-line fallback).

    A claim that already has a posted payment is never a candidate: identical twins (same
    codes, date and charge) are common, and a payment must not land on the one already paid.
    """
    return await conn.fetch(
        f"SELECT {_CANDIDATE}, lines FROM {SCHEMA}.claim c WHERE payer_id = $1 AND total_charge = ANY($2::numeric[])"
        f" AND NOT EXISTS (SELECT 1 FROM {SCHEMA}.claim_payment p WHERE p.claim_id = c.claim_id AND p.state = 'posted')",
        payer_id,
        charges,
    )


# Entries that move a claim's balances on a payer's decision (what followup mirrors from the
# events), as opposed to the patient's own payments and credit.
PAYER_SIDE_KINDS = ["payment", "reversal", "writeoff", "transfer"]


async def next_payer_claims(conn: asyncpg.Connection, claim_ids: list[str]) -> dict[str, Decimal]:
    """Of ``claim_ids`` (original claims just registered), those billed to a next payer: another
    claim of the encounter has a posted claim payment (not a reversal). Each with what the
    encounter's other claims hold as patient responsibility from the payers (the amount
    transferred to the new claim's payer receivable)."""
    rows = await conn.fetch(
        "SELECT c.claim_id, coalesce((SELECT sum(l.amount)"
        f" FROM {SCHEMA}.journal_line l JOIN {SCHEMA}.journal_entry e USING (entry_id)"
        f" JOIN {SCHEMA}.claim o ON o.claim_id = l.claim_id"
        " WHERE o.encounter_id = c.encounter_id AND o.claim_id <> c.claim_id"
        " AND l.account = 'patient_receivable' AND e.kind = ANY($2::text[])), 0) AS prior_patient"
        f" FROM {SCHEMA}.claim c WHERE c.claim_id = ANY($1::text[]) AND c.frequency_code = '1'"
        f" AND EXISTS (SELECT 1 FROM {SCHEMA}.claim o JOIN {SCHEMA}.claim_payment p"
        " ON p.claim_id = o.claim_id AND p.state = 'posted' AND p.status_code <> '22'"
        " WHERE o.encounter_id = c.encounter_id AND o.claim_id <> c.claim_id)",
        claim_ids,
        PAYER_SIDE_KINDS,
    )
    return {r["claim_id"]: r["prior_patient"] for r in rows}


async def transferred_claims(conn: asyncpg.Connection, claim_ids: list[str]) -> set[str]:
    """The claims among ``claim_ids`` whose payer receivable came from a COB transfer."""
    rows = await conn.fetch(
        f"SELECT DISTINCT claim_id FROM {SCHEMA}.journal_entry"
        " WHERE claim_id = ANY($1::text[]) AND kind = 'transfer'",
        claim_ids,
    )
    return {r["claim_id"] for r in rows}


# --------------------------------------------------------------------------- remittances


async def upsert_advice(
    conn: asyncpg.Connection,
    *,
    payer_key: str,
    payer_name: str | None,
    trace_number: str,
    file_name: str,
    st: str,
    amount: Decimal,
    method: str,
    payment_date,
    status: str,
    reason: str | None,
) -> tuple[int, bool] | None:
    """Record one 835 transaction's deposit: ``(advice_id, replaced_held)``.

    None when this check/EFT (payer + TRN02) was already received and not held. A
    held (out-of-balance) transaction is replaced by a later one with the same trace:
    that is how a payer's corrected resend gets posted.
    """
    row = await conn.fetchrow(
        f"INSERT INTO {SCHEMA}.remittance_advice AS ra (payer_key, payer_name, trace_number, file_name, st_control_number,"
        " payment_amount, payment_method, payment_date, status, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        " ON CONFLICT (payer_key, trace_number) DO UPDATE SET payer_name = EXCLUDED.payer_name,"
        " file_name = EXCLUDED.file_name, st_control_number = EXCLUDED.st_control_number,"
        " payment_amount = EXCLUDED.payment_amount, payment_method = EXCLUDED.payment_method,"
        " payment_date = EXCLUDED.payment_date, status = EXCLUDED.status, reason = EXCLUDED.reason,"
        " received_at = now() WHERE ra.status = 'held'"
        " RETURNING advice_id, NOT (xmax = 0) AS replaced",
        payer_key,
        payer_name,
        trace_number,
        file_name,
        st,
        amount,
        method,
        payment_date,
        status,
        reason,
    )
    if row is None:
        return None
    if row["replaced"]:
        # Only held rows hang off a held advice and none of them reached the ledger.
        await conn.execute(
            f"DELETE FROM {SCHEMA}.claim_payment WHERE advice_id = $1", row["advice_id"]
        )
    return row["advice_id"], row["replaced"]


async def record_duplicate_advice(
    conn: asyncpg.Connection,
    *,
    payer_key: str,
    trace_number: str,
    file_name: str,
    st: str,
    amount: Decimal,
) -> None:
    await conn.execute(
        f"INSERT INTO {SCHEMA}.advice_duplicate (payer_key, trace_number, file_name, st_control_number, payment_amount)"
        " VALUES ($1, $2, $3, $4, $5)",
        payer_key,
        trace_number,
        file_name,
        st,
        amount,
    )


class ClaimPaymentRow(NamedTuple):
    """One CLP of an 835 as ``claim_payment`` keeps it (``_CLAIM_PAYMENT_COLUMNS`` order)."""

    remittance_id: str
    advice_id: int
    position: int  # the CLP's position in its transaction, from 1
    claim_id: str | None  # None while unmatched
    patient_control_number: str
    payer_id: str
    status_code: str
    charge: Decimal
    paid: Decimal
    patient_responsibility: Decimal
    payer_claim_control_number: str | None
    state: str  # posted | held | unmatched
    match_method: str | None
    reason: str | None
    detail: str | None  # JSON copy of the claim payment while it waits (held, unmatched)
    posted_at: datetime | None


_CLAIM_PAYMENT_TYPES = {
    "remittance_id": "text",
    "advice_id": "bigint",
    "position": "int",
    "claim_id": "text",
    "patient_control_number": "text",
    "payer_id": "text",
    "status_code": "text",
    "charge": "numeric",
    "paid": "numeric",
    "patient_responsibility": "numeric",
    "payer_claim_control_number": "text",
    "state": "text",
    "match_method": "text",
    "reason": "text",
    "detail": "jsonb",
    "posted_at": "timestamptz",
}
_CLAIM_PAYMENT_COLUMNS = [(name, _CLAIM_PAYMENT_TYPES[name]) for name in ClaimPaymentRow._fields]


_JOURNAL_LINE_COLUMNS = [
    ("entry_id", "bigint"),
    ("account", "text"),
    ("amount", "numeric"),
    ("claim_id", "text"),
    ("payer_id", "text"),
]


async def insert_claim_payments(conn: asyncpg.Connection, rows: list[ClaimPaymentRow]) -> None:
    """Insert claim payments in one statement.

    Remittance ids derive from a new advice (payer + trace + CLP position), so they
    never collide; a collision would be a bug and fails the file.
    """
    if rows:
        await insert_rows(conn, f"{SCHEMA}.claim_payment", _CLAIM_PAYMENT_COLUMNS, rows)


async def unmatched_for(conn: asyncpg.Connection, claim_ids: list[str]) -> list[asyncpg.Record]:
    """Unmatched claim payments naming one of ``claim_ids``, in the order they were received."""
    return await conn.fetch(
        f"SELECT cp.remittance_id, cp.advice_id, cp.patient_control_number, cp.payer_id, cp.detail,"
        " ra.payer_name, ra.trace_number, ra.payment_date, ra.file_name"
        f" FROM {SCHEMA}.claim_payment cp JOIN {SCHEMA}.remittance_advice ra USING (advice_id)"
        " WHERE cp.state = 'unmatched' AND cp.patient_control_number = ANY($1::text[])"
        " ORDER BY cp.created_at, cp.advice_id, cp.position",
        claim_ids,
    )


class Settled(NamedTuple):
    """An unmatched claim payment whose claim turned up: posted, or held with the reason."""

    remittance_id: str
    claim_id: str
    state: str
    reason: str | None


async def settle_unmatched(conn: asyncpg.Connection, rows: list[Settled]) -> None:
    """Record that unmatched claim payments were matched (by CLP01) and posted or held."""
    if rows:
        await conn.execute(
            f"UPDATE {SCHEMA}.claim_payment cp SET claim_id = u.claim_id, match_method = 'patient_control_number',"
            " state = u.state, reason = u.reason, posted_at = CASE WHEN u.state = 'posted' THEN now() END"
            " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(remittance_id, claim_id, state, reason)"
            " WHERE cp.remittance_id = u.remittance_id AND cp.state = 'unmatched'",
            *columns_of(rows, 4),
        )


async def queue(
    conn: asyncpg.Connection, state: str, limit: int, sites: list[str] | None = None
) -> list[asyncpg.Record]:
    """Claim payments waiting in ``state`` (unmatched or held), oldest first, with the site and
    encounter of their claim (matched, or named by the patient control number, CLP01). With
    ``sites``, only those of claims of these sites: a payment naming no known claim belongs to
    no site yet."""
    return await conn.fetch(
        "SELECT cp.remittance_id, cp.patient_control_number, cp.claim_id, cp.payer_id, cp.status_code, cp.charge,"
        " cp.paid, cp.patient_responsibility, cp.reason, cp.created_at, ra.trace_number, ra.payment_date, ra.file_name,"
        " c.site_id, c.encounter_id"
        f" FROM {SCHEMA}.claim_payment cp JOIN {SCHEMA}.remittance_advice ra USING (advice_id)"
        f" LEFT JOIN {SCHEMA}.claim c ON c.claim_id = coalesce(cp.claim_id, cp.patient_control_number)"
        " WHERE cp.state = $1 AND ($3::text[] IS NULL OR c.site_id = ANY($3))"
        " ORDER BY cp.created_at, cp.advice_id, cp.position LIMIT $2",
        state,
        limit,
        sites,
    )


# --------------------------------------------------------------------------- ledger


async def post_entries(conn: asyncpg.Connection, entries: list[Entry]) -> set[str]:
    """Post journal entries; an entry whose source was posted before is skipped.

    Lines of all entries go in one statement, so the balance trigger checks each entry whole.
    Returns the sources that were new.
    """
    # An empty entry says nothing, except a COB transfer: a next payer's claim billed when the
    # prior payers left the patient nothing is still that payer's claim (transferred_claims),
    # whose payment settles its own receivable and whose replacement is never charged.
    entries = [e for e in entries if e.lines or e.kind == "transfer"]
    if not entries:
        return set()
    got = await conn.fetch(
        f"INSERT INTO {SCHEMA}.journal_entry (kind, source, claim_id, payer_id, advice_id)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])"
        " ON CONFLICT (source) DO NOTHING RETURNING entry_id, source",
        *columns_of([e[:5] for e in entries], 5),
    )
    ids = {r["source"]: r["entry_id"] for r in got}
    lines = [(ids[e.source], *ln) for e in entries if e.source in ids for ln in e.lines]
    if lines:
        # One statement: its trigger sees every new line and checks each entry balances.
        await insert_rows(conn, f"{SCHEMA}.journal_line", _JOURNAL_LINE_COLUMNS, lines)
    return set(ids)


async def unreversed_payments(
    conn: asyncpg.Connection, claim_ids: list[str]
) -> dict[str, list[tuple[str, list[JournalLine]]]]:
    """Payment entries of ``claim_ids`` not reversed yet: claim -> [(source, lines)], oldest first."""
    rows = await conn.fetch(
        f"SELECT e.claim_id AS entry_claim, e.source, l.account, l.amount, l.claim_id, l.payer_id"
        f" FROM {SCHEMA}.journal_entry e JOIN {SCHEMA}.journal_line l USING (entry_id)"
        " WHERE e.claim_id = ANY($1::text[]) AND e.kind = 'payment' AND NOT EXISTS (SELECT 1 FROM"
        f" {SCHEMA}.journal_entry r WHERE r.source = 'reversal-of:' || substr(e.source, 7))"
        " ORDER BY e.entry_id, l.line_id",
        claim_ids,
    )
    out: dict[str, list[tuple[str, list[JournalLine]]]] = {}
    for r in rows:
        entries = out.setdefault(r["entry_claim"], [])
        if not entries or entries[-1][0] != r["source"]:
            entries.append((r["source"], []))
        entries[-1][1].append(JournalLine(r["account"], r["amount"], r["claim_id"], r["payer_id"]))
    return out


_BALANCE_COLUMNS = (
    "c.claim_id, c.encounter_id, c.site_id, c.payer_id, c.service_date, c.submitted_at, c.total_charge,"
    " coalesce(b.billed, 0) AS billed, coalesce(b.paid, 0) AS paid,"
    " coalesce(b.contractual, 0) AS contractual, coalesce(b.other_adjustments, 0) AS other_adjustments,"
    " coalesce(b.payer_balance, 0) AS payer_balance, coalesce(b.patient_balance, 0) AS patient_balance"
)
_BALANCE_JOIN = (
    " LEFT JOIN LATERAL (SELECT -sum(l.amount) FILTER (WHERE l.account = 'gross_charges') AS billed,"
    " sum(l.amount) FILTER (WHERE l.account = 'cash_clearing') AS paid,"
    " sum(l.amount) FILTER (WHERE l.account = 'contractual_adjustment') AS contractual,"
    " sum(l.amount) FILTER (WHERE l.account IN ('other_adjustment', 'bad_debt_writeoff', 'provider_adjustment',"
    " 'interest_income')) AS other_adjustments,"
    " sum(l.amount) FILTER (WHERE l.account = 'payer_receivable') AS payer_balance,"
    " sum(l.amount) FILTER (WHERE l.account = 'patient_receivable') AS patient_balance"
    f" FROM {SCHEMA}.journal_line l WHERE l.claim_id = c.claim_id) b ON true"
)


async def claim_balances(conn: asyncpg.Connection, claim_ids: list[str]) -> list[asyncpg.Record]:
    """Ledger-derived balances of the given claims (unknown ids are absent)."""
    return await conn.fetch(
        f"SELECT {_BALANCE_COLUMNS} FROM {SCHEMA}.claim c{_BALANCE_JOIN}"
        " WHERE c.claim_id = ANY($1::text[]) ORDER BY c.claim_id",
        claim_ids,
    )


async def balances(
    conn: asyncpg.Connection,
    *,
    site_id: str | None,
    payer_id: str | None,
    open_only: bool,
    after: str | None,
    limit: int,
    sites: list[str] | None = None,
) -> list[asyncpg.Record]:
    """Ledger-derived balances per claim of a site and/or payer, by claim id (keyset page after
    ``after``); with ``sites``, of those sites only."""
    return await conn.fetch(
        f"SELECT * FROM (SELECT {_BALANCE_COLUMNS} FROM {SCHEMA}.claim c{_BALANCE_JOIN}"
        " WHERE ($1::text IS NULL OR c.site_id = $1) AND ($2::text IS NULL OR c.payer_id = $2)"
        " AND ($4::text IS NULL OR c.claim_id > $4) AND ($6::text[] IS NULL OR c.site_id = ANY($6))) x"
        " WHERE NOT $3 OR x.payer_balance <> 0 OR x.patient_balance <> 0 ORDER BY x.claim_id LIMIT $5",
        site_id,
        payer_id,
        open_only,
        after,
        limit,
        sites,
    )


async def reconciliation(
    conn: asyncpg.Connection, *, payer_id: str | None, since, until
) -> list[asyncpg.Record]:
    """Per payer and payment date: deposits announced (BPR02), cash posted from them, and what waits.

    ``held`` is money of held transactions or held claim payments, ``unmatched`` that of
    claim payments waiting for their claim; ``posted + held + unmatched = deposits`` when
    everything is accounted for.
    """
    return await conn.fetch(
        f"WITH ra AS (SELECT * FROM {SCHEMA}.remittance_advice WHERE ($1::text IS NULL OR payer_key = $1)"
        " AND ($2::date IS NULL OR payment_date >= $2) AND ($3::date IS NULL OR payment_date <= $3)),"
        " cash AS (SELECT e.advice_id, sum(l.amount) AS amount"
        f" FROM {SCHEMA}.journal_entry e JOIN {SCHEMA}.journal_line l USING (entry_id)"
        " WHERE e.advice_id IN (SELECT advice_id FROM ra) AND l.account = 'cash_clearing' GROUP BY 1),"
        " waiting AS (SELECT advice_id, sum(paid) FILTER (WHERE state = 'held') AS held,"
        " sum(paid) FILTER (WHERE state = 'unmatched') AS unmatched"
        f" FROM {SCHEMA}.claim_payment WHERE advice_id IN (SELECT advice_id FROM ra) GROUP BY 1)"
        " SELECT ra.payer_key AS payer_id, ra.payment_date, count(*) AS advices,"
        " count(*) FILTER (WHERE ra.status = 'held') AS held_advices,"
        " sum(ra.payment_amount) AS deposits, coalesce(sum(cash.amount), 0) AS posted,"
        " coalesce(sum(CASE WHEN ra.status = 'held' THEN ra.payment_amount ELSE w.held END), 0) AS held,"
        " coalesce(sum(CASE WHEN ra.status = 'posted' THEN w.unmatched END), 0) AS unmatched"
        " FROM ra LEFT JOIN cash USING (advice_id) LEFT JOIN waiting w USING (advice_id)"
        " GROUP BY 1, 2 ORDER BY 1, 2",
        payer_id,
        since,
        until,
    )


# --------------------------------------------------------------------------- write-offs


async def record_writeoff(
    conn, request_id: str, claim_id: str, amount: Decimal, status: str, reason: str
) -> bool:
    """Record a write-off request once; False when this request id was seen before."""
    return (
        await conn.fetchval(
            f"INSERT INTO {SCHEMA}.writeoff (request_id, claim_id, amount, status, reason) VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT DO NOTHING RETURNING true",
            request_id,
            claim_id,
            amount,
            status,
            reason,
        )
        is not None
    )


def dumps(v) -> str:
    return json.dumps(v, default=str)
