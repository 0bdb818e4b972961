"""What one message tells about its visit (a ``Contribution``): ADT/BAR give the patient,
guarantor, coverages and visit; MDM gives a document; DFT gives charges and diagnoses (any
of them may carry PID, PV1, GT1, IN1 and DG1, which are read wherever they come).

Required segments missing are errors (the ACK is AE); fields present but unusable are
warnings and the field is left out (a biller supplies it). No message quotes a value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from services.intake.domain.hl7v2.message import Hl7Message, Segment
from services.intake.domain.hl7v2.problems import Hl7Problem
from services.intake.domain.hl7v2.values import (
    Practitioner,
    coded_of,
    decimal_of,
    mrn_of,
    person_of,
    practitioner_of,
    read_date,
)
from services.intake.domain.notes import Unreadable, decode_bytes, decode_payload, tidy
from shared.events import Person, SuppliedCode

# ADT events that concern a visit (patient-level ones, A28/A31/A40..., are not used).
VISIT_EVENTS = frozenset("A01 A02 A03 A04 A05 A06 A07 A08 A11 A12 A13 A38".split())
NOTE_STATUS_EVENTS = frozenset("T01 T03 T05 T07 T09".split())
NOTE_CANCEL_EVENTS = frozenset({"T11"})
SIGNED = frozenset({"AU", "LA"})  # TXA-17 (HL7 table 0271): authenticated, legally authenticated
_DX_SYSTEMS = {
    "I10": "icd10cm",
    "I10C": "icd10cm",
    "ICD10": "icd10cm",
    "ICD10CM": "icd10cm",
    "I9": "icd9cm",
    "I9C": "icd9cm",
    "I9CDX": "icd9cm",
    "I9CM": "icd9cm",
    "ICD9": "icd9cm",
    "ICD9CM": "icd9cm",
    "SCT": "snomed",
    "SNM": "snomed",
    "SNM3": "snomed",
    "SNOMED": "snomed",
    "SNOMEDCT": "snomed",
}
_PX_SYSTEMS = {
    "C4": "cpt",
    "C5": "cpt",
    "CPT": "cpt",
    "CPT4": "cpt",
    "HCPCS": "hcpcs",
    "HCPC": "hcpcs",
    "HPC": "hcpcs",
    "I10P": "icd10pcs",
    "ICD10PCS": "icd10pcs",
}
_CPT = re.compile(r"\d{4}[0-9FTU]")
_HCPCS = re.compile(r"[A-V]\d{4}")
_MODIFIER = re.compile(r"[0-9A-Z]{2}")
_TEXT_TYPES = frozenset({"TX", "FT", "ST"})
# ED (encapsulated data) type/subtype -> the content type the note readers take.
_ED_TYPES = {
    ("TEXT", "PLAIN"): "text/plain",
    ("TEXT", ""): "text/plain",
    ("TEXT", "RTF"): "text/rtf",
    ("TEXT", "HTML"): "text/html",
    ("TEXT", "XML"): "text/xml",
    ("APPLICATION", "RTF"): "application/rtf",
    ("APPLICATION", "PDF"): "application/pdf",
    ("APPLICATION", "XML"): "application/xml",
    ("AP", "PDF"): "application/pdf",
    ("AP", "RTF"): "application/rtf",
}


@dataclass
class VisitIn:
    """PV1 as read (codes still as the sender wrote them)."""

    patient_class: str = ""
    point_of_care: str = ""
    location_facility: str = ""
    admission_type: str = ""
    attending: Practitioner | None = None
    referring: Practitioner | None = None
    admitting: Practitioner | None = None
    admit_source: str = ""
    discharge_disposition: str = ""
    servicing_facility: str = ""
    admit_day: date | None = None
    discharge_day: date | None = None


@dataclass
class CoverageIn:
    """One IN1 (with the IN2 after it) as read."""

    position: int
    set_id: int | None
    priority: int | None  # IN1-22 coordination-of-benefits priority
    plan_id: str
    plan_name: str
    company_ids: list[str]
    company_name: str
    group_number: str | None
    relationship: str  # IN1-17 code (HL7 table 0063) as sent
    insured: Person | None
    member_id: str | None
    plan_type: str
    authorization: str | None = None  # IN1-14.1 prior authorization number


@dataclass
class NoteIn:
    doc_id: str
    status: str
    day: date | None
    text: str | None  # None: the document was not readable


@dataclass
class ChargeIn:
    """One FT1 charge line (FT1-6 CG; credits CD reverse a charge)."""

    transaction_id: str
    kind: str
    day: date | None
    code: str
    system: str  # cpt, hcpcs, icd10pcs
    modifiers: list[str]
    units: Decimal
    diagnoses: list[SuppliedCode]
    performed_by: Practitioner | None


@dataclass
class Contribution:
    """What one message says about its visit; ``kind`` is registration, note, charges or
    other (a message type intake does not use)."""

    kind: str
    event: str
    patient: Person | None = None
    visit: VisitIn | None = None
    coverages: list[CoverageIn] | None = None  # None: the message carries no IN1
    guarantor: Person | None = None
    diagnoses: list[tuple[int, SuppliedCode]] = field(default_factory=list)  # (priority, code)
    notes: list[NoteIn] = field(default_factory=list)
    note_status: dict[str, str] = field(default_factory=dict)
    notes_cancelled: list[str] = field(default_factory=list)
    charges: list[ChargeIn] = field(default_factory=list)
    cancelled: bool = False
    discharged: bool = False
    discharge_cancelled: bool = False
    keys: dict[str, str] = field(default_factory=dict)  # visit-key field -> value
    facilities: list[str] = field(default_factory=list)  # site candidates, best first
    problems: list[Hl7Problem] = field(default_factory=list)


def kind_of(msg: Hl7Message) -> str:
    t, event = msg.meta.message_type, _event(msg)
    if t == "ADT":
        return "registration" if event in VISIT_EVENTS else "other"
    return {"BAR": "registration", "MDM": "note", "DFT": "charges"}.get(t, "other")


def _event(msg: Hl7Message) -> str:
    evn = msg.first("EVN")
    return msg.meta.trigger or (evn.get(1).upper() if evn else "")


def read_message(msg: Hl7Message) -> Contribution:
    """Read one parsed message; see the module docstring. Never raises."""
    out = Contribution(kind_of(msg), _event(msg))
    if out.kind == "other":
        return out
    problems = out.problems
    pid = msg.first("PID")
    if pid is None:
        problems.append(_missing_segment(msg, "PID"))
    pv1 = msg.first("PV1")
    if pv1 is None and out.kind == "registration":
        problems.append(_missing_segment(msg, "PV1"))
    if pid is not None:
        out.patient = person_of(
            pid, problems, name=5, birth=7, sex=8, address=11, patient_id=mrn_of(pid)
        )
        out.keys["PID-3"] = mrn_of(pid) or ""
        out.keys["PID-18"] = pid.get(18)
    if pv1 is not None:
        out.visit = _visit(pv1, problems)
        for key, n in (("PV1-19", 19), ("PV1-50", 50), ("PV1-5", 5)):
            out.keys[key] = pv1.get(n)
        out.keys["PV1-44"] = out.visit.admit_day.isoformat() if out.visit.admit_day else ""
        out.facilities += [out.visit.servicing_facility, out.visit.location_facility]
    out.facilities += [msg.meta.facility, *msg.meta.sending_facility[1:2]]
    out.facilities = [f for f in out.facilities if f]
    diagnoses = [(i, s) for i, s in _diagnoses(msg, problems)]
    out.diagnoses = diagnoses
    gt1 = msg.first("GT1")
    if gt1 is not None and gt1.get(3):
        out.guarantor = person_of(
            gt1, problems, name=3, birth=8, sex=9, address=5, patient_id=gt1.get(2) or None
        )
    if msg.first("IN1") is not None:
        out.coverages = _coverages(msg, problems)
    if out.kind == "registration":
        _registration(msg, out)
    elif out.kind == "note":
        _document(msg, out)
    else:
        _charges(msg, out)
    return out


def _missing_segment(msg: Hl7Message, seg_id: str) -> Hl7Problem:
    t = f"{msg.meta.message_type}^{_event(msg)}"
    return Hl7Problem(f"required segment missing from {t}", seg_id, code=100)


def _visit(pv1: Segment, problems: list[Hl7Problem]) -> VisitIn:
    return VisitIn(
        patient_class=pv1.get(2).upper(),
        point_of_care=pv1.get(3, 1),
        location_facility=pv1.get(3, 4),
        admission_type=pv1.get(4).upper(),
        attending=practitioner_of(pv1, 7),
        referring=practitioner_of(pv1, 8),
        admitting=practitioner_of(pv1, 17),
        admit_source=pv1.get(14).upper(),
        discharge_disposition=pv1.get(36).upper(),
        servicing_facility=pv1.get(39),
        admit_day=read_date(pv1, 44, problems, what="an admit date"),
        discharge_day=read_date(pv1, 45, problems, what="a discharge date"),
    )


# --------------------------------------------------------------------------- ADT / BAR


def _registration(msg: Hl7Message, out: Contribution) -> None:
    out.cancelled = out.event in ("A11", "A38")
    out.discharge_cancelled = out.event == "A13"
    out.discharged = out.event == "A03" or bool(out.visit and out.visit.discharge_day)


def _coverages(msg: Hl7Message, problems: list[Hl7Problem]) -> list[CoverageIn]:
    out: list[CoverageIn] = []
    in1: Segment | None = None
    pending: dict[int, Segment | None] = {}
    order: list[Segment] = []
    for seg in msg.segments:
        if seg.id == "IN1":
            in1 = seg
            order.append(seg)
            pending[seg.position] = None
        elif seg.id == "IN2" and in1 is not None and pending[in1.position] is None:
            pending[in1.position] = seg
    for in1 in order:
        in2 = pending[in1.position]
        set_id = _int(in1, 1, problems)
        priority = _int(in1, 22, problems)
        if priority is not None and priority not in (1, 2, 3):
            problems.append(
                in1.problem(22, "expected 1, 2 or 3 (coordination-of-benefits priority)")
            )
            priority = None
        insured_problems: list[Hl7Problem] = []
        insured = person_of(in1, insured_problems, name=16, birth=18, sex=43, address=19)
        problems.extend(insured_problems)
        member = in1.get(36) or in1.get(49) or (in2.get(61) if in2 else "") or None
        plan_type = in1.get(15).upper()
        if member is None and in2 is not None:
            member = in2.get(6) or in2.get(8) or None  # Medicare HIC / Medicaid case number
        out.append(
            CoverageIn(
                position=in1.position,
                set_id=set_id,
                priority=priority,
                plan_id=in1.get(2),
                plan_name=in1.get(2, 2),
                company_ids=[r.get(1) for r in in1.reps(3) if r.get(1)],
                company_name=in1.get(4),
                group_number=in1.get(8) or None,
                relationship=in1.get(17).upper(),
                insured=insured if (insured.first_name or insured.last_name) else None,
                member_id=member,
                plan_type=plan_type,
                authorization=in1.get(14) or None,
            )
        )
    return out


def _int(seg: Segment, n: int, problems: list[Hl7Problem]) -> int | None:
    value = seg.get(n)
    if not value:
        return None
    if not value.isdigit():
        problems.append(seg.problem(n, "expected a whole number"))
        return None
    return int(value)


# --------------------------------------------------------------------------- diagnoses


def _diagnoses(msg: Hl7Message, problems: list[Hl7Problem]) -> list[tuple[int, SuppliedCode]]:
    """DG1 (priority DG1-15, 1 = principal; others after) then FT1-19 codes."""
    out = []
    for dg1 in msg.all("DG1"):
        reps = dg1.reps(3)
        codings = coded_of(reps[0]) if reps else []
        if not codings:
            if dg1.get(4):
                out.append((99, SuppliedCode(system="unknown", code=dg1.get(4)[:16])))
            else:
                problems.append(dg1.problem(3, "required: the diagnosis code", code=101))
            continue
        priority = dg1.get(15)
        rank = int(priority) if priority.isdigit() and int(priority) > 0 else 99
        method = dg1.get(2).upper()
        c = codings[0]
        out.append((rank, _dx(c.code, c.system or method, c.text or dg1.get(4) or None)))
    for ft1 in msg.all("FT1"):
        for rep in ft1.reps(19):
            for c in coded_of(rep)[:1]:
                out.append((99, _dx(c.code, c.system, c.text)))
    return out


def _dx(code: str, system: str, text: str | None) -> SuppliedCode:
    key = re.sub(r"[\s._-]+", "", system.upper())
    return SuppliedCode(system=_DX_SYSTEMS.get(key, "unknown"), code=code.strip(), display=text)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- MDM


def _document(msg: Hl7Message, out: Contribution) -> None:
    txa = msg.first("TXA")
    if txa is None:
        out.problems.append(_missing_segment(msg, "TXA"))
        return
    doc_id = txa.get(12) or txa.get(16) or msg.meta.control_id
    status = txa.get(17).upper()
    if status and status not in ("AU", "DI", "DO", "IN", "IP", "LA", "PA"):
        out.problems.append(
            txa.problem(17, "expected a completion status of HL7 table 0271", code=103)
        )
    if out.event in NOTE_CANCEL_EVENTS:
        out.notes_cancelled.append(doc_id)
        return
    if out.event in NOTE_STATUS_EVENTS or not [
        s for s in msg.all("OBX") if s.position > txa.position
    ]:
        if status:
            out.note_status[doc_id] = status
        return
    day = read_date(txa, 4, out.problems, what="an activity date") or read_date(
        txa, 6, out.problems, what="an origination date"
    )
    out.notes.append(NoteIn(doc_id, status, day, _note_text(msg, txa, out.problems)))


def _note_text(msg: Hl7Message, txa: Segment, problems: list[Hl7Problem]) -> str | None:
    """OBX-5 text (TX, ST, FT with \\.br\\ line breaks) in order, or an encapsulated document
    (ED: base64 or hex text, RTF, HTML). None when nothing is readable (a warning says why)."""
    lines: list[str] = []
    unreadable = 0
    for obx in msg.all("OBX"):
        if obx.position < txa.position:
            continue
        value_type = obx.get(2).upper()
        if value_type in _TEXT_TYPES:
            lines.append(obx.text(5))
        elif value_type == "ED":
            text = _encapsulated(obx, problems)
            unreadable += text is None
            if text:
                lines.append(text)
        elif value_type == "RP":
            problems.append(obx.problem(5, "a reference to a document elsewhere: not fetched"))
            unreadable += 1
    text = tidy("\n".join(lines))
    if text:
        return text
    if not unreadable:
        problems.append(
            txa.problem(None, "the document holds no text (OBX-5 of type TX, FT, ST or ED)")
        )
    return None


def _encapsulated(obx: Segment, problems: list[Hl7Problem]) -> str | None:
    kind = (obx.get(5, 2).upper(), obx.get(5, 3).upper())
    encoding, data = obx.get(5, 4).upper(), obx.get(5, 5)
    content_type = (
        _ED_TYPES.get(kind)
        or _ED_TYPES.get((kind[0], ""))
        or f"{kind[0].lower()}/{kind[1].lower()}"
    )
    if not data:
        problems.append(obx.problem(5, "an encapsulated document without data", component=5))
        return None
    try:
        if encoding in ("BASE64", "B64"):
            text = decode_payload(data, content_type)
        elif encoding == "HEX":
            text = decode_bytes(bytes.fromhex(data), content_type)
        else:  # A: ASCII text as written
            text = decode_bytes(data.encode("utf-8"), content_type)
    except Unreadable as e:
        problems.append(obx.problem(5, f"encapsulated document not readable: {e}"))
        return None
    except ValueError:
        problems.append(obx.problem(5, "expected hexadecimal data", component=5))
        return None
    return text or None


# --------------------------------------------------------------------------- DFT


def _charges(msg: Hl7Message, out: Contribution) -> None:
    ft1s = msg.all("FT1")
    if not ft1s:
        out.problems.append(_missing_segment(msg, "FT1"))
        return
    for ft1 in ft1s:
        kind = ft1.get(6).upper() or "CG"
        if kind not in ("CG", "CD"):
            continue  # payments, adjustments, co-payments are not charges
        found = _procedure(ft1)
        if found is None:
            out.problems.append(
                ft1.problem(
                    7 if not ft1.get(25) else 25,
                    "not a CPT or HCPCS code (send it in FT1-25): charge not used",
                    code=103,
                )
            )
            continue
        code, system = found
        units = decimal_of(ft1, 10, out.problems)
        if units is not None and units <= 0:
            out.problems.append(ft1.problem(10, "expected a positive quantity: 1 assumed"))
            units = None
        modifiers = []
        for rep in ft1.reps(26):
            m = rep.get(1).upper()
            if _MODIFIER.fullmatch(m):
                modifiers.append(m)
            else:
                out.problems.append(ft1.problem(26, "expected a two-character procedure modifier"))
        out.charges.append(
            ChargeIn(
                transaction_id=ft1.get(2),
                kind=kind,
                day=read_date(ft1, 4, out.problems, what="a transaction date"),
                code=code,
                system=system,
                modifiers=modifiers[:4],
                units=units or Decimal(1),
                diagnoses=[
                    _dx(c.code, c.system, c.text) for r in ft1.reps(19) for c in coded_of(r)[:1]
                ],
                performed_by=practitioner_of(ft1, 20),
            )
        )


def _procedure(ft1: Segment) -> tuple[str, str] | None:
    """FT1-25 (the procedure code), else FT1-7 (the transaction code) when it is CPT or
    HCPCS: by its coding system (C4, HCPCS, ...), or by its shape when none is given."""
    for n in (25, 7):
        reps = ft1.reps(n)
        for c in coded_of(reps[0]) if reps else []:
            code = c.code.strip().upper()
            key = re.sub(r"[\s._-]+", "", c.system)
            if key in _PX_SYSTEMS:
                return code, _PX_SYSTEMS[key]
            if not key and _CPT.fullmatch(code):
                return code, "cpt"
            if not key and _HCPCS.fullmatch(code):
                return code, "hcpcs"
    return None
