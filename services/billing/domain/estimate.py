"""Patient estimates: what the patient is expected to owe for a visit, before the payer says.

Insured (issue 21 item 2, from the 271's in-network individual benefits):
- a stated copay is what the patient owes (never more than the charges);
- otherwise the remaining deductible is owed first, then the coinsurance percent of the rest;
- either way capped at the remaining out-of-pocket maximum, when the 271 states it.
A 271 that states none of copay, deductible or coinsurance gives no estimate (basis
``unknown``): a guess would be shown to the patient as a promise.

Self-pay or uninsured: the patient owes the charges, and gets a Good Faith Estimate (the No
Surprises Act's notice for scheduled services, 45 CFR 149.610), see ``good_faith_estimate``.

Money is Decimal throughout. Rounding: a line charge is unit price x units, and the
coinsurance is percent x (charges - deductible) / 100; each is rounded once, to the cent,
half up (0.005 -> 0.01). Nothing else is rounded: the rest is sums and minimums of cents.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
HUNDRED = Decimal(100)

Basis = Literal["copay", "deductible_coinsurance", "self_pay", "unknown"]


def cents(value: Decimal) -> Decimal:
    """Round to the cent, half up (the one rounding rule of an estimate)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class Benefits:
    """In-network, individual benefits as the 271 states them; None when it does not."""

    copay: Decimal | None = None
    coinsurance_percent: Decimal | None = None  # 20 means the patient pays 20 %
    deductible_remaining: Decimal | None = None
    out_of_pocket_remaining: Decimal | None = None

    def __post_init__(self) -> None:
        for name in ("copay", "deductible_remaining", "out_of_pocket_remaining"):
            v = getattr(self, name)
            if v is not None and (not v.is_finite() or v < 0):
                raise ValueError(f"{name} must be zero or a positive amount")
        pct = self.coinsurance_percent
        if pct is not None and (not pct.is_finite() or pct < 0 or pct > HUNDRED):
            raise ValueError("coinsurance_percent must be between 0 and 100")

    @property
    def stated(self) -> bool:
        return (
            self.copay is not None
            or self.coinsurance_percent is not None
            or self.deductible_remaining is not None
        )


@dataclass(frozen=True, slots=True)
class EstimateLine:
    code: str
    units: Decimal
    unit_price: Decimal | None  # None: the site's chargemaster has no price for it
    description: str | None = None
    modifiers: tuple[str, ...] = ()

    @property
    def charge(self) -> Decimal | None:
        return None if self.unit_price is None else cents(self.unit_price * self.units)


@dataclass(frozen=True)
class Estimate:
    basis: Basis
    lines: tuple[EstimateLine, ...]
    total_charge: Decimal
    patient_responsibility: Decimal | None  # None: basis unknown
    payer_responsibility: Decimal | None
    copay: Decimal = ZERO
    deductible: Decimal = ZERO  # the part of the remaining deductible these charges use
    coinsurance: Decimal = ZERO
    capped_by_out_of_pocket: bool = False
    benefits: Benefits | None = None

    @property
    def unpriced(self) -> list[str]:
        """Codes without a price: the total leaves them out, the estimate must say so."""
        return [ln.code for ln in self.lines if ln.unit_price is None]


def estimate(lines: list[EstimateLine], benefits: Benefits | None) -> Estimate:
    """The patient's expected share of ``lines``: ``benefits`` None means self-pay.

    Raises ValueError for a negative unit price or units (never a silent zero).
    """
    for ln in lines:
        if ln.units <= 0 or (ln.unit_price is not None and ln.unit_price < 0):
            raise ValueError(f"line {ln.code}: units must be positive and prices not negative")
    total = sum((ln.charge for ln in lines if ln.charge is not None), ZERO)
    items = tuple(lines)
    if benefits is None:
        return Estimate("self_pay", items, total, total, ZERO)
    if not benefits.stated:
        return Estimate("unknown", items, total, None, None, benefits=benefits)
    copay = deductible = coinsurance = ZERO
    if benefits.copay is not None:
        basis: Basis = "copay"
        copay = min(benefits.copay, total)
        owed = copay
    else:
        basis = "deductible_coinsurance"
        deductible = min(benefits.deductible_remaining or ZERO, total)
        pct = benefits.coinsurance_percent or ZERO
        coinsurance = cents((total - deductible) * pct / HUNDRED)
        owed = deductible + coinsurance
    capped = (
        benefits.out_of_pocket_remaining is not None and owed > benefits.out_of_pocket_remaining
    )
    if capped:
        owed = benefits.out_of_pocket_remaining
    return Estimate(
        basis,
        items,
        total,
        owed,
        total - owed,
        copay=copay,
        deductible=deductible,
        coinsurance=coinsurance,
        capped_by_out_of_pocket=capped,
        benefits=benefits,
    )


# ----------------------------------------------------------------- Good Faith Estimate


@dataclass(frozen=True, slots=True)
class GfeProvider:
    """The provider or facility furnishing the services, as the estimate names it."""

    name: str
    npi: str | None = None
    tax_id: str | None = None
    location: str | None = None  # one line: street, city, state, ZIP


@dataclass(frozen=True, slots=True)
class GfePatient:
    name: str | None = None  # PHI: only ever in the document, never in a log or URL
    birth_date: date | None = None


DISPUTE_THRESHOLD = Decimal("400.00")


def good_faith_estimate(
    est: Estimate,
    provider: GfeProvider,
    *,
    patient: GfePatient | None = None,
    service_date: date | None = None,
    diagnoses: tuple[str, ...] = (),
    issued_on: date,
) -> str:
    """The Good Faith Estimate for a self-pay or uninsured patient, as plain text.

    Holds what 45 CFR 149.610(c) asks for, in rcm's own words: the patient, the provider
    (name, NPI, TIN, location), the expected services with their codes, units and charges,
    the diagnosis codes when known, the total, and the disclaimers: an estimate only, other
    services may be scheduled separately, not a contract, and the right to dispute a bill
    $400 or more above it. Raises ValueError for an estimate that is not self-pay.
    """
    if est.basis != "self_pay":
        raise ValueError("a Good Faith Estimate is for self-pay or uninsured patients")
    p = patient or GfePatient()
    out = [
        "GOOD FAITH ESTIMATE",
        "For patients without insurance or not using insurance (No Surprises Act)",
        "",
        f"Issued on: {issued_on.isoformat()}",
        f"Patient: {p.name or '(name as scheduled)'}",
        f"Date of birth: {p.birth_date.isoformat() if p.birth_date else '(as scheduled)'}",
        f"Scheduled date of service: {service_date.isoformat() if service_date else 'not yet scheduled'}",
        "",
        "Provider / facility",
        f"  {provider.name}",
        f"  NPI: {provider.npi or 'not stated'}    TIN: {provider.tax_id or 'not stated'}",
        f"  Location: {provider.location or 'not stated'}",
        "",
        "Expected services",
        f"  {'Code':<8}{'Description':<44}{'Units':>6}{'Price':>12}{'Amount':>12}",
    ]
    for ln in est.lines:
        code = ln.code + ("-" + "-".join(ln.modifiers) if ln.modifiers else "")
        desc = (ln.description or "")[:42]
        price = f"{ln.unit_price:,.2f}" if ln.unit_price is not None else "no price"
        amount = f"{ln.charge:,.2f}" if ln.charge is not None else "-"
        out.append(f"  {code:<8}{desc:<44}{_units(ln.units):>6}{price:>12}{amount:>12}")
    out.append(f"  {'Total expected charges':<70}{est.total_charge:>12,.2f}")
    if est.unpriced:
        out.append(
            "  Not priced yet, not in the total: "
            + ", ".join(est.unpriced)
            + " (ask us for the price before the visit)"
        )
    if diagnoses:
        out.append(f"Diagnosis codes: {', '.join(diagnoses)}")
    out += [
        "",
        "Please read",
        "- This is an estimate, not a bill. The services, items and charges you actually"
        " receive may differ from it.",
        "- Other services may be recommended during your care that have to be scheduled"
        " separately; they are not in this estimate and would come with their own estimate.",
        "- This estimate is not a contract. It does not oblige you to receive any of the"
        " services listed.",
        f"- Your right to dispute the bill: if you are billed ${DISPUTE_THRESHOLD:,.0f} or more"
        " above this estimate for any provider or facility named here, you may ask for the bill"
        " to be reviewed through the patient-provider dispute resolution process. Start it"
        " within 120 calendar days of the date on the bill. Keep a copy of this estimate.",
        "- To learn more, or to start a dispute, visit www.cms.gov/nosurprises or call"
        " 1-800-985-3059.",
    ]
    return "\n".join(out) + "\n"


def _units(units: Decimal) -> str:
    return format(units.normalize(), "f")  # 1, 2.5, 10 (never 1E+1)
