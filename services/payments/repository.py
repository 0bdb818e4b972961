"""SQL for the payments schema: claims, remittance advices, claim payments, the ledger."""

from __future__ import annotations

import json
from decimal import Decimal

import asyncpg

from services.payments.domain.ledger import JournalLine

S = "payments"


async def insert_claims(conn: asyncpg.Connection, rows: list[tuple]) -> set[str]:
    """(claim_id, encounter_id, site_id, payer_id, payer_name, frequency, original, pccn, charge, dos,
    submitted_at, traceparent, lines_json) -> ids that were new."""
    if not rows:
        return set()
    got = await conn.fetch(
        f"INSERT INTO {S}.claim (claim_id, encounter_id, site_id, payer_id, payer_name, frequency_code,"
        " original_claim_id, payer_claim_control_number, total_charge, service_date, submitted_at, traceparent, lines)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],"
        " $8::text[], $9::numeric[], $10::date[], $11::timestamptz[], $12::text[], $13::jsonb[])"
        " ON CONFLICT DO NOTHING RETURNING claim_id",
        *map(list, zip(*rows, strict=True)),
    )
    return {r["claim_id"] for r in got}


async def claims_by_ids(conn: asyncpg.Connection, ids: list[str]) -> dict[str, asyncpg.Record]:
    rows = await conn.fetch(f"SELECT * FROM {S}.claim WHERE claim_id = ANY($1::text[])", ids)
    return {r["claim_id"]: r for r in rows}


async def claims_for_matching(conn: asyncpg.Connection, pcns: list[str], pccns: list[str], payer_ids: list[str],
                              charges: list[Decimal]) -> list[asyncpg.Record]:  # fmt: skip
    """Candidates: by claim id, by payer claim control number, or same payer and charge (line fallback)."""
    return await conn.fetch(
        f"SELECT claim_id, payer_id, total_charge, payer_claim_control_number, lines, service_date FROM {S}.claim"
        " WHERE claim_id = ANY($1::text[]) OR payer_claim_control_number = ANY($2::text[])"
        " OR (payer_id = ANY($3::text[]) AND total_charge = ANY($4::numeric[]))",
        pcns, pccns, payer_ids, charges,
    )  # fmt: skip


async def insert_advice(conn: asyncpg.Connection, *, payer_key: str, trace_number: str, file_name: str,
                        st: str, amount: Decimal, method: str, payment_date, status: str,
                        reason: str | None) -> int | None:  # fmt: skip
    """Record one 835 transaction's deposit; None when this check/EFT was already received."""
    return await conn.fetchval(
        f"INSERT INTO {S}.remittance_advice (payer_key, trace_number, file_name, st_control_number, payment_amount,"
        " payment_method, payment_date, status, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        " ON CONFLICT (payer_key, trace_number) DO NOTHING RETURNING advice_id",
        payer_key, trace_number, file_name, st, amount, method, payment_date, status, reason,
    )  # fmt: skip


async def insert_claim_payments(conn: asyncpg.Connection, rows: list[tuple]) -> None:
    """(remittance_id, advice_id, claim_id, pcn, payer_id, status_code, charge, paid, pr, pccn, state,
    match_method, reason, detail_json)."""
    if rows:
        await conn.executemany(
            f"INSERT INTO {S}.claim_payment (remittance_id, advice_id, claim_id, patient_control_number, payer_id,"
            " status_code, charge, paid, patient_responsibility, payer_claim_control_number, state, match_method,"
            " reason, detail, posted_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,"
            " CASE WHEN $11 = 'posted' THEN now() END) ON CONFLICT (remittance_id) DO NOTHING",
            rows,
        )


async def unmatched_for(conn: asyncpg.Connection, claim_ids: list[str]) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT cp.*, ra.payer_key, ra.trace_number, ra.payment_date, ra.file_name FROM {S}.claim_payment cp"
        f" JOIN {S}.remittance_advice ra USING (advice_id)"
        " WHERE cp.state = 'unmatched' AND cp.patient_control_number = ANY($1::text[]) ORDER BY cp.created_at",
        claim_ids,
    )


async def mark_matched(conn: asyncpg.Connection, rows: list[tuple[str, str, str]]) -> None:
    """(remittance_id, claim_id, method)."""
    if rows:
        await conn.executemany(
            f"UPDATE {S}.claim_payment SET claim_id = $2, match_method = $3, state = 'posted', posted_at = now()"
            " WHERE remittance_id = $1",
            rows,
        )


async def post_entries(conn: asyncpg.Connection, entries: list[tuple[str, str, str | None, str | None, int | None,
                                                                    list[JournalLine]]]) -> set[str]:  # fmt: skip
    """Post journal entries (kind, source, claim_id, payer_id, advice_id, lines); a source posts once.

    Lines of all entries go in one statement, so the balance trigger checks each entry whole.
    Returns the sources that were new.
    """
    if not entries:
        return set()
    got = await conn.fetch(
        f"INSERT INTO {S}.journal_entry (kind, source, claim_id, payer_id, advice_id)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])"
        " ON CONFLICT (source) DO NOTHING RETURNING entry_id, source",
        [e[0] for e in entries], [e[1] for e in entries], [e[2] for e in entries], [e[3] for e in entries],
        [e[4] for e in entries],
    )  # fmt: skip
    ids = {r["source"]: r["entry_id"] for r in got}
    cols: tuple[list, ...] = ([], [], [], [], [])
    for _, source, _, _, _, lines in entries:
        if source not in ids:
            continue
        for ln in lines:
            for col, v in zip(cols, (ids[source], ln.account, ln.claim_id, ln.payer_id, ln.amount), strict=True):
                col.append(v)
    if cols[0]:
        await conn.execute(
            f"INSERT INTO {S}.journal_line (entry_id, account, claim_id, payer_id, amount)"
            " SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::numeric[])",
            *cols,
        )
    return set(ids)


async def entry_lines(conn: asyncpg.Connection, source: str) -> list[JournalLine]:
    rows = await conn.fetch(
        f"SELECT l.account, l.amount, l.claim_id, l.payer_id FROM {S}.journal_line l"
        f" JOIN {S}.journal_entry e USING (entry_id) WHERE e.source = $1 ORDER BY l.line_id",
        source,
    )
    return [JournalLine(r["account"], r["amount"], r["claim_id"], r["payer_id"]) for r in rows]


async def last_payment_source(conn: asyncpg.Connection, claim_id: str, paid: Decimal) -> str | None:
    """The posted payment a reversal of ``paid`` undoes (latest first, not yet reversed)."""
    return await conn.fetchval(
        f"SELECT 'remit:' || cp.remittance_id FROM {S}.claim_payment cp WHERE cp.claim_id = $1 AND cp.state = 'posted'"
        " AND cp.status_code <> '22' AND cp.paid = $2 AND NOT EXISTS (SELECT 1 FROM"
        f" {S}.journal_entry e WHERE e.source = 'reversal-of:' || cp.remittance_id) ORDER BY cp.created_at DESC LIMIT 1",
        claim_id, -paid,
    )  # fmt: skip


async def claim_balances(conn: asyncpg.Connection, claim_ids: list[str] | None = None) -> list[asyncpg.Record]:
    """Payer and patient balance per claim, derived from the ledger."""
    return await conn.fetch(
        "SELECT c.claim_id, c.site_id, c.payer_id, c.service_date, c.submitted_at, c.total_charge,"
        " coalesce(sum(l.amount) FILTER (WHERE l.account = 'payer_receivable'), 0) AS payer_balance,"
        " coalesce(sum(l.amount) FILTER (WHERE l.account = 'patient_receivable'), 0) AS patient_balance,"
        " coalesce(-sum(l.amount) FILTER (WHERE l.account = 'cash_clearing'), 0) * -1 AS paid"
        f" FROM {S}.claim c LEFT JOIN {S}.journal_line l ON l.claim_id = c.claim_id"
        " WHERE ($1::text[] IS NULL OR c.claim_id = ANY($1)) GROUP BY c.claim_id ORDER BY c.claim_id",
        claim_ids,
    )


async def record_writeoff(conn, request_id: str, claim_id: str, amount: Decimal, status: str, reason: str) -> bool:
    return (
        await conn.fetchval(
            f"INSERT INTO {S}.writeoff (request_id, claim_id, amount, status, reason) VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT DO NOTHING RETURNING true",
            request_id, claim_id, amount, status, reason,
        )  # fmt: skip
        is not None
    )


def dumps(v) -> str:
    return json.dumps(v, default=str)
