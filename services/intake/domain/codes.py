"""Code systems by configuration: concept maps, the codes accepted directly, SNOMED CT maps.

A ``ConceptMaps`` (from FHIR ConceptMap JSON or CSV ``source_system,source_code,target_code``,
a file per EHR or site) translates an EHR's own codings (an Epic OID system with code "5")
into the codes the claim needs: the encounter class, UB-04 point of origin, patient status,
priority of admission, and CMS place of service. ``code_for`` tries, in order: a standard
system, the concept maps, then a bare code the field accepts; None means "default it and warn".
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from services.intake.domain.problems import IntakeError, Problem
from services.intake.domain.systems import (
    ACT_CODE_SYSTEM,
    ADMISSION_TYPE_SYSTEM,
    NUBC_DISCHARGE,
    NUBC_POINT_OF_ORIGIN,
    NUBC_PRIORITY,
    PATIENT_STATUS_SYSTEM,
    POINT_OF_ORIGIN_SYSTEM,
    POS_SYSTEM,
)

Coding = tuple[str | None, str | None, str | None]  # (system, code, display)


@dataclass(frozen=True)
class Field:
    """One coded claim field: its valid codes, the systems whose codes it takes as they are,
    and standard codes it translates (FHIR value sets)."""

    name: str
    valid: frozenset[str]
    direct_systems: tuple[str, ...]
    translations: dict[str, str] = field(default_factory=dict)
    translation_systems: tuple[str | None, ...] = (None,)
    bare_codes: bool = True  # a code without a system is taken when valid


V2_PATIENT_CLASS = "http://terminology.hl7.org/CodeSystem/v2-0004"
ENCOUNTER_CLASS = Field(
    "encounter class",
    frozenset({"AMB", "EMER", "IMP", "OBSENC", "HH", "VR"}),
    (),
    {
        "AMB": "AMB",
        "EMER": "EMER",
        "IMP": "IMP",
        "ACUTE": "IMP",
        "NONAC": "IMP",
        "OBSENC": "OBSENC",
        "SS": "OBSENC",
        "HH": "HH",
        "VR": "VR",
        "PRENC": "AMB",
        "FLD": "AMB",
    },
    (ACT_CODE_SYSTEM, None, "http://hl7.org/fhir/v3/ActCode", "urn:oid:2.16.840.1.113883.5.4"),
)
V2_CLASS = {"E": "EMER", "I": "IMP", "O": "AMB", "R": "AMB", "P": "AMB", "B": "AMB"}
CLASS_PLACE_OF_SERVICE = {
    "AMB": "11",
    "EMER": "23",
    "IMP": "21",
    "OBSENC": "22",
    "HH": "12",
    "VR": "02",
}
# NUBC UB-04 code sets (FL 14 priority, FL 15 point of origin, FL 17 patient status).
POINT_OF_ORIGIN = Field(
    "point of origin (admit source)",
    frozenset("1 2 4 5 6 7 8 9 B C D E F G".split()),
    (POINT_OF_ORIGIN_SYSTEM, NUBC_POINT_OF_ORIGIN),
    {
        "gp": "1",
        "mp": "1",
        "emd": "1",
        "outp": "2",
        "hosp-trans": "4",
        "nursing": "5",
        "psych": "6",
        "rehab": "6",
        "born": "9",
        "other": "9",
    },
    (None, "http://terminology.hl7.org/CodeSystem/admit-source"),
)
DISCHARGE_STATUS = Field(
    "discharge status",
    frozenset(
        (
            "01 02 03 04 05 06 07 09 20 21 30 40 41 42 43 50 51 61 62 63 64 65 66 69 70 "
            "81 82 83 84 85 86 87 88 89 90 91 92 93 94 95"
        ).split()
    ),
    (
        PATIENT_STATUS_SYSTEM,
        NUBC_DISCHARGE,
        "http://www.nubc.org/patient-discharge",  # US Core 3.x
        "http://terminology.hl7.org/CodeSystem/v2-0112",  # HL7 v2 table 0112: the same codes
        "urn:oid:2.16.840.1.113883.12.112",
    ),
    {
        "home": "01",
        "alt-home": "01",
        "hosp": "02",
        "snf": "03",
        "aadvice": "07",
        "exp": "20",
        "rehab": "62",
        "long": "63",
        "psy": "65",
        "other-hcf": "70",
        "oth": "70",
    },
    (None, "http://terminology.hl7.org/CodeSystem/discharge-disposition"),
)
ADMISSION_TYPE = Field(
    "priority (type of admission)",
    frozenset("1 2 3 4 5 9".split()),
    (ADMISSION_TYPE_SYSTEM, NUBC_PRIORITY),
    {"EM": "1", "UR": "2", "EL": "3", "R": "3"},
    (None, "http://terminology.hl7.org/CodeSystem/v3-ActPriority"),
)
PLACE_OF_SERVICE = Field(
    "place of service",
    frozenset(f"{n:02d}" for n in range(1, 100)),
    (POS_SYSTEM,),
)


class ConceptMaps:
    """Source (system, code) -> target codes, each with the target system when the map says it."""

    def __init__(self, entries: Iterable[tuple[str, str, str, str | None]] = ()):
        self._map: dict[tuple[str, str], list[tuple[str | None, str]]] = {}
        for system, code, target, target_system in entries:
            self._map.setdefault((system, code), []).append((target_system, target))

    def targets(self, system: str, code: str) -> list[tuple[str | None, str]]:
        return self._map.get((system, code), [])

    def __len__(self) -> int:
        return len(self._map)

    @classmethod
    def combine(cls, maps: Iterable[ConceptMaps]) -> ConceptMaps:
        out = cls()
        for m in maps:
            for key, targets in m._map.items():
                out._map.setdefault(key, []).extend(targets)
        return out


def code_for(fld: Field, codings: list[Coding], maps: ConceptMaps | None) -> str | None:
    """The field's code from a CodeableConcept's codings, or None when nothing maps."""
    for system, code, _ in codings:
        if code and system in fld.direct_systems and code in fld.valid:
            return code
        if code and system in fld.translation_systems and code in fld.translations:
            return fld.translations[code]
        if code and fld is ENCOUNTER_CLASS and system == V2_PATIENT_CLASS and code in V2_CLASS:
            return V2_CLASS[code]
    if maps is not None:
        for system, code, _ in codings:
            for target_system, target in maps.targets(system or "", code or ""):
                if target in fld.valid and (
                    target_system is None or target_system in (*fld.direct_systems, ACT_CODE_SYSTEM)
                ):
                    return target
    for system, code, _ in codings:
        if code and system is None and fld.bare_codes and code in fld.valid:
            return code
        if fld is ENCOUNTER_CLASS and code in fld.translations and system not in ("", None):
            # a v3 class code under another system label (R5 exports, vendor copies)
            if system.endswith("v3-ActCode") or system.endswith("ActCode"):
                return fld.translations[code]
    return None


# --------------------------------------------------------------------------- loading maps


def parse_concept_map(text: str) -> ConceptMaps:
    """A concept-map file: FHIR ConceptMap JSON (or a Bundle of ConceptMaps), else CSV with
    the header ``source_system,source_code,target_code`` (and optionally ``target_system``).

    Raises ``IntakeError`` naming every bad element or row (no values quoted)."""
    stripped = text.lstrip("\ufeff").lstrip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError:
            raise IntakeError([Problem("$", "expected JSON text")]) from None
        return _from_json(data)
    return _from_csv(stripped)


def _from_json(data: object) -> ConceptMaps:
    problems: list[Problem] = []
    maps = []
    if isinstance(data, dict) and data.get("resourceType") == "Bundle":
        for i, entry in enumerate(data.get("entry") or []):
            res = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(res, dict) and res.get("resourceType") == "ConceptMap":
                maps.append((f"entry[{i}].resource", res))
    elif isinstance(data, dict) and data.get("resourceType") == "ConceptMap":
        maps.append(("", data))
    else:
        raise IntakeError([Problem("resourceType", "expected a ConceptMap or a Bundle of them")])
    entries = []
    for base, cm in maps:
        groups = cm.get("group")
        if not isinstance(groups, list):
            problems.append(Problem(_p(base, "group"), "expected a list of groups"))
            continue
        for g, group in enumerate(groups):
            gp = _p(base, f"group[{g}]")
            if not isinstance(group, dict):
                problems.append(Problem(gp, "expected an object"))
                continue
            source, target_system = group.get("source"), group.get("target")
            if not isinstance(source, str) or not source:
                problems.append(Problem(f"{gp}.source", "required: the source code system"))
                continue
            for e, element in enumerate(group.get("element") or []):
                ep = f"{gp}.element[{e}]"
                code = element.get("code") if isinstance(element, dict) else None
                if not isinstance(code, str) or not code:
                    problems.append(Problem(f"{ep}.code", "required: the source code"))
                    continue
                for t, target in enumerate(element.get("target") or []):
                    tp = f"{ep}.target[{t}]"
                    tcode = target.get("code") if isinstance(target, dict) else None
                    equivalence = target.get("equivalence") if isinstance(target, dict) else None
                    if equivalence in ("unmatched", "disjoint"):
                        continue
                    if not isinstance(tcode, str) or not tcode:
                        problems.append(Problem(f"{tp}.code", "required: the target code"))
                        continue
                    tsys = target_system if isinstance(target_system, str) else None
                    entries.append((source, code, tcode, tsys))
    if problems:
        raise IntakeError(problems)
    return ConceptMaps(entries)


def _p(base: str, rest: str) -> str:
    return f"{base}.{rest}" if base else rest


def _from_csv(text: str) -> ConceptMaps:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    needed = ("source_system", "source_code", "target_code")
    if any(c not in header for c in needed) or any(
        h not in (*needed, "target_system") for h in header
    ):
        raise IntakeError(
            [
                Problem(
                    "line 1",
                    "expected a header source_system,source_code,target_code[,target_system]",
                )
            ]
        )
    reader.fieldnames = header
    problems, entries = [], []
    for row in reader:
        clean = {k: (v or "").strip() for k, v in row.items() if k is not None}
        if not any(clean.values()):
            continue
        bad = [c for c in needed if not clean.get(c)]
        for c in bad:
            problems.append(Problem(f"line {reader.line_num}.{c}", "required"))
        if not bad:
            entries.append(
                (
                    clean["source_system"],
                    clean["source_code"],
                    clean["target_code"],
                    clean.get("target_system") or None,
                )
            )
    if problems:
        raise IntakeError(problems)
    return ConceptMaps(entries)


# --------------------------------------------------------------------------- SNOMED CT -> ICD-10-CM


@dataclass(frozen=True)
class SnomedMap:
    """SNOMED CT concept id -> ICD-10-CM codes its unconditional (``TRUE``) map rows give."""

    targets: dict[str, tuple[tuple[str, str | None], ...]]

    def icd10cm(self, concept_id: str) -> tuple[tuple[str, str | None], ...]:
        return self.targets.get(concept_id, ())


_ICD = re.compile(r"[A-Z]\d[0-9A-Z](\.?[0-9A-Z]{1,4})?")


def parse_snomed_map(text: str) -> SnomedMap:
    """NLM's SNOMED CT to ICD-10-CM map (the tab-separated release file, RF2 extended map or
    the human-readable one): per concept and map group, the first-priority row, kept when its
    ``mapRule`` is exactly ``TRUE`` (an unconditional target; ``IFA`` age/sex rules and
    ``OTHERWISE TRUE`` fallbacks are left to a coder). Inactive rows are skipped; of several
    versions of a row id the latest ``effectiveTime`` wins.

    Raises ``IntakeError`` when the header lacks a column it needs."""
    lines = text.lstrip("\ufeff").splitlines()
    header = lines[0].split("\t") if lines else []
    need = ("referencedComponentId", "mapGroup", "mapPriority", "mapRule", "mapTarget")
    missing = [c for c in need if c not in header]
    if missing:
        raise IntakeError([Problem("line 1", "expected the columns " + ", ".join(need))])
    col = {name: i for i, name in enumerate(header)}
    latest: dict[str, tuple[str, list[str]]] = {}
    rows: list[list[str]] = []
    for line in lines[1:]:
        cells = line.split("\t")
        if len(cells) < len(header):
            continue
        if "id" in col:
            when = cells[col["effectiveTime"]] if "effectiveTime" in col else ""
            prior = latest.get(cells[col["id"]])
            if prior is None or when >= prior[0]:
                latest[cells[col["id"]]] = (when, cells)
        else:
            rows.append(cells)
    rows.extend(cells for _, cells in latest.values())
    best: dict[tuple[str, str], tuple[int, list[str]]] = {}
    for cells in rows:
        if "active" in col and cells[col["active"]] != "1":
            continue
        try:
            priority = int(cells[col["mapPriority"]])
        except ValueError:
            continue
        key = (cells[col["referencedComponentId"]], cells[col["mapGroup"]])
        if key not in best or priority < best[key][0]:
            best[key] = (priority, cells)
    targets: dict[str, list[tuple[str, str | None]]] = {}
    for (concept, _), (_, cells) in sorted(best.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        target = cells[col["mapTarget"]].strip()
        if cells[col["mapRule"]].strip() != "TRUE" or not _ICD.fullmatch(target):
            continue
        name = cells[col["mapTargetName"]].strip() if "mapTargetName" in col else None
        targets.setdefault(concept, []).append((target, name or None))
    return SnomedMap({k: tuple(v) for k, v in targets.items()})
