"""Coding edits: what must be fixed (blocking) or looked at (warning/info) before billing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache

from services.coding.domain import cpt
from shared import icd10cm
from shared.events import CodingEdit


def edit(code: str, severity: str, message: str) -> CodingEdit:
    return CodingEdit(code=code, severity=severity, message=message)


def code_set_edit(on: date) -> CodingEdit | None:
    """A warning when no loaded ICD-10-CM release is in force on the date of service (the
    diagnoses are then checked against the nearest one), else None."""
    release, exact = icd10cm.release_for(on)
    if exact:
        return None
    return edit(
        "CODE_SET_NOT_LOADED",
        "warning",
        f"the ICD-10-CM release in force on the date of service (fiscal year"
        f" {icd10cm.fiscal_year(on)}) is not loaded; diagnoses were checked against ICD-10-CM"
        f" {release.version} (load it with `rcm codesets load --icd10cm FILE`)",
    )


def diagnosis_edits(
    codes: Sequence[str], age: int | None, sex: str, on: date | None = None
) -> list[CodingEdit]:
    """Validity, billability, 7th character, Excludes1, code-first/manifestation
    sequencing, age/sex and duplicates, for an ordered diagnosis list.

    ``on`` (the date of service) checks validity and billability against the ICD-10-CM
    release in force that day, or the nearest loaded one with a CODE_SET_NOT_LOADED
    warning (``icd10cm.check``); without it, against the bundled release. Notes
    (Excludes1, code first, 7th characters) always come from the bundled release.
    """
    out: list[CodingEdit] = []
    norm = [icd10cm.normalize(c) for c in codes]
    release = icd10cm.VERSION
    if on is not None:
        release = icd10cm.release_for(on)[0].version
        missing = code_set_edit(on)
        if missing is not None:
            out.append(missing)
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
        problem = (
            _bundled_problem(c, shown)
            if release == icd10cm.VERSION or on is None
            else _release_problem(c, shown, on)
        )
        if problem is not None:
            out.append(problem)
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
            note = _excludes1(a, b)
            if note:
                out.append(
                    edit(
                        "DX_EXCLUDES1",
                        "blocking",
                        f"{icd10cm.with_dot(a)} and {icd10cm.with_dot(b)} may not be reported together (Excludes1: {note})",
                    )
                )
    for i, a in enumerate(valid):
        refs = _code_first_refs(a)
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


@lru_cache(maxsize=50000)
def _excludes1(a: str, b: str) -> str | None:
    return icd10cm.excludes1_conflict(a, b)


@lru_cache(maxsize=20000)
def _code_first_refs(code: str) -> tuple[tuple[str, str], ...]:
    return tuple(r for n in icd10cm.code_first(code) for r in icd10cm.code_refs(n))


def _bundled_problem(c: str, shown: str) -> CodingEdit | None:
    seventh = icd10cm.seventh_char_problem(c)
    if seventh:
        return edit("DX_7TH_CHARACTER", "blocking", f"diagnosis {shown}: {seventh}")
    if not icd10cm.is_valid(c):
        return edit(
            "DX_INVALID",
            "blocking",
            f"diagnosis {shown} is not an ICD-10-CM {icd10cm.VERSION} code",
        )
    if not icd10cm.is_billable(c):
        kids = ", ".join(icd10cm.with_dot(k) for k in icd10cm.children(c)[:4])
        return edit(
            "DX_NOT_BILLABLE",
            "blocking",
            f"diagnosis {shown} is not billable; use a more specific code ({kids}, ...)",
        )
    return None


def _release_problem(c: str, shown: str, on: date) -> CodingEdit | None:
    """The same checks against a loaded release other than the bundled one (which
    knows only codes and billability; 7th characters are explained from the bundled)."""
    found = icd10cm.check(c, on)
    if found.billable:
        return None
    seventh = icd10cm.seventh_char_problem(c)
    if seventh:
        return edit("DX_7TH_CHARACTER", "blocking", f"diagnosis {shown}: {seventh}")
    if found.billable is None:
        return edit(
            "DX_INVALID",
            "blocking",
            f"diagnosis {shown} is not an ICD-10-CM {found.release} code",
        )
    return edit(
        "DX_NOT_BILLABLE",
        "blocking",
        f"diagnosis {shown} is not billable in ICD-10-CM {found.release}; use a more specific code",
    )


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
