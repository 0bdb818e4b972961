"""Accounts-receivable aging from ledger balances.

Each open claim balance is aged in days from its date of service (or from its
first submission) to ``as_of`` and summed into buckets per payer, site or patient.
Credits (negative balances: overpayments, unapplied refunds) are not netted
against debts; they are kept in their own ``credit`` column. The items come already
netted where a balance is split by the ledger rather than owed twice: a patient
account's patient balances are one item (``aging_view.aging_items``), so a next payer's
claim that took the patient's share over is no credit beside the first claim's debt; and
that item is net of the patient's payments (less refunds), as statements ask it, so an
account's unapplied credit is a credit here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Literal

AGING_BUCKETS = ("0-30", "31-60", "61-90", "91-120", "120+")
CREDIT = "credit"
COLUMNS = (*AGING_BUCKETS, CREDIT)
# Upper bound (inclusive, in days) of each bucket except the last.
_BOUNDS = ((30, "0-30"), (60, "31-60"), (90, "61-90"), (120, "91-120"))
CENT = Decimal("0.01")

Basis = Literal["service", "submission"]
GroupBy = Literal["payer", "site", "patient"]
_GROUP_FIELD = {"payer": "payer_id", "site": "site_id", "patient": "patient_key"}


@dataclass(frozen=True, slots=True)
class AgingItem:
    payer_id: str
    site_id: str
    patient_key: str  # opaque key (account number), never a name
    claim_id: str
    service_date: date
    submitted_date: date | None
    balance: Decimal


@dataclass
class AgingTable:
    as_of: date
    basis: Basis
    group_by: GroupBy
    rows: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    totals: dict[str, Decimal] = field(default_factory=lambda: _empty_row())

    def row_total(self, key: str) -> Decimal:
        """Net balance of one group: buckets plus credits."""
        return sum(self.rows[key].values(), Decimal(0))

    @property
    def grand_total(self) -> Decimal:
        return sum(self.totals.values(), Decimal(0))


def _empty_row() -> dict[str, Decimal]:
    return {c: Decimal("0.00") for c in COLUMNS}


def bucket_for(age_days: int) -> str:
    """Bucket of an age in days; a future date (negative age) counts as 0-30."""
    for upper, name in _BOUNDS:
        if age_days <= upper:
            return name
    return AGING_BUCKETS[-1]


def age_balances(
    items: Iterable[AgingItem],
    as_of: date,
    basis: Basis = "service",
    group_by: GroupBy = "payer",
) -> AgingTable:
    """Sum balances into aging buckets per group.

    Zero balances are skipped. With ``basis="submission"`` a claim not yet
    submitted ages from its date of service (it is still owed). Raises
    ``ValueError`` for an unknown basis or grouping, ``TypeError`` for a float balance.
    """
    if basis not in ("service", "submission"):
        raise ValueError(f"basis must be 'service' or 'submission', not {basis!r}")
    if group_by not in _GROUP_FIELD:
        raise ValueError(f"group_by must be one of {sorted(_GROUP_FIELD)}, not {group_by!r}")
    attr = _GROUP_FIELD[group_by]
    table = AgingTable(as_of=as_of, basis=basis, group_by=group_by)
    for item in items:
        if isinstance(item.balance, float):
            raise TypeError(f"claim {item.claim_id}: balance must be Decimal, not float")
        balance = item.balance.quantize(CENT)
        if balance == 0:
            continue
        if balance < 0:
            column = CREDIT
        else:
            start = item.service_date
            if basis == "submission" and item.submitted_date is not None:
                start = item.submitted_date
            column = bucket_for((as_of - start).days)
        row = table.rows.setdefault(getattr(item, attr), _empty_row())
        row[column] += balance
        table.totals[column] += balance
    return table


def render_aging_table(table: AgingTable) -> str:
    """Plain-text table for a terminal: one row per group (sorted), then totals."""
    label = {"payer": "Payer", "site": "Site", "patient": "Patient"}[table.group_by]
    headers = [label, *AGING_BUCKETS, "Credit", "Total"]
    body = [
        [key, *(f"{row[c]:,.2f}" for c in COLUMNS), f"{table.row_total(key):,.2f}"]
        for key, row in sorted(table.rows.items())
    ]
    foot = ["TOTAL", *(f"{table.totals[c]:,.2f}" for c in COLUMNS), f"{table.grand_total:,.2f}"]
    widths = [max(len(r[i]) for r in [headers, *body, foot]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest])

    rule = "  ".join("-" * w for w in widths)
    title = f"A/R aging as of {table.as_of.isoformat()} (from date of {table.basis})"
    return "\n".join([title, line(headers), rule, *map(line, body), rule, line(foot)]) + "\n"
