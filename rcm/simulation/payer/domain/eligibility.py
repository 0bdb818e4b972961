"""What the simulated payer answers to one eligibility inquiry, decided deterministically.

A member's coverage is a hash of (seed, member id): the same member always gets the same
answer (active with benefits, inactive, another payer primary, not found, invalid id) in
any process and order. "Payer down" (AAA 42) is drawn per trace number instead, so a retry
(a new 270, a new trace number) usually gets through, as with a real payer's outage.

Member ids that start with a marker force an outcome, for tests and demos:
PAYERDOWN (AAA 42), BADID (AAA 72), NOTFOUND (AAA 75), INACTIVE, OTHERPRIMARY. DOWNONCE is
AAA 42 to the member's first inquiry and active coverage after it (an outage a retry gets
past; the caller counts the inquiries). A missing member id is AAA 72.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

from rcm.simulation.sites import PAYERS

from .draw import draw, pick
from .read_270 import Inquiry

Outcome = Literal["active", "inactive", "other_primary", "payer_down", "invalid_id", "not_found"]
CENT = Decimal("0.01")
MARKERS: dict[str, Outcome] = {
    "PAYERDOWN": "payer_down",
    "BADID": "invalid_id",
    "NOTFOUND": "not_found",
    "INACTIVE": "inactive",
    "OTHERPRIMARY": "other_primary",
}
DOWN_ONCE = "DOWNONCE"
# AAA03 reject reason and AAA04 follow-up action for each rejection.
REJECTIONS: dict[str, tuple[str, str]] = {
    "payer_down": ("42", "R"),  # unable to respond now; resubmission allowed
    "invalid_id": ("72", "C"),  # invalid/missing subscriber id; correct and resubmit
    "not_found": ("75", "C"),  # subscriber not found; correct and resubmit
}
# EB04 insurance type of another payer, from its claim filing indicator.
INSURANCE_TYPES = {"MB": "MB", "MA": "MA", "MC": "MC", "HM": "HM", "CI": "C1", "BL": "C1"}


@dataclass(frozen=True, slots=True)
class EligibilityRules:
    seed: int = 7
    payer_down_rate: Decimal = Decimal("0.02")
    invalid_id_rate: Decimal = Decimal("0.02")
    not_found_rate: Decimal = Decimal("0.02")
    inactive_rate: Decimal = Decimal("0.04")
    other_primary_rate: Decimal = Decimal("0.04")


@dataclass(frozen=True, slots=True)
class CostShare:
    """One network's patient share (amounts in dollars, coinsurance a fraction)."""

    copay: Decimal | None
    coinsurance: Decimal
    deductible: Decimal
    deductible_remaining: Decimal
    out_of_pocket: Decimal | None  # None: no cap (original Medicare)
    out_of_pocket_remaining: Decimal | None


@dataclass(frozen=True, slots=True)
class OtherPayer:
    payer_id: str
    name: str
    insurance_type: str  # EB04


@dataclass(frozen=True, slots=True)
class EligibilityDecision:
    outcome: Outcome
    plan_name: str | None = None
    plan_number: str | None = None
    plan_begin: date | None = None
    coverage_end: date | None = None  # inactive: the day coverage ended
    in_network: CostShare | None = None
    out_of_network: CostShare | None = None
    other_payer: OtherPayer | None = None  # other_primary: the payer that is primary

    @property
    def rejection(self) -> tuple[str, str] | None:
        """(AAA03, AAA04) when the inquiry is rejected."""
        return REJECTIONS.get(self.outcome)


def decide(
    inquiry: Inquiry, rules: EligibilityRules, today: date, earlier_inquiries: int = 0
) -> EligibilityDecision:
    """The payer's answer to one inquiry (``today`` stands in for a missing service date;
    ``earlier_inquiries``: how many times this member was asked about before)."""
    outcome = _outcome(inquiry, rules, earlier_inquiries)
    if outcome in REJECTIONS:
        return EligibilityDecision(outcome)
    member = inquiry.member_id or ""
    on = inquiry.service_date or today
    plan_begin = date(on.year, 1, 1)
    payer = PAYERS.get(inquiry.payer_id)
    kind = payer.kind if payer else "commercial"
    plan_name = f"{(payer.name if payer else inquiry.payer_name).upper()} {_plan_type(kind)}"
    plan_number = f"PLN{pick(rules.seed, member, 'plan', 10**6):06d}"
    if outcome == "inactive":
        ended = on - timedelta(days=1 + pick(rules.seed, member, "ended", 180))
        return EligibilityDecision(
            outcome, plan_name, plan_number, date(ended.year, 1, 1), coverage_end=ended
        )
    in_net = _cost_share(rules.seed, member, kind)
    out_net = _out_of_network(in_net)
    other = (
        _other_payer(rules.seed, member, inquiry.payer_id) if outcome == "other_primary" else None
    )
    return EligibilityDecision(
        outcome,
        plan_name,
        plan_number,
        plan_begin,
        in_network=in_net,
        out_of_network=out_net,
        other_payer=other,
    )


def _outcome(inquiry: Inquiry, rules: EligibilityRules, earlier_inquiries: int) -> Outcome:
    member = inquiry.member_id
    if not member:
        return "invalid_id"
    if member.upper().startswith(DOWN_ONCE):
        return "payer_down" if earlier_inquiries == 0 else "active"
    for marker, outcome in MARKERS.items():
        if member.upper().startswith(marker):
            return outcome
    if draw(rules.seed, inquiry.trace_number, "eligibility-down") < rules.payer_down_rate:
        return "payer_down"
    u = draw(rules.seed, member, "eligibility")
    for outcome, rate in (
        ("invalid_id", rules.invalid_id_rate),
        ("not_found", rules.not_found_rate),
        ("inactive", rules.inactive_rate),
        ("other_primary", rules.other_primary_rate),
    ):
        if u < rate:
            return outcome  # type: ignore[return-value]
        u -= rate
    return "active"


def _plan_type(kind: str) -> str:
    return {"medicare": "PART B", "medicaid": "STATE PLAN"}.get(kind, "PPO")


def _cost_share(seed: int, member: str, kind: str) -> CostShare:
    if kind == "medicare":  # Part B: annual deductible, then 20 %; no out-of-pocket cap
        deductible = Decimal("257.00")
        copay, coinsurance, oop = None, Decimal("0.2"), None
    elif kind == "medicaid":
        deductible = Decimal("0.00")
        copay, coinsurance, oop = Decimal("4.00"), Decimal("0"), Decimal("200.00")
    else:
        copay = Decimal((15, 20, 25, 30, 40, 50)[pick(seed, member, "copay", 6)]).quantize(CENT)
        coinsurance = Decimal(("0.1", "0.2", "0.3")[pick(seed, member, "coinsurance", 3)])
        deductible = Decimal((250, 500, 1000, 1500, 2000, 3000)[pick(seed, member, "ded", 6)])
        oop = deductible + Decimal((2000, 3000, 4500, 6000)[pick(seed, member, "oop", 4)])
    met = (deductible * draw(seed, member, "met")).quantize(CENT)
    if oop is None:
        oop_left = None
    else:
        oop = oop.quantize(CENT)
        oop_left = oop - met - ((oop - deductible) * draw(seed, member, "spent") / 4).quantize(CENT)
    return CostShare(
        copay=copay,
        coinsurance=coinsurance,
        deductible=deductible.quantize(CENT),
        deductible_remaining=(deductible - met).quantize(CENT),
        out_of_pocket=oop,
        out_of_pocket_remaining=oop_left,
    )


def _out_of_network(c: CostShare) -> CostShare:
    """Out of network: twice the copay, deductible and cap, 20 points more coinsurance."""
    return CostShare(
        copay=_twice(c.copay),
        coinsurance=min(c.coinsurance + Decimal("0.2"), Decimal("0.5")),
        deductible=c.deductible * 2,
        deductible_remaining=c.deductible_remaining * 2,
        out_of_pocket=_twice(c.out_of_pocket),
        out_of_pocket_remaining=_twice(c.out_of_pocket_remaining),
    )


def _twice(amount: Decimal | None) -> Decimal | None:
    return None if amount is None else amount * 2


def _other_payer(seed: int, member: str, payer_id: str) -> OtherPayer:
    """Another payer that pays first: never this one, and never Medicaid (last resort)."""
    candidates = [p for p in PAYERS.values() if p.payer_id != payer_id and p.kind != "medicaid"]
    p = candidates[pick(seed, member, "other-payer", len(candidates))]
    return OtherPayer(p.payer_id, p.name, INSURANCE_TYPES.get(p.filing_indicator, "C1"))
