"""What the coding engine returns: suggestions with evidence, edits and a route."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from shared import icd10cm
from shared.events import (
    CodedDiagnosis,
    CodedProcedure,
    CodingEdit,
    Encounter,
    EncounterCodedPayload,
)


@dataclass(frozen=True)
class Evidence:
    """A span of the note (PHI: never log ``text``)."""

    text: str
    start: int
    end: int


@dataclass
class DxSuggestion:
    code: str  # ICD-10-CM without the dot
    description: str | None
    confidence: float
    evidence: Evidence | None
    source: Literal["note", "ehr", "rule"] = "note"


@dataclass
class PxSuggestion:
    code: str
    system: Literal["cpt", "hcpcs"]
    modifiers: list[str]
    units: Decimal
    diagnosis_pointers: list[int]
    confidence: float
    evidence: Evidence | None
    source: Literal["note", "ehr", "rule"] = "note"
    label: str | None = None  # project short label / HCPCS short description


@dataclass
class CodingResult:
    diagnoses: list[DxSuggestion] = field(default_factory=list)
    procedures: list[PxSuggestion] = field(default_factory=list)
    edits: list[CodingEdit] = field(default_factory=list)
    route: Literal["auto", "review"] = "review"
    em_basis: str | None = None  # time | mdm | preventive
    mdm: str | None = None  # how the MDM level was read, for the coder
    code_set_version: str = icd10cm.VERSION
    # why the encounter went to review (routing.REASONS keys); empty when auto
    route_reasons: list[str] = field(default_factory=list)

    def to_payload(self, enc: Encounter, coded_by: str = "auto") -> EncounterCodedPayload:
        """The ``encounter.coded`` payload.

        Raises ValueError when coding is incomplete (no diagnosis or no
        procedure): such encounters go to review and are completed by a coder.
        """
        if not self.diagnoses or not self.procedures:
            raise ValueError(
                f"encounter {enc.encounter_id}: coding incomplete "
                f"({len(self.diagnoses)} diagnoses, {len(self.procedures)} procedures)"
            )
        return EncounterCodedPayload(
            encounter=enc,
            diagnoses=[
                CodedDiagnosis(code=d.code, description=d.description) for d in self.diagnoses[:25]
            ],
            procedures=[
                CodedProcedure(
                    code=p.code,
                    system=p.system,
                    modifiers=p.modifiers[:4],
                    units=p.units,
                    diagnosis_pointers=p.diagnosis_pointers[:4] or [1],
                )
                for p in self.procedures
            ],
            edits=self.edits,
            route=self.route,
            coded_by=coded_by,
            code_set_version=self.code_set_version,
        )


def _evidence(e: Evidence | None) -> dict | None:
    return None if e is None else {"text": e.text, "start": e.start, "end": e.end}


def offline_json(result: CodingResult) -> dict:
    """The ``rcm code FILE`` output: diagnoses (principal first), procedures, route, edits."""
    return {
        "diagnoses": [
            {
                "code": d.code,
                "description": d.description,
                "confidence": round(d.confidence, 3),
                "evidence": _evidence(d.evidence),
                "source": d.source,
            }
            for d in result.diagnoses
        ],
        "procedures": [
            {
                "code": p.code,
                "system": p.system,
                "modifiers": list(p.modifiers),
                "units": str(p.units),
                "diagnosis_pointers": list(p.diagnosis_pointers),
                "label": p.label,
                "confidence": round(p.confidence, 3),
                "evidence": _evidence(p.evidence),
                "source": p.source,
            }
            for p in result.procedures
        ],
        "route": result.route,
        "edits": [
            {"code": e.code, "severity": e.severity, "message": e.message} for e in result.edits
        ],
        "em_basis": result.em_basis,
        "mdm": result.mdm,
        "route_reasons": list(result.route_reasons),
        "code_set_version": result.code_set_version,
    }
