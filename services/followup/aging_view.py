"""A/R aging from followup's claim balances (which mirror payments' ledger postings, see ``balances``).

Each claim contributes its payer balance under its payer and its patient balance
under ``PATIENT`` (self-pay), so grouping by payer separates what insurers and
patients owe; grouped by site or patient account both add up.
"""

from __future__ import annotations

from datetime import date

import asyncpg

from services.followup import repository as repo
from services.followup.domain.aging import COLUMNS, AgingItem, AgingTable, age_balances

SELF_PAY = "PATIENT"


def aging_items(rows) -> list[AgingItem]:
    items = []
    for r in rows:
        submitted = r["submitted_at"].date() if r["submitted_at"] else None
        for payer, balance in (
            (r["payer_id"], r["payer_balance"]),
            (SELF_PAY, r["patient_balance"]),
        ):
            if balance != 0:
                items.append(
                    AgingItem(
                        payer,
                        r["site_id"],
                        r["account_key"],
                        r["claim_id"],
                        r["service_date"],
                        submitted,
                        balance,
                    )
                )
    return items


async def aging_table(
    conn: asyncpg.Connection,
    as_of: date,
    basis: str = "service",
    group_by: str = "payer",
    sites: list[str] | None = None,
) -> AgingTable:
    """The aging table of the given sites (all when None). Raises ``ValueError`` for a bad basis or grouping."""
    return age_balances(aging_items(await repo.open_balances(conn, sites)), as_of, basis, group_by)  # type: ignore[arg-type]


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
