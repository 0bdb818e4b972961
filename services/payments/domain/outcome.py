"""What one claim payment means for its claim: decided here, once, and carried in
``remittance.received`` so billing and followup never classify a remittance themselves."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Literal, Protocol

Outcome = Literal["paid", "partially_paid", "denied", "reversed"]

# CARCs that are the contract working as agreed (fee-schedule reductions, bundling into a
# paid service, multiple-procedure and capitation reductions), not a denial of anything.
CONTRACTUAL_CARCS = frozenset({"45", "253", "59", "94", "131"})
DENIED_STATUS = "4"
REVERSAL_STATUS = "22"


class _Adjustment(Protocol):
    group: str
    reason: str
    amount: Decimal


def contractual_amount(adjustments: Iterable[_Adjustment]) -> Decimal:
    """Contractual obligation (CO) adjustments with a contractual CARC."""
    return sum(
        (a.amount for a in adjustments if a.group == "CO" and a.reason in CONTRACTUAL_CARCS),
        Decimal(0),
    )


def remittance_outcome(
    status_code: str,
    paid: Decimal,
    patient_responsibility: Decimal,
    adjustments: Iterable[_Adjustment],
    is_reversal: bool,
) -> Outcome:
    """reversed (CLP02 22 or a negated payment), denied (CLP02 4, or nothing paid and nothing
    owed by the patient), partially_paid (any payer adjustment beyond the contract), else paid."""
    if is_reversal or status_code == REVERSAL_STATUS:
        return "reversed"
    if status_code == DENIED_STATUS or (paid == 0 and patient_responsibility == 0):
        return "denied"
    beyond_contract = sum(
        (a.amount for a in adjustments if a.group != "PR" and a.reason not in CONTRACTUAL_CARCS),
        Decimal(0),
    )
    return "partially_paid" if beyond_contract > 0 else "paid"
