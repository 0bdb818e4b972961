"""The messages of one visit, merged (``VisitState``), and the encounter they make.

Merging is in arrival order: for the patient and the visit each field takes its latest
value; the coverages of the latest message that carries IN1 segments replace earlier ones;
documents replace earlier versions of the same document (TXA-12) and a T11 cancels one;
charges add up by transaction (FT1-2) and credits (FT1-6 CD) take theirs back; diagnoses
accumulate, the principal (DG1-15 = 1) first.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, fields, replace
from datetime import date
from typing import Any

from pydantic import BaseModel, ValidationError

from services.intake.domain.codes import (
    ADMISSION_TYPE,
    CLASS_PLACE_OF_SERVICE,
    DISCHARGE_STATUS,
    ENCOUNTER_CLASS,
    PLACE_OF_SERVICE,
    POINT_OF_ORIGIN,
    V2_PATIENT_CLASS,
    ConceptMaps,
    code_for,
)
from services.intake.domain.context import Ctx
from services.intake.domain.coverage import _SELF_PAY, Found, _filing_from_concept
from services.intake.domain.hl7v2.problems import Hl7Problem
from services.intake.domain.hl7v2.read import (
    SIGNED,
    ChargeIn,
    Contribution,
    CoverageIn,
    NoteIn,
    VisitIn,
)
from services.intake.domain.hl7v2.rules import Readiness
from services.intake.domain.hl7v2.values import Practitioner
from services.intake.domain.mapping import _missing, visit_hint
from services.intake.domain.parties import UNASSIGNED_SITE
from services.intake.domain.problems import Sink
from services.intake.domain.reader import Reader
from services.intake.domain.references import Index
from services.intake.domain.registry import Registry, Site
from services.intake.domain.systems import X12_FILING_INDICATORS, npi_is_valid
from shared.events import (
    Coverage,
    Encounter,
    Institutional,
    Organization,
    Person,
    Provider,
    SuppliedCode,
)

# HL7 tables as concept-map source systems (docs/hl7v2-intake.md).
V2_ADMISSION_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0007"
V2_ADMIT_SOURCE = "http://terminology.hl7.org/CodeSystem/v2-0023"
V2_DISCHARGE_DISPOSITION = "http://terminology.hl7.org/CodeSystem/v2-0112"
V2_POINT_OF_CARE = "urn:rcm:hl7v2:point-of-care"  # PV1-3.1, the sender's own unit codes
_CLASS_WORDS = {
    "INPATIENT": "IMP",
    "OUTPATIENT": "AMB",
    "EMERGENCY": "EMER",
    "OBSERVATION": "OBSENC",
    "RECURRING": "AMB",
    "PREADMIT": "AMB",
}
# PV1-4 (HL7 table 0007) -> UB-04 priority of admission.
_ADMISSION_TYPE = {"E": "1", "U": "2", "C": "3", "R": "3", "N": "4"}
# IN1-17 (HL7 table 0063, and the UB-92 / X12 numbers some senders use) -> the claim's four.
_RELATIONSHIP = {
    "SEL": "self",
    "SELF": "self",
    "01": "self",
    "1": "self",
    "18": "self",
    "SPO": "spouse",
    "SPOUSE": "spouse",
    "02": "spouse",
    "2": "spouse",
    "CHD": "child",
    "CHILD": "child",
    "FCH": "child",
    "SCH": "child",
    "03": "child",
    "3": "child",
    "19": "child",
}
UNASSIGNED = UNASSIGNED_SITE  # the site of a visit whose facility no setting or registry names
_ID = re.compile(r"[A-Za-z0-9\-.]{1,38}")
_SEQUENCES = {1: "primary", 2: "secondary", 3: "tertiary"}


@dataclass
class VisitState:
    """Everything the messages of one visit said, merged (see the module docstring)."""

    key: str
    site_id: str
    patient: Person = field(default_factory=Person)
    visit: VisitIn = field(default_factory=VisitIn)
    coverages: list[CoverageIn] = field(default_factory=list)
    guarantor: Person | None = None
    diagnoses: list[tuple[int, SuppliedCode]] = field(default_factory=list)
    notes: dict[str, NoteIn] = field(default_factory=dict)
    charges: dict[str, ChargeIn] = field(default_factory=dict)
    registered: bool = False
    discharged: bool = False
    cancelled: bool = False
    warnings: list[Hl7Problem] = field(default_factory=list)

    def merge(self, c: Contribution) -> None:
        if c.patient is not None:
            self.patient = _latest(self.patient, c.patient)
        if c.visit is not None:
            self.visit = _latest(self.visit, c.visit)
        if c.coverages is not None:
            self.coverages = c.coverages
        if c.guarantor is not None:
            self.guarantor = c.guarantor
        for item in c.diagnoses:
            if item not in self.diagnoses:
                self.diagnoses.append(item)
        for note in c.notes:
            self.notes[note.doc_id] = note
        for doc_id, status in c.note_status.items():
            if doc_id in self.notes:
                self.notes[doc_id] = replace(self.notes[doc_id], status=status)
        for doc_id in c.notes_cancelled:
            self.notes.pop(doc_id, None)
        for n, charge in enumerate(c.charges):
            self._charge(charge, f"{len(self.charges)}.{n}")
        self.registered |= c.kind == "registration"
        self.discharged = (self.discharged or c.discharged) and not c.discharge_cancelled
        if c.discharge_cancelled:
            self.visit = replace(self.visit, discharge_day=None)
        self.cancelled = c.cancelled or (self.cancelled and c.kind != "registration")
        self.warnings.extend(p for p in c.problems if not p.is_error)

    def _charge(self, charge: ChargeIn, fallback_id: str) -> None:
        if charge.kind == "CD":  # a credit takes back units of the same code
            for key, old in list(self.charges.items()):
                if old.code == charge.code and old.modifiers == charge.modifiers:
                    left = old.units - charge.units
                    if left > 0:
                        self.charges[key] = replace(old, units=left)
                    else:
                        del self.charges[key]
                    return
            return
        self.charges[charge.transaction_id or fallback_id] = charge

    def unmet(self, rule: Readiness) -> list[str]:
        have = {
            "registration": self.registered,
            "discharge": self.discharged,
            "note": bool(self.notes),
            "signed_note": any(n.status in SIGNED for n in self.notes.values()),
            "charges": bool(self.charges),
        }
        return [c for c in sorted(rule.require) if not have[c]]


def _latest(old, new):
    """Each field of ``new`` that holds something replaces the one of ``old`` (an unknown
    sex, ``U``, holds nothing)."""
    if isinstance(old, BaseModel):
        names = list(type(old).model_fields)
        changes = {n: v for n in names if (v := getattr(new, n)) not in (None, "", "U")}
        return old.model_copy(update=changes)
    changes = {f.name: v for f in fields(old) if (v := getattr(new, f.name)) not in (None, "")}
    return replace(old, **changes)


@dataclass
class AssembledVisit:
    """A visit as intake understood it: the encounter (None until a date of service is
    known), the readiness conditions still awaited, warnings, the billing fields a biller
    must supply, and what the Encounter model cannot carry yet (guarantor, charge lines with
    units and modifiers, referring and admitting providers)."""

    key: str
    site_id: str
    encounter: Encounter | None
    awaiting: list[str]
    warnings: list[Hl7Problem]
    missing: list[str]
    guarantor: Person | None
    charges: list[ChargeIn]
    referring: Provider | None = None
    admitting: Provider | None = None
    cancelled: bool = False

    @property
    def ready(self) -> bool:
        return self.encounter is not None and not self.awaiting and not self.cancelled


def assemble(
    state: VisitState,
    rule: Readiness,
    *,
    site: Site | None = None,
    registry: Registry | None = None,
    concept_maps: ConceptMaps | None = None,
) -> AssembledVisit:
    """The encounter of a visit's merged messages (see ``AssembledVisit``). Never raises."""
    warnings = list(state.warnings)
    ctx = Ctx(Index([]), Reader(Sink()), registry, concept_maps)
    v = state.visit
    charges = list(state.charges.values())
    notes = list(state.notes.values())
    service_date = (
        v.admit_day
        or min((c.day for c in charges if c.day), default=None)
        or min((n.day for n in notes if n.day), default=None)
    )
    awaiting = state.unmet(rule)
    referring = _provider(ctx, v.referring, "referring_provider", warnings, needed=False)
    admitting = _provider(ctx, v.admitting, "admitting_provider", warnings, needed=False)
    guarantor = state.guarantor
    if service_date is None:
        warnings.append(
            Hl7Problem(
                "no date of service yet (PV1-44 admit date, FT1-4 or TXA-4)",
                "PV1",
                44,
                code=101,
                severity="W",
            )
        )
        return AssembledVisit(
            state.key, state.site_id, None, [*awaiting, "date of service"], warnings, [],
            guarantor, charges, referring, admitting, state.cancelled,
        )  # fmt: skip
    enc_class = _class(v, concept_maps, warnings)
    found, authorization = _coverages(state, registry, warnings)
    performer = next(
        (c.performed_by for c in charges if c.performed_by and c.performed_by.npi), None
    )
    rendering = _provider(ctx, performer or v.attending, "rendering_provider", warnings)
    attending = _provider(ctx, v.attending, "institutional.attending", warnings, needed=False)
    end = v.discharge_day if v.discharge_day and v.discharge_day >= service_date else None
    procedures = _procedures(charges)
    values: dict[str, Any] = dict(
        encounter_id=_encounter_id(state.key),
        site_id=state.site_id,
        encounter_class=enc_class,
        service_date=service_date,
        end_date=end,
        visit_type=next((h for p in procedures if (h := visit_hint(p.code))), None),
        place_of_service=_place_of_service(v, concept_maps)
        or CLASS_PLACE_OF_SERVICE.get(enc_class),
        billing_provider=_billing(site),
        rendering_provider=rendering,
        patient=_patient(state.patient, service_date, warnings),
        coverages=found.coverages,
        note="\n\n".join(n.text for n in notes if n.text) or None,
        diagnoses=_diagnoses(state.diagnoses),
        procedures=procedures,
        prior_authorization=authorization,
        institutional=_institutional(v, enc_class, service_date, attending, concept_maps, warnings),
    )
    try:
        encounter = Encounter(**values)
    except ValidationError as exc:  # a value the model refuses: warn, drop it, keep the encounter
        for e in exc.errors(include_input=False, include_url=False):
            name = e["loc"][0] if e["loc"] else ""
            warnings.append(Hl7Problem(f"{name}: {e['msg']}: not used", severity="W"))
            if isinstance(name, str) and name not in ("encounter_id", "site_id", "service_date"):
                values[name] = [] if name in ("coverages", "diagnoses", "procedures") else None
        encounter = Encounter(**{k: x for k, x in values.items() if x is not None})
    if state.site_id == UNASSIGNED:
        ctx.need("site_id")
    _missing(ctx, encounter, found)
    return AssembledVisit(
        state.key, state.site_id, encounter, awaiting, warnings, ctx.missing,
        guarantor, charges, referring, admitting, state.cancelled,
    )  # fmt: skip


def _encounter_id(key: str) -> str:
    """The visit number (or other single identifier) the key names when it can be a claim's
    id; else a stable hash of the key."""
    _, spec, value = key.split("|", 2)
    if "+" not in spec and _ID.fullmatch(value):
        return value
    return "h" + hashlib.sha256(key.encode()).hexdigest()[:32]


def _patient(p: Person, service_date: date, warnings: list[Hl7Problem]) -> Person:
    if p.birth_date and p.birth_date > service_date:
        warnings.append(
            Hl7Problem("must not be after the date of service: not used", "PID", 7, severity="W")
        )
        return p.model_copy(update={"birth_date": None})
    return p


def _billing(site: Site | None) -> Organization:
    if site is None:
        return Organization()
    return Organization(
        name=site.name,
        npi=site.npi,
        tax_id=site.tax_id,
        address=site.address,
        taxonomy=site.taxonomy,
    )


def _provider(
    ctx: Ctx,
    who: Practitioner | None,
    name: str,
    warnings: list[Hl7Problem],
    *,
    needed: bool = True,
) -> Provider | None:
    """A practitioner as the claim's Provider: its NPI (an untyped id counts when the
    registry knows it as an NPI), names from the registry else the message."""
    if who is None:
        return None
    npi = who.npi
    known = ctx.registry.provider(npi or who.other_id or "") if ctx.registry is not None else None
    if npi is None and known is not None:
        npi = known.npi
    if not npi:
        if needed:
            ctx.need(f"{name}.npi")
        return None
    if not npi_is_valid(npi):
        warnings.append(
            Hl7Problem("NPI fails the check digit", who.segment, who.field, severity="W")
        )
        if needed:
            ctx.need(f"{name}.npi")
    first = known.first_name if known else who.first_name
    last = known.last_name if known else who.last_name
    if not (first and last):
        if needed:
            ctx.need(f"{name}.name")
        return None
    return Provider(
        npi=npi, first_name=first, last_name=last, taxonomy=known.taxonomy if known else None
    )


def _class(v: VisitIn, maps: ConceptMaps | None, warnings: list[Hl7Problem]) -> str:
    pc = v.patient_class
    if not pc:
        return "AMB"
    found = code_for(ENCOUNTER_CLASS, [(V2_PATIENT_CLASS, pc, None)], maps) or _CLASS_WORDS.get(pc)
    if found is None:
        warnings.append(
            Hl7Problem(
                "patient class not recognised (HL7 table 0004, or add it to a concept map): AMB assumed",
                "PV1",
                2,
                code=103,
                severity="W",
            )  # fmt: skip
        )
        return "AMB"
    return found


def _place_of_service(v: VisitIn, maps: ConceptMaps | None) -> str | None:
    codings = [(V2_POINT_OF_CARE, v.point_of_care, None), (V2_PATIENT_CLASS, v.patient_class, None)]
    return code_for(PLACE_OF_SERVICE, [c for c in codings if c[1]], maps) if maps else None


def _institutional(
    v: VisitIn, enc_class: str, service_date: date, attending: Provider | None, maps, warnings
) -> Institutional | None:
    if enc_class != "IMP" and not (v.admit_source or v.discharge_disposition):
        return None
    values: dict[str, Any] = {"attending": attending}
    if enc_class == "IMP":
        values["type_of_bill"] = "0111"
        values["admission_date"] = v.admit_day or service_date
    pairs = (
        ("admission_type", 4, v.admission_type, ADMISSION_TYPE, V2_ADMISSION_TYPE),
        ("admission_source", 14, v.admit_source, POINT_OF_ORIGIN, V2_ADMIT_SOURCE),
        (
            "discharge_status",
            36,
            v.discharge_disposition,
            DISCHARGE_STATUS,
            V2_DISCHARGE_DISPOSITION,
        ),
    )
    for name, n, code, fld, system in pairs:
        if not code:
            continue
        bare = code.zfill(2) if fld is DISCHARGE_STATUS and code.isdigit() else code
        found = code_for(fld, [(system, code, None), (None, bare, None)], maps)
        if found is None and fld is ADMISSION_TYPE:
            found = _ADMISSION_TYPE.get(code)
        if found is None:
            warnings.append(
                Hl7Problem(
                    f"{fld.name} not recognised (add it to a concept map): not used",
                    "PV1",
                    n,
                    code=103,
                    severity="W",
                )
            )
        else:
            values[name] = found
    return Institutional(**values)


def _diagnoses(items: list[tuple[int, SuppliedCode]]) -> list[SuppliedCode]:
    out: list[SuppliedCode] = []
    for _, code in sorted(items, key=lambda t: t[0]):  # stable: ties keep arrival order
        if not any(c.system == code.system and c.code == code.code for c in out):
            out.append(code)
    return out


def _procedures(charges: list[ChargeIn]) -> list[SuppliedCode]:
    out: list[SuppliedCode] = []
    for c in charges:
        if not any(p.code == c.code for p in out):
            out.append(SuppliedCode(system=c.system, code=c.code))  # type: ignore[arg-type]
    return out


# --------------------------------------------------------------------------- coverages


def _coverages(
    state: VisitState, registry: Registry | None, warnings: list[Hl7Problem]
) -> tuple[Found, str | None]:
    """Coverages in coordination-of-benefits order: IN1-22 priorities first, the others in
    IN1 order (IN1-1, else segment order) in the free places; at most three; self-pay is
    recognised and never becomes a payer."""
    read: list[tuple[CoverageIn, dict, bool, bool]] = []
    self_pay = False
    for c in sorted(state.coverages, key=lambda c: (c.set_id is None, c.set_id or 0, c.position)):
        got = _coverage(c, state.patient, registry, warnings)
        if got == "self-pay":
            self_pay = True
        elif isinstance(got, tuple):
            read.append((c, *got))
    taken: dict[int, int] = {}
    for i, (c, *_rest) in enumerate(read):
        if c.priority is not None and c.priority in taken:
            warnings.append(
                Hl7Problem(
                    "duplicate coordination-of-benefits priority: IN1 order used",
                    "IN1",
                    22,
                    severity="W",
                )
            )
        elif c.priority is not None:
            taken[c.priority] = i
    placed = [(p, i) for p, i in taken.items()]
    free = (p for p in (1, 2, 3) if p not in taken)
    for i in range(len(read)):
        if i not in taken.values():
            p = next(free, None)
            if p is None:
                warnings.append(
                    Hl7Problem(
                        "at most three coverages (primary, secondary, tertiary)",
                        "IN1",
                        severity="W",
                    )
                )
                continue
            placed.append((p, i))
    placed.sort()
    out, id_unknown, sub_unknown, authorization = [], False, False, None
    for seq, (_, i) in enumerate(placed, 1):
        c, values, known, subscriber_unknown = read[i]
        if seq == 1:
            id_unknown, sub_unknown = not known, subscriber_unknown
            authorization = c.authorization
        out.append(Coverage(**values, sequence=_SEQUENCES[seq]))
    return Found(out, self_pay, id_unknown, sub_unknown), authorization


def _coverage(
    c: CoverageIn, patient: Person, registry: Registry | None, warnings: list[Hl7Problem]
):
    """(Coverage values, payer id known, subscriber unknown), "self-pay", or None."""
    names = [n for n in (c.company_name, c.plan_name) if n]
    ids = [i for i in (*c.company_ids, c.plan_id) if i]
    if any(_SELF_PAY.search(t) for t in [*names, *ids, c.plan_type]):
        return "self-pay"
    payer = None
    if registry is not None:
        payer = next((p for i in ids if (p := registry.payer(i))), None) or next(
            (p for n in names if (p := registry.payer_by_name(n))), None
        )
    if payer is not None and payer.self_pay:
        return "self-pay"
    payer_id = payer.payer_id if payer else (c.company_ids[0] if c.company_ids else None)
    payer_name = (names[0] if names else None) or (payer.name if payer else None) or payer_id
    if payer_name is None:
        warnings.append(
            Hl7Problem(
                "no payer: neither an insurance company id nor a name",
                "IN1",
                3,
                code=101,
                severity="W",
            )
        )
        return None
    relationship = _relationship(c, patient, warnings)
    subscriber = c.insured if relationship != "self" else None
    filing = (
        (payer.filing_indicator if payer else None)
        or (c.plan_type if c.plan_type in X12_FILING_INDICATORS else None)
        or _filing_from_concept([], " ".join([c.plan_type, *names]))
        or "CI"
    )
    values = dict(
        payer_id=payer_id or payer_name,
        payer_name=payer_name,
        member_id=c.member_id,
        group_number=c.group_number,
        relationship=relationship,
        subscriber=subscriber,
        filing_indicator=filing,
    )
    unknown_subscriber = relationship != "self" and (
        subscriber is None or not (subscriber.last_name and subscriber.birth_date)
    )
    return values, payer is not None, unknown_subscriber


def _relationship(c: CoverageIn, patient: Person, warnings: list[Hl7Problem]) -> str:
    code = c.relationship
    if not code:
        return "self"
    if code in _RELATIONSHIP:
        return _RELATIONSHIP[code]
    if code in (
        "OTH",
        "EME",
        "EMR",
        "PAR",
        "FTH",
        "MTH",
        "GRD",
        "DOM",
        "DEP",
        "GCH",
        "BRO",
        "SIS",
        "G8",
    ):
        return "other"
    insured = c.insured
    if insured is not None and (insured.last_name, insured.birth_date) == (
        patient.last_name,
        patient.birth_date,
    ):
        return "self"
    warnings.append(
        Hl7Problem(
            "expected a relationship code of HL7 table 0063 (SEL, SPO, CHD, ...): other assumed",
            "IN1",
            17,
            code=103,
            severity="W",
        )  # fmt: skip
    )
    return "other"
