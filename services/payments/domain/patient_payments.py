"""Patient payments (issue 21 item 4): what a payment request must hold, and its journal entry.

Pure: no I/O. A payment is received in cash, by check (with its number) or by card through
an outside processor (its reference only: rcm never sees card numbers, and refuses anything
that looks like one). Each allocation settles part of a claim's patient receivable; what is
not allocated becomes the patient account's credit.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from .ledger import CASH_CLEARING, PATIENT_RECEIVABLE, JournalLine

PATIENT_CREDIT = "patient_credit"
METHODS = ("cash", "check", "card")
_CENT = Decimal("0.01")
_DIGITS = re.compile(r"\d[\d -]{11,}\d")


class PaymentError(ValueError):
    """A patient payment request that cannot be taken; ``field`` names the field at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Allocation:
    claim_id: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class PatientPayment:
    account: str  # the patient account the payment is for
    amount: Decimal
    method: str
    received_date: date
    check_number: str | None = None
    processor_reference: str | None = None
    allocations: tuple[Allocation, ...] = ()

    @property
    def unallocated(self) -> Decimal:
        return self.amount - sum((a.amount for a in self.allocations), Decimal(0))


def looks_like_pan(text: str) -> bool:
    """True when ``text`` holds 13 to 19 digits (spaces or dashes between) passing Luhn."""
    for m in _DIGITS.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if 13 <= len(digits) <= 19 and _luhn(digits):
            return True
    return False


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def validate(p: PatientPayment) -> None:
    """Check one request; raises ``PaymentError`` naming the field (never echoing its value)."""
    for name in ("account", "check_number", "processor_reference"):
        value = getattr(p, name)
        if value is not None and looks_like_pan(value):
            raise PaymentError(
                name, f"{name} looks like a card number: rcm never takes card numbers"
            )
    if p.amount <= 0 or p.amount != p.amount.quantize(_CENT):
        raise PaymentError("amount", "amount must be positive with at most two decimals")
    if p.method not in METHODS:
        raise PaymentError("method", f"method must be one of {', '.join(METHODS)}")
    if p.method == "check" and not p.check_number:
        raise PaymentError("check_number", "a check payment needs its check_number")
    if p.method == "card" and not p.processor_reference:
        raise PaymentError(
            "processor_reference", "a card payment needs the outside processor's reference"
        )
    seen = set()
    for i, a in enumerate(p.allocations):
        if a.amount <= 0 or a.amount != a.amount.quantize(_CENT):
            raise PaymentError(f"allocations[{i}].amount", "must be positive, two decimals")
        if a.claim_id in seen:
            raise PaymentError(f"allocations[{i}].claim_id", "claim allocated twice")
        seen.add(a.claim_id)
    if p.unallocated < 0:
        raise PaymentError("allocations", "allocations exceed the payment amount")


def fingerprint(body: dict) -> str:
    """A stable hash of a request body: the same idempotency key must come with the same body."""
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()


def payment_entry(p: PatientPayment) -> list[JournalLine]:
    """The journal lines of a payment: cash in, each claim's patient receivable down, the rest
    to the patient credit account (a credit balance). Sums to zero."""
    lines = [JournalLine(CASH_CLEARING, p.amount, None, None)]
    lines += [JournalLine(PATIENT_RECEIVABLE, -a.amount, a.claim_id, None) for a in p.allocations]
    if p.unallocated > 0:
        lines.append(JournalLine(PATIENT_CREDIT, -p.unallocated, None, None))
    return lines


def credit_application(claim_id: str, amount: Decimal) -> list[JournalLine]:
    """Credit applied to a claim's patient responsibility: credit account down, receivable down
    (both lines on the claim, so its own lines keep summing to zero)."""
    return [
        JournalLine(PATIENT_CREDIT, amount, claim_id, None),
        JournalLine(PATIENT_RECEIVABLE, -amount, claim_id, None),
    ]


def receipt_entry(p: PatientPayment) -> list[JournalLine]:
    """How the ledger takes a payment: cash in, all of it to the account's credit first; each
    allocation is then a ``credit_application`` (so every claim's own lines keep summing to
    zero and its cash stays what payers paid)."""
    return [
        JournalLine(CASH_CLEARING, p.amount, None, None),
        JournalLine(PATIENT_CREDIT, -p.amount, None, None),
    ]
