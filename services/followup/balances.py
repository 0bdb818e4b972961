"""Claim balances as payments' ledger holds them, kept from the events it posts from.

Followup keeps ``payer_balance`` and ``patient_balance`` per claim in its projection
so that write-off checks, A/R aging and statements need no call to payments:

- a remittance moves them by the changes payments' ledger posted for it, carried on
  remittance.received (``payer_balance_change``, ``patient_balance_change``): the
  coordination-of-benefits rules live in ``services/payments/domain/ledger.py`` only;
- claim.submitted (frequency 1 or 7) opens the payer balance with the charge, and a
  replacement or void takes the original's open payer balance off the books
  (``repository.upsert_submitted`` / ``mark_replaced``), as payments posts them; except a
  next payer's claim (secondary, tertiary: an original claim of an encounter with an earlier
  one), which payments opens by a COB transfer, not a charge: ``cob_balances`` replaces the
  charge with what the encounter's other claims left to the patient (payer balance up, its
  own patient balance down by as much), and moves a prior payer's late remittance there.
  Payments posts a replacement or void of a next payer's claim as a transfer too, and so does
  followup (``cob_balances.replace_next_payer_claims``): the original's open payer balance goes
  back to its patient balance and on to the replacement's payer balance (off its patient
  balance); the replacement is not charged, and a void leaves it with the patient;
- a write-off takes the payer balance first, then the patient's (``writeoff_split``),
  as payments posts the write-off it is asked for.

Pure functions; amounts are Decimal.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

ZERO = Decimal("0.00")


class Delta(NamedTuple):
    payer: Decimal
    patient: Decimal


def writeoff_split(amount: Decimal, payer_balance: Decimal) -> Delta:
    """The parts of a write-off taken from the payer and the patient balance (both >= 0)."""
    payer_part = min(amount, max(payer_balance, ZERO))
    return Delta(payer_part, amount - payer_part)


def open_balance(payer_balance: Decimal, patient_balance: Decimal) -> Decimal:
    return payer_balance + patient_balance
