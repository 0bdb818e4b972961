"""Bulk FHIR ``$export`` (NDJSON): what each line is and how lines regroup into encounters.

Pure helpers for a streaming import: ``read_line`` classifies one line (a resource to keep,
one billing never reads, or a problem), ``keys_of`` gives what a resource is filed under
(patient, the encounters it names, its clinical day, its identifiers) and ``references_in``
the resources it points to; ``assemble`` makes a collection Bundle of one encounter's
resources for the mapping. Problems name the file and line, never a value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

# What an encounter's claim can use; every other type (Observation, Immunization, ...) is
# counted and skipped without being decoded.
STAGED_TYPES = frozenset(
    {
        "Encounter",
        "Patient",
        "Coverage",
        "Organization",
        "Practitioner",
        "PractitionerRole",
        "Location",
        "RelatedPerson",
        "Binary",
        "Condition",
        "Procedure",
        "Composition",
        "DocumentReference",
        "Claim",
        "ExplanationOfBenefit",
    }
)
# Resources that belong to an encounter (by reference, else by patient and date) ...
GROUPED_TYPES = frozenset(
    {"Condition", "Procedure", "Composition", "DocumentReference", "Claim", "ExplanationOfBenefit"}
)
# ... and those shared by many, found through references (conditional ones by identifier).
SHARED_TYPES = frozenset(
    {"Organization", "Practitioner", "PractitionerRole", "Location", "RelatedPerson", "Binary"}
)
IDENTIFIED_TYPES = SHARED_TYPES | {"Patient", "Coverage"}

_TYPE = re.compile(rb'"resourceType"\s*:\s*"([A-Za-z]+)"')
_REFERENCE = re.compile(r'"reference"\s*:\s*"((?:[^"\\]|\\.)*)"')
_BINARY_URL = re.compile(r'"url"\s*:\s*"((?:[^"\\]|\\.)*Binary/(?:[^"\\]|\\.)*)"')
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_RELATIVE = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")
_CONDITIONAL = re.compile(r"^([A-Z][A-Za-z]+)\?identifier=(.*)$")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

# Where a grouped resource names its encounter, and its clinical date.
_ENCOUNTER_AT: dict[str, tuple[tuple[str, ...], ...]] = {
    "Condition": (("encounter",),),
    "Procedure": (("encounter",),),
    "Composition": (("encounter",),),
    "DocumentReference": (("context", "encounter"), ("context",)),
    "Claim": (("item", "encounter"),),
    "ExplanationOfBenefit": (("item", "encounter"),),
}
_DAY_AT: dict[str, tuple[tuple[str, ...], ...]] = {
    "Encounter": (("period", "start"),),
    "Condition": (("recordedDate",), ("onsetDateTime",), ("onsetPeriod", "start")),
    "Procedure": (("performedDateTime",), ("performedPeriod", "start")),
    "Composition": (("date",),),
    "DocumentReference": (("context", "period", "start"), ("date",)),
    "Claim": (("billablePeriod", "start"), ("created",)),
    "ExplanationOfBenefit": (("billablePeriod", "start"), ("created",)),
}
_PATIENT_AT = ("subject", "patient", "beneficiary")


@dataclass(frozen=True, slots=True)
class Skipped:
    """A resource of a type billing does not read."""

    rtype: str


@dataclass(frozen=True, slots=True)
class Bad:
    """A line that is not a resource: ``path`` is ``file:line``."""

    path: str
    message: str


@dataclass(frozen=True, slots=True)
class Keys:
    """What a resource is filed under in the staging store."""

    rtype: str
    rid: str
    patient: str | None  # the id of the Patient it belongs to
    encounters: tuple[str, ...]  # ids of the Encounters it names (grouped types)
    day: str | None  # YYYY-MM-DD: an Encounter's start, a grouped resource's date
    end_day: str | None  # an Encounter's last day
    identifiers: tuple[tuple[str, str], ...]  # (system, value), for conditional references


def read_line(raw: bytes, where: str) -> tuple[Keys, dict] | Skipped | Bad | None:
    """Classify one NDJSON line: (its keys, the resource), Skipped, Bad, or None when blank.

    A line whose only ``resourceType`` names a type billing never reads is skipped without
    being decoded (most of an export: Observations, Immunizations, ...).
    """
    if not raw.strip():
        return None
    if raw.count(b'"resourceType"') == 1 and (m := _TYPE.search(raw)):
        rtype = m.group(1).decode()
        if rtype not in STAGED_TYPES:
            return Skipped(rtype)
    try:
        res = json.loads(raw)
    except ValueError:
        return Bad(where, "expected one JSON resource on the line")
    if not isinstance(res, dict):
        return Bad(where, "expected a JSON object")
    rtype = res.get("resourceType")
    if not isinstance(rtype, str) or not rtype:
        return Bad(where, "expected a resourceType")
    if rtype not in STAGED_TYPES:
        return Skipped(rtype)
    rid = res.get("id")
    if not isinstance(rid, str) or not rid:
        return Bad(where, f"expected an id on the {rtype}")
    return keys_of(res), res


def keys_of(res: dict) -> Keys:
    rtype, rid = res["resourceType"], res["id"]
    patient = rid if rtype == "Patient" else _patient_of(res)
    encounters = tuple(
        dict.fromkeys(
            target[1]
            for ref in _refs_at(res, _ENCOUNTER_AT.get(rtype, ()))
            if (target := parse_reference(ref)) and target[0] in ("Encounter", None)
        )
    )
    day = _first_day(res, _DAY_AT.get(rtype, ()))
    end_day = _first_day(res, (("period", "end"),)) if rtype == "Encounter" else None
    identifiers: tuple[tuple[str, str], ...] = ()
    if rtype in IDENTIFIED_TYPES and isinstance(res.get("identifier"), list):
        identifiers = tuple(
            (i["system"], i["value"])
            for i in res["identifier"]
            if isinstance(i, dict) and isinstance(i.get("system"), str)
            if isinstance(i.get("value"), str)
        )
    return Keys(rtype, rid, patient, encounters, day, end_day or day, identifiers)


def parse_reference(ref: str) -> tuple[str | None, str] | None:
    """``(type, id)`` of a relative, absolute or versioned reference, ``(None, id)`` of a
    ``urn:uuid:`` one (exports of transaction bundles keep them: the id is the uuid); None for
    other forms (conditional, contained, logical)."""
    if ref.startswith("urn:uuid:"):
        return (None, ref[9:]) if _UUID.fullmatch(ref[9:]) else None
    m = _RELATIVE.search(ref)
    return (m.group(1), m.group(2)) if m else None


def conditional(ref: str) -> tuple[str, str, str] | None:
    """``(type, system, value)`` of ``Type?identifier=system|value``; None for other forms."""
    m = _CONDITIONAL.match(ref)
    if not m:
        return None
    system, sep, value = m.group(2).partition("|")
    return (m.group(1), system, value) if sep and value else None


def references_in(raw: str) -> list[str]:
    """Every reference string in a resource's JSON text (contained ones too), and Binary URLs."""
    found = _REFERENCE.findall(raw) + _BINARY_URL.findall(raw)
    return [json.loads(f'"{m}"') if "\\" in m else m for m in found]


def assemble(resources: Iterable[tuple[str, str]]) -> str:
    """A collection Bundle (JSON text) of ``(id, JSON text)`` resources, in order; a uuid id
    also gets its ``urn:uuid:`` fullUrl, so references of that form resolve."""
    entries = ",".join(
        (
            '{"fullUrl":"urn:uuid:' + rid + '","resource":'
            if _UUID.fullmatch(rid)
            else '{"resource":'
        )
        + body
        + "}"
        for rid, body in resources
    )
    return '{"resourceType":"Bundle","type":"collection","entry":[' + entries + "]}"


def _patient_of(res: dict) -> str | None:
    for key in _PATIENT_AT:
        value = res.get(key)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict) and isinstance(item.get("reference"), str):
                target = parse_reference(item["reference"])
                if target and target[0] in ("Patient", None):
                    return target[1]
    return None


def _walk(value: object, keys: tuple[str, ...]) -> list[object]:
    found = [value]
    for key in keys:
        nxt: list[object] = []
        for v in found:
            for item in v if isinstance(v, list) else [v]:
                if isinstance(item, dict) and key in item:
                    nxt.append(item[key])
        found = nxt
    flat: list[object] = []
    for v in found:
        flat.extend(v if isinstance(v, list) else [v])
    return flat


def _refs_at(res: dict, paths: tuple[tuple[str, ...], ...]) -> list[str]:
    return [
        v["reference"]
        for keys in paths
        for v in _walk(res, keys)
        if isinstance(v, dict) and isinstance(v.get("reference"), str)
    ]


def _first_day(res: dict, paths: tuple[tuple[str, ...], ...]) -> str | None:
    for keys in paths:
        for v in _walk(res, keys):
            if isinstance(v, str) and _DAY.match(v):
                return v[:10]
    return None
