"""What one claim payment means for its claim: decided here, once, and carried in
``remittance.received`` so billing and followup never classify a remittance themselves."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Literal, Protocol

from .carcs import is_beyond_contract, is_contractual
from .remittance import DENIED, REVERSAL

Outcome = Literal["paid", "partially_paid", "denied", "reversed"]


class _Adjustment(Protocol):
    group: str
    reason: str
    amount: Decimal


def contractual_amount(adjustments: Iterable[_Adjustment]) -> Decimal:
    """The contractual adjustments (``carcs.is_contractual``: CO with a contractual CARC)."""
    return sum((a.amount for a in adjustments if is_contractual(a.group, a.reason)), Decimal(0))


def remittance_outcome(
    status_code: str,
    paid: Decimal,
    patient_responsibility: Decimal,
    adjustments: Iterable[_Adjustment],
    is_reversal: bool,
) -> Outcome:
    """reversed (CLP02 22 or a negated payment), denied (CLP02 4, or nothing paid and nothing
    owed by the patient), partially_paid (any adjustment beyond the contract,
    ``carcs.is_beyond_contract``), else paid."""
    if is_reversal or status_code == REVERSAL:
        return "reversed"
    if status_code == DENIED or (paid == 0 and patient_responsibility == 0):
        return "denied"
    beyond_contract = sum(
        (a.amount for a in adjustments if is_beyond_contract(a.group, a.reason)), Decimal(0)
    )
    return "partially_paid" if beyond_contract > 0 else "paid"
