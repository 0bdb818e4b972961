"""Claim balances as payments' ledger holds them, mirrored from the events it posts from.

Followup keeps ``payer_balance`` and ``patient_balance`` per claim in its projection
so that write-off checks, A/R aging and statements need no call to payments. The
rules copy payments' posting rules (``services/payments/domain/ledger.py``):

- claim.submitted (frequency 1 or 7): the charge goes to the payer balance; a
  replacement or void takes the original's open payer balance off the books;
- primary claim payment (CLP02 1, 19, ...): paid and every adjustment settle the
  payer balance, PR amounts move to the patient;
- denied / not our claim (CLP02 4, 23): only PR moves; the rest stays with the payer
  for followup to appeal or write off;
- secondary payment (CLP02 2, 3, 20, 21): paid and the secondary's non-PR adjustments
  (except CARC 23, the prior payer's impact) reduce the patient balance;
- predetermination (CLP02 25): only the payment;
- a write-off takes the payer balance first, then the patient's (as payments does).

Pure functions; amounts are Decimal.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import NamedTuple

from shared.events import Adjustment

ZERO = Decimal("0.00")
SECONDARY = frozenset({"2", "3", "20", "21"})
HELD = frozenset({"4", "23"})
PRICING_ONLY = "25"
PRIOR_PAYER_IMPACT = "23"


class Delta(NamedTuple):
    payer: Decimal
    patient: Decimal


def remittance_delta(status_code: str, paid: Decimal, adjustments: Iterable[Adjustment]) -> Delta:
    """How one claim payment (claim and line adjustments together) moves the two balances."""
    adjustments = list(adjustments)
    if status_code in SECONDARY:
        settled = paid + sum(
            (a.amount for a in adjustments if a.group != "PR" and a.reason != PRIOR_PAYER_IMPACT),
            ZERO,
        )
        return Delta(ZERO, -settled)
    if status_code == PRICING_ONLY:
        return Delta(-paid, ZERO)
    pr = sum((a.amount for a in adjustments if a.group == "PR"), ZERO)
    if status_code in HELD:
        return Delta(-(paid + pr), pr)
    return Delta(-(paid + sum((a.amount for a in adjustments), ZERO)), pr)


def writeoff_split(amount: Decimal, payer_balance: Decimal) -> Delta:
    """The parts of a write-off taken from the payer and the patient balance (both >= 0)."""
    payer_part = min(amount, max(payer_balance, ZERO))
    return Delta(payer_part, amount - payer_part)


def open_balance(payer_balance: Decimal, patient_balance: Decimal) -> Decimal:
    return payer_balance + patient_balance
