"""What the payer simulator reads (a submitted 837) and what it decides about it.

Plain frozen dataclasses: the simulator is a test double, so these stay independent of
the event contract and of the billing service's claim model.
PHI (names, member ids) is kept for writing the 835/277CA and never put in errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

ClaimType = Literal["professional", "institutional"]


@dataclass(frozen=True, slots=True)
class SubmittedLine:
    line_number: int  # LX01
    code: str  # HCPCS/CPT from SV101-2 / SV202-2; "" for a revenue-code-only 837I line
    modifiers: tuple[str, ...]
    charge: Decimal
    units: Decimal
    service_date: date
    revenue_code: str | None = None  # SV201 (837I)
    line_control_number: str | None = None  # REF*6R, echoed in the 835
    # COB (2430 loops of a secondary/tertiary claim): what the prior payers paid on the line
    # (SVD02, summed) and what the last of them left to the patient (its PR CAS); None when
    # the line carries no prior payer's adjudication.
    prior_paid: Decimal = Decimal("0.00")
    prior_patient: Decimal | None = None
    prior_deductible: Decimal = Decimal("0.00")  # of prior_patient: the deductible (PR-1)


@dataclass(frozen=True, slots=True)
class OtherPayer:
    """Another coverage the claim names (2320 SBR + 2330B NM1*PR): who a crossover goes to."""

    sequence: str  # 2320 SBR01: P, S or T
    payer_id: str  # 2330B NM109
    name: str  # 2330B NM103
    filing_indicator: str = "CI"  # 2320 SBR09


@dataclass(frozen=True, slots=True)
class SubmittedClaim:
    claim_id: str  # CLM01, the patient control number
    total_charge: Decimal  # CLM02
    frequency_code: str  # CLM05-3: 1 original, 7 replacement, 8 void
    facility_code: str  # CLM05-1: place of service (837P) or facility type (837I)
    claim_type: ClaimType
    payer_id: str  # NM1*PR NM109, loop 2010BB
    payer_name: str
    billing_provider_npi: str | None
    billing_provider_tax_id: str | None
    billing_provider_name: str
    subscriber_last_name: str  # PHI
    subscriber_first_name: str  # PHI
    patient_last_name: str  # PHI (the subscriber when there is no 2000C loop)
    patient_first_name: str  # PHI
    member_id: str | None  # PHI; missing is an acknowledgement rejection, not a parse error
    service_date: date
    service_end_date: date
    diagnoses: tuple[str, ...]
    lines: tuple[SubmittedLine, ...]
    st_control_number: str
    payer_sequence: str = "P"  # SBR01: P primary, S secondary, T tertiary
    filing_indicator: str = "CI"  # SBR09
    payer_claim_control_number: str | None = None  # REF*F8 on replacements and voids
    prior_authorization: str | None = None  # REF*G1
    type_of_bill: str | None = None  # 837I: "0" + CLM05-1 + CLM05-3
    prior_paid: Decimal | None = None  # COB: the prior payers' AMT*D (2320), summed
    other_payers: tuple[OtherPayer, ...] = ()  # 2320/2330B, in the order the claim lists them

    @property
    def is_cob(self) -> bool:
        """A secondary/tertiary claim carrying the prior payers' line adjudications."""
        return self.payer_sequence in ("S", "T") and any(
            ln.prior_patient is not None for ln in self.lines
        )

    @property
    def place_of_service(self) -> str | None:
        return self.facility_code if self.claim_type == "professional" else None

    @property
    def line_charge_total(self) -> Decimal:
        return sum((ln.charge for ln in self.lines), Decimal("0.00"))


@dataclass(frozen=True, slots=True)
class SubmittedTransaction:
    control_number: str  # ST02
    implementation: str  # ST03, e.g. 005010X222A1
    reference: str  # BHT03, the originator's batch reference
    submitter_name: str  # NM1*41 (loop 1000A)
    submitter_id: str
    claim_count: int


@dataclass(frozen=True, slots=True)
class Submission:
    """One 837 interchange as received."""

    interchange_control_number: str  # ISA13
    sender_id: str  # ISA06 (trimmed)
    receiver_id: str  # ISA08 (trimmed)
    group_control_number: str  # GS06
    functional_id: str  # GS01, "HC"
    version: str  # GS08
    transactions: tuple[SubmittedTransaction, ...]
    claims: tuple[SubmittedClaim, ...]
    # Non-fatal defects a real front door would note (e.g. a component separator that
    # differs from ISA16); never PHI.
    warnings: tuple[str, ...] = ()


# --------------------------------------------------------------------------- decisions


@dataclass(frozen=True, slots=True)
class Adjustment:
    group: str  # CO, PR, OA, PI
    reason: str  # CARC
    amount: Decimal
    quantity: Decimal | None = None


@dataclass(frozen=True, slots=True)
class AdjudicatedLine:
    line: SubmittedLine
    allowed: Decimal
    paid: Decimal
    adjustments: tuple[Adjustment, ...]
    remarks: tuple[str, ...] = ()  # RARC, LQ*HE

    @property
    def charge(self) -> Decimal:
        return self.line.charge

    @property
    def denied(self) -> bool:
        return self.paid == 0 and any(a.reason != "45" for a in self.adjustments)


@dataclass(frozen=True, slots=True)
class Adjudication:
    """The payer's decision on one claim. Balances: charge - paid == sum(adjustments)."""

    claim: SubmittedClaim
    status: str  # CLP02: 1 primary, 2 secondary, 3 tertiary, 4 denied, 22 reversal (void)
    payer_claim_control_number: str
    received_date: date
    lines: tuple[AdjudicatedLine, ...]
    adjustments: tuple[Adjustment, ...] = ()  # claim level (CAS after CLP)
    remarks: tuple[str, ...] = ()  # claim level RARC (MOA)
    denial: str | None = None  # e.g. "CO-16" when the claim or a line was denied
    # CLP02 19/20: the payer forwarded the claim to this other payer (835 NM1*TT).
    crossover_to: OtherPayer | None = None

    @property
    def claim_id(self) -> str:
        return self.claim.claim_id

    @property
    def charge(self) -> Decimal:
        return self.claim.total_charge

    @property
    def paid(self) -> Decimal:
        return sum((ln.paid for ln in self.lines), Decimal("0.00"))

    @property
    def allowed(self) -> Decimal:
        return sum((ln.allowed for ln in self.lines), Decimal("0.00"))

    def all_adjustments(self) -> list[Adjustment]:
        return [*self.adjustments, *(a for ln in self.lines for a in ln.adjustments)]

    @property
    def patient_responsibility(self) -> Decimal:
        return sum((a.amount for a in self.all_adjustments() if a.group == "PR"), Decimal("0.00"))

    @property
    def denied(self) -> bool:
        return self.denial is not None


@dataclass(frozen=True, slots=True)
class AckDecision:
    """The 277CA verdict on one claim (front-door edits, before adjudication)."""

    accepted: bool
    category: str  # STC01-1: A2 accepted; A6/A7 rejected
    status_code: str  # STC01-2: 20 accepted for processing, 562 NPI, 33 subscriber, ...
    message: str  # no PHI
    entity_code: str | None = None  # STC01-3: 85 billing provider, IL subscriber
    payer_claim_control_number: str | None = None  # REF*1K, accepted claims only
