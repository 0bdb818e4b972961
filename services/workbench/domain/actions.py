"""A biller's action form read into the request followup's ``POST /work/{id}/actions`` takes.

Every action needs a reason (it goes on the work item's audit); amounts are decimals with
cents; a corrected claim may carry replacement diagnosis codes. Problems name the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

LABELS = {
    "correct": "Send a corrected claim",
    "void": "Void the claim",
    "appeal": "Appeal with a letter",
    "appeal_outcome": "Record the appeal decision",
    "write_off": "Write off",
    "transfer_to_patient": "Transfer to patient responsibility",
    "resolve": "Resolve",
}
AMOUNT_ACTIONS = ("write_off", "transfer_to_patient")
OUTCOMES = ("overturned", "partial", "upheld")
MAX_REASON = 500
CENT = Decimal("0.01")
DX_CODE = re.compile(r"^[A-Z][0-9][0-9A-Z]{1,5}$")


@dataclass
class ActionForm:
    action: str = ""
    request: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return LABELS.get(self.action, self.action)


def _amount(raw: str, name: str, problems: list[str], *, allow_zero: bool = False) -> str | None:
    try:
        value = Decimal(raw.strip().replace(",", "").lstrip("$"))
    except InvalidOperation:
        problems.append(f"{name}: enter an amount such as 125.00")
        return None
    if value != value.quantize(CENT) or value < 0 or (value == 0 and not allow_zero):
        problems.append(f"{name}: a positive amount in dollars and cents")
        return None
    if value >= Decimal("10000000000"):
        problems.append(f"{name}: too large")
        return None
    return str(value.quantize(CENT))


def read(form: Mapping[str, str], lease_token: str | None) -> ActionForm:
    out = ActionForm(action=(form.get("action") or "").strip())
    if out.action not in LABELS:
        out.problems.append("action: choose one of the offered actions")
        return out
    reason = (form.get("reason") or "").strip()
    if out.action == "appeal":
        reason = (form.get("letter") or reason).strip()
    if len(reason) < 3:
        out.problems.append(
            "letter: write the appeal letter"
            if out.action == "appeal"
            else "reason: say why (at least 3 characters)"
        )
    elif len(reason) > MAX_REASON:
        out.problems.append(f"reason: at most {MAX_REASON} characters")
    req: dict = {"action": out.action, "reason": reason}
    if lease_token:
        req["lease_token"] = lease_token
    if out.action in AMOUNT_ACTIONS:
        amount = _amount(form.get("amount") or "", "amount", out.problems)
        if amount is not None:
            req["amount"] = amount
    if out.action == "appeal_outcome":
        outcome = (form.get("outcome") or "").strip()
        if outcome not in OUTCOMES:
            out.problems.append("outcome: overturned, partial or upheld")
        else:
            req["outcome"] = outcome
        if (form.get("amount_recovered") or "").strip():
            recovered = _amount(
                form["amount_recovered"], "amount_recovered", out.problems, allow_zero=True
            )
            if recovered is not None:
                req["amount_recovered"] = recovered
    if out.action == "correct" and (form.get("diagnoses") or "").strip():
        codes = [
            c.strip().upper().replace(".", "")
            for c in re.split(r"[,\s]+", form["diagnoses"])
            if c.strip()
        ]
        bad = [c for c in codes if not DX_CODE.match(c)]
        if bad or not 1 <= len(codes) <= 12:
            out.problems.append("diagnoses: 1 to 12 ICD-10-CM codes, comma separated")
        else:
            req["diagnoses"] = codes
    out.request = req
    return out
