"""A coder's review of one work item, from the submitted form to the final codes coding takes.

Every suggestion must be decided (accept, reject or replace): nothing is accepted by
default, which is what keeps a coder from waving suggestions through unchecked. Procedure
diagnosis pointers follow their diagnoses: a pointer to a rejected diagnosis is dropped,
to a replaced one follows the replacement, and positions are renumbered after rejections.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

DECISIONS = ("accept", "reject", "replace")
MAX_DIAGNOSES = 12
MAX_POINTERS = 4
DX_CODE = re.compile(r"^[A-Z][0-9][0-9A-Z]{1,5}$")  # ICD-10-CM without the dot
PX_CODE = re.compile(r"^(?:[0-9]{4}[0-9A-Z]|[A-Z][0-9]{4})$")  # CPT (incl. Cat II/III) or HCPCS
MODIFIER = re.compile(r"^[0-9A-Z]{2}$")


@dataclass
class Review:
    diagnoses: list[str] = field(default_factory=list)
    procedures: list[dict] = field(default_factory=list)
    overrides: list[dict] = field(default_factory=list)
    undecided: list[str] = field(default_factory=list)  # refs still to decide
    problems: list[str] = field(default_factory=list)  # each names its field


def normalize_dx(raw: str) -> str:
    return raw.strip().upper().replace(".", "")


def normalize_px(raw: str) -> str:
    return raw.strip().upper()


def _one(form: Mapping[str, Sequence[str]], name: str) -> str:
    values = form.get(name) or []
    return values[-1].strip() if values else ""


def decision(form: Mapping[str, Sequence[str]], ref: str) -> str | None:
    d = _one(form, ref)
    return d if d in DECISIONS else None


def read(suggestions: dict, form: Mapping[str, Sequence[str]]) -> Review:
    """The final codes the form describes (see the module doc); problems name the field at fault."""
    out = Review()
    new_position: dict[int, int] = {}  # suggested diagnosis position (1-based) -> final position

    def add_dx(code: str, field_name: str) -> int | None:
        if not DX_CODE.match(code):
            out.problems.append(f"{field_name}: {code or 'empty'} is not an ICD-10-CM code")
            return None
        if code in out.diagnoses:
            return out.diagnoses.index(code) + 1
        out.diagnoses.append(code)
        return len(out.diagnoses)

    for i, s in enumerate(suggestions.get("diagnoses") or []):
        ref = f"dx-{i}"
        d = decision(form, ref)
        if d is None:
            out.undecided.append(ref)
            continue
        if d == "reject":
            continue
        code = (
            normalize_dx(_one(form, f"{ref}-with")) if d == "replace" else normalize_dx(s["code"])
        )
        pos = add_dx(code, f"{ref}-with" if d == "replace" else ref)
        if pos is not None:
            new_position[i + 1] = pos
    for n, raw in enumerate(form.get("add-dx") or []):
        if raw.strip():
            add_dx(normalize_dx(raw), f"add-dx[{n}]")

    def pointers(old: Sequence) -> list[int]:
        mapped: list[int] = []
        for p in old:
            q = new_position.get(p) if isinstance(p, int) else None
            if q is not None and q not in mapped:
                mapped.append(q)
        return mapped[:MAX_POINTERS] or [1]

    for i, s in enumerate(suggestions.get("procedures") or []):
        ref = f"px-{i}"
        d = decision(form, ref)
        if d is None:
            out.undecided.append(ref)
            continue
        if d == "reject":
            continue
        code = normalize_px(_one(form, f"{ref}-with") if d == "replace" else s["code"])
        if not PX_CODE.match(code):
            out.problems.append(f"{ref}-with: {code or 'empty'} is not a CPT or HCPCS code")
            continue
        modifiers = _modifiers(form, ref, s.get("modifiers") or [], out)
        units = _units(form, ref, s.get("units", "1"), out)
        out.procedures.append(
            {
                "code": code,
                "modifiers": modifiers,
                "units": units,
                "diagnosis_pointers": pointers(s.get("diagnosis_pointers") or [1]),
            }
        )
    for n, raw in enumerate(form.get("add-px") or []):
        code = normalize_px(raw)
        if not code:
            continue
        if not PX_CODE.match(code):
            out.problems.append(f"add-px[{n}]: {code} is not a CPT or HCPCS code")
            continue
        out.procedures.append(
            {"code": code, "modifiers": [], "units": "1", "diagnosis_pointers": [1]}
        )
    if len(out.diagnoses) > MAX_DIAGNOSES:
        out.problems.append(f"diagnoses: at most {MAX_DIAGNOSES} on a claim")
    if not out.undecided:
        if not out.diagnoses:
            out.problems.append("diagnoses: keep or add at least one diagnosis")
        if not out.procedures:
            out.problems.append("procedures: keep or add at least one procedure")
    for key, values in form.items():
        reason = next((v.strip() for v in reversed(values or []) if v.strip()), "")
        if key.startswith("override:") and reason:
            out.overrides.append({"code": key[len("override:") :], "reason": reason})
    return out


def _modifiers(form, ref: str, suggested: Sequence[str], out: Review) -> list[str]:
    name = f"{ref}-modifiers"
    if name not in form:
        return list(suggested)[:4]
    mods = [m.strip().upper() for m in re.split(r"[,\s]+", _one(form, name)) if m.strip()]
    bad = [m for m in mods if not MODIFIER.match(m)]
    if bad or len(mods) > 4:
        out.problems.append(f"{name}: up to four two-character modifiers, comma separated")
        return list(suggested)[:4]
    return mods


def _units(form, ref: str, suggested, out: Review) -> str:
    name = f"{ref}-units"
    raw = _one(form, name) if name in form else str(suggested)
    try:
        units = Decimal(raw)
    except InvalidOperation:
        units = Decimal(0)
    if not (Decimal(0) < units <= Decimal(999)):
        out.problems.append(f"{name}: units must be a number above 0")
        return str(suggested)
    return str(units)
