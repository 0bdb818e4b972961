"""Coordination of benefits: the next payer's claim, built from the prior payers' adjudication.

``build_cob_claim`` takes a claim billed to the primary payer and what the primary (and for a
tertiary claim, the secondary) payer decided, as read from their 835s, and returns the claim
for the next coverage on file: the 837 then carries SBR01 S (or T), a 2320/2330 loop per other
payer with its claim-level CAS, AMT*D (what it paid, 0 when nothing), DTP*573 and REF*F8, and
a 2430 loop (SVD, CAS, DTP*573) per line and adjudicating payer.

The 835 is read by the payments service; billing never imports it. Callers turn each 835
claim payment into the small ``PriorAdjudication`` below.

Every line must balance for every prior payer (charge = paid + adjustments) and each
payer's claim total must agree with its lines, or the claim is refused with the reasons
(``CobRefused``): a payer would reject it, and the money would not add up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from .claim import Claim, ServiceLine

ZERO = Decimal("0.00")
NEXT_SEQUENCE = ("secondary", "tertiary")
REVERSAL = "22"  # CLP02: a reversal is not an adjudication to bill the next payer from


@dataclass(frozen=True, slots=True)
class PriorAdjustment:
    """One CAS group/reason/amount."""

    group: str  # CO, PR, OA, PI, CR
    reason: str  # CARC
    amount: Decimal
    quantity: Decimal | None = None


@dataclass(frozen=True, slots=True)
class PriorLine:
    """One service line as a prior payer adjudicated it (835 loop 2110)."""

    code: str  # SVC01-2 (as adjudicated)
    modifiers: tuple[str, ...]
    charge: Decimal  # SVC02
    paid: Decimal  # SVC03
    adjustments: tuple[PriorAdjustment, ...] = ()
    units: Decimal = Decimal(1)  # SVC05, paid units
    qualifier: str = "HC"  # SVC01-1
    billed_code: str | None = None  # SVC06-2, when the payer changed the code
    billed_modifiers: tuple[str, ...] = ()
    line_number: int | None = None  # the claim's line number (REF*6R), when known

    @property
    def adjusted(self) -> Decimal:
        return sum((a.amount for a in self.adjustments), ZERO)

    def matches(self, ln: ServiceLine) -> bool:
        """Same billed code and modifiers as the claim line."""
        code = self.billed_code or self.code
        mods = self.billed_modifiers if self.billed_code else self.modifiers
        return code.upper() == ln.code and tuple(m.upper() for m in mods) == ln.modifiers


@dataclass(frozen=True, slots=True)
class PriorAdjudication:
    """One prior payer's decision on the claim (an 835 claim payment, loop 2100)."""

    adjudication_date: date  # DTP*573: the 835's payment or production date
    charge: Decimal  # CLP03
    paid: Decimal  # CLP04
    payer_claim_control_number: str | None = None  # CLP07, sent as REF*F8
    adjustments: tuple[PriorAdjustment, ...] = ()  # claim level (CAS after CLP)
    lines: tuple[PriorLine, ...] = ()
    status: str = "1"  # CLP02

    @property
    def patient_responsibility(self) -> Decimal:
        """What this payer left to the patient (PR adjustments, claim and line level)."""
        items = [*self.adjustments, *(a for ln in self.lines for a in ln.adjustments)]
        return sum((a.amount for a in items if a.group == "PR"), ZERO)

    def line(self, line_number: int) -> PriorLine | None:
        return next((ln for ln in self.lines if ln.line_number == line_number), None)


class CobRefused(ValueError):
    """The next payer's claim cannot be built; ``reasons`` says why (no PHI)."""

    def __init__(self, reasons: list[str]):
        self.reasons = reasons
        super().__init__("; ".join(reasons))


def build_cob_claim(claim: Claim, prior: Sequence[PriorAdjudication]) -> Claim:
    """The claim for the next payer after ``prior`` (primary first, then secondary).

    ``claim`` is the claim as billed to the primary payer (``build_claim``). The result
    bills the secondary coverage (one prior adjudication) or the tertiary (two), lists every
    other coverage in its 2320 loops, and carries the prior adjudications with their lines
    put in the claim's line order. Raises ``CobRefused`` with every reason found: no such
    coverage on file, a reversal, a total or line that does not match the claim, a line
    that does not balance.
    """
    if claim.payer is None or claim.payer.sequence != "primary" or claim.prior_adjudications:
        raise CobRefused(["the claim must be the one billed to the primary payer"])
    if not 1 <= len(prior) <= len(NEXT_SEQUENCE):
        raise CobRefused([f"1 or 2 prior adjudications are needed, got {len(prior)}"])
    coverages = {c.sequence: c for c in (claim.payer, *claim.other_coverages)}
    target = NEXT_SEQUENCE[len(prior) - 1]
    if target not in coverages:
        raise CobRefused([f"no {target} coverage on file to bill"])
    reasons: list[str] = []
    matched = []
    for i, adjudication in enumerate(prior):
        who = ("primary", "secondary")[i] + " payer"
        matched.append(_checked(claim, adjudication, who, reasons))
    if reasons:
        raise CobRefused(reasons)
    others = tuple(c for seq, c in sorted(coverages.items(), key=_order) if seq != target)
    return replace(
        claim,
        payer=coverages[target],
        other_coverages=others,
        frequency_code="1",
        original_claim_id=None,
        payer_claim_control_number=None,
        prior_adjudications=tuple(matched),
    )


def _m(amount: Decimal) -> str:
    """An amount in a reason, with its cents (an 835 may write 175 for 175.00)."""
    return f"{amount:.2f}"


def _order(item) -> int:
    return ("primary", "secondary", "tertiary").index(item[0])


def _checked(claim: Claim, a: PriorAdjudication, who: str, reasons: list[str]) -> PriorAdjudication:
    """``a`` with its lines in claim order and numbered, after checking it balances."""
    if a.status == REVERSAL:
        reasons.append(f"{who}: the claim payment is a reversal (CLP02 22), not an adjudication")
        return a
    if a.charge != claim.total_charge:
        reasons.append(
            f"{who}: charged {_m(a.charge)} but the claim totals {_m(claim.total_charge)}"
        )
    claim_adjusted = sum((x.amount for x in a.adjustments), ZERO)
    if not a.lines:  # adjudicated at claim level only (a whole-claim denial, say)
        if a.charge - a.paid != claim_adjusted:
            reasons.append(
                f"{who}: charge {_m(a.charge)} - paid {_m(a.paid)} != claim adjustments"
                f" {_m(claim_adjusted)}"
            )
        return a
    before = len(reasons)
    lines = _match_lines(claim.lines, a.lines, who, reasons)
    if len(reasons) > before:
        return a  # unmatched lines: the totals below would only repeat it
    for ln, pl in lines:
        if pl.charge != ln.charge:
            reasons.append(
                f"{who}: line {ln.line_number} ({ln.code}) adjudicated at {_m(pl.charge)},"
                f" billed at {_m(ln.charge)}"
            )
        if pl.paid + pl.adjusted != pl.charge:
            reasons.append(
                f"{who}: line {ln.line_number} ({ln.code}) does not balance: charge {_m(pl.charge)}"
                f" != paid {_m(pl.paid)} + adjustments {_m(pl.adjusted)}"
            )
    line_paid = sum((pl.paid for _, pl in lines), ZERO)
    if line_paid - claim_adjusted != a.paid:
        reasons.append(
            f"{who}: paid {_m(a.paid)} != line payments {_m(line_paid)} - claim adjustments"
            f" {_m(claim_adjusted)}"
        )
    return replace(a, lines=tuple(replace(pl, line_number=ln.line_number) for ln, pl in lines))


def _find_line(ln: ServiceLine, candidates: list[PriorLine]) -> PriorLine | None:
    for p in candidates:  # the payer echoed the line number
        if p.line_number == ln.line_number:
            return p
    unnumbered = [p for p in candidates if p.line_number is None and p.matches(ln)]
    same_charge = [p for p in unnumbered if p.charge == ln.charge]
    return (same_charge or unnumbered or [None])[0]


def _match_lines(
    claim_lines: Sequence[ServiceLine], prior: Sequence[PriorLine], who: str, reasons: list[str]
) -> list[tuple[ServiceLine, PriorLine]]:
    """Pair each claim line with the payer's line for it: by line number when the payer
    echoed one, else by code, modifiers and charge, else by code and modifiers, in order."""
    unused = list(prior)
    out = []
    for ln in claim_lines:
        found = _find_line(ln, unused)
        if found is None:
            reasons.append(
                f"{who}: no adjudicated service line for line {ln.line_number} ({ln.code})"
            )
            continue
        unused.remove(found)
        out.append((ln, found))
    if unused:
        reasons.append(f"{who}: {len(unused)} adjudicated service line(s) match no claim line")
    return out


# --------------------------------------------------------------------------- a denied prior claim
#
# Whether a prior payer's DENIAL may go on to the next payer (billed with AMT*D 0), decided by
# the denial's CARCs. A final benefit decision goes on: the next payer adjudicates the service
# under its own benefits. A denial the provider can fix (the primary never really decided) or
# one saying another payer is primary does not: the next payer would deny it as unprocessed by
# the primary, or pay as secondary what it owes as primary. See docs/coordination-of-benefits.md.

# The payer says another coverage pays first (109: "not covered by this payer/contractor, send it
# to the correct payer"; 22: "may be covered by another payer per COB") or that its coverage was
# not in force on the date of service (26 before coverage, 27 after it ended): the coverage order
# on file is wrong.
COVERAGE_ORDER_CARCS = frozenset({"22", "26", "27", "109"})
# The provider can correct the claim and resubmit (or appeal) it to the same payer: missing or
# invalid information (16, 31, 140, 125, 146, 181, 182), coding inconsistencies (4-12), bundling
# (97), duplicate (18), timely filing (29), authorization (15, 197, 198).
CORRECTABLE_CARCS = frozenset(
    {"4", "5", "6", "7", "8", "9", "10", "11", "12", "15", "16", "18", "29", "31", "97"}
    | {"125", "140", "146", "181", "182", "197", "198"}
)
# Final decisions on the service itself (non-covered, benefit limits, medical necessity under
# the payer's policy, the patient's cost sharing, contractual and prior-payer amounts): the next
# payer decides its own share of them.
FINAL_CARCS = frozenset(
    {"1", "2", "3", "23", "35", "45", "49", "50", "51", "55", "56", "96", "119", "149", "167"}
    | {"204", "242", "253"}
)


@dataclass(frozen=True, slots=True)
class NextPayerHold:
    """Why a denied prior claim may not go to the next payer yet (amounts and codes only)."""

    code: str  # COB_COVERAGE_ORDER | COB_PRIOR_DENIAL_CORRECTABLE | COB_PRIOR_DENIAL_REVIEW
    message: str


def denial_hold(a: PriorAdjudication, who: str = "primary payer") -> NextPayerHold | None:
    """None when ``a``, a denial (payments' outcome), may be billed to the next payer; else
    why not. Every CAS of the claim and its lines counts, the strongest reason wins: another
    payer primary, then a correctable denial, then a provider-liable (CO, OA, PI) CARC of no
    known class; patient-responsibility (PR) CARCs and the final ones go on."""
    found = [*a.adjustments, *(x for ln in a.lines for x in ln.adjustments)]
    codes = sorted({f"{x.group}-{x.reason}" for x in found}, key=_carc_order)

    def hit(carcs: frozenset[str]) -> list[str]:
        return [c for c in codes if c.split("-", 1)[1] in carcs]

    if order := hit(COVERAGE_ORDER_CARCS):
        return NextPayerHold(
            "COB_COVERAGE_ORDER",
            f"{who} denied with {', '.join(order)}: another coverage pays first or this one was"
            " not in force; verify the coverage order before billing the next payer",
        )
    if fixable := hit(CORRECTABLE_CARCS):
        return NextPayerHold(
            "COB_PRIOR_DENIAL_CORRECTABLE",
            f"{who} denied with {', '.join(fixable)}: correct and resubmit (or appeal) that"
            " claim first; the next payer is billed from its new decision",
        )
    unknown = [
        c for c in codes if c.split("-", 1)[0] != "PR" and c.split("-", 1)[1] not in FINAL_CARCS
    ]
    if unknown:
        return NextPayerHold(
            "COB_PRIOR_DENIAL_REVIEW",
            f"{who} denied with {', '.join(unknown)}: not a known final decision; review it"
            " before billing the next payer",
        )
    return None


def _carc_order(code: str) -> tuple[str, int, str]:
    group, reason = code.split("-", 1)
    return (group, int(reason) if reason.isdigit() else 10_000, reason)
