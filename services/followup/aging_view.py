"""A/R aging from followup's claim balances (which mirror payments' ledger postings, see ``balances``).

Each claim contributes its payer balance under its payer; patient balances go under
``PATIENT`` (self-pay) netted per patient account (site and account key, as statements
sum them), so grouping by payer separates what insurers and patients owe; grouped by
site or patient account both add up.

Why netted: a next payer's claim (secondary, tertiary) is opened by moving what the prior
payers left to the patient onto its payer receivable, both sides on that claim (payments'
ledger, ``cob_balances``), so its own patient balance is negative by what the patient no
longer owes while the primary claim still shows what the patient was first left. Aged claim by
claim that would show a patient credit (what the later payers paid) beside a debt of the same
size; netted, the account shows what the patient owes now, and a credit only when there is one.

The patient's own payments: followup's balances mirror only the payers' side of payments'
ledger, so the patient row is what the payers left to the account less what the patient paid
(less refunds issued), by the statements' rule (``domain.statements.amount_due``) from the same
copy of payments' patient accounts (``patient_accounts.statement_facts``). What the patient paid
beyond what they owe is unapplied credit, in the credit column.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import asyncpg

from services.followup import repository as repo
from services.followup.domain.aging import COLUMNS, AgingItem, AgingTable, age_balances
from services.followup.domain.statements import amount_due
from services.followup.patient_accounts import statement_facts

SELF_PAY = "PATIENT"


def _item(payer: str, r, balance: Decimal) -> AgingItem:
    submitted = r["submitted_at"].date() if r["submitted_at"] else None
    return AgingItem(
        payer, r["site_id"], r["account_key"], r["claim_id"], r["service_date"], submitted, balance
    )


def aging_items(rows, paid=()) -> list[AgingItem]:
    """Payer balances claim by claim; patient balances netted per patient account less the
    patient's payments (``paid``: one row per encounter with ``payments_received``, its site,
    account key and a claim), aged from the account's oldest claim that the patient owes on
    (see the module doc)."""
    items = []
    patient: dict[tuple[str, str], list] = {}
    for r in rows:
        if r["payer_balance"] != 0:
            items.append(_item(r["payer_id"], r, r["payer_balance"]))
        if r["patient_balance"] != 0:
            patient.setdefault((r["site_id"], r["account_key"]), []).append(r)
    received: dict[tuple[str, str], list] = {}
    for r in paid:
        received.setdefault((r["site_id"], r["account_key"]), []).append(r)
    for key in sorted(patient.keys() | received.keys()):
        claims, payments = patient.get(key, []), received.get(key, [])
        net = amount_due(
            sum((r["patient_balance"] for r in claims), Decimal("0.00")),
            sum((r["payments_received"] for r in payments), Decimal("0.00")),
        )
        if net == 0:
            continue
        owed = [r for r in claims if r["patient_balance"] > 0] or claims or payments
        oldest = min(owed, key=lambda r: (r["service_date"] or date.max, r["claim_id"]))
        items.append(_item(SELF_PAY, oldest, net))
    return items


async def patient_payments(conn: asyncpg.Connection, sites: list[str] | None) -> list[dict]:
    """Encounters of ``sites`` (all when None) whose patient has paid (less refunds), each with
    its patient account and oldest claim; what was paid as statements read it."""
    rows = await conn.fetch(
        "SELECT DISTINCT ON (c.encounter_id) c.encounter_id, c.claim_id, c.site_id,"
        " c.service_date, c.submitted_at,"
        " coalesce(p.account_key, c.account_key, 'E' || c.encounter_id) AS account_key"
        f" FROM {repo.SCHEMA}.patient_account a JOIN {repo.SCHEMA}.claim c USING (encounter_id)"
        f" LEFT JOIN {repo.SCHEMA}.encounter_party p USING (encounter_id)"
        " WHERE a.payments_received <> 0 AND c.service_date IS NOT NULL"
        " AND ($1::text[] IS NULL OR c.site_id = ANY($1))"
        " ORDER BY c.encounter_id, c.service_date, c.claim_id",
        sites,
    )
    facts = await statement_facts(conn, [r["encounter_id"] for r in rows])
    return [
        dict(r) | {"payments_received": facts[r["encounter_id"]].payments_received} for r in rows
    ]


async def aging_table(
    conn: asyncpg.Connection,
    as_of: date,
    basis: str = "service",
    group_by: str = "payer",
    sites: list[str] | None = None,
) -> AgingTable:
    """The aging table of the given sites (all when None). Raises ``ValueError`` for a bad basis or grouping."""
    items = aging_items(await repo.open_balances(conn, sites), await patient_payments(conn, sites))
    return age_balances(items, as_of, basis, group_by)  # type: ignore[arg-type]


def table_json(t: AgingTable) -> dict:
    """Amounts as decimal strings, buckets in order."""
    return {
        "as_of": t.as_of.isoformat(),
        "basis": t.basis,
        "by": t.group_by,
        "columns": list(COLUMNS),
        "rows": {
            k: {c: str(v[c]) for c in COLUMNS} | {"total": str(t.row_total(k))}
            for k, v in sorted(t.rows.items())
        },
        "totals": {c: str(t.totals[c]) for c in COLUMNS},
        "grand_total": str(t.grand_total),
    }
