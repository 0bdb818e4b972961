"""Payer-specific billing rules, from JSON configuration; the filing limit among them.

Billing owns the timely filing limit (it submits the claim): the deadline it derives here is
carried as ``filing_deadline`` on claim.submitted and claim.held, and followup reads it
instead of keeping limits of its own.

Shape (every key optional but the default's filing limit; a level overrides the one below it
key by key)::

    {"default": {"timely_filing_days": 90},
     "filing_indicators": {"MB": {"timely_filing_months": 12}},   # by SBR09, for payers
                                                                  # without an entry
     "payers": {"PAYER-ID": {
         "name": "...",
         "prior_auth_codes": ["72148", "70551-70553"],   # codes or inclusive ranges
         "non_covered_codes": ["99406"],
         "requires_group_number": true,
         "requires_rendering_provider": true,
         "timely_filing_days": 180}}}

A filing limit is ``timely_filing_days`` or ``timely_filing_months`` (calendar months: Medicare's
"12 months, or 1 calendar year, after the date of service" of 42 CFR 424.44(a)(1) ends on the
same day of the month a year later); setting one replaces the other inherited from below.
Lookup: the payer's own entry, else its claim filing indicator's, else the default. A
``comment`` key is allowed anywhere and ignored.
"""

from __future__ import annotations

import calendar
import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib import resources

_KEYS = {
    "name": str,
    "prior_auth_codes": list,
    "non_covered_codes": list,
    "requires_group_number": bool,
    "requires_rendering_provider": bool,
    "timely_filing_days": int,
    "timely_filing_months": int,
}
_LIMITS = ("timely_filing_days", "timely_filing_months")


@dataclass(frozen=True)
class CodeSet:
    """Exact codes plus inclusive ranges (compared as equal-length strings, e.g. J0000-J9999)."""

    codes: frozenset[str] = frozenset()
    ranges: tuple[tuple[str, str], ...] = ()

    def __contains__(self, code: str) -> bool:
        if code in self.codes:
            return True
        return any(len(lo) == len(code) and lo <= code <= hi for lo, hi in self.ranges)


@dataclass(frozen=True)
class FilingLimit:
    """How long after the date of service a payer accepts a claim: days, or calendar months."""

    days: int | None = None
    months: int | None = None

    def deadline(self, service_date: date) -> date:
        """The last day the payer accepts a claim for ``service_date``."""
        if self.months is None:
            return service_date + timedelta(days=self.days or 0)
        month0 = service_date.month - 1 + self.months
        year, month = service_date.year + month0 // 12, month0 % 12 + 1
        day = min(service_date.day, calendar.monthrange(year, month)[1])  # Feb 29 -> Feb 28
        return date(year, month, day)

    def __str__(self) -> str:
        return f"{self.months}-month" if self.months is not None else f"{self.days}-day"


@dataclass(frozen=True)
class PayerRule:
    name: str | None = None
    prior_auth_codes: CodeSet = field(default_factory=CodeSet)
    non_covered_codes: CodeSet = field(default_factory=CodeSet)
    requires_group_number: bool = False
    requires_rendering_provider: bool = False
    filing_limit: FilingLimit | None = None


@dataclass(frozen=True)
class PayerRules:
    default: PayerRule = field(default_factory=PayerRule)
    payers: dict[str, PayerRule] = field(default_factory=dict)
    filing_indicators: dict[str, PayerRule] = field(default_factory=dict)

    def for_payer(self, payer_id: str | None, filing_indicator: str | None = None) -> PayerRule:
        """The payer's own rule, else its filing indicator's (SBR09), else the default."""
        rule = self.payers.get(payer_id or "")
        if rule is None:
            rule = self.filing_indicators.get(filing_indicator or "", self.default)
        return rule

    def filing_deadline(
        self, payer_id: str | None, filing_indicator: str | None, service_date: date
    ) -> date:
        """Last day the payer accepts the claim. Raises ValueError for rules with no filing
        limit at all (``load_payer_rules`` refuses those)."""
        limit = self.for_payer(payer_id, filing_indicator).filing_limit
        if limit is None:
            raise ValueError("payer rules: no timely filing limit (set one in default)")
        return limit.deadline(service_date)


def _code_set(values: list, where: str) -> CodeSet:
    codes, ranges = set(), []
    for v in values:
        if not isinstance(v, str) or not v.strip():
            raise ValueError(f"{where}: entries must be non-empty strings")
        v = v.strip().upper()
        if "-" in v:
            lo, _, hi = v.partition("-")
            if len(lo) != len(hi) or lo > hi:
                raise ValueError(f"{where}: bad range {v!r}")
            ranges.append((lo, hi))
        else:
            codes.add(v)
    return CodeSet(frozenset(codes), tuple(ranges))


def _rule(raw: object, where: str, base: dict) -> tuple[PayerRule, dict]:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: must be an object")
    merged = dict(base)
    if any(k in raw for k in _LIMITS):
        for k in _LIMITS:
            merged.pop(k, None)
    for key, value in raw.items():
        if key == "comment":
            continue
        kind = _KEYS.get(key)
        if kind is None:
            raise ValueError(f"{where}.{key}: unknown payer rule")
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ValueError(f"{where}.{key}: expected {kind.__name__}")
        if key in _LIMITS and value <= 0:
            raise ValueError(f"{where}.{key}: must be a positive whole number")
        merged[key] = value
    if all(k in raw for k in _LIMITS):
        raise ValueError(f"{where}: timely_filing_days and timely_filing_months are exclusive")
    days, months = merged.get("timely_filing_days"), merged.get("timely_filing_months")
    rule = PayerRule(
        name=merged.get("name"),
        prior_auth_codes=_code_set(merged.get("prior_auth_codes", []), f"{where}.prior_auth_codes"),
        non_covered_codes=_code_set(
            merged.get("non_covered_codes", []), f"{where}.non_covered_codes"
        ),
        requires_group_number=merged.get("requires_group_number", False),
        requires_rendering_provider=merged.get("requires_rendering_provider", False),
        filing_limit=FilingLimit(days, months) if days or months else None,
    )
    return rule, merged


def _entries(data: dict, key: str, base: dict) -> dict[str, PayerRule]:
    raw = data.get(key, {})
    if not isinstance(raw, dict):
        raise ValueError(f"{key}: must be an object keyed by {key[:-1].replace('_', ' ')}")
    return {k: _rule(v, f"{key}.{k}", base)[0] for k, v in raw.items() if k != "comment"}


def load_payer_rules(text: str) -> PayerRules:
    """Parse payer rules JSON. Raises ValueError naming the JSON path at fault, and when the
    default has no filing limit (billing must carry a filing deadline on every claim)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"payer rules: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ValueError("payer rules: top level must be an object")
    unknown = set(data) - {"default", "payers", "filing_indicators", "comment"}
    if unknown:
        raise ValueError(f"payer rules: unknown top-level key {sorted(unknown)[0]!r}")
    default, base = _rule(data.get("default", {}), "default", {})
    base.pop("name", None)
    payers = _entries(data, "payers", base)
    indicators = _entries(data, "filing_indicators", base)
    if default.filing_limit is None:
        raise ValueError("default: timely_filing_days or timely_filing_months is required")
    return PayerRules(default=default, payers=payers, filing_indicators=indicators)


def load_sample_payer_rules() -> PayerRules:
    """The bundled services/billing/data/payer_rules.json."""
    text = resources.files("services.billing.data").joinpath("payer_rules.json").read_text("utf-8")
    return load_payer_rules(text)
