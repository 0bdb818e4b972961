"""The FHIR mapping as the service, the importer and the CLI call it.

``parse`` runs the domain's ``parse_fhir`` and gives its problems (rejections) and
input-wide warnings as ``{"path", "message"}`` dicts, the shape every API and command
reports; each encounter keeps ``encounter``, ``warnings`` and ``missing`` (billing fields a
biller must supply). Concept maps and the SNOMED CT map are read once, from files.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

from services.intake.domain.codes import (
    ConceptMaps,
    SnomedMap,
    parse_concept_map,
    parse_snomed_map,
)
from services.intake.domain.fhir import ParsedEncounter, parse_fhir

MappedEncounter = ParsedEncounter


@dataclass(frozen=True)
class Mapped:
    encounters: list[ParsedEncounter]
    problems: list[dict[str, str]]
    warnings: list[dict[str, str]]


@dataclass(frozen=True)
class Codes:
    """What translates an EHR's own codes: concept maps and NLM's SNOMED CT to ICD-10-CM map."""

    concept_maps: ConceptMaps | None = None
    snomed_map: SnomedMap | None = None


def load_codes(concept_maps: list[Path], snomed_map: Path | None) -> Codes:
    """Read the files; raises ``IntakeError`` (problems with their line) or ``OSError``."""
    maps = [parse_concept_map(p.read_text(encoding="utf-8-sig")) for p in concept_maps]
    return Codes(
        ConceptMaps.combine(maps) if maps else None,
        parse_snomed_map(snomed_map.read_text(encoding="utf-8-sig")) if snomed_map else None,
    )


def parse(
    data: object, *, registry: Any = None, codes: Codes | None = None, site_id: str | None = None
) -> Mapped:
    """Map one input (FHIR R4 of any shape or native JSON; parsed, text or bytes)."""
    codes = codes or Codes()
    result = parse_fhir(
        data,
        registry=registry,
        concept_maps=codes.concept_maps,
        snomed_map=codes.snomed_map,
        site_id=site_id,
    )
    return Mapped(
        result.encounters,
        [plain(p) for p in result.problems],
        [plain(w) for w in result.warnings],
    )


def plain(item: Any) -> Any:
    """A warning, problem or missing-field entry as JSON-ready data (dict, dataclass, model, str)."""
    if is_dataclass(item) and not isinstance(item, type):
        return asdict(item)
    if hasattr(item, "model_dump"):
        return item.model_dump(mode="json")
    return item
