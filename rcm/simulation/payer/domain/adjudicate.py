"""Adjudicate a submitted claim the way a payer would, deterministically.

Per line: allowed = min(charge, fee schedule x payer multiplier); the difference is a
CO-45 contractual adjustment; the patient owes PR-1 deductible, PR-2 coinsurance or PR-3
copay; the payer pays the rest. About ``denial_rate`` of claims draw a denial from a
realistic CARC/RARC mix. Replacements (frequency 7) are always paid; voids (frequency 8)
come back as a zero-pay reversal (CLP02 22). A secondary or tertiary claim carrying the
prior payers' adjudication (2430 loops) is paid from what the last prior payer left to the
patient, up to this payer's own allowed amount less what was already paid (``_after_prior``);
a commercial plan second to Medicare is a Medigap plan and, like Plan G, leaves Medicare's Part
B deductible (PR-1) to the patient. A line every prior payer denied, leaving nothing to the
patient (non-covered, sent on with AMT*D 0), is decided under this payer's own benefits, as if
it were first (a Medigap plan pays nothing on it).
Medicare forwards the claims of a patient with Medicaid as secondary to that Medicaid
itself (a COBA crossover): CLP02 19, MA18 and NM1*TT on Medicare's 835, then Medicaid's own
835 on the same claim (``crossover``), except for about ``crossover_lost_rate`` of them,
whose second 835 never comes (the provider must notice and follow up).
Every result balances, per line and per claim: charge - paid == sum(adjustments).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Literal

from .acknowledge import acknowledge
from .draw import draw, payer_claim_control_number, pick
from .fees import CENT, FeeSchedule, copay, fee_multiplier, payer_class
from .model import (
    AdjudicatedLine,
    Adjudication,
    Adjustment,
    OtherPayer,
    SubmittedClaim,
    SubmittedLine,
)

__all__ = [
    "AdjudicationRules",
    "Denial",
    "DENIALS",
    "FeeSchedule",
    "acknowledge",
    "adjudicate",
    "crossover",
]

ZERO = Decimal("0.00")
_STATUS_BY_SEQUENCE = {"P": "1", "S": "2", "T": "3"}
PROCESSED_AS_PRIMARY_FORWARDED = "19"  # CLP02
FORWARDED_TO_SUPPLEMENTAL = "MA18"  # RARC: claim also forwarded to the supplemental insurer
_NO_COST_SHARE = {"preventive", "vaccine"}  # ACA preventive services and immunizations


@dataclass(frozen=True)
class AdjudicationRules:
    """Knobs of the simulated payer. Raises ``ValueError`` for a rate outside [0, 1]."""

    seed: int
    denial_rate: Decimal = Decimal("0.15")
    coinsurance: Decimal = Decimal("0.20")
    deductible_rate: Decimal = Decimal("0.25")  # share of claims meeting an unmet deductible
    ack_reject_rate: Decimal = Decimal("0.02")  # share rejected at the 277CA front door
    timely_filing_days: int | None = 365
    crossover_lost_rate: Decimal = Decimal("0.10")  # forwarded claims the next payer never pays

    def __post_init__(self) -> None:
        for name in (
            "denial_rate",
            "coinsurance",
            "deductible_rate",
            "ack_reject_rate",
            "crossover_lost_rate",
        ):
            value = Decimal(getattr(self, name))
            if not 0 <= value <= 1:
                raise ValueError(f"AdjudicationRules.{name} must be between 0 and 1")
            object.__setattr__(self, name, value)


@dataclass(frozen=True, slots=True)
class Denial:
    group: str
    reason: str  # CARC
    scope: Literal["claim", "line"]  # line: one line denied when the claim has several
    weight: int
    line_remarks: tuple[str, ...] = ()  # RARC on the denied lines (LQ*HE)
    claim_remarks: tuple[str, ...] = ()  # RARC at claim level (MOA)

    @property
    def label(self) -> str:
        return f"{self.group}-{self.reason}"


DENIALS: tuple[Denial, ...] = (
    Denial("CO", "16", "claim", 14, ("N290",), ("MA130",)),  # missing rendering provider id
    Denial("CO", "16", "claim", 6, ("M51",), ("MA130",)),  # invalid procedure code
    Denial("CO", "50", "line", 14, ("N115",)),  # not medically necessary (LCD)
    Denial("CO", "97", "line", 12, ("M15",)),  # bundled into another service
    Denial("CO", "197", "claim", 12, ("M62",)),  # no precertification/authorization
    Denial("CO", "27", "claim", 8, (), ("N30",)),  # coverage terminated
    Denial("CO", "29", "claim", 8),  # timely filing limit expired
    Denial("CO", "18", "claim", 8),  # exact duplicate
    Denial("CO", "96", "line", 10, ("N130",)),  # non-covered charge
    Denial("PR", "204", "line", 8, ("N130",)),  # not covered by the plan: patient owes it
)
_TIMELY_FILING = next(d for d in DENIALS if d.reason == "29")
_MEDICAL_NECESSITY = next(d for d in DENIALS if d.reason == "50")


def _choose_denial(rules: AdjudicationRules, claim: SubmittedClaim) -> Denial:
    total = sum(d.weight for d in DENIALS)
    point = pick(rules.seed, claim.claim_id, "denial-reason", total)
    for denial in DENIALS:
        point -= denial.weight
        if point < 0:
            break
    if denial.reason == "197" and claim.prior_authorization:
        return _MEDICAL_NECESSITY  # an authorized claim cannot lack authorization
    return denial


def _denial_for(rules: AdjudicationRules, claim: SubmittedClaim, as_of: date) -> Denial | None:
    if claim.frequency_code == "7":
        return None  # corrected claims are the fix for the earlier denial: always paid
    limit = rules.timely_filing_days
    if limit is not None and (as_of - claim.service_date).days > limit:
        return _TIMELY_FILING
    if draw(rules.seed, claim.claim_id, "denial") < rules.denial_rate:
        return _choose_denial(rules, claim)
    return None


def _denied_lines(rules: AdjudicationRules, claim: SubmittedClaim, denial: Denial) -> set[int]:
    """Indexes (not LX numbers, which a sender may repeat) of the lines the denial hits."""
    lines = claim.lines
    if denial.scope == "claim" or len(lines) == 1:
        return set(range(len(lines)))
    if denial.reason == "97":  # the add-on (cheapest line) is bundled into the main service
        return {min(range(len(lines)), key=lambda i: (lines[i].charge, -i))}
    return {pick(rules.seed, claim.claim_id, "denied-line", len(lines))}


def _denied_line(line: SubmittedLine, denial: Denial) -> AdjudicatedLine:
    adjustments = (Adjustment(denial.group, denial.reason, line.charge),) if line.charge else ()
    return AdjudicatedLine(line, ZERO, ZERO, adjustments, denial.line_remarks)


class _CostShare:
    """Patient cost sharing across the lines of one claim (one copay, one deductible)."""

    def __init__(self, rules: AdjudicationRules, claim: SubmittedClaim, cls: str):
        self.rules, self.claim, self.cls = rules, claim, cls
        self.copay_used = False
        self.deductible_left = ZERO
        if (
            cls != "medicaid"
            and draw(rules.seed, claim.claim_id, "deductible") < rules.deductible_rate
        ):
            options = ("240.00",) if cls == "medicare" else ("100.00", "250.00", "500.00")
            self.deductible_left = Decimal(
                options[pick(rules.seed, claim.claim_id, "ded-amt", len(options))]
            )

    def split(self, allowed: Decimal, kind: str) -> list[Adjustment]:
        if kind in _NO_COST_SHARE or allowed == 0:
            return []
        out: list[Adjustment] = []
        flat = copay(self.cls, self.claim.payer_id, kind)
        if flat and not self.copay_used:
            self.copay_used = True
            out.append(Adjustment("PR", "3", min(flat, allowed)))
            return out  # a copay visit carries no coinsurance
        remaining = allowed
        if self.deductible_left:
            ded = min(self.deductible_left, remaining)
            self.deductible_left -= ded
            remaining -= ded
            out.append(Adjustment("PR", "1", ded))
        if self.cls != "medicaid" and remaining > 0:
            coins = (remaining * self.rules.coinsurance).quantize(CENT)
            if coins:
                out.append(Adjustment("PR", "2", coins))
        return out


def _priced_line(
    line, fees: FeeSchedule, multiplier: Decimal, share: _CostShare
) -> AdjudicatedLine:
    fee = fees.fee(line.code, line.modifiers) if line.code else None
    if fee is None:
        allowed, kind = (line.charge * fees.unknown_rate).quantize(CENT), "other"
    else:
        allowed = min(line.charge, (fee.allowed * line.units * multiplier).quantize(CENT))
        kind = fee.kind
    adjustments: list[Adjustment] = []
    if line.charge > allowed:
        adjustments.append(Adjustment("CO", "45", line.charge - allowed))
    patient = share.split(allowed, kind)
    adjustments.extend(patient)
    paid = allowed - sum((a.amount for a in patient), ZERO)
    return AdjudicatedLine(line, allowed, paid, tuple(adjustments))


def _void(claim: SubmittedClaim, icn: str, as_of: date) -> Adjudication:
    # A void cancels the claim: nothing is paid, the whole charge is an other-adjustment,
    # and MA67 (correction to a prior claim) tells the provider why.
    lines = tuple(
        AdjudicatedLine(
            ln, ZERO, ZERO, (Adjustment("OA", "A1", ln.charge),) if ln.charge else (), ("MA67",)
        )
        for ln in claim.lines
    )
    return Adjudication(claim, "22", icn, as_of, lines, _balance_fix(claim), ("MA67",))


def _balance_fix(claim: SubmittedClaim) -> tuple[Adjustment, ...]:
    # CLM02 should equal the sum of the lines; when it does not, the difference is a
    # claim-level CO-16 so the remittance still balances.
    diff = claim.total_charge - claim.line_charge_total
    return (Adjustment("CO", "16", diff),) if diff else ()


def _cob_line(
    line: SubmittedLine, fees: FeeSchedule, multiplier: Decimal, cls: str, medigap: bool
) -> AdjudicatedLine:
    """One line of a secondary/tertiary claim: the payer covers what the prior payer left to
    the patient, up to its own allowed amount less what the prior payers paid. The prior
    payers' share and write-offs are OA-23 (impact of prior payer adjudication); what this
    payer does not cover stays the patient's (PR-2; PR-1 for the Part B deductible a Medigap
    plan leaves to the patient, as Plan G does), or is written off (CO-45) by Medicaid, the
    payer of last resort, which bills no patient for a covered service."""
    left = line.prior_patient or ZERO
    fee = fees.fee(line.code, line.modifiers) if line.code else None
    if fee is None:
        allowed = (line.charge * fees.unknown_rate).quantize(CENT)
    else:
        allowed = min(line.charge, (fee.allowed * line.units * multiplier).quantize(CENT))
    if not medigap and line.charge and line.prior_paid == 0 and left == 0:
        # Every prior payer denied the line and left nothing to the patient (a service it does
        # not cover): this payer decides it under its own benefits, as if it were the first. A
        # Medigap plan only shares Medicare's cost of what Medicare covers, so it pays nothing.
        covered = min(allowed, line.charge)
        written_off = (
            (Adjustment("CO", "45", line.charge - covered),) if line.charge > covered else ()
        )
        return AdjudicatedLine(line, covered, covered, written_off)
    kept = min(left, line.prior_deductible) if medigap else ZERO
    paid = max(ZERO, min(left - kept, allowed - line.prior_paid))
    adjustments = []
    if line.charge > left:
        adjustments.append(Adjustment("OA", "23", line.charge - left))
    if kept:
        adjustments.append(Adjustment("PR", "1", kept))
    if left - kept > paid:
        adjustments.append(
            Adjustment("CO", "45", left - kept - paid)
            if cls == "medicaid"
            else Adjustment("PR", "2", left - kept - paid)
        )
    return AdjudicatedLine(line, min(allowed, line.charge), paid, tuple(adjustments))


def _after_prior(
    claim: SubmittedClaim,
    icn: str,
    as_of: date,
    fees: FeeSchedule,
    multiplier: Decimal,
    cls: str,
) -> Adjudication:
    """A secondary/tertiary claim: no random denial (the prior payer already decided
    coverage), each line paid from the prior payer's patient responsibility."""
    # A commercial plan second to Medicare is a Medicare supplement (Medigap).
    medigap = cls == "commercial" and any(
        o.sequence == "P" and payer_class(o.filing_indicator, o.name) == "medicare"
        for o in claim.other_payers
    )
    lines = tuple(_cob_line(ln, fees, multiplier, cls, medigap) for ln in claim.lines)
    extra = _balance_fix(claim)
    return Adjudication(
        claim=claim,
        status=_STATUS_BY_SEQUENCE.get(claim.payer_sequence, "2"),
        payer_claim_control_number=icn,
        received_date=as_of,
        lines=lines,
        adjustments=extra,
        remarks=("M79",) if extra else (),
    )


def adjudicate(
    claim: SubmittedClaim, rules: AdjudicationRules, fee_schedule: FeeSchedule, as_of: date
) -> Adjudication:
    """Decide one claim. Deterministic given (rules.seed, claim.claim_id) and the claim data.

    ``as_of`` is the adjudication (received) date: it drives timely filing. Never raises
    for business reasons: anything a payer would refuse comes back as a denial.
    """
    icn = payer_claim_control_number(rules.seed, claim.claim_id)
    if claim.frequency_code == "8":
        return _void(claim, icn, as_of)
    cls = payer_class(claim.filing_indicator, claim.payer_name)
    multiplier = fee_multiplier(cls, claim.payer_id)
    if claim.is_cob:
        return _after_prior(claim, icn, as_of, fee_schedule, multiplier, cls)
    share = _CostShare(rules, claim, cls)
    denial = _denial_for(rules, claim, as_of)
    denied = _denied_lines(rules, claim, denial) if denial else set()
    lines = tuple(
        _denied_line(ln, denial)
        if i in denied
        else _priced_line(ln, fee_schedule, multiplier, share)
        for i, ln in enumerate(claim.lines)
    )
    extra = _balance_fix(claim)
    remarks = denial.claim_remarks if denial else ()
    if extra:
        remarks = (*remarks, "M79")
    if denial and len(denied) == len(claim.lines):
        status = "4"
    else:
        status = _STATUS_BY_SEQUENCE.get(claim.payer_sequence, "1")
    forward = _crossover_target(claim, cls) if status == "1" else None
    if forward is not None:
        status = PROCESSED_AS_PRIMARY_FORWARDED
        remarks = (*remarks, FORWARDED_TO_SUPPLEMENTAL)
    return Adjudication(
        claim=claim,
        status=status,
        payer_claim_control_number=icn,
        received_date=as_of,
        lines=lines,
        adjustments=extra,
        remarks=remarks,
        denial=denial.label if denial else None,
        crossover_to=forward,
    )


def _crossover_target(claim: SubmittedClaim, cls: str) -> OtherPayer | None:
    """Medicare, as primary, forwards a dual-eligible patient's claim to Medicaid (the
    secondary): the COBA crossover every state Medicaid has with Medicare."""
    if cls != "medicare" or claim.payer_sequence != "P" or claim.frequency_code != "1":
        return None
    return next(
        (
            o
            for o in claim.other_payers
            if o.sequence == "S" and payer_class(o.filing_indicator, o.name) == "medicaid"
        ),
        None,
    )


def crossover(
    primary: Adjudication, rules: AdjudicationRules, fee_schedule: FeeSchedule, as_of: date
) -> Adjudication | None:
    """The crossover payer's own adjudication of a claim the primary forwarded to it: a
    secondary adjudication of the same claim (same CLP01), paid from what the primary left
    to the patient. None when the primary forwarded nothing, or for the forwarded claims
    whose second 835 never comes (``crossover_lost_rate``)."""
    to = primary.crossover_to
    if to is None:
        return None
    if draw(rules.seed, primary.claim_id, "crossover-lost") < rules.crossover_lost_rate:
        return None
    left = [
        (a.paid, sum((x.amount for x in a.adjustments if x.group == "PR"), ZERO))
        for a in primary.lines
    ]
    claim = replace(
        primary.claim,
        payer_id=to.payer_id,
        payer_name=to.name,
        payer_sequence="S",
        filing_indicator=to.filing_indicator,
        payer_claim_control_number=None,
        other_payers=(),
        prior_paid=primary.paid,
        lines=tuple(
            replace(ln, prior_paid=paid, prior_patient=patient)
            for ln, (paid, patient) in zip(primary.claim.lines, left, strict=True)
        ),
    )
    cls = payer_class(to.filing_indicator, to.name)
    icn = payer_claim_control_number(rules.seed, f"{primary.claim_id}:{to.payer_id}")
    return _after_prior(claim, icn, as_of, fee_schedule, fee_multiplier(cls, to.payer_id), cls)
