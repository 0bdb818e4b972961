"""Appeal deadlines and no-response thresholds per payer, how urgent a deadline is, and what
a CO-29 (filing limit expired) denial calls for.

Policies come from ``services/followup/data/payer_policies.json`` (or a JSON text
the site supplies): a default, classes (medicare, medicaid, commercial) reached
through the claim filing indicator, and payer-id globs such as ``MCR*``. The timely
filing limit is not among them: billing owns it and carries each claim's
``filing_deadline`` on claim.submitted and claim.held.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fnmatch import fnmatchcase
from importlib import resources
from typing import Literal

Escalation = Literal["normal", "soon", "urgent", "overdue"]
# Days left at or below which an item escalates. Two weeks is about the least an
# appeal packet (records, letter) needs; a month gives room to correct and rebill.
URGENT_DAYS = 14
SOON_DAYS = 30

_FIELDS = ("appeal_days", "no_ack_days", "no_payment_days")


@dataclass(frozen=True, slots=True)
class PayerPolicy:
    payer_id: str
    appeal_days: int
    no_ack_days: int  # N: days after submission without a 277CA before we chase
    no_payment_days: int  # M: days after submission without an 835 before we chase


@dataclass(frozen=True)
class PayerPolicies:
    default: Mapping[str, int]
    classes: Mapping[str, Mapping[str, int]]
    by_filing_indicator: Mapping[str, str]
    payers: tuple[tuple[str, Mapping[str, int]], ...]  # (glob, resolved fields)

    @classmethod
    def from_json(cls, text: str) -> PayerPolicies:
        """Parse policy JSON. Raises ``ValueError`` naming the entry at fault."""
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"payer policies: invalid JSON at line {e.lineno}") from e
        default = _days(raw.get("default", {}), "default", required=True)
        classes = {
            name: {**default, **_days(spec, f"classes[{name}]")}
            for name, spec in raw.get("classes", {}).items()
        }
        indicators = dict(raw.get("by_filing_indicator", {}))
        for ind, name in indicators.items():
            if name not in classes:
                raise ValueError(f"by_filing_indicator[{ind}]: unknown class {name!r}")
        payers = []
        for i, entry in enumerate(raw.get("payers", [])):
            where = f"payers[{i}]"
            if not isinstance(entry, dict) or not entry.get("payer_id"):
                raise ValueError(f"{where}: payer_id is required")
            base = default
            if "class" in entry:
                if entry["class"] not in classes:
                    raise ValueError(f"{where}.class: unknown class {entry['class']!r}")
                base = classes[entry["class"]]
            payers.append((str(entry["payer_id"]), {**base, **_days(entry, where)}))
        return cls(default, classes, indicators, tuple(payers))

    @classmethod
    def packaged(cls) -> PayerPolicies:
        text = resources.files("services.followup.data").joinpath("payer_policies.json")
        return cls.from_json(text.read_text(encoding="utf-8"))

    def for_payer(self, payer_id: str, filing_indicator: str | None = None) -> PayerPolicy:
        """Exact payer id, else the longest matching glob, else the filing
        indicator's class (MA/MB Medicare, MC Medicaid, ...), else the default."""
        matches = [
            (glob, spec)
            for glob, spec in self.payers
            if glob == payer_id or fnmatchcase(payer_id, glob)
        ]
        if matches:
            matches.sort(key=lambda m: (m[0] != payer_id, -len(m[0])))
            spec = matches[0][1]
        elif filing_indicator and filing_indicator in self.by_filing_indicator:
            spec = self.classes[self.by_filing_indicator[filing_indicator]]
        else:
            spec = self.default
        return PayerPolicy(payer_id, **{f: spec[f] for f in _FIELDS})


def _days(spec: Mapping, where: str, required: bool = False) -> dict[str, int]:
    if "timely_filing_days" in spec:
        raise ValueError(
            f"{where}.timely_filing_days: the filing limit is billing's (its payer rules);"
            " claim.submitted carries each claim's filing deadline"
        )
    out = {}
    for f in _FIELDS:
        if f not in spec:
            if required:
                raise ValueError(f"{where}.{f} is required")
            continue
        v = spec[f]
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ValueError(f"{where}.{f} must be a non-negative whole number of days")
        out[f] = v
    return out


DEFAULT_POLICIES = PayerPolicies.packaged()


def policy_for(
    payer_id: str, filing_indicator: str | None = None, policies: PayerPolicies | None = None
) -> PayerPolicy:
    return (policies or DEFAULT_POLICIES).for_payer(payer_id, filing_indicator)


def appeal_deadline(policy: PayerPolicy, denial_date: date) -> date:
    """Last day to file an appeal of a denial dated ``denial_date``."""
    return denial_date + timedelta(days=policy.appeal_days)


def days_left(deadline: date, as_of: date) -> int:
    return (deadline - as_of).days


def escalation(days_left: int | None) -> Escalation:
    """``overdue`` past the deadline, ``urgent`` within 14 days (deadline day
    included), ``soon`` within 30, else ``normal`` (also when there is no deadline)."""
    if days_left is None:
        return "normal"
    if days_left < 0:
        return "overdue"
    if days_left <= URGENT_DAYS:
        return "urgent"
    if days_left <= SOON_DAYS:
        return "soon"
    return "normal"


@dataclass(frozen=True, slots=True)
class Submission:
    """One transmission of a claim (original or replacement), from billing's events."""

    claim_id: str
    submitted_at: date | datetime
    interchange_control_number: str | None = None
    file_name: str | None = None
    accepted: bool | None = None  # True once a 277CA accepted it, False if rejected

    @property
    def submitted_date(self) -> date:
        s = self.submitted_at
        return s.date() if isinstance(s, datetime) else s


@dataclass(frozen=True, slots=True)
class TimelyFilingFinding:
    action: Literal["write off", "appeal"]
    timely: bool
    deadline: date
    first_submission: date | None
    evidence: str


def co29_recommendation(
    history: Iterable[Submission], service_date: date, deadline: date, payer_id: str
) -> TimelyFilingFinding:
    """What to do with a CO-29 (filing limit expired) denial, with the evidence.

    ``deadline`` is billing's filing deadline for the claim. If the earliest submission the
    payer did not reject was by that day, the denial is wrong: appeal with proof of timely
    filing. Otherwise write off. The evidence names claim id, dates, interchange control
    number and file: no patient data.
    """
    subs = sorted(history, key=lambda s: s.submitted_date)
    limit = (
        f"filing deadline {deadline.isoformat()} for service date {service_date.isoformat()}"
        f" (payer {payer_id})"
    )
    if not subs:
        return TimelyFilingFinding(
            "write off", False, deadline, None, f"No submission on record; {limit}."
        )
    counted = [s for s in subs if s.accepted is not False] or subs
    first = counted[0]
    when = first.submitted_date
    proof = f"claim {first.claim_id} first submitted {when.isoformat()}" + "".join(
        [
            f", interchange {first.interchange_control_number}"
            if first.interchange_control_number
            else "",
            f", file {first.file_name}" if first.file_name else "",
            {True: ", accepted by payer (277CA)", False: ", rejected by payer", None: ""}[
                first.accepted
            ],
        ]
    )
    if when <= deadline:
        margin = (deadline - when).days
        return TimelyFilingFinding(
            "appeal",
            True,
            deadline,
            when,
            f"Timely: {proof}; {margin} days before the {limit}. Appeal CO-29 with this proof.",
        )
    late = (when - deadline).days
    return TimelyFilingFinding(
        "write off",
        False,
        deadline,
        when,
        f"Late: {proof}; {late} days after the {limit}. Write off as timely filing.",
    )


def timely_filing_evidence(
    history: Iterable[Submission], service_date: date, deadline: date, payer_id: str
) -> str:
    """Evidence text for a CO-29 write-off (or appeal) recommendation."""
    return co29_recommendation(history, service_date, deadline, payer_id).evidence
