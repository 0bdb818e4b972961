"""A service line read from the note, and whether the note says it was done.

A service counts only when the note says it was done at this visit
('performed', 'obtained', 'given', a documented result, or a procedure/result
section) and the same clause does not make it future, declined, sent out or
negated ('will obtain x-ray', 'declined flu vaccine', 'labs ordered').
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal

from shared.events import Encounter

_NOT_DONE = re.compile(
    r"\b(?:will|would|plan(?:s|ned)? to|schedul\w*|consider\w*|recommend\w*|if\b|return for|next visit|ordered"
    r"|sent (?:out|to)|send\w*|referr\w*|refer\b|due for|to be|offered|declined|refused|deferred|discussed"
    r"|prescri\w*|rx\b|not (?:done|performed|given|indicated|obtained|needed|required)|no\s+(?:need|indication)"
    r"|up to date|utd\b|previously|already|last (?:given|received|dose)|in the past|years ago|defer\w*"
    r"|unable|at home|pending|awaiting|counsel\w* (?:on|about)|outside|elsewhere"
    # another clinician's test read in the record ('PCP workup reviewed: ECG NSR'),
    # not one performed or interpreted here ('images personally reviewed')
    r"|(?<!personally )(?<!independently )(?<!i )reviewed"
    # a year or a month/year: when it was done before ('Tdap 2019', 'echo 11/2025')
    r"|(?<![\d.])(?:\d{1,2}/)?(?:19|20)\d{2}\b(?![./-]\d))",
    re.I,
)
_READ_HERE = re.compile(r"\breviewed,? (?:and )?interpreted\b", re.I)
_NEGATED = re.compile(r"\b(?:no|not|without|denies|never)\b", re.I)
_DONE = re.compile(
    r"\b(?:performed|obtained|done|given|administered|received|placed|applied|repaired|drained|injected"
    r"|aspirated|removed|completed|shows?|showed|reveal\w*|demonstrat\w*|result\w*|positive|negative|normal"
    r"|abnormal|interpreted|in[- ]office|in[- ]clinic|in[- ]house|my read|point[- ]of[- ]care|poc|today|this visit|here|tolerated"
    r"|confirm\w*|irrigated|closed|incised|treated|was|were|:)"
    r"|\b(?:my|independent) interpretation\b"
    # a result after a parenthesis: 'PVR (bladder scan): 40 mL'
    r"|\):",
    re.I,
)


@dataclass
class Px:
    code: str
    system: str = "cpt"
    units: Decimal = Decimal(1)
    modifiers: list[str] = field(default_factory=list)
    conf: float = 0.9
    start: int | None = None
    end: int | None = None
    source: str = "note"
    dx: tuple[str, ...] = ()  # prefixes of the diagnoses this service supports
    parts: frozenset[str] = frozenset()  # body parts, to link diagnoses
    rule: str = ""
    lateral: bool = False  # RT/LT/50 from the linked diagnosis when the text gives none


@dataclass
class Visit:
    """What a rule may look at besides the matched sentence."""

    note: str
    enc: Encounter
    age: int
    medicare: bool
    dx_codes: list[str]


def clause(text: str, lo: int, hi: int) -> str:
    """The clause around [lo, hi): between commas/'and'/'but' boundaries."""
    left = max(text.rfind(",", 0, lo), text.rfind(" but ", 0, lo), text.rfind(" and ", 0, lo))
    m = re.compile(r",| but | and (?!b\b)").search(text, hi)
    return text[left + 1 : m.start() if m else len(text)]


def done(text: str, m: re.Match, section: str) -> bool:
    """Done at this visit: no future/declined/negated word in its clause, and a
    'done' word (or a result) in the clause or the rest of the sentence."""
    chunk = clause(text, m.start(), m.end())
    not_done = _NOT_DONE.search(chunk)
    if not_done and not_done.group(0).lower() == "reviewed" and _READ_HERE.search(text):
        # one the clinician reviews and interprets is read here ('download reviewed and interpreted')
        not_done = _NOT_DONE.search(chunk, not_done.end())
    if not_done:
        return False
    before = text[max(0, m.start() - 12) : m.start()]
    if _NEGATED.search(before):
        return False
    return (
        section in ("procedure", "results")
        # a procedure note's own line ('Procedure - diagnostic nasal endoscopy (...): ...')
        or text[:10].lower().startswith("procedure")
        or _DONE.search(chunk) is not None
        or _DONE.search(text, m.end()) is not None
    )


def units_for(n: float) -> Decimal:
    return Decimal(max(1, math.ceil(n - 1e-9)))


WORDNUM = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "single": 1, "both": 2}


def count_views(text: str) -> int | None:
    m = re.search(r"\b(\d|one|two|three|four|five|single)[- ](?:views?|v)\b", text, re.I)
    if m:
        return int(
            WORDNUM.get(m.group(1).lower(), m.group(1)) if not m.group(1).isdigit() else m.group(1)
        )
    if re.search(r"\bPA and lateral\b|\bAP and lateral\b", text, re.I):
        return 2
    return None


def side_modifier(text: str) -> str | None:
    t = text.lower()
    if re.search(r"\bbilateral\b|\bboth\b|\bb/l\b", t):
        return "50"
    r = re.search(r"\b(?:right|rt)\b", t)
    left = re.search(r"\b(?:left|lt)\b", t)
    if r and not left:
        return "RT"
    if left and not r:
        return "LT"
    return None
