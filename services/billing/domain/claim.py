"""The claim: a coded encounter priced from the site's chargemaster, ready to scrub and send.

``build_claim`` never raises for missing or bad data: a claim with no payer, an unpriced
line or a bad pointer is still built, and ``scrubber.scrub`` reports every problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

from shared.events import (
    ClaimLine,
    CodedDiagnosis,
    CodedProcedure,
    Coverage,
    EncounterCodedPayload,
    Institutional,
    Organization,
    Person,
    Provider,
)

from .chargemaster import CENT, Chargemaster

if TYPE_CHECKING:
    from .cob import PriorAdjudication

MAX_PROFESSIONAL_DIAGNOSES = 12  # 837P HI segment: 12 composites
MAX_INSTITUTIONAL_DIAGNOSES = 25  # 837I: principal + 2 HI segments of 12 others

# Encounter class -> CMS place-of-service code, when the intake did not say.
_COB_ORDER = {"primary": 0, "secondary": 1, "tertiary": 2}
POS_BY_CLASS = {"AMB": "11", "EMER": "23", "IMP": "21", "OBSENC": "22", "HH": "12", "VR": "02"}


@dataclass(frozen=True, slots=True)
class ServiceLine:
    line_number: int
    code: str
    system: str  # "cpt" or "hcpcs"
    modifiers: tuple[str, ...]
    units: Decimal
    unit_price: Decimal | None  # None: not on the chargemaster (a scrub finding)
    charge: Decimal | None
    diagnosis_pointers: tuple[int, ...]
    service_date: date
    revenue_code: str | None = None
    ndc: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class Claim:
    claim_id: str  # also the patient control number, CLM01
    encounter_id: str
    site_id: str
    claim_type: Literal["professional", "institutional"]
    frequency_code: str  # CLM05-3: 1 original, 7 replacement, 8 void
    billing_provider: Organization
    patient: Person
    payer: Coverage | None  # the primary coverage, billed on this claim
    diagnoses: tuple[CodedDiagnosis, ...]
    lines: tuple[ServiceLine, ...]
    service_date: date
    end_date: date
    encounter_class: str = "AMB"
    rendering_provider: Provider | None = None
    other_coverages: tuple[Coverage, ...] = ()  # secondary/tertiary -> 2320/2330 loops
    place_of_service: str | None = None
    prior_authorization: str | None = None
    institutional: Institutional | None = None
    icd10pcs: tuple[CodedProcedure, ...] = ()  # institutional procedures (HI BBR/BBQ)
    original_claim_id: str | None = None
    payer_claim_control_number: str | None = None  # REF*F8 on replacement/void
    # A secondary/tertiary claim (``cob.build_cob_claim``): what the primary (then the
    # secondary) payer decided, in COB order, lines numbered as the claim's. Empty otherwise.
    prior_adjudications: tuple[PriorAdjudication, ...] = ()

    @property
    def total_charge(self) -> Decimal:
        """Sum of priced line charges (unpriced lines are scrub findings)."""
        return sum((ln.charge for ln in self.lines if ln.charge is not None), Decimal("0.00"))

    @property
    def relationship(self) -> str:
        return self.payer.relationship if self.payer else "self"

    @property
    def subscriber(self) -> Person | None:
        """The insured person: the patient when the relationship is self."""
        if self.payer is None or self.payer.relationship == "self":
            return self.patient
        return self.payer.subscriber

    @property
    def filing_indicator(self) -> str:
        return self.payer.filing_indicator if self.payer else "CI"

    def event_lines(self) -> list[ClaimLine]:
        """Lines in the ``claim.submitted`` event shape (unpriced lines count as 0.00)."""
        return [
            ClaimLine(
                line_number=ln.line_number,
                code=ln.code,
                modifiers=list(ln.modifiers),
                units=ln.units,
                charge=ln.charge if ln.charge is not None else Decimal("0.00"),
                service_date=ln.service_date,
                revenue_code=ln.revenue_code,
            )
            for ln in self.lines
        ]


def build_claim(
    coded: EncounterCodedPayload,
    *,
    claim_id: str,
    chargemaster: Chargemaster,
    frequency_code: str = "1",
    original_claim_id: str | None = None,
    payer_claim_control_number: str | None = None,
) -> Claim:
    """Price a coded encounter into a claim. Never raises for missing data."""
    enc = coded.encounter
    claim_type = "institutional" if enc.institutional is not None else "professional"
    limit = (
        MAX_INSTITUTIONAL_DIAGNOSES if claim_type == "institutional" else MAX_PROFESSIONAL_DIAGNOSES
    )
    billable = [p for p in coded.procedures if p.system in ("cpt", "hcpcs")]
    diagnoses, remap = _select_diagnoses(coded.diagnoses, billable, limit)

    lines = []
    for n, proc in enumerate(billable, start=1):
        mods = tuple(m.upper() for m in proc.modifiers)
        item = chargemaster.lookup(proc.code, mods)
        unit_price = item.price if item else None
        charge = (unit_price * proc.units).quantize(CENT) if unit_price is not None else None
        lines.append(
            ServiceLine(
                line_number=n,
                code=proc.code.upper(),
                system=proc.system,
                modifiers=mods,
                units=proc.units,
                unit_price=unit_price,
                charge=charge,
                diagnosis_pointers=tuple(remap.get(p, p) for p in proc.diagnosis_pointers),
                service_date=proc.service_date or enc.service_date,
                revenue_code=proc.revenue_code or (item.revenue_code if item else None),
                ndc=proc.ndc,
                description=item.description if item else None,
            )
        )

    primary = enc.primary_coverage
    others = tuple(c for c in enc.coverages if c.sequence != "primary")
    line_dates = [ln.service_date for ln in lines] or [enc.service_date]
    start = min([enc.service_date, *line_dates])
    end = max([enc.end_date or enc.service_date, *line_dates])
    return Claim(
        claim_id=claim_id,
        encounter_id=enc.encounter_id,
        site_id=enc.site_id,
        claim_type=claim_type,
        frequency_code=frequency_code,
        billing_provider=enc.billing_provider,
        patient=enc.patient,
        payer=primary,
        diagnoses=tuple(diagnoses),
        lines=tuple(lines),
        service_date=start,
        end_date=end,
        encounter_class=enc.encounter_class,
        rendering_provider=enc.rendering_provider,
        other_coverages=tuple(sorted(others, key=lambda c: _COB_ORDER[c.sequence])),
        place_of_service=enc.place_of_service or POS_BY_CLASS.get(enc.encounter_class),
        prior_authorization=enc.prior_authorization,
        institutional=enc.institutional,
        icd10pcs=tuple(p for p in coded.procedures if p.system == "icd10pcs"),
        original_claim_id=original_claim_id,
        payer_claim_control_number=payer_claim_control_number,
    )


def _select_diagnoses(
    diagnoses: list[CodedDiagnosis], procedures: list[CodedProcedure], limit: int
) -> tuple[list[CodedDiagnosis], dict[int, int]]:
    """Fit the diagnoses into the claim's slots, keeping principal and pointed-to codes.

    Returns the kept diagnoses and a map old 1-based pointer -> new pointer. When more
    codes are pointed to than fit, all pointed-to codes are kept (the scrubber flags it).
    """
    if len(diagnoses) <= limit:
        return list(diagnoses), {}
    pointed = {
        p for proc in procedures for p in proc.diagnosis_pointers if 1 <= p <= len(diagnoses)
    }
    keep = sorted(pointed | {1})
    for i in range(1, len(diagnoses) + 1):
        if len(keep) >= limit:
            break
        if i not in keep:
            keep.append(i)
    keep.sort()
    return [diagnoses[i - 1] for i in keep], {old: new for new, old in enumerate(keep, start=1)}
