"""The denial classification tables: CARC and RARC rows, payer overrides.

Rows come from ``services/followup/data/carc.csv`` (code, group or ``*``, our own
short label, category, action, use_rarc) and ``rarc.csv``; payer overrides from
JSON. Loading validates every category and action and names the line at fault.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from importlib import resources

CATEGORIES = (
    "eligibility/coverage",
    "authorization",
    "medical necessity",
    "coding/bundling",
    "duplicate",
    "timely filing",
    "missing/invalid information",
    "non-covered",
    "contractual",
    "patient responsibility",
    "unclassified",
)
ACTIONS = (
    "correct and resubmit",
    "appeal",
    "verify eligibility and rebill",
    "bill patient",
    "write off",
    "no action",
    "review",
)
GROUPS = ("CO", "PR", "OA", "PI", "CR")
# "OI" is a common misspelling of OA (other adjustment) in payer docs and configs.
GROUP_ALIASES = {"OI": "OA"}


@dataclass(frozen=True, slots=True)
class Rule:
    label: str
    category: str
    action: str
    use_rarc: bool = False


@dataclass(frozen=True)
class DenialRules:
    """The classification tables. ``carc`` is keyed by (group or ``*``, code)."""

    carc: Mapping[tuple[str, str], Rule]
    rarc: Mapping[str, Rule]
    payer_overrides: Mapping[str, Mapping[str, Rule]] = field(default_factory=dict)

    @classmethod
    def from_text(
        cls, carc_csv: str, rarc_csv: str, payer_overrides_json: str | None = None
    ) -> DenialRules:
        """Build rules from CSV/JSON text. Raises ``ValueError`` naming the file and line."""
        rules = cls(_read_carc(carc_csv), _read_rarc(rarc_csv))
        return rules.with_payer_overrides(payer_overrides_json) if payer_overrides_json else rules

    @classmethod
    def packaged(cls) -> DenialRules:
        data = resources.files("services.followup.data")
        return cls.from_text(
            data.joinpath("carc.csv").read_text(encoding="utf-8"),
            data.joinpath("rarc.csv").read_text(encoding="utf-8"),
        )

    def with_payer_overrides(self, text: str) -> DenialRules:
        """Return rules with payer overrides added from JSON.

        Shape: ``{"MCR*": {"CO-50": {"category": ..., "action": ..., "label": ...}}}``.
        Raises ``ValueError`` naming the payer and key at fault.
        """
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"payer overrides: invalid JSON at line {e.lineno}") from e
        if not isinstance(raw, dict):
            raise ValueError("payer overrides: top level must be an object keyed by payer id")
        merged = {k: dict(v) for k, v in self.payer_overrides.items()}
        for payer, entries in raw.items():
            if not isinstance(entries, dict):
                raise ValueError(f"payer overrides[{payer}]: must be an object keyed by CARC")
            for key, spec in entries.items():
                where = f"payer overrides[{payer}][{key}]"
                if not isinstance(spec, dict):
                    raise ValueError(f"{where}: must be an object")
                merged.setdefault(payer, {})[key.upper()] = _rule(
                    spec.get("label", ""), spec.get("category"), spec.get("action"), where
                )
        return replace(self, payer_overrides=merged)

    def payer_rule(self, payer_id: str | None, group: str, carc: str) -> Rule | None:
        if not payer_id:
            return None
        # exact payer id first, then the longest matching glob
        patterns = sorted(
            (p for p in self.payer_overrides if p == payer_id or fnmatchcase(payer_id, p)),
            key=lambda p: (p != payer_id, -len(p)),
        )
        for p in patterns:
            table = self.payer_overrides[p]
            rule = table.get(f"{group}-{carc}") or table.get(carc)
            if rule:
                return rule
        return None


def _rule(label: str, category: str | None, action: str | None, where: str) -> Rule:
    if category not in CATEGORIES:
        raise ValueError(f"{where}: unknown category {category!r}")
    if action not in ACTIONS:
        raise ValueError(f"{where}: unknown action {action!r}")
    return Rule(label=label, category=category, action=action)


def _read_carc(text: str) -> dict[tuple[str, str], Rule]:
    out: dict[tuple[str, str], Rule] = {}
    for n, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        where = f"carc.csv line {n}"
        code, group = (row.get("code") or "").strip().upper(), (row.get("group") or "*").strip()
        if not code:
            raise ValueError(f"{where}: empty code")
        if group != "*" and group not in GROUPS:
            raise ValueError(f"{where}: unknown group {group!r}")
        rule = _rule(row.get("short_label", ""), row.get("category"), row.get("action"), where)
        out[(group, code)] = replace(rule, use_rarc=(row.get("use_rarc") or "").strip() == "Y")
    return out


def _read_rarc(text: str) -> dict[str, Rule]:
    out: dict[str, Rule] = {}
    for n, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        code = (row.get("code") or "").strip().upper()
        if not code:
            raise ValueError(f"rarc.csv line {n}: empty code")
        category, action = row.get("category") or "", row.get("action") or ""
        if category:  # remark codes without a category are informational only
            out[code] = _rule(row.get("short_label", ""), category, action, f"rarc.csv line {n}")
        else:
            out[code] = Rule(label=row.get("short_label", ""), category="", action="")
    return out


DEFAULT = DenialRules.packaged()
