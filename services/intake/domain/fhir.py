"""FHIR R4 intake: any EHR's FHIR (or the native JSON encounter) becomes encounters.

``parse_fhir`` returns every encounter the input holds, each with its warnings and the
billing fields a biller must supply, and the problems that made (parts of) the input not an
encounter. ``parse_intake`` is the one-encounter form that raises. The mapping is documented
in docs/fhir-intake.md; keep the two in step. No message carries a value from the input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError

from services.intake.domain.bundles import collect, decode, group
from services.intake.domain.codes import ConceptMaps, SnomedMap
from services.intake.domain.context import Ctx
from services.intake.domain.mapping import map_encounter, period_span
from services.intake.domain.notes import narrative_text
from services.intake.domain.problems import IntakeError, Problem, Sink
from services.intake.domain.reader import Reader
from services.intake.domain.references import Index, Res
from services.intake.domain.registry import Registry
from services.intake.domain.systems import (
    ACT_CODE_SYSTEM,
    ADMISSION_DATE_URL,
    ADMISSION_TYPE_SYSTEM,
    CODE_SYSTEM_URIS,
    EIN_SYSTEM,
    ENCOUNTER_SYSTEM,
    FILING_INDICATOR_URL,
    MRN_SYSTEM,
    NPI_SYSTEM,
    PARTICIPATION_SYSTEM,
    PATIENT_STATUS_SYSTEM,
    PAYER_SYSTEM,
    POINT_OF_ORIGIN_SYSTEM,
    POS_SYSTEM,
    PRIOR_AUTH_SYSTEM,
    RELATIONSHIP_SYSTEM,
    SITE_SYSTEM,
    TAXONOMY_SYSTEM,
    TYPE_OF_BILL_URL,
    X12_FILING_INDICATORS,
)
from shared.events import Encounter

__all__ = [
    "ACT_CODE_SYSTEM",
    "ADMISSION_DATE_URL",
    "ADMISSION_TYPE_SYSTEM",
    "CODE_SYSTEM_URIS",
    "EIN_SYSTEM",
    "ENCOUNTER_SYSTEM",
    "FILING_INDICATOR_URL",
    "MRN_SYSTEM",
    "NPI_SYSTEM",
    "PARTICIPATION_SYSTEM",
    "PATIENT_STATUS_SYSTEM",
    "PAYER_SYSTEM",
    "POINT_OF_ORIGIN_SYSTEM",
    "POS_SYSTEM",
    "PRIOR_AUTH_SYSTEM",
    "RELATIONSHIP_SYSTEM",
    "SITE_SYSTEM",
    "TAXONOMY_SYSTEM",
    "TYPE_OF_BILL_URL",
    "X12_FILING_INDICATORS",
    "IntakeError",
    "IntakeResult",
    "ParsedEncounter",
    "Problem",
    "narrative_text",
    "parse_fhir",
    "parse_intake",
]


@dataclass
class ParsedEncounter:
    """One encounter of the input. ``source`` is the JSON path of its FHIR Encounter (empty
    for native JSON); ``fhir_id`` the Encounter's resource id, for picking one of several."""

    encounter: Encounter
    warnings: list[Problem] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    source: str = ""
    fhir_id: str | None = None


@dataclass
class IntakeResult:
    """The encounters an input holds; ``problems`` say why the input (or one of its
    Encounters) is not an encounter; ``warnings`` concern the input as a whole."""

    encounters: list[ParsedEncounter] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


def parse_fhir(
    data: object,
    *,
    registry: Registry | None = None,
    concept_maps: ConceptMaps | None = None,
    snomed_map: SnomedMap | None = None,
    site_id: str | None = None,
) -> IntakeResult:
    """Map a FHIR R4 input (a Bundle of any type, one resource, NDJSON, as parsed JSON, text
    or bytes) or the native JSON encounter to its encounters.

    ``registry`` fills billing data the input lacks; ``concept_maps`` translate an EHR's own
    codings; ``snomed_map`` adds ICD-10-CM targets to SNOMED CT coded diagnoses; ``site_id``
    is the site of encounters whose organisation names none (e.g. the caller's site).
    Never raises for bad input: rejections are ``problems``."""
    doc, kind, problems = decode(data)
    if problems:
        return IntakeResult(problems=problems)
    if isinstance(doc, dict) and "resourceType" not in doc:
        return _native(doc)
    if not isinstance(doc, (dict, list)) or (
        kind == "json" and isinstance(doc, list) and not any(isinstance(x, dict) for x in doc)
    ):
        return IntakeResult(problems=[Problem("$", "expected a JSON object")])
    sink = Sink()
    resources = collect(doc, kind, sink)
    index = Index(resources)
    encounters = index.of_type("Encounter")
    if not encounters:
        return IntakeResult(problems=[_no_encounter(doc, kind)], warnings=sink.items)
    spans = {id(e): period_span(e) for e in encounters}
    patients = {id(e): _subject(index, e) for e in encounters}
    groups = group(index, encounters, spans, patients, sink)
    result = IntakeResult(warnings=sink.items)
    for enc in encounters:
        ctx = Ctx(index, Reader(Sink()), registry, concept_maps, snomed_map, site_id)
        mapped = map_encounter(ctx, enc, groups[id(enc)])
        result.problems.extend(mapped.problems)
        if mapped.encounter is not None:
            result.encounters.append(
                ParsedEncounter(
                    mapped.encounter, ctx.read.sink.items, ctx.missing, enc.path, enc.id
                )
            )
    return result


def _subject(index: Index, enc: Res) -> Res | None:
    """The Encounter's Patient when the input holds it (for grouping by patient)."""
    ref = enc.data.get("subject")
    target = ref.get("reference") if isinstance(ref, dict) else None
    hit = index.lookup(target, enc) if isinstance(target, str) else None
    return hit if hit is not None and hit.type == "Patient" else None


def _no_encounter(doc: object, kind: str) -> Problem:
    if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
        return Problem("entry", "expected an Encounter resource; none found")
    if isinstance(doc, dict):
        return Problem("resourceType", "expected an Encounter (or a Bundle holding one)")
    return Problem("$", "expected an Encounter resource; none found")


def _native(data: dict) -> IntakeResult:
    prefix, body = "", data
    if "encounter_id" not in data and isinstance(data.get("payload"), dict):
        prefix, body = "payload", data["payload"]
    try:
        return IntakeResult([ParsedEncounter(Encounter.model_validate(body))])
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        return IntakeResult(
            problems=[Problem(_loc_path(prefix, e["loc"]), e["msg"]) for e in errors]
        )


def _loc_path(prefix: str, loc: tuple) -> str:
    out = prefix
    for part in loc:
        out = f"{out}[{part}]" if isinstance(part, int) else (f"{out}.{part}" if out else part)
    return out or "$"


def parse_intake(data: object) -> Encounter:
    """The one encounter of a FHIR R4 input or native JSON encounter (bare or as an
    ``encounter.documented`` envelope with ``payload``); JSON text is accepted too.

    Lenient like ``parse_fhir`` (warnings and missing billing fields do not stop it).
    Raises ``IntakeError`` listing every problem, or when the input holds several encounters."""
    result = parse_fhir(data)
    if result.problems:
        raise IntakeError(result.problems)
    if len(result.encounters) != 1:
        found = len(result.encounters)
        raise IntakeError(
            [Problem("entry", f"expected exactly one Encounter resource; found {found}")]
        )
    return result.encounters[0].encounter
