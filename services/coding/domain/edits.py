"""Coding edits: what must be fixed (blocking) or looked at (warning/info) before billing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from services.coding.domain import cpt
from shared import icd10cm
from shared.events import CodingEdit


def edit(code: str, severity: str, message: str) -> CodingEdit:
    return CodingEdit(code=code, severity=severity, message=message)


def diagnosis_edits(codes: Sequence[str], age: int | None, sex: str) -> list[CodingEdit]:
    """Validity, billability, 7th character, Excludes1, code-first/manifestation
    sequencing, age/sex and duplicates, for an ordered diagnosis list."""
    out: list[CodingEdit] = []
    norm = [icd10cm.normalize(c) for c in codes]
    if not norm:
        out.append(
            edit(
                "DX_NONE", "blocking", "no diagnosis code: at least one ICD-10-CM code is required"
            )
        )
    seen: set[str] = set()
    for i, c in enumerate(norm, start=1):
        shown = icd10cm.with_dot(c)
        if c in seen:
            out.append(
                edit("DX_DUPLICATE", "warning", f"diagnosis {shown} is listed more than once")
            )
            continue
        seen.add(c)
        seventh = icd10cm.seventh_char_problem(c)
        if seventh:
            out.append(edit("DX_7TH_CHARACTER", "blocking", f"diagnosis {shown}: {seventh}"))
            continue
        if not icd10cm.is_valid(c):
            out.append(
                edit(
                    "DX_INVALID",
                    "blocking",
                    f"diagnosis {shown} is not an ICD-10-CM {icd10cm.VERSION} code",
                )
            )
            continue
        if not icd10cm.is_billable(c):
            kids = ", ".join(icd10cm.with_dot(k) for k in icd10cm.children(c)[:4])
            out.append(
                edit(
                    "DX_NOT_BILLABLE",
                    "blocking",
                    f"diagnosis {shown} is not billable; use a more specific code ({kids}, ...)",
                )
            )
            continue
        if i == 1 and "in diseases classified elsewhere" in (icd10cm.description(c) or "").lower():
            out.append(
                edit(
                    "DX_MANIFESTATION_FIRST",
                    "blocking",
                    f"diagnosis {shown} is a manifestation code and cannot be listed first; code the underlying condition first",
                )
            )
        if age is not None:
            for kind, severity, why in icd10cm.age_sex_conflicts(c, age, sex):
                out.append(
                    edit(
                        f"DX_{kind.upper()}_CONFLICT",
                        severity,
                        f"diagnosis {shown} ({why}) conflicts with the patient's {kind}",
                    )
                )
    valid = [c for c in dict.fromkeys(norm) if icd10cm.is_billable(c)]
    for i, a in enumerate(valid):
        for b in valid[i + 1 :]:
            note = icd10cm.excludes1_conflict(a, b)
            if note:
                out.append(
                    edit(
                        "DX_EXCLUDES1",
                        "blocking",
                        f"{icd10cm.with_dot(a)} and {icd10cm.with_dot(b)} may not be reported together (Excludes1: {note})",
                    )
                )
    for i, a in enumerate(valid):
        refs = [r for n in icd10cm.code_first(a) for r in icd10cm.code_refs(n)]
        for b in valid[i + 1 :]:
            if any(icd10cm.in_range(b, r) for r in refs):
                out.append(
                    edit(
                        "DX_CODE_FIRST",
                        "blocking",
                        f"{icd10cm.with_dot(b)} must be sequenced before {icd10cm.with_dot(a)} (code first note)",
                    )
                )
    return out


@dataclass
class ProcLine:
    code: str
    modifiers: list[str]
    units: Decimal
    diagnosis_pointers: list[int]


def as_line(p) -> ProcLine:
    get = p.get if isinstance(p, dict) else (lambda k, d=None: getattr(p, k, d))
    return ProcLine(
        code=str(get("code", "") or "").strip().upper(),
        modifiers=[str(m).upper() for m in (get("modifiers") or [])],
        units=Decimal(str(get("units", 1) or 1)),
        diagnosis_pointers=list(get("diagnosis_pointers") or []),
    )


def procedure_edits(lines: Sequence[ProcLine], n_dx: int) -> list[CodingEdit]:
    """Code format, diagnosis pointers, one E/M per visit, modifier 25 and units."""
    out: list[CodingEdit] = []
    if not lines:
        out.append(
            edit(
                "PX_NONE", "blocking", "no procedure code: at least one CPT/HCPCS line is required"
            )
        )
    ems = [p for p in lines if cpt.is_em(p.code)]
    fams = {cpt.category(p.code) for p in ems}
    if (
        len(ems) > 1
        and not (fams >= {"em-preventive-new"} or fams >= {"em-preventive-est"})
        or len(ems) > 2
    ):
        out.append(
            edit(
                "EM_MULTIPLE",
                "blocking",
                f"more than one E/M code ({', '.join(p.code for p in ems)}) for one visit",
            )
        )
    minor = [p for p in lines if cpt.category(p.code) in ("minor", "admin", "treatment")]
    for p in ems:
        if (
            minor
            and "25" not in p.modifiers
            and not (cpt.category(p.code) or "").startswith("em-preventive")
        ):
            out.append(
                edit(
                    "EM_MODIFIER_25",
                    "warning",
                    f"E/M {p.code} billed with {minor[0].code} on the same day needs modifier 25 if separately identifiable",
                )
            )
    for n, p in enumerate(lines, start=1):
        if cpt.system_of(p.code) is None:
            out.append(
                edit(
                    "PX_INVALID",
                    "blocking",
                    f"line {n}: {p.code!r} is not a CPT or HCPCS Level II code",
                )
            )
        if p.units <= 0:
            out.append(edit("PX_UNITS", "blocking", f"line {n} ({p.code}): units must be positive"))
        bad = [x for x in p.diagnosis_pointers if not isinstance(x, int) or x < 1 or x > n_dx]
        if (
            not p.diagnosis_pointers
            or bad
            or len(p.diagnosis_pointers) > 4
            or len(set(p.diagnosis_pointers)) != len(p.diagnosis_pointers)
        ):
            out.append(
                edit(
                    "PX_POINTER",
                    "blocking",
                    f"line {n} ({p.code}): diagnosis pointers {p.diagnosis_pointers} must be 1-4 distinct indexes into {n_dx} diagnoses",
                )
            )
        for m in p.modifiers:
            if len(m) != 2:
                out.append(
                    edit(
                        "PX_MODIFIER",
                        "blocking",
                        f"line {n} ({p.code}): modifier {m!r} must be 2 characters",
                    )
                )
    return out
