"""FHIR R4 Appointments (scheduled visits) read as the visit they announce (pure: no I/O).

An Appointment says who comes (a Patient participant), to whom and where (Practitioner and
Location participants), when (``start``) and whether it still stands (``status``). Read with
the patient's Coverage resources of the same input, it is what a 270 needs before the visit.
Each Appointment is mapped exactly as an Encounter would be (``parse_fhir``): it is replaced,
in a copy of the input, by an Encounter of that patient, practitioner, location and date, so
the coverages, the site, the patient's MRN and so the coverage key (``coverage_key``) are the
ones the documented encounter will have, and its result can be reused then.

Lenient as encounter intake is: a problem names the path and never a value; an Appointment
with no usable status, date, patient or site is refused, the others of the input are kept.
"""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass, field

from services.intake.domain.bundles import collect, day, decode
from services.intake.domain.codes import ConceptMaps, SnomedMap
from services.intake.domain.fhir import parse_fhir
from services.intake.domain.problems import Problem, Sink
from services.intake.domain.references import Index, Res, join
from services.intake.domain.registry import Registry
from shared.events import UNASSIGNED_SITE, Encounter

STATUSES = frozenset(
    {
        "proposed",
        "pending",
        "booked",
        "arrived",
        "fulfilled",
        "cancelled",
        "noshow",
        "entered-in-error",
        "checked-in",
        "waitlist",
    }
)
APPOINTMENT_SYSTEM = "urn:rcm:appointment"  # an EHR's own appointment number, when it sends one
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_TOP_ENTRY = re.compile(r"entry\[(\d+)\](\.resource)?")
_TYPED = re.compile(r"(?:^|/)(Patient|Practitioner|PractitionerRole|Location)/")


@dataclass
class ParsedAppointment:
    appointment_id: str
    status: str
    visit: Encounter  # the visit as intake would map its encounter (PHI)
    source: str  # JSON path of the Appointment
    warnings: list[Problem] = field(default_factory=list)


@dataclass
class AppointmentsRead:
    appointments: list[ParsedAppointment] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def read_appointments(
    data: object,
    *,
    registry: Registry | None = None,
    concept_maps: ConceptMaps | None = None,
    snomed_map: SnomedMap | None = None,
    site_id: str | None = None,
) -> AppointmentsRead:
    """Every Appointment of a FHIR R4 input (a Bundle of any type, one resource, NDJSON; parsed,
    text or bytes) as its visit. ``site_id``: the site of an appointment whose Location names
    no organisation (e.g. the caller's only site). Never raises for bad input."""
    doc, kind, problems = decode(data)
    if problems:
        return AppointmentsRead(problems=problems)
    bundle, paths = _as_bundle(doc, kind)
    if bundle is None:
        return AppointmentsRead(problems=[Problem("$", "expected a FHIR resource or Bundle")])
    index = Index(collect(bundle, "json", Sink()))
    out = AppointmentsRead()
    stand_ins: dict[str, tuple[Res, str, str]] = {}  # encounter path -> (appointment, id, status)
    copied = copy.deepcopy(bundle)
    for n, appt in enumerate(index.of_type("Appointment")):
        m = _TOP_ENTRY.fullmatch(appt.path)
        if appt.container is not None or m is None:
            continue  # contained, or inside a nested bundle: not a visit of this input
        where = _where(paths, appt.path)
        got = _visit_resource(index, appt, where, n)
        if isinstance(got, Problem):
            out.problems.append(got)
            continue
        resource, appointment_id, status = got
        entry = copied["entry"][int(m.group(1))]
        if m.group(2):
            entry["resource"] = resource
        else:  # a resource written where the entry belongs: read as the entry's resource
            copied["entry"][int(m.group(1))] = resource
        stand_ins[appt.path] = (appt, appointment_id, status)
    if not stand_ins and not out.problems:
        return AppointmentsRead(problems=[Problem(_where_none(doc, kind), _NONE)])
    mapped = parse_fhir(
        copied,
        registry=registry,
        concept_maps=concept_maps,
        snomed_map=snomed_map,
        site_id=site_id,
    )
    by_path = {p.source: p for p in mapped.encounters}
    for path, (appt, appointment_id, status) in stand_ins.items():
        where = _where(paths, appt.path)
        parsed = by_path.get(path)
        if parsed is None:  # the mapping refused it (its problems name the stand-in's path)
            out.problems.append(Problem(join(where, "start"), "no visit could be read from it"))
            continue
        if parsed.encounter.site_id == UNASSIGNED_SITE:
            out.problems.append(
                Problem(
                    join(where, "participant"),
                    "no site: expected a Location participant whose managingOrganization"
                    " names a site (or a caller with one site)",
                )
            )
            continue
        # What is said of the stand-in itself (no documentation, ...) is about an encounter.
        warnings = [
            Problem(_where(paths, w.path), w.message) for w in parsed.warnings if w.path != path
        ]
        out.appointments.append(
            ParsedAppointment(appointment_id, status, parsed.encounter, where or "$", warnings)
        )
    return out


_NONE = "expected an Appointment resource; none found"


def _where_none(doc: object, kind: str) -> str:
    if kind == "json" and isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
        return "entry"
    return "resourceType" if isinstance(doc, dict) else "$"


def _where(paths: dict[str, str], path: str) -> str:
    """The path a resource had in the input (the bundle built for NDJSON or a bare resource
    has paths of its own)."""
    entry, _, rest = path.partition(".resource")
    return paths[entry] + rest if entry in paths else path


def _as_bundle(doc: object, kind: str) -> tuple[dict | None, dict[str, str]]:
    """The input as one Bundle (its entries at the top level) and, for inputs that were not a
    Bundle, the path each entry had in the input (for problems)."""
    if kind == "ndjson":
        rows = list(doc)  # type: ignore[call-overload]
        entries = [{"resource": res} for _, res in rows]
        paths = {f"entry[{i}]": f"line[{n}]" for i, (n, _) in enumerate(rows)}
        return {"resourceType": "Bundle", "type": "collection", "entry": entries}, paths
    if isinstance(doc, list):
        entries = [{"resource": r} for r in doc]
        return {"resourceType": "Bundle", "type": "collection", "entry": entries}, {
            f"entry[{i}]": f"[{i}]" for i in range(len(doc))
        }
    if not isinstance(doc, dict) or not isinstance(doc.get("resourceType"), str):
        return None, {}
    if doc["resourceType"] == "Bundle":
        if not isinstance(doc.get("entry"), list):
            return None, {}
        return doc, {}
    wrapped = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": doc}]}
    return wrapped, {"entry[0]": ""}


def _appointment_id(appt: Res, where: str) -> str | Problem:
    data = appt.data
    raw = None
    for ident in data.get("identifier") or []:
        if isinstance(ident, dict) and ident.get("system") == APPOINTMENT_SYSTEM:
            raw = ident.get("value")
    raw = raw or appt.id
    if raw is None:
        first = next(
            (i.get("value") for i in data.get("identifier") or [] if isinstance(i, dict)), None
        )
        raw = first if isinstance(first, str) else None
    raw = raw or appt.full_url
    if not isinstance(raw, str) or not raw.strip():
        return Problem(join(where, "id"), "required: the appointment's id or identifier")
    raw = raw.strip()
    # Longer or other characters than a FHIR id: a stable hash, as encounter ids are.
    return raw if _ID.fullmatch(raw) else "h" + hashlib.sha256(raw.encode()).hexdigest()[:32]


def _actor_type(index: Index, appt: Res, actor: dict) -> tuple[str | None, Res | None]:
    ref = actor.get("reference")
    hit = index.lookup(ref, appt) if isinstance(ref, str) and ref.strip() else None
    if hit is not None:
        return hit.type, hit
    if isinstance(actor.get("type"), str):
        return actor["type"], None
    m = _TYPED.search(ref) if isinstance(ref, str) else None
    return (m.group(1) if m else None), None


def _visit_resource(index: Index, appt: Res, where: str, n: int) -> tuple[dict, str, str] | Problem:
    """The Encounter standing in for ``appt`` (same references), its id and status."""
    data = appt.data
    status = data.get("status")
    if not isinstance(status, str) or status not in STATUSES:
        return Problem(
            join(where, "status"), "expected an Appointment status (booked, arrived, ...)"
        )
    start = data.get("start")
    if day(start) is None:
        return Problem(join(where, "start"), "required: the date and time of the visit")
    appointment_id = _appointment_id(appt, where)
    if isinstance(appointment_id, Problem):
        return appointment_id
    subject = None
    individuals, locations, organization = [], [], None
    parts = data.get("participant")
    for part in parts if isinstance(parts, list) else []:
        actor = part.get("actor") if isinstance(part, dict) else None
        if not isinstance(actor, dict):
            continue
        rtype, hit = _actor_type(index, appt, actor)
        if rtype == "Patient" and subject is None:
            subject = actor
        elif rtype in ("Practitioner", "PractitionerRole"):
            entry: dict = {"individual": actor}
            if isinstance(part.get("type"), list):
                entry["type"] = part["type"]
            individuals.append(entry)
        elif rtype == "Location":
            locations.append({"location": actor})
            managing = hit.data.get("managingOrganization") if hit is not None else None
            if organization is None and isinstance(managing, dict):
                organization = managing
    if subject is None:
        return Problem(
            join(where, "participant"), "expected a Patient participant (whose visit it is)"
        )
    visit: dict = {
        "resourceType": "Encounter",
        "id": f"rcm-appointment-{n}",
        "status": "planned",
        "subject": subject,
        "period": {"start": start},
    }
    if individuals:
        visit["participant"] = individuals
    if locations:
        visit["location"] = locations
    if organization is not None:
        visit["serviceProvider"] = organization
    return visit, appointment_id, status
