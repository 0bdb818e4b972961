"""Event contract: the envelope and one pydantic model per event type.

Every event travels as JSON on its own versioned topic (see ``shared.topics``),
keyed by ``encounter_id``. Within a topic version changes are additive only, so
consumers ignore unknown fields (pydantic's default) and producers never remove
or retype one. Money is ``Decimal`` and serialises as a decimal string.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer

Money = Annotated[Decimal, Field(max_digits=12, decimal_places=2)]
CodeStr = Annotated[str, Field(min_length=1, max_length=16)]


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)


# --------------------------------------------------------------------------- parties


class Address(Model):
    line1: str
    line2: str | None = None
    city: str
    state: Annotated[str, Field(min_length=2, max_length=2)]
    postal_code: Annotated[str, Field(min_length=5, max_length=10)]


class Organization(Model):
    """A billing provider (a site) or a payer. Any field may be missing from what the EHR
    sent (intake names it in its missing fields; billing holds the claim until supplied)."""

    name: str | None = None
    npi: str | None = None
    tax_id: str | None = None
    address: Address | None = None
    taxonomy: str | None = None


class Provider(Model):
    """A rendering/attending practitioner."""

    npi: str
    first_name: str
    last_name: str
    taxonomy: str | None = None


class Person(Model):
    """A patient or subscriber. PHI: never log any field of it. Name and birth date may be
    missing from what the EHR sent (intake names them in its missing fields)."""

    patient_id: str | None = None  # MRN
    first_name: str | None = None
    last_name: str | None = None
    birth_date: date | None = None
    gender: Literal["M", "F", "U"] = "U"
    address: Address | None = None


class EligibilitySummary(Model):
    """What intake's eligibility check (X12 270/271) found for one coverage on the encounter's
    date of service: what billing's scrubber and a patient estimate read. No PHI."""

    # unverified: no answer yet (payer down and retries pending, or checks switched off)
    status: Literal["active", "inactive", "unverified"]
    checked_on: date | None = None  # the day the 271 answered (None: never answered)
    plan: str | None = None  # plan name or number as the payer states it
    group: str | None = None  # group number (REF*6P)
    other_primary_payer: str | None = None  # a payer the 271 names primary (2120 NM1*PRP)
    other_primary_payer_id: str | None = None
    # In-network, individual amounts; None when the 271 does not state them.
    copay: Money | None = None
    coinsurance_percent: Decimal | None = None  # percent: 20 means the patient pays 20 %
    deductible_remaining: Money | None = None
    out_of_pocket_remaining: Money | None = None


class Coverage(Model):
    """One insurance coverage, in coordination-of-benefits order."""

    payer_id: str
    payer_name: str
    member_id: str | None = None  # missing member id is a scrub failure, not a parse error
    group_number: str | None = None
    # X12 individual relationship code semantics: self, spouse, child, other
    relationship: Literal["self", "spouse", "child", "other"] = "self"
    subscriber: Person | None = None  # None when relationship == "self"
    # claim filing indicator (SBR09): MB Medicare B, MA Medicare A, MC Medicaid, CI commercial, BL BCBS, HM HMO
    filing_indicator: str = "CI"
    sequence: Literal["primary", "secondary", "tertiary"] = "primary"
    # Intake's eligibility result (additive: older events have none). Left out of the JSON
    # when None, so an encounter without one serialises (and hashes) as it did before.
    eligibility: EligibilitySummary | None = None

    @model_serializer(mode="wrap")
    def _drop_missing_eligibility(self, handler):
        out = handler(self)
        if isinstance(out, dict) and out.get("eligibility", 0) is None:
            del out["eligibility"]
        return out


class SuppliedCode(Model):
    """A code the EHR already attached (or a coder entered)."""

    # Only icd10cm diagnoses are validated as codes; snomed, icd9cm and unknown ones are
    # documentation evidence for the coder and the engine (their display text), never claim codes.
    system: Literal["icd10cm", "cpt", "hcpcs", "icd10pcs", "snomed", "icd9cm", "unknown"]
    code: str
    display: str | None = None


class Institutional(Model):
    """Data only an 837I needs."""

    type_of_bill: str = "0131"  # facility type + classification + frequency
    admission_date: date | None = None
    admission_type: str | None = None  # UB-04 priority of admission
    admission_source: str | None = None
    discharge_status: str = "01"
    attending: Provider | None = None


# --------------------------------------------------------------------------- encounter


# The site of an encounter whose site intake could not tell (no registry entry, identifier or
# NPI). Such an encounter may move once to its real site (a re-send after the site was
# registered); an encounter never moves from one real site to another.
UNASSIGNED_SITE = "unassigned"


class Encounter(Model):
    """The documented encounter, as the intake understood it (FHIR or native JSON)."""

    encounter_id: Annotated[str, Field(min_length=1, max_length=38)]
    site_id: Annotated[str, Field(min_length=1, max_length=32)]
    encounter_class: Literal["AMB", "EMER", "IMP", "OBSENC", "HH", "VR"] = "AMB"
    service_date: date
    end_date: date | None = None
    length_minutes: int | None = Field(default=None, ge=0, le=24 * 60)
    visit_type: Literal["new", "established"] | None = None
    place_of_service: str | None = None
    billing_provider: Organization
    rendering_provider: Provider | None = None
    patient: Person
    coverages: list[Coverage] = Field(default_factory=list)
    note: str | None = None  # PHI
    diagnoses: list[SuppliedCode] = Field(default_factory=list)
    procedures: list[SuppliedCode] = Field(default_factory=list)
    prior_authorization: str | None = None
    institutional: Institutional | None = None
    # Intake numbers each different content it receives for one encounter id (a re-send after a
    # fix is version 2, ...); 1 also for events published before versioning (additive, v1).
    document_version: int = Field(default=1, ge=1)

    @property
    def primary_coverage(self) -> Coverage | None:
        return next((c for c in self.coverages if c.sequence == "primary"), None)


class CodedDiagnosis(Model):
    code: CodeStr  # ICD-10-CM without the dot, e.g. S93401A
    description: str | None = None
    present_on_admission: Literal["Y", "N", "U", "W", "1"] | None = None


class CodedProcedure(Model):
    code: CodeStr
    system: Literal["cpt", "hcpcs", "icd10pcs"] = "cpt"
    modifiers: list[Annotated[str, Field(min_length=2, max_length=2)]] = Field(
        default_factory=list, max_length=4
    )
    units: Decimal = Decimal(1)
    diagnosis_pointers: list[int] = Field(default_factory=lambda: [1], max_length=4)
    revenue_code: str | None = None
    service_date: date | None = None
    ndc: str | None = None


class CodingEdit(Model):
    code: str
    severity: Literal["info", "warning", "blocking"]
    message: str


# --------------------------------------------------------------------------- envelope


class Envelope(Model):
    """Fields every event carries; subclasses fix ``event_type`` and ``payload``."""

    event_type: ClassVar[str]
    topic: ClassVar[str]

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    schema_version: int = 1
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    site_id: str
    encounter_id: str
    payload: Any

    @field_validator("occurred_at")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("occurred_at must be timezone-aware (UTC)")
        return v.astimezone(UTC)

    def key(self) -> bytes:
        return self.encounter_id.encode()

    def to_json(self) -> bytes:
        # pydantic-core writes the JSON; event_type (a class constant) is spliced in front.
        body = self.model_dump_json().encode()
        return b'{"event_type":"' + self.event_type.encode() + b'",' + body[1:]


def _event(event_type: str):
    """Bind an envelope subclass to its event type and versioned topic."""

    def wrap(cls):
        cls.event_type = event_type
        cls.topic = f"rcm.{event_type}.v1"
        EVENT_TYPES[event_type] = cls
        return cls

    return wrap


EVENT_TYPES: dict[str, type[Envelope]] = {}


# ---- coding


@_event("encounter.documented")
class EncounterDocumented(Envelope):
    payload: Encounter


class EncounterCodedPayload(Model):
    encounter: Encounter
    diagnoses: list[CodedDiagnosis] = Field(min_length=1, max_length=25)
    procedures: list[CodedProcedure] = Field(min_length=1, max_length=50)
    edits: list[CodingEdit] = Field(default_factory=list)
    route: Literal["auto", "review"] = "auto"
    coded_by: str = "auto"  # "auto" or the coder's user id
    code_set_version: str | None = None


@_event("encounter.coded")
class EncounterCoded(Envelope):
    payload: EncounterCodedPayload


# ---- billing


class ClaimLine(Model):
    line_number: int
    code: str
    modifiers: list[str] = Field(default_factory=list)
    units: Decimal
    charge: Money
    service_date: date
    revenue_code: str | None = None


def _filing_deadline(deadline: date | None, event_type: str) -> date:
    if deadline is None:
        raise ValueError(f"{event_type} without payload.filing_deadline (published before v1.1)")
    return deadline


class ClaimSubmittedPayload(Model):
    claim_id: str  # also the patient control number (CLM01)
    payer_id: str
    payer_name: str
    filing_indicator: str = "CI"
    claim_type: Literal["professional", "institutional"] = "professional"
    frequency_code: Literal["1", "7", "8"] = "1"
    original_claim_id: str | None = None
    payer_claim_control_number: str | None = None  # REF*F8 on replacements/voids
    total_charge: Money
    service_date: date
    submitted_at: datetime
    interchange_control_number: str
    file_name: str
    lines: list[ClaimLine]
    # Guarantor for patient statements (PHI: events only, never logs).
    guarantor: Person | None = None
    # Last day the payer accepts the claim, from billing's payer rules (billing owns the filing
    # limit). Added within v1: None in events published before it (followup dead-letters those).
    filing_deadline: date | None = None

    def decided_filing_deadline(self) -> date:
        """Billing's filing deadline; an event without it is a permanent error (DLQ)."""
        return _filing_deadline(self.filing_deadline, "claim.submitted")


@_event("claim.submitted")
class ClaimSubmitted(Envelope):
    payload: ClaimSubmittedPayload


class Reason(Model):
    code: str
    message: str
    field: str | None = None


class ClaimHeldPayload(Model):
    claim_id: str
    payer_id: str | None = None
    total_charge: Money
    service_date: date
    reasons: list[Reason] = Field(min_length=1)
    # As on claim.submitted: billing's filing deadline (added within v1).
    filing_deadline: date | None = None

    def decided_filing_deadline(self) -> date:
        """Billing's filing deadline; an event without it is a permanent error (DLQ)."""
        return _filing_deadline(self.filing_deadline, "claim.held")


@_event("claim.held")
class ClaimHeld(Envelope):
    payload: ClaimHeldPayload


class ClaimAckPayload(Model):
    claim_id: str
    source: Literal["999", "277CA", "277"]
    payer_claim_control_number: str | None = None
    status_category: str | None = None  # e.g. A1, A2, A3
    reasons: list[Reason] = Field(default_factory=list)
    file_name: str | None = None


@_event("claim.accepted")
class ClaimAccepted(Envelope):
    payload: ClaimAckPayload


@_event("claim.rejected")
class ClaimRejected(Envelope):
    payload: ClaimAckPayload


# ---- payments


class Adjustment(Model):
    group: Literal["CO", "PR", "OA", "PI", "CR"]
    reason: str  # CARC
    amount: Money
    quantity: Decimal | None = None
    # Decided by payments alone (its one table of contractual CARCs): a payer reduction beyond
    # the contract, i.e. not the patient's share, not contractual, not the prior payer's. These
    # make a remittance partially paid and are what followup works. Added within v1 like
    # ``outcome``: None in events published before it (followup dead-letters those).
    beyond_contract: bool | None = None


class RemittanceLine(Model):
    code: str
    modifiers: list[str] = Field(default_factory=list)
    charge: Money
    paid: Money
    units: Decimal | None = None
    service_date: date | None = None
    adjustments: list[Adjustment] = Field(default_factory=list)
    remarks: list[str] = Field(default_factory=list)


class RemittanceReceivedPayload(Model):
    remittance_id: str  # stable: derived from trace number + CLP position
    claim_id: str
    patient_control_number: str
    payer_id: str
    payer_name: str | None = None
    status_code: str  # CLP02
    charge: Money
    paid: Money
    patient_responsibility: Money
    payer_claim_control_number: str | None = None
    adjustments: list[Adjustment] = Field(default_factory=list)  # claim and line level together
    remarks: list[str] = Field(default_factory=list)  # RARC (MOA/LQ)
    service_lines: list[RemittanceLine] = Field(default_factory=list)
    is_reversal: bool = False
    # Decided by payments alone (one rule for every consumer); added within v1, so absent from
    # events published before it: consumers dead-letter those rather than guess.
    outcome: Literal["paid", "partially_paid", "denied", "reversed"] | None = None
    contractual_adjustment: Money | None = None  # CO adjustments with a contractual CARC
    # How this claim payment moved the claim's payer and patient balances in payments' ledger
    # (the journal entry it posted; negative = less owed). Decided by payments alone, added
    # within v1 like ``outcome``: followup's balances follow them instead of re-deriving them.
    payer_balance_change: Money | None = None
    patient_balance_change: Money | None = None
    trace_number: str | None = None
    payment_date: date | None = None
    file_name: str | None = None
    # NM1*TT (835 loop 2100): the payer this one forwarded the claim to (a crossover), by id
    # or name. Added within v1: None when the 835 names none, and in events published before.
    crossover_carrier: str | None = None

    def decided_outcome(self) -> str:
        """The outcome payments decided; an event without it is a permanent error (DLQ)."""
        if self.outcome is None:
            raise ValueError("remittance.received without payload.outcome (published before v1.1)")
        return self.outcome

    def decided_adjustments(self) -> list[Adjustment]:
        """The adjustments, each with payments' ``beyond_contract`` decision; an event without
        them is a permanent error (DLQ)."""
        if any(a.beyond_contract is None for a in self.adjustments):
            raise ValueError(
                "remittance.received without payload.adjustments[].beyond_contract"
                " (published before v1.1)"
            )
        return self.adjustments

    def decided_balance_changes(self) -> tuple[Decimal, Decimal]:
        """(payer, patient) balance changes payments posted; without them a permanent error (DLQ)."""
        if self.payer_balance_change is None or self.patient_balance_change is None:
            raise ValueError(
                "remittance.received without payload.payer_balance_change/patient_balance_change"
                " (published before v1.1)"
            )
        return self.payer_balance_change, self.patient_balance_change


@_event("remittance.received")
class RemittanceReceived(Envelope):
    payload: RemittanceReceivedPayload


class RemittanceHeldPayload(Model):
    """A claim payment payments held for review instead of posting (outside plausible bounds:
    negative on an original claim, paid above billed). ``reason`` carries amounts and ids only."""

    remittance_id: str
    claim_id: str
    payer_id: str
    charge: Money
    paid: Money
    reason: str


@_event("remittance.held")
class RemittanceHeld(Envelope):
    payload: RemittanceHeldPayload


# ---- followup


class CorrectionRequestedPayload(Model):
    claim_id: str
    frequency_code: Literal["7", "8"]
    reason: str
    requested_by: str
    work_item_id: str | None = None
    # Replacement codes, when the correction changes coding; None keeps the original's.
    diagnoses: list[CodedDiagnosis] | None = None
    procedures: list[CodedProcedure] | None = None


@_event("claim.correction_requested")
class CorrectionRequested(Envelope):
    payload: CorrectionRequestedPayload


class WriteOffRequestedPayload(Model):
    request_id: str
    claim_id: str
    amount: Money
    reason: str
    category: str
    requested_by: str


@_event("followup.writeoff_requested")
class WriteOffRequested(Envelope):
    payload: WriteOffRequestedPayload


class StatementIssuedPayload(Model):
    statement_id: str
    claim_ids: list[str]
    amount_due: Money
    due_date: date
    cycle: int  # 0 first statement, 1..3 dunning at 30/60/90 days
    file_name: str


@_event("followup.statement_issued")
class StatementIssued(Envelope):
    payload: StatementIssuedPayload


# ---- coding: queries to providers


class QueryIndicator(Model):
    """A clinical indicator a query cites: a span quoted from the note (PHI)."""

    text: str
    start: int = Field(ge=0)
    end: int = Field(ge=0)


class ProviderQueryPayload(Model):
    """A query to the provider about the encounter's documentation, at one step of its life.

    One event type for every step (sent, escalated, answered, cancelled), on one topic keyed
    by encounter id, so a consumer (the EHR's inbox integration) sees a query's steps in order.
    Question, indicators, answer and addendum may hold PHI.
    """

    query_id: str
    status: Literal["sent", "escalated", "answered", "cancelled"]
    reason: str
    provider_npi: str | None = None  # the provider asked (the encounter's rendering provider)
    question: str
    indicators: list[QueryIndicator] = Field(min_length=1)
    options: list[str] = Field(min_length=3)  # always with "other" and "clinically undetermined"
    document_version: int = Field(default=1, ge=1)  # the documentation it was raised on
    answer: str | None = None  # the option the provider chose
    addendum: str | None = None  # what the answer appended to the note
    answered_by: str | None = None
    cancel_reason: str | None = None


@_event("coding.query")
class ProviderQuery(Envelope):
    payload: ProviderQueryPayload


# ---- payments: patient accounts


class PatientPlan(Model):
    plan_id: int
    status: Literal["active", "defaulted", "completed"]
    instalment_amount: Money
    period: Literal["weekly", "biweekly", "monthly"]
    next_due_date: date | None = None


class PatientAccountPayload(Model):
    """Payments' patient account (the encounter id) after a patient payment, a refund issued, a
    credit applied or a plan change; ``version`` grows per account, so keep the highest."""

    account: str
    version: int
    payments_received: Money  # patient payments taken, less refunds issued
    credit: Money  # not yet applied to patient responsibility
    pending_next_payer: bool = False
    plan: PatientPlan | None = None  # the newest payment plan, if any


@_event("payments.patient_account")
class PatientAccountUpdated(Envelope):
    payload: PatientAccountPayload


_EVENT_TYPE = re.compile(rb'\s*\{\s*"event_type"\s*:\s*"([a-z_.]+)"')


def parse_event(raw: bytes | str | dict) -> Envelope:
    """Parse a message body into its event model.

    Raises ``pydantic.ValidationError`` or ``ValueError`` naming what is wrong.
    """
    if isinstance(raw, (bytes, str)):
        # Fast path: our producers write event_type first; pydantic-core parses and validates in one pass.
        m = _EVENT_TYPE.match(raw if isinstance(raw, bytes) else raw.encode())
        cls = EVENT_TYPES.get(m.group(1).decode()) if m else None
        if cls is not None:
            return cls.model_validate_json(raw)
    from shared.jsonutil import loads

    data = loads(raw) if not isinstance(raw, dict) else raw
    if not isinstance(data, dict):
        raise ValueError("event body must be a JSON object")
    et = data.get("event_type")
    cls = EVENT_TYPES.get(et) if isinstance(et, str) else None
    if cls is None:
        raise ValueError(f"unknown event_type {et!r}")
    return cls.model_validate(data)
