"""SQL of patient payments and patient credit (payments schema); ``$1`` parameters throughout."""

from __future__ import annotations

from decimal import Decimal

import asyncpg

from services.payments.domain.ledger import JournalLine
from services.payments.domain.patient_payments import PATIENT_CREDIT, PatientPayment
from services.payments.repository import SCHEMA


async def payment_by_key(conn: asyncpg.Connection, site_id: str, key: str):
    """The payment taken before with this idempotency key at this site (None if none)."""
    return await conn.fetchrow(
        f"SELECT * FROM {SCHEMA}.patient_payment WHERE site_id = $1 AND idempotency_key = $2",
        site_id,
        key,
    )


async def insert_payment(
    conn: asyncpg.Connection,
    p: PatientPayment,
    *,
    site_id: str,
    key: str,
    fingerprint: str,
    created_by: str,
) -> int | None:
    """Record a payment and its allocations; None when the key was taken meanwhile."""
    payment_id = await conn.fetchval(
        f"INSERT INTO {SCHEMA}.patient_payment (site_id, idempotency_key, fingerprint, account,"
        " amount, method, check_number, processor_reference, received_date, created_by)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        " ON CONFLICT (site_id, idempotency_key) DO NOTHING RETURNING payment_id",
        site_id,
        key,
        fingerprint,
        p.account,
        p.amount,
        p.method,
        p.check_number,
        p.processor_reference,
        p.received_date,
        created_by,
    )
    if payment_id is not None and p.allocations:
        await conn.executemany(
            f"INSERT INTO {SCHEMA}.patient_payment_allocation (payment_id, claim_id, amount)"
            " VALUES ($1, $2, $3)",
            [(payment_id, a.claim_id, a.amount) for a in p.allocations],
        )
    return payment_id


async def allocations_of(conn: asyncpg.Connection, payment_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT claim_id, amount FROM {SCHEMA}.patient_payment_allocation WHERE payment_id = $1"
        " ORDER BY claim_id",
        payment_id,
    )


async def post_patient_entry(
    conn: asyncpg.Connection,
    kind: str,
    source: str,
    claim_id: str | None,
    account: str,
    lines: list[JournalLine],
    memo: str | None = None,
) -> bool:
    """Post one journal entry whose patient_credit lines belong to ``account``; False when
    ``source`` was posted before (nothing posted again)."""
    entry_id = await conn.fetchval(
        f"INSERT INTO {SCHEMA}.journal_entry (kind, source, claim_id, memo) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (source) DO NOTHING RETURNING entry_id",
        kind,
        source,
        claim_id,
        memo,
    )
    if entry_id is None:
        return False
    # One statement: the balance trigger checks the entry whole.
    await conn.execute(
        f"INSERT INTO {SCHEMA}.journal_line (entry_id, account, amount, claim_id, payer_id,"
        " patient_account) SELECT $1, * FROM unnest($2::text[], $3::numeric[], $4::text[],"
        " $5::text[], $6::text[])",
        entry_id,
        [ln.account for ln in lines],
        [ln.amount for ln in lines],
        [ln.claim_id for ln in lines],
        [ln.payer_id for ln in lines],
        [account if ln.account == PATIENT_CREDIT else None for ln in lines],
    )
    return True


async def credit_of(conn: asyncpg.Connection, accounts: list[str]) -> dict[str, Decimal]:
    """Unapplied credit per patient account (positive = the patient has credit)."""
    rows = await conn.fetch(
        f"SELECT patient_account, -sum(amount) AS credit FROM {SCHEMA}.journal_line"
        " WHERE account = 'patient_credit' AND patient_account = ANY($1::text[])"
        " GROUP BY patient_account",
        accounts,
    )
    return {r["patient_account"]: r["credit"] for r in rows}


async def lock_accounts(conn: asyncpg.Connection, accounts: list[str]) -> None:
    """Serialise credit use per account until the transaction ends (no credit applied twice)."""
    for a in sorted(set(accounts)):
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('rcm-patient-credit:' || $1))", a)


async def credits(
    conn: asyncpg.Connection, *, sites: list[str] | None, limit: int
) -> list[asyncpg.Record]:
    """Patient accounts holding credit (the credit work list), largest first, of ``sites``."""
    return await conn.fetch(
        f"SELECT x.account, x.site_id, x.credit FROM (SELECT l.patient_account AS account,"
        f" (SELECT min(site_id) FROM {SCHEMA}.patient_payment pp WHERE pp.account = l.patient_account)"
        " AS site_id, -sum(l.amount) AS credit"
        f" FROM {SCHEMA}.journal_line l WHERE l.account = 'patient_credit'"
        " GROUP BY l.patient_account) x WHERE x.credit > 0"
        " AND ($1::text[] IS NULL OR x.site_id = ANY($1)) ORDER BY x.credit DESC, x.account LIMIT $2",
        sites,
        limit,
    )


async def encounter_claims(conn: asyncpg.Connection, encounter_id: str) -> list[asyncpg.Record]:
    """The claims payments knows for an encounter (site and patient balance)."""
    return await conn.fetch(
        f"SELECT c.claim_id, c.site_id, coalesce(sum(l.amount) FILTER"
        " (WHERE l.account = 'patient_receivable'), 0) AS patient_balance"
        f" FROM {SCHEMA}.claim c LEFT JOIN {SCHEMA}.journal_line l ON l.claim_id = c.claim_id"
        " WHERE c.encounter_id = $1 GROUP BY c.claim_id, c.site_id ORDER BY c.claim_id",
        encounter_id,
    )
