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
        "SELECT x.account, x.site_id, x.credit, (SELECT coalesce(sum(r.amount), 0)"
        f" FROM {SCHEMA}.refund r WHERE r.account = x.account AND r.state <> 'issued')::numeric(12,2)"
        " AS refund_pending FROM (SELECT l.patient_account AS account,"
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


# --------------------------------------------------------------------------- patient A/R (006)


async def account_site(conn: asyncpg.Connection, account: str) -> str | None:
    """The site of a patient account (its encounter's claims); None when payments knows none."""
    return await conn.fetchval(
        f"SELECT min(site_id) FROM {SCHEMA}.claim WHERE encounter_id = $1", account
    )


async def original_claims(conn: asyncpg.Connection, encounters: list[str]) -> list[asyncpg.Record]:
    """The original claims (frequency 1) of ``encounters``, each with the payers whose claim
    payment (not a reversal) posted on it."""
    return await conn.fetch(
        "SELECT c.encounter_id, c.claim_id, c.payer_id, coalesce(array_agg(DISTINCT p.payer_id)"
        " FILTER (WHERE p.payer_id IS NOT NULL), '{}') AS posted_payers"
        f" FROM {SCHEMA}.claim c LEFT JOIN {SCHEMA}.claim_payment p ON p.claim_id = c.claim_id"
        " AND p.state = 'posted' AND p.status_code <> '22'"
        " WHERE c.encounter_id = ANY($1::text[]) AND c.frequency_code = '1'"
        " GROUP BY c.encounter_id, c.claim_id, c.payer_id ORDER BY c.claim_id",
        encounters,
    )


async def crossover_payers(conn: asyncpg.Connection, encounters: list[str]) -> dict[str, set]:
    rows = await conn.fetch(
        f"SELECT encounter_id, payer_id FROM {SCHEMA}.crossover"
        " WHERE encounter_id = ANY($1::text[])",
        encounters,
    )
    out: dict[str, set] = {}
    for r in rows:
        out.setdefault(r["encounter_id"], set()).add(r["payer_id"])
    return out


async def record_crossovers(conn: asyncpg.Connection, rows: list[tuple]) -> None:
    """(remittance_id, claim_id, encounter_id, payer_id) of crossovers; a known one is left."""
    await conn.executemany(
        f"INSERT INTO {SCHEMA}.crossover (remittance_id, claim_id, encounter_id, payer_id)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        rows,
    )


async def credit_applied_per_claim(
    conn: asyncpg.Connection, claim_ids: list[str]
) -> dict[str, Decimal]:
    """Patient credit applied to each claim so far (net of what was taken back)."""
    rows = await conn.fetch(
        f"SELECT claim_id, patient_account, sum(amount) AS applied FROM {SCHEMA}.journal_line"
        " WHERE account = 'patient_credit' AND claim_id = ANY($1::text[])"
        " GROUP BY claim_id, patient_account HAVING sum(amount) > 0",
        claim_ids,
    )
    return {r["claim_id"]: r["applied"] for r in rows}


async def account_totals(conn: asyncpg.Connection, account: str) -> asyncpg.Record:
    """Patient payments taken, refunds issued and unapplied credit of an account."""
    return await conn.fetchrow(
        "SELECT (SELECT coalesce(sum(amount), 0) FROM"
        f" {SCHEMA}.patient_payment WHERE account = $1)::numeric(12,2) AS received,"
        f" (SELECT coalesce(sum(amount), 0) FROM {SCHEMA}.refund WHERE account = $1"
        "  AND state = 'issued')::numeric(12,2) AS refunded,"
        f" (SELECT coalesce(-sum(amount), 0) FROM {SCHEMA}.journal_line"
        "  WHERE account = 'patient_credit' AND patient_account = $1)::numeric(12,2) AS credit",
        account,
    )


async def next_version(conn: asyncpg.Connection) -> int:
    return await conn.fetchval(f"SELECT nextval('{SCHEMA}.patient_account_version')")


# refunds


async def refund_by_key(conn: asyncpg.Connection, site_id: str, key: str):
    return await conn.fetchrow(
        f"SELECT * FROM {SCHEMA}.refund WHERE site_id = $1 AND idempotency_key = $2", site_id, key
    )


async def insert_refund(conn: asyncpg.Connection, **row) -> int | None:
    """Record a requested refund; None when the key was taken meanwhile."""
    names = list(row)
    return await conn.fetchval(
        f"INSERT INTO {SCHEMA}.refund ({', '.join(names)}, state)"
        f" VALUES ({', '.join(f'${i}' for i in range(1, len(names) + 1))}, 'requested')"
        " ON CONFLICT (site_id, idempotency_key) DO NOTHING RETURNING refund_id",
        *row.values(),
    )


async def get_refund(conn: asyncpg.Connection, refund_id: int, *, for_update: bool = False):
    return await conn.fetchrow(
        f"SELECT * FROM {SCHEMA}.refund WHERE refund_id = $1"
        + (" FOR UPDATE" if for_update else ""),
        refund_id,
    )


async def set_refund_state(conn: asyncpg.Connection, refund_id: int, state: str, actor: str):
    """Move a refund to ``approved`` or ``issued``, recording who and when."""
    column = {"approved": "approved", "issued": "issued"}[state]
    await conn.execute(
        f"UPDATE {SCHEMA}.refund SET state = $2, {column}_by = $3, {column}_at = now()"
        " WHERE refund_id = $1",
        refund_id,
        state,
        actor,
    )


async def refunds(
    conn: asyncpg.Connection, *, sites: list[str] | None, state: str | None, limit: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT refund_id, site_id, account, amount, method, state, requested_by, requested_at,"
        f" approved_by, approved_at, issued_by, issued_at FROM {SCHEMA}.refund"
        " WHERE ($1::text[] IS NULL OR site_id = ANY($1)) AND ($2::text IS NULL OR state = $2)"
        " ORDER BY refund_id LIMIT $3",
        sites,
        state,
        limit,
    )


# payment plans


async def plan_by_key(conn: asyncpg.Connection, site_id: str, key: str):
    return await conn.fetchrow(
        f"SELECT * FROM {SCHEMA}.payment_plan WHERE site_id = $1 AND idempotency_key = $2",
        site_id,
        key,
    )


async def insert_plan(conn: asyncpg.Connection, **row) -> int | None:
    """Record an active plan; None when the key was taken (or the account has an active plan)."""
    names = list(row)
    return await conn.fetchval(
        f"INSERT INTO {SCHEMA}.payment_plan ({', '.join(names)}, status)"
        f" VALUES ({', '.join(f'${i}' for i in range(1, len(names) + 1))}, 'active')"
        " ON CONFLICT DO NOTHING RETURNING plan_id",
        *row.values(),
    )


async def get_plan(conn: asyncpg.Connection, plan_id: int):
    return await conn.fetchrow(f"SELECT * FROM {SCHEMA}.payment_plan WHERE plan_id = $1", plan_id)


async def newest_plan(conn: asyncpg.Connection, account: str):
    return await conn.fetchrow(
        f"SELECT * FROM {SCHEMA}.payment_plan WHERE account = $1 ORDER BY plan_id DESC LIMIT 1",
        account,
    )


async def active_plans(conn: asyncpg.Connection, sites: list[str] | None) -> list[asyncpg.Record]:
    """Active plans (of ``sites``), each with what the account paid since the plan was made."""
    return await conn.fetch(
        "SELECT pl.*, (SELECT coalesce(sum(pp.amount), 0) FROM"
        f" {SCHEMA}.patient_payment pp WHERE pp.account = pl.account"
        " AND pp.created_at >= pl.created_at) AS paid"
        f" FROM {SCHEMA}.payment_plan pl WHERE pl.status = 'active'"
        " AND ($1::text[] IS NULL OR pl.site_id = ANY($1)) ORDER BY pl.plan_id FOR UPDATE OF pl",
        sites,
    )


async def paid_towards(conn: asyncpg.Connection, plan) -> Decimal:
    return await conn.fetchval(
        f"SELECT coalesce(sum(amount), 0) FROM {SCHEMA}.patient_payment"
        " WHERE account = $1 AND created_at >= $2",
        plan["account"],
        plan["created_at"],
    )


async def set_plan_status(conn: asyncpg.Connection, plan_id: int, status: str) -> None:
    await conn.execute(
        f"UPDATE {SCHEMA}.payment_plan SET status = $2, status_changed_at = now()"
        " WHERE plan_id = $1",
        plan_id,
        status,
    )


async def encounter_claims_of(
    conn: asyncpg.Connection, encounters: list[str]
) -> list[asyncpg.Record]:
    """Every claim of ``encounters`` (id, encounter, site)."""
    return await conn.fetch(
        f"SELECT claim_id, encounter_id, site_id FROM {SCHEMA}.claim"
        " WHERE encounter_id = ANY($1::text[]) ORDER BY claim_id",
        encounters,
    )


async def refunds_of(conn: asyncpg.Connection, account: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT refund_id, amount, state FROM {SCHEMA}.refund WHERE account = $1", account
    )
