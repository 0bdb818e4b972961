"""One FHIR Encounter (with the resources that belong to it) -> ``shared.events.Encounter``.

Lenient: only an Encounter with no date of service anywhere (or one cancelled / entered in
error) is refused. Everything else that is wrong is a warning; billing fields that are absent
or unusable are named in ``missing`` for a biller to supply.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from math import isfinite
from typing import Any

from pydantic import ValidationError

from services.intake.domain import clinical
from services.intake.domain.bundles import day
from services.intake.domain.codes import (
    ADMISSION_TYPE,
    CLASS_PLACE_OF_SERVICE,
    DISCHARGE_STATUS,
    ENCOUNTER_CLASS,
    PLACE_OF_SERVICE,
    POINT_OF_ORIGIN,
    Field,
    code_for,
)
from services.intake.domain.context import Ctx
from services.intake.domain.coverage import Found, coverages
from services.intake.domain.parties import billing_provider, participants, patient, zip4
from services.intake.domain.problems import Problem
from services.intake.domain.references import Res, join
from services.intake.domain.systems import (
    ADMISSION_DATE_URL,
    ENCOUNTER_SYSTEM,
    PRIOR_AUTH_SYSTEM,
    TYPE_OF_BILL_URL,
    npi_is_valid,
)
from shared.events import Encounter, Institutional

_ID = re.compile(r"[A-Za-z0-9\-.]{1,38}")
_ESTABLISHED = re.compile(r"\bestablished\b|\best\b", re.I)
_NEW = re.compile(r"\bnew\b", re.I)
_MINUTES = {
    "min": Decimal(1),
    "mins": Decimal(1),
    "minute": Decimal(1),
    "minutes": Decimal(1),
    "h": Decimal(60),
    "hr": Decimal(60),
    "hour": Decimal(60),
    "hours": Decimal(60),
    "s": Decimal(1) / 60,
    "d": Decimal(1440),
}


@dataclass
class Mapped:
    encounter: Encounter | None
    problems: list[Problem]


def dates(ctx: Ctx, enc: Res, group: list[Res]) -> tuple[date | None, date | None]:
    """(service date, end date): ``period.start`` (R5: ``actualPeriod``; else its ``end``),
    else the day of the encounter's earliest dated note, else of its earliest care event."""
    ep = enc.path
    key = "period" if "period" in enc.data or "actualPeriod" not in enc.data else "actualPeriod"
    period = ctx.read.obj(enc.data, key, ep) or {}
    start = ctx.read.date_(period, "start", f"{ep}.{key}")
    end = ctx.read.date_(period, "end", f"{ep}.{key}")
    if start and end and end < start:
        ctx.warn(f"{ep}.period.end", "must not be before period.start: ignored")
        end = None
    if start is None and end is not None:
        start = end
    if start is None and (days := clinical.note_dates(group)):
        start = days[0]
        ctx.warn(f"{ep}.period.start", "absent: the date of service is the note's date")
    if start is None and (days := _event_days(ctx, enc)):
        start = days[0]
        ctx.warn(f"{ep}.period.start", "absent: the date of service is that of a care event of it")
    return start, end


# Care given during an encounter, and where each records when.
_EVENTS = {
    "Procedure": (("performedDateTime",), ("performedPeriod", "start")),
    "Immunization": (("occurrenceDateTime",),),
    "Observation": (("effectiveDateTime",), ("effectivePeriod", "start")),
    "DiagnosticReport": (("effectiveDateTime",), ("effectivePeriod", "start")),
    "MedicationAdministration": (("effectiveDateTime",), ("effectivePeriod", "start")),
}


def _event_days(ctx: Ctx, enc: Res) -> list[date]:
    """Days of the care events (procedures, immunizations, observations...) that name this
    Encounter: the visit happened on them."""
    out = []
    for r in ctx.index.of_type(*_EVENTS):
        ref = r.data.get("encounter") or r.data.get("context")
        target = ref.get("reference") if isinstance(ref, dict) else None
        if not isinstance(target, str) or ctx.index.lookup(target, r) is not enc:
            continue
        for keys in _EVENTS[r.type]:
            value: object = r.data
            for key in keys:
                value = value.get(key) if isinstance(value, dict) else None
            if (d := day(value)) is not None:
                out.append(d)
                break
    return sorted(out)


def period_span(enc: Res) -> tuple[date, date] | None:
    """The days an Encounter's period covers (for matching undated references by date)."""
    period = enc.data.get("period") or enc.data.get("actualPeriod")  # R5 names it so
    if not isinstance(period, dict):
        return None
    start, end = day(period.get("start")), day(period.get("end"))
    start, end = start or end, end or start
    return (start, max(start, end)) if start and end else None


def map_encounter(ctx: Ctx, enc: Res, group: list[Res]) -> Mapped:
    """Map one Encounter; see the module docstring."""
    ep, data = enc.path, enc.data
    status = data.get("status")
    if status in ("cancelled", "entered-in-error"):
        return Mapped(
            None,
            [
                Problem(
                    join(ep, "status"), "a cancelled or entered-in-error encounter is not billed"
                )
            ],
        )
    service_date, end_date = dates(ctx, enc, group)
    if service_date is None:
        msg = "required: the date of service (Encounter.period, or a dated note of this encounter)"
        return Mapped(None, [Problem(join(ep, "period.start"), msg)])
    encounter_id = _encounter_id(ctx, enc)
    enc_class = _class(ctx, enc)
    person, patient_res, patient_key = patient(ctx, enc)
    if person.birth_date and person.birth_date > service_date:
        ctx.warn(
            f"{patient_res.path if patient_res else ep}.birthDate",
            "must not be after the date of service: ignored",
        )
        person = person.model_copy(update={"birth_date": None})
    billing, site_id = billing_provider(ctx, enc)
    rendering, attending = participants(ctx, enc)
    found = coverages(ctx, patient_res, patient_key, service_date, group)
    prior_auth = ctx.read.ident(data, ep, PRIOR_AUTH_SYSTEM)
    if not prior_auth and (hit := ctx.read.ext(data, PRIOR_AUTH_SYSTEM, ep)):
        prior_auth = hit[1]
    values: dict[str, Any] = dict(
        encounter_id=encounter_id,
        site_id=site_id,
        encounter_class=enc_class,
        service_date=service_date,
        end_date=end_date,
        length_minutes=_length(ctx, enc),
        visit_type=_visit_type(ctx, enc),
        place_of_service=_place_of_service(ctx, enc) or CLASS_PLACE_OF_SERVICE.get(enc_class),
        billing_provider=billing,
        rendering_provider=rendering,
        patient=person,
        coverages=found.coverages,
        note=clinical.note(ctx, enc, group),
        diagnoses=clinical.diagnoses(ctx, enc, group),
        procedures=clinical.procedures(ctx, group),
        prior_authorization=prior_auth,
        institutional=_institutional(ctx, enc, enc_class, service_date, attending),
    )
    try:
        encounter = Encounter(**values)
    except ValidationError as exc:  # a value the model refuses: warn, drop it, keep the encounter
        for e in exc.errors(include_input=False, include_url=False):
            name = e["loc"][0] if e["loc"] else None
            ctx.warn(ep if not isinstance(name, str) else join(ep, name), e["msg"])
            if isinstance(name, str) and name not in ("encounter_id", "site_id", "service_date"):
                values[name] = None if name not in ("coverages", "diagnoses", "procedures") else []
        encounter = Encounter(**{k: v for k, v in values.items() if v is not None})
    _missing(ctx, encounter, found)
    return Mapped(encounter, [])


def _encounter_id(ctx: Ctx, enc: Res) -> str:
    """``urn:rcm:encounter`` identifier, else ``Encounter.id``, else its first identifier, else
    the fullUrl. Longer than 38 characters (the claim id's limit) or with other characters
    than FHIR ids use: a stable hash of it."""
    read, ep = ctx.read, enc.path
    raw, where = read.ident(enc.data, ep, ENCOUNTER_SYSTEM), join(ep, "identifier")
    if raw is None:
        raw, where = enc.id, join(ep, "id")
    if raw is None:
        for ip, ident in read.objs(enc.data, "identifier", ep):
            if raw := read.str_(ident, "value", ip):
                where = join(ep, "identifier")
                break
    raw = raw or enc.full_url or enc.path
    if _ID.fullmatch(raw):
        return raw
    ctx.warn(where, "encounter id longer than 38 characters or not [A-Za-z0-9-.]: hashed")
    return "h" + hashlib.sha256(raw.encode()).hexdigest()[:32]


def _class(ctx: Ctx, enc: Res) -> str:
    v = enc.data.get("class")
    if v is None:
        return "AMB"
    codings, _ = ctx.read.concept(v, join(enc.path, "class"))
    code = code_for(ENCOUNTER_CLASS, codings, ctx.maps)
    if code is None:
        ctx.warn(
            join(enc.path, "class"),
            "encounter class not recognised (add it to a concept map): AMB assumed",
        )
        return "AMB"
    return code


def _length(ctx: Ctx, enc: Res) -> int | None:
    read, ep = ctx.read, enc.path
    d = read.obj(enc.data, "length", ep)
    if d is None:
        return None
    lp = f"{ep}.length"
    value = d.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not isfinite(value):
        return read.warn(f"{lp}.value", "expected a number (a Duration value)")
    unit_key = "code" if "code" in d else "unit"
    unit = read.str_(d, unit_key, lp) or "min"  # a bare number is read as minutes
    factor = _MINUTES.get(unit.lower())
    if factor is None:
        return read.warn(f"{lp}.{unit_key}", "expected a UCUM time unit (min, h, s or d)")
    minutes = Decimal(str(value)) * factor
    if not 0 <= minutes <= 24 * 60:
        return read.warn(f"{lp}.value", "expected a duration from 0 to 24 hours")
    return int(minutes.quantize(Decimal(1), ROUND_HALF_UP))


def visit_hint(text: str | None) -> str | None:
    if not text:
        return None
    code = text.strip()
    if code.isdigit() and len(code) == 5:  # CPT E/M codes say new vs established
        n = int(code)
        if 99202 <= n <= 99205 or 99381 <= n <= 99387:
            return "new"
        if 99211 <= n <= 99215 or 99391 <= n <= 99397:
            return "established"
        return None
    # "established" first: "established patient, new problem" is established.
    if _ESTABLISHED.search(text):
        return "established"
    return "new" if _NEW.search(text) else None


def _visit_type(ctx: Ctx, enc: Res) -> str | None:
    for tp, cc in ctx.read.objs(enc.data, "type", enc.path):
        codings, text = ctx.read.concept(cc, tp)
        for hint in [text, *(d for _, _, d in codings), *(c for _, c, _ in codings)]:
            if found := visit_hint(hint):
                return found
    return None


def _place_of_service(ctx: Ctx, enc: Res) -> str | None:
    """CMS place of service from the Encounter's Locations' ``type`` (the CMS system, a
    two-digit code, or a concept-mapped one). An unresolved location is a warning."""
    read = ctx.read
    for lp, item in read.objs(enc.data, "location", enc.path):
        ref = ctx.resolve(item.get("location"), f"{lp}.location", enc, "Location")
        if ref.res is None:
            continue
        loc = ref.res
        for tp, cc in read.objs(loc.data, "type", loc.path):
            codings, _ = read.concept(cc, tp)
            if found := code_for(PLACE_OF_SERVICE, codings, ctx.maps):
                return found
            if any(c and len(c) == 2 and c.isdigit() for _, c, _ in codings):
                return next(c for _, c, _ in codings if c and len(c) == 2 and c.isdigit())
    return None


def _institutional(
    ctx: Ctx, enc: Res, enc_class: str, service_date: date, attending
) -> Institutional | None:
    read, ep, data = ctx.read, enc.path, enc.data
    hosp = read.obj(data, "hospitalization", ep) or read.obj(data, "admission", ep)
    tob = read.ext(data, TYPE_OF_BILL_URL, ep)
    if enc_class != "IMP" and hosp is None and tob is None:
        return None
    hp = f"{ep}.hospitalization" if "hospitalization" in data else f"{ep}.admission"
    values: dict[str, Any] = {"attending": attending}
    if tob and re.fullmatch(r"0?\d{3}", tob[1]):
        values["type_of_bill"] = tob[1].rjust(4, "0")
    else:
        if tob:
            read.warn(tob[0], "expected a type of bill (e.g. 0111 inpatient, 0131 outpatient)")
        if enc_class == "IMP":
            values["type_of_bill"] = "0111"
    admitted = read.ext(data, ADMISSION_DATE_URL, ep)
    if admitted:
        xp, key = admitted[0].rsplit(".", 1)
        values["admission_date"] = read.date_({key: admitted[1]}, key, xp, full=True)
    elif enc_class == "IMP":
        values["admission_date"] = service_date
    values["admission_type"] = _ub04(ctx, data, "priority", ep, ADMISSION_TYPE)
    if hosp is not None:
        values["admission_source"] = _ub04(ctx, hosp, "admitSource", hp, POINT_OF_ORIGIN)
        status = _ub04(ctx, hosp, "dischargeDisposition", hp, DISCHARGE_STATUS)
        if status:
            values["discharge_status"] = status
    return Institutional(**{k: v for k, v in values.items() if v is not None or k == "attending"})


def _ub04(ctx: Ctx, holder: dict, key: str, path: str, fld: Field) -> str | None:
    """A UB-04 code from a standard system, a concept map, or a bare NUBC code; otherwise a
    warning and None (the claim's default applies)."""
    cc = ctx.read.obj(holder, key, path)
    if cc is None:
        return None
    codings, _ = ctx.read.concept(cc, f"{path}.{key}")
    code = code_for(fld, codings, ctx.maps)
    if code is None and codings:
        ctx.warn(f"{path}.{key}", f"{fld.name} not recognised (add it to a concept map): not used")
    return code


def _missing(ctx: Ctx, enc: Encounter, found: Found) -> None:
    """Name each billing field a biller must supply before the claim can go."""
    bp = enc.billing_provider
    if not bp.name:
        ctx.need("billing_provider.name")
    if not bp.npi or not npi_is_valid(bp.npi):
        ctx.need("billing_provider.npi")
    tax = (bp.tax_id or "").replace("-", "")
    if len(tax) != 9 or not tax.isdigit():
        ctx.need("billing_provider.tax_id")
    if bp.address is None:
        ctx.need("billing_provider.address")
    elif not zip4(bp.address):
        ctx.need("billing_provider.address.postal_code (ZIP+4)")
    rp = enc.rendering_provider
    if rp is not None and not npi_is_valid(rp.npi):
        ctx.need("rendering_provider.npi")
    p = enc.patient
    for name in ("first_name", "last_name", "birth_date", "address"):
        if getattr(p, name) is None:
            ctx.need(f"patient.{name}")
    primary = enc.primary_coverage
    if primary is None:
        if not found.self_pay:
            ctx.need("coverage")
        return
    if found.primary_payer_id_unknown:
        ctx.need("coverage.payer_id")
    if not (primary.member_id or "").strip():
        ctx.need("coverage.member_id")
    if found.primary_subscriber_unknown:
        ctx.need("coverage.subscriber")
