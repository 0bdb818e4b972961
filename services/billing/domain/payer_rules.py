"""Payer-specific billing rules, from JSON configuration.

Shape (every key optional; ``default`` applies to all payers, a payer entry overrides it
key by key)::

    {"default": {"timely_filing_days": 365},
     "payers": {"PAYER-ID": {
         "name": "...",
         "prior_auth_codes": ["72148", "70551-70553"],   # codes or inclusive ranges
         "non_covered_codes": ["99406"],
         "requires_group_number": true,
         "requires_rendering_provider": true,
         "timely_filing_days": 90}}}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources

_KEYS = {
    "name": str,
    "prior_auth_codes": list,
    "non_covered_codes": list,
    "requires_group_number": bool,
    "requires_rendering_provider": bool,
    "timely_filing_days": int,
}


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
class PayerRule:
    name: str | None = None
    prior_auth_codes: CodeSet = field(default_factory=CodeSet)
    non_covered_codes: CodeSet = field(default_factory=CodeSet)
    requires_group_number: bool = False
    requires_rendering_provider: bool = False
    timely_filing_days: int | None = None


@dataclass(frozen=True)
class PayerRules:
    default: PayerRule = field(default_factory=PayerRule)
    payers: dict[str, PayerRule] = field(default_factory=dict)

    def for_payer(self, payer_id: str | None) -> PayerRule:
        return self.payers.get(payer_id or "", self.default)


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
    for key, value in raw.items():
        kind = _KEYS.get(key)
        if kind is None:
            raise ValueError(f"{where}.{key}: unknown payer rule")
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ValueError(f"{where}.{key}: expected {kind.__name__}")
        merged[key] = value
    rule = PayerRule(
        name=merged.get("name"),
        prior_auth_codes=_code_set(merged.get("prior_auth_codes", []), f"{where}.prior_auth_codes"),
        non_covered_codes=_code_set(
            merged.get("non_covered_codes", []), f"{where}.non_covered_codes"
        ),
        requires_group_number=merged.get("requires_group_number", False),
        requires_rendering_provider=merged.get("requires_rendering_provider", False),
        timely_filing_days=merged.get("timely_filing_days"),
    )
    return rule, merged


def load_payer_rules(text: str) -> PayerRules:
    """Parse payer rules JSON. Raises ValueError naming the JSON path at fault."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"payer rules: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ValueError("payer rules: top level must be an object")
    unknown = set(data) - {"default", "payers", "comment"}
    if unknown:
        raise ValueError(f"payer rules: unknown top-level key {sorted(unknown)[0]!r}")
    default, base = _rule(data.get("default", {}), "default", {})
    base.pop("name", None)
    payers_raw = data.get("payers", {})
    if not isinstance(payers_raw, dict):
        raise ValueError("payers: must be an object keyed by payer id")
    payers = {pid: _rule(raw, f"payers.{pid}", base)[0] for pid, raw in payers_raw.items()}
    return PayerRules(default=default, payers=payers)


def load_sample_payer_rules() -> PayerRules:
    """The bundled services/billing/data/payer_rules.json."""
    text = resources.files("services.billing.data").joinpath("payer_rules.json").read_text("utf-8")
    return load_payer_rules(text)
