"""Patient A/R after a payment is taken (issue 21 item 4): refunds of credit balances, payment
plans, and when patient responsibility is the patient's to pay.

Pure: no I/O. Amounts are Decimal, two places.

* A refund goes requested -> approved -> issued. A supervisor other than the requester
  approves it; issuing it pays the credit back out (``refund_entry``). Asking for the state a
  refund is already in is a no-op (an idempotent retry), any other jump is refused.
* A payment plan takes an amount per period (weekly, every two weeks, monthly) towards the
  balance it was set up for. It is current while what was paid since it started covers every
  instalment due up to ``grace_days`` ago; once it is not, it is defaulted (the review job
  says so); once the balance is paid, completed.
* Patient responsibility waits for the next payer: while a payer forwarded the claim
  (crossover) or a later payer's claim has no posted payment yet, what the earlier payers left
  to the patient is pending that payer, and no patient credit is applied to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_CEILING, Decimal

from .ledger import CASH_CLEARING, JournalLine
from .patient_payments import PATIENT_CREDIT, PaymentError, looks_like_pan

_CENT = Decimal("0.01")
ZERO = Decimal("0.00")

# ---------------------------------------------------------------------------- refunds

REQUESTED, APPROVED, ISSUED = "requested", "approved", "issued"
REFUND_STATES = (REQUESTED, APPROVED, ISSUED)
_NEXT = {REQUESTED: APPROVED, APPROVED: ISSUED}
REFUND_METHODS = ("check", "card", "cash")


class TransitionRefused(ValueError):
    """A refund transition that may not happen; ``status`` is the HTTP answer (403 or 409)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def refund_transition(state: str, target: str, requested_by: str, actor: str) -> bool:
    """Whether moving a refund in ``state`` to ``target`` changes anything (False: it is there
    already, an idempotent retry). Raises ``TransitionRefused``: 409 for a jump out of order,
    403 when the requester would approve their own refund."""
    if target not in _NEXT.values():
        raise TransitionRefused(409, f"a refund cannot be moved to {target!r}")
    if state == target or REFUND_STATES.index(state) > REFUND_STATES.index(target):
        if state == target:
            return False
        raise TransitionRefused(409, f"refund is already {state}")
    if _NEXT.get(state) != target:
        raise TransitionRefused(409, f"a {state} refund cannot be {target} (it is approved first)")
    if target == APPROVED and actor == requested_by:
        raise TransitionRefused(403, "a refund is approved by someone other than its requester")
    return True


def validate_refund(amount: Decimal, method: str, reference: str | None, credit: Decimal) -> None:
    """Check a refund request against the account's credit; raises ``PaymentError`` naming the
    field (a card-number-looking reference is refused without being repeated)."""
    if reference is not None and looks_like_pan(reference):
        raise PaymentError("reference", "reference looks like a card number: rcm never takes them")
    if amount <= 0 or amount != amount.quantize(_CENT):
        raise PaymentError("amount", "amount must be positive with at most two decimals")
    if method not in REFUND_METHODS:
        raise PaymentError("method", f"method must be one of {', '.join(REFUND_METHODS)}")
    if amount > credit:
        raise PaymentError("amount", f"amount exceeds the account's credit ({credit})")


def refund_entry(amount: Decimal) -> list[JournalLine]:
    """A refund issued: the account's credit down, cash out. Sums to zero; no claim on it (the
    cash a claim holds stays what payers paid)."""
    return [
        JournalLine(PATIENT_CREDIT, amount, None, None),
        JournalLine(CASH_CLEARING, -amount, None, None),
    ]


# ---------------------------------------------------------------------------- payment plans

PERIOD_DAYS = {"weekly": 7, "biweekly": 14, "monthly": 30}
ACTIVE, DEFAULTED, COMPLETED = "active", "defaulted", "completed"
DEFAULT_GRACE_DAYS = 15


@dataclass(frozen=True, slots=True)
class Plan:
    total: Decimal  # the patient balance the plan was set up for
    instalment: Decimal  # amount per period
    period: str  # a key of PERIOD_DAYS
    first_due: date
    grace_days: int = DEFAULT_GRACE_DAYS

    @property
    def instalments(self) -> int:
        return int((self.total / self.instalment).to_integral_value(rounding=ROUND_CEILING))

    def due_dates(self) -> list[date]:
        step = timedelta(days=PERIOD_DAYS[self.period])
        return [self.first_due + k * step for k in range(self.instalments)]

    def due_by(self, day: date) -> Decimal:
        """What the plan asks to have been paid by ``day`` (the last instalment is the rest)."""
        n = sum(1 for d in self.due_dates() if d <= day)
        return min(self.total, self.instalment * n)

    def next_due(self, paid: Decimal) -> date | None:
        """The date of the first instalment ``paid`` does not cover yet (None when paid off)."""
        for k, d in enumerate(self.due_dates(), start=1):
            if paid < min(self.total, self.instalment * k):
                return d
        return None


def validate_plan(plan: Plan, balance: Decimal) -> None:
    """Check a new plan against the account's open patient balance; raises ``PaymentError``."""
    if plan.period not in PERIOD_DAYS:
        raise PaymentError("period", f"period must be one of {', '.join(PERIOD_DAYS)}")
    if plan.instalment <= 0 or plan.instalment != plan.instalment.quantize(_CENT):
        raise PaymentError("instalment_amount", "must be positive with at most two decimals")
    if balance <= 0:
        raise PaymentError("account", "the account has no patient balance to plan for")
    if plan.instalment > balance:
        raise PaymentError("instalment_amount", f"exceeds the patient balance ({balance})")
    if not 0 <= plan.grace_days <= 60:
        raise PaymentError("grace_days", "must be between 0 and 60")


def plan_status(plan: Plan, paid: Decimal, as_of: date) -> str:
    """The status a plan should have on ``as_of`` given what was ``paid`` towards it: completed
    once the total is paid, defaulted when an instalment due more than ``grace_days`` days ago is
    not covered, active otherwise."""
    if paid >= plan.total:
        return COMPLETED
    # An instalment due on day D is missed past the grace period from D + grace_days + 1 on.
    if paid < plan.due_by(as_of - timedelta(days=plan.grace_days + 1)):
        return DEFAULTED
    return ACTIVE


# ---------------------------------------------------------------------------- next payer


@dataclass(frozen=True, slots=True)
class ClaimState:
    """What payments knows of one original claim of an encounter."""

    claim_id: str
    payer_id: str
    posted_payers: frozenset[str]  # payers with a posted claim payment on this claim


def pending_next_payer(claims: list[ClaimState], crossover_payers: set[str]) -> bool:
    """Whether an encounter's patient responsibility still waits for a next payer.

    ``claims`` are the encounter's original claims; ``crossover_payers`` the payers whose
    posted payment said they forwarded the claim (CLP02 19/20, MA18/N89). Pending when a claim
    billed to a later payer has no posted payment from it while an earlier one does, or when a
    crossover is not yet followed by another payer's payment.
    """
    posted = set().union(*(c.posted_payers for c in claims)) if claims else set()
    if not posted:
        return False  # nothing adjudicated yet: nothing is the patient's either
    if any(c.payer_id not in c.posted_payers for c in claims):
        return True
    return bool(crossover_payers) and not (posted - crossover_payers)
