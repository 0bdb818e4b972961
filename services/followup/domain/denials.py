"""Denial classification: group code + CARC (+ RARC, + payer) -> category -> action.

The tables live in ``services/followup/data/carc.csv`` and ``rarc.csv``. They carry
code numbers with our own short labels only: the official CARC/RARC descriptions
are X12's copyright and are loaded from a user-supplied file when one is present
(``load_official_descriptions``).

Lookup order for one adjustment, first hit wins:
1. payer override (JSON, key ``GROUP-CARC`` then ``CARC``; payer ids may be globs);
2. for CARCs marked ``use_rarc`` (generic ones such as 16, A1, 125), the first
   remark code whose row carries a category;
3. the CARC row for this group (``CO``, ``PR``, ``OA``, ``PI``, ``CR``);
4. the CARC's default row (group ``*``);
then the group rules: PR always means the patient owes it (bill patient), CR is
a correction of an earlier remittance (no action). Unknown CARCs never raise: they
come back as category ``unclassified``, action ``review``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal

from shared.events import Adjustment

from .denial_rules import (
    ACTIONS,
    CATEGORIES,
    DEFAULT,
    GROUP_ALIASES,
    GROUPS,
    DenialRules,
    Rule,
)

__all__ = [
    "ACTIONS",
    "CATEGORIES",
    "DEFAULT",
    "GROUPS",
    "Classification",
    "DenialRules",
    "classify",
    "denial_actions_for_remittance",
    "load_official_descriptions",
]


@dataclass(frozen=True, slots=True)
class Classification:
    category: str
    action: str
    label: str
    carc: str
    group: str
    known: bool
    rarc: tuple[str, ...] = ()
    amount: Decimal | None = None  # summed adjustment amount, when classified from a remittance
    source: str = "carc"  # carc | rarc | payer | unknown: which table decided


def classify(
    group: str,
    carc: str,
    rarc: Iterable[str] = (),
    payer_id: str | None = None,
    rules: DenialRules = DEFAULT,
) -> Classification:
    """Classify one adjustment. Never raises: unknown codes come back ``unclassified``."""
    group = (group or "").strip().upper()
    group = GROUP_ALIASES.get(group, group)
    carc = (carc or "").strip().upper()
    remarks = tuple(r.strip().upper() for r in rarc if r and r.strip())

    def result(rule: Rule, source: str, known: bool = True) -> Classification:
        category, action = rule.category, rule.action
        if source != "payer":
            if group == "PR":
                # The patient owes PR amounts whatever the reason: that is what the
                # biller does next, so it wins over the CARC's own category.
                category, action = "patient responsibility", "bill patient"
            elif group == "CR":
                action = "no action"
        return Classification(
            category, action, rule.label, carc, group, known, remarks, None, source
        )

    override = rules.payer_rule(payer_id, group, carc)
    if override:
        return result(override, "payer")
    base = rules.carc.get((group, carc)) or rules.carc.get(("*", carc))
    if base is None:
        if group == "PR":
            return result(
                Rule("Patient responsibility (unlisted reason)", "", ""), "unknown", False
            )
        return Classification(
            "unclassified",
            "review",
            "Unknown adjustment reason",
            carc,
            group,
            False,
            remarks,
            None,
            "unknown",
        )
    if base.use_rarc:
        for code in remarks:
            r = rules.rarc.get(code)
            if r and r.category:
                return result(Rule(f"{base.label}: {r.label}", r.category, r.action), "rarc")
    return result(base, "carc")


def load_official_descriptions(text: str) -> dict[str, str]:
    """Read a user-supplied ``code,description`` CSV (official CARC or RARC wording).

    A header row (first cell ``code``) is skipped, blank lines are ignored.
    Raises ``ValueError`` naming the line when a row has no code or no description.
    """
    out: dict[str, str] = {}
    for n, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not any(cell.strip() for cell in row):
            continue
        if n == 1 and row[0].strip().lower() == "code":
            continue
        code = row[0].strip().upper()
        description = ",".join(row[1:]).strip()
        if not code or not description:
            raise ValueError(f"descriptions line {n}: expected 'code,description'")
        out[code] = description
    return out


def denial_actions_for_remittance(
    adjustments: Iterable[Adjustment],
    remarks: Iterable[str],
    outcome: str,
    payer_id: str | None,
    rules: DenialRules = DEFAULT,
) -> list[Classification]:
    """The actionable denial reasons of one claim payment (CLP), one per group+CARC.

    Which adjustments are worked is payments' decision, carried on the event (``outcome`` and
    each adjustment's ``beyond_contract``): on a claim payments calls ``denied`` every reason
    matters; otherwise only those beyond the contract (contractual write-downs, the patient's
    share and the prior payer's adjudication are routine). A ``reversed`` payment yields
    nothing: the original payment's work items are handled when it is reversed. This table
    only names the category, action and label. Amounts of the same group+CARC (claim and line
    level) are summed. Order: largest first.
    """
    if outcome == "reversed":
        return []
    remarks = tuple(remarks)
    denied = outcome == "denied"
    totals: dict[tuple[str, str], Decimal] = {}
    worked: set[tuple[str, str]] = set()
    for adj in adjustments:
        key = (GROUP_ALIASES.get(adj.group, adj.group), adj.reason.strip().upper())
        totals[key] = totals.get(key, Decimal(0)) + adj.amount
        if adj.beyond_contract:
            worked.add(key)
    out = []
    for (group, carc), amt in totals.items():
        if not denied and ((group, carc) not in worked or amt == 0):
            continue
        c = classify(group, carc, remarks, payer_id, rules)
        out.append(replace(c, amount=amt.quantize(Decimal("0.01"))))
    out.sort(key=lambda c: (-(c.amount or 0), c.group, c.carc))
    return out
