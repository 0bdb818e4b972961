"""The missing-information form: the fields followup names on a held claim's work item, as
inputs a biller fills, read into the body billing's ``PATCH /claims/{id}/billing-data`` takes.

Billing's scrubber names a field by its path (``billing_provider.tax_id``); some paths name a
group that billing takes whole (an address: line 1, city, state and ZIP+4 together), so the
form asks for the group's fields. Paths billing does not take from a biller (a rendering
provider, a patient's address) cannot be filled here: the EHR sends them in a new version of
the encounter. The checks are the shape of each field (billing checks them again, the NPI's
check digit among them); a problem names the field, never the value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class Input:
    path: str  # the body's path, also the form field's name
    label: str
    required: bool = True
    kind: str = "text"  # text | npi | ein | zip4 | state | date | gender | code
    maxlength: int = 60


def _person(prefix: str, who: str) -> list[Input]:
    return [
        Input(f"{prefix}.first_name", f"{who} first name"),
        Input(f"{prefix}.last_name", f"{who} last name"),
        Input(f"{prefix}.birth_date", f"{who} birth date", kind="date", maxlength=10),
        Input(
            f"{prefix}.gender", f"{who} sex (M, F, U)", required=False, kind="gender", maxlength=1
        ),
    ]


_ADDRESS = [
    Input("billing_provider.address.line1", "Billing provider street address", maxlength=55),
    Input("billing_provider.address.line2", "Address line 2", required=False, maxlength=55),
    Input("billing_provider.address.city", "City", maxlength=30),
    Input("billing_provider.address.state", "State (2 letters)", kind="state", maxlength=2),
    Input("billing_provider.address.postal_code", "ZIP+4", kind="zip4", maxlength=10),
]
_LEAVES = {
    i.path: i
    for i in [
        Input("billing_provider.name", "Billing provider name"),
        Input("billing_provider.npi", "Billing provider NPI", kind="npi", maxlength=10),
        Input("billing_provider.tax_id", "Billing provider EIN", kind="ein", maxlength=10),
        Input("billing_provider.taxonomy", "Billing provider taxonomy", kind="code", maxlength=10),
        Input("payer.payer_id", "Payer id", kind="code", maxlength=80),
        Input("payer.payer_name", "Payer name", required=False),
        Input("payer.member_id", "Member id", maxlength=80),
        Input("payer.group_number", "Group number", maxlength=50),
        *_person("patient", "Patient"),
        *_person("payer.subscriber", "Subscriber"),
    ]
}
# A path naming a group billing takes whole: the group's fields.
GROUPS: dict[str, list[Input]] = {
    "billing_provider.address": _ADDRESS,
    "billing_provider.address.postal_code": _ADDRESS,
    "payer": [_LEAVES["payer.payer_id"], _LEAVES["payer.payer_name"], _LEAVES["payer.member_id"]],
    "patient": [i for p, i in _LEAVES.items() if p.startswith("patient.")],
    "payer.subscriber": [i for p, i in _LEAVES.items() if p.startswith("payer.subscriber.")],
}

_NPI = re.compile(r"^\d{10}$")
_EIN = re.compile(r"^\d{2}-?\d{7}$")
_ZIP4 = re.compile(r"^\d{5}-?\d{4}$")
_STATE = re.compile(r"^[A-Za-z]{2}$")
_CODE = re.compile(r"^[A-Za-z0-9-]{2,80}$")


@dataclass
class FillForm:
    inputs: list[Input] = field(default_factory=list)
    not_here: list[str] = field(default_factory=list)  # named fields a biller cannot supply


def form_for(missing: list[str]) -> FillForm:
    """The inputs for the named fields, in the order named, each once."""
    out = FillForm()
    seen: set[str] = set()
    for path in missing:
        group = GROUPS.get(path) or ([_LEAVES[path]] if path in _LEAVES else None)
        if group is None:
            out.not_here.append(path)
            continue
        for i in group:
            if i.path not in seen:
                seen.add(i.path)
                out.inputs.append(i)
    return out


def _problem(i: Input, value: str) -> str | None:
    if len(value) > i.maxlength:
        return f"{i.path}: at most {i.maxlength} characters"
    checks = {
        "npi": (_NPI, "10 digits"),
        "ein": (_EIN, "an EIN of 9 digits (NN-NNNNNNN)"),
        "zip4": (_ZIP4, "a ZIP+4 (NNNNN-NNNN)"),
        "state": (_STATE, "a 2-letter state"),
        "code": (_CODE, "letters, digits and dashes"),
    }
    if i.kind in checks:
        pattern, what = checks[i.kind]
        return None if pattern.match(value) else f"{i.path}: {what}"
    if i.kind == "gender" and value.upper() not in ("M", "F", "U"):
        return f"{i.path}: M, F or U"
    if i.kind == "date":
        try:
            d = date.fromisoformat(value)
        except ValueError:
            return f"{i.path}: a date (YYYY-MM-DD)"
        if d > date.today():
            return f"{i.path}: a date in the past"
    return None


def read(form: Mapping[str, str], missing: list[str]) -> tuple[dict, list[str]]:
    """The PATCH body (nested by path) from the posted form, and the problems found."""
    body: dict = {}
    problems: list[str] = []
    for i in form_for(missing).inputs:
        value = (form.get(i.path) or "").strip()
        if not value:
            if i.required:
                problems.append(f"{i.path}: required")
            continue
        if (p := _problem(i, value)) is not None:
            problems.append(p)
            continue
        if i.kind in ("state", "gender"):
            value = value.upper()
        node = body
        *parents, leaf = i.path.split(".")
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = value
    if not body and not problems:
        problems.append("nothing to send: fill the fields named")
    return body, problems
