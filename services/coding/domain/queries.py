"""Provider queries: compliant wording, the states a query goes through, and the drafts the
engine's result suggests (docs/coding-queries.md).

A query asks the provider to clarify documentation that is insufficient or conflicting. It
follows the AHIMA/ACDIS "Guidelines for Achieving a Compliant Query Practice" (2022 update):

- it cites the clinical indicators from the record (here: spans quoted from the note);
- it offers multiple choice with the clinically reasonable options, always with "other"
  (the provider writes their own answer) and "clinically undetermined";
- it does not lead: no single suggested answer, no "please document X", no option marked
  as preferred, no question that names one of the answers;
- it never mentions payment, reimbursement, DRGs, risk scores or any financial impact.

``validate`` refuses a draft that breaks any of these, naming the field and the rule; it
never quotes the draft back (a query holds PHI), only the listed term it matched.
``next_state`` is the state machine; ``engine_drafts`` turns what the engine's suggestions
show (diabetes without its type, a side not documented, a 'history of' that may be
current) into drafts a coder reviews before anything is sent. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from shared import icd10cm

OTHER = "Other (please specify)"
UNDETERMINED = "Clinically undetermined"
REASONS = {
    "diabetes_type": "diabetes documented without its type",
    "laterality": "the side (laterality) is not documented",
    "history_status": "a 'history of' condition that may be current",
    "conflicting": "the documentation conflicts",
    "specificity": "the documentation is not specific enough to code",
    "other": "other documentation question",
}
MAX_INDICATORS = 10
MAX_OPTIONS = 10


@dataclass(frozen=True)
class Indicator:
    """A clinical indicator: a span quoted from the note (PHI)."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class QueryDraft:
    reason: str
    question: str
    indicators: tuple[Indicator, ...]
    options: tuple[str, ...]


@dataclass(frozen=True)
class Problem:
    """Why a draft is refused: the field at fault and the rule it breaks."""

    field: str
    message: str


class QueryStateError(ValueError):
    """An action the query's state does not allow."""


# --------------------------------------------------------------------------- wording

_FINANCIAL = re.compile(
    r"\b(?:pay|pays|paid|paying|payment|payments|payer|payers|payor|payors|reimburs\w*"
    r"|money|dollars?|revenue|financ\w*|bill|bills|billed|billing|billable|charges?|fees?"
    r"|costs?|price|pricing|profit\w*|income|insurance|insurer|claims?|denials?|denied"
    r"|drgs?|ms-drg|apr-drg|hccs?|raf|rvus?|case[- ]mix|cmi|cc/mcc|mccs?"
    r"|risk[- ](?:scores?|adjust\w*)|compensation|incentives?|quality scores?|star ratings?"
    r"|(?:higher|better|more) (?:level|severity) (?:of )?(?:care )?(?:code|coding)"
    r"|financial impact)\b"
    r"|[$€£]\s*\d",
    re.I,
)
_LEADING = (
    (
        re.compile(
            r"\bplease\s+(?:document|add|include|chart|write|record|state\s+that|note\s+that"
            r"|indicate\s+that|confirm\s+that|update\s+the\s+(?:note|diagnosis))\b",
            re.I,
        ),
        "asks the provider to document a particular answer ('please document ...')",
    ),
    (
        re.compile(
            r"\b(?:can|could|would|will)\s+you\s+(?:please\s+)?(?:document|add|include|chart"
            r"|write|record|confirm\s+that|change)\b",
            re.I,
        ),
        "asks the provider to document a particular answer",
    ),
    (
        re.compile(
            r"\b(?:consider|recommend\w*|suggest\w*)\s+(?:documenting|adding|coding|that)\b", re.I
        ),
        "recommends an answer",
    ),
    (
        re.compile(
            r"\b(?:should|must|needs?\s+to|has\s+to)\s+be\s+(?:documented|added|coded|charted"
            r"|changed)\b",
            re.I,
        ),
        "tells the provider what the record must say",
    ),
    (re.compile(r"\bdocument(?:ed)?\s+as\b", re.I), "tells the provider how to document"),
    (
        re.compile(
            r"\b(?:don'?t|do\s+not|wouldn'?t|isn'?t|doesn'?t|won'?t)\s+you\b|\bagree\s+that\b"
            r"|\bisn'?t\s+(?:it|this)\b",
            re.I,
        ),
        "presumes an answer",
    ),
    (
        re.compile(
            r"\b(?:recommended|preferred|suggested|best|correct|expected)\s+"
            r"(?:answer|option|choice|diagnosis|response)\b",
            re.I,
        ),
        "marks an answer as preferred",
    ),
)
_MARKED_OPTION = re.compile(
    r"\b(?:recommended|preferred|suggested|most\s+likely|best\s+answer|correct\s+answer"
    r"|expected|default)\b",
    re.I,
)
_OTHER = re.compile(r"^\s*other\b", re.I)
_UNDETERMINED = re.compile(r"\bclinically\s+undetermined\b", re.I)
_YES_NO = frozenset({"yes", "no"})


def is_standard(option: str) -> bool:
    """'Other ...' or 'Clinically undetermined': the two answers every query offers."""
    return bool(_OTHER.search(option) or _UNDETERMINED.search(option))


def with_standard_options(options: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The options, trimmed, with "other" and "clinically undetermined" added when missing."""
    out = [o.strip() for o in options if o.strip()]
    if not any(_OTHER.search(o) for o in out):
        out.append(OTHER)
    if not any(_UNDETERMINED.search(o) for o in out):
        out.append(UNDETERMINED)
    return tuple(out)


def locate(note: str, quotes: list[tuple[str, int | None]]) -> tuple[Indicator, ...]:
    """Indicators for quoted spans of the note: each (text, start or None) found in the note,
    at ``start`` when given. Raises QueryDraftError naming ``indicators[i]`` otherwise."""
    out = []
    for i, (text, start) in enumerate(quotes):
        if start is not None and note[start : start + len(text)] == text:
            at = start
        else:
            at = note.find(text) if text.strip() else -1
        if at < 0:
            raise QueryDraftError(
                [Problem(f"indicators[{i}]", "is not quoted from the note (no such span)")]
            )
        out.append(Indicator(text, at, at + len(text)))
    return tuple(out)


class QueryDraftError(ValueError):
    """A draft refused for the problems it carries."""

    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


def validate(draft: QueryDraft, note: str) -> list[Problem]:
    """Every way the draft breaks compliant query practice (empty when it is compliant)."""
    problems: list[Problem] = []
    if draft.reason not in REASONS:
        problems.append(Problem("reason", f"must be one of {', '.join(REASONS)}"))
    problems += _question_problems(draft.question)
    problems += _indicator_problems(draft.indicators, note)
    problems += _option_problems(draft.options, draft.question)
    return problems


def _question_problems(question: str) -> list[Problem]:
    out = []
    if len(question.strip()) < 10:
        out.append(Problem("question", "is too short to ask anything (10 characters at least)"))
    if len(question) > 1000:
        out.append(Problem("question", "is longer than 1000 characters"))
    if m := _FINANCIAL.search(question):
        out.append(Problem("question", _financial(m)))
    for pattern, why in _LEADING:
        if pattern.search(question):
            out.append(Problem("question", f"leads: {why}"))
    return out


def _financial(m: re.Match) -> str:
    term = "an amount of money" if m.group(0)[:1] in "$€£" else f"'{m.group(0).lower()}'"
    return (
        f"mentions payment or financial impact ({term}): a query may not refer to "
        "reimbursement, DRGs, risk scores or money"
    )


def _indicator_problems(indicators: tuple[Indicator, ...], note: str) -> list[Problem]:
    if not indicators:
        return [Problem("indicators", "cite at least one clinical indicator quoted from the note")]
    out = []
    if len(indicators) > MAX_INDICATORS:
        out.append(Problem("indicators", f"at most {MAX_INDICATORS}"))
    for i, ind in enumerate(indicators):
        if len(ind.text.strip()) < 2 or len(ind.text) > 500:
            out.append(Problem(f"indicators[{i}]", "a quote is 2 to 500 characters"))
        elif not (0 <= ind.start < ind.end <= len(note)) or note[ind.start : ind.end] != ind.text:
            out.append(Problem(f"indicators[{i}]", "is not quoted from the note (no such span)"))
    return out


def _option_problems(options: tuple[str, ...], question: str) -> list[Problem]:
    out = []
    cleaned = [o.strip() for o in options]
    if len(cleaned) > MAX_OPTIONS:
        out.append(Problem("options", f"at most {MAX_OPTIONS}"))
    for i, o in enumerate(cleaned):
        if not o or len(o) > 200:
            out.append(Problem(f"options[{i}]", "an option is 1 to 200 characters"))
        elif m := _FINANCIAL.search(o):
            out.append(Problem(f"options[{i}]", _financial(m)))
        elif _MARKED_OPTION.search(o) and not is_standard(o):
            out.append(Problem(f"options[{i}]", "leads: marks this answer as the preferred one"))
    if len({o.casefold() for o in cleaned}) != len(cleaned):
        out.append(Problem("options", "the same option is offered twice"))
    if not any(_OTHER.search(o) for o in cleaned):
        out.append(Problem("options", f"must include '{OTHER}'"))
    if not any(_UNDETERMINED.search(o) for o in cleaned):
        out.append(Problem("options", f"must include '{UNDETERMINED}'"))
    clinical = [o for o in cleaned if o and not is_standard(o)]
    if {o.casefold().rstrip(".") for o in clinical} & _YES_NO:
        out.append(
            Problem(
                "options",
                "yes/no answers lead: offer the clinically reasonable alternatives as "
                "multiple choice",
            )
        )
    elif len(clinical) < 2:
        out.append(
            Problem(
                "options",
                "offer at least two clinically reasonable answers besides 'other' and "
                "'clinically undetermined' (one answer alone is a leading query)",
            )
        )
    else:
        named = [o for o in clinical if _names(question, o)]
        if named and len(named) < len(clinical):
            out.append(
                Problem(
                    "question",
                    "leads: names one of the answers; ask the question neutrally and leave "
                    "the answers to the options",
                )
            )
    return out


def _names(question: str, option: str) -> bool:
    words = option.strip().rstrip(".").casefold()
    return bool(words) and re.search(rf"(?<!\w){re.escape(words)}(?!\w)", question.casefold())


# --------------------------------------------------------------------------- states

_NEXT = {
    "draft": {"send": "sent", "cancel": "cancelled"},
    "sent": {"answer": "answered", "escalate": "escalated", "cancel": "cancelled"},
    "escalated": {"answer": "answered", "cancel": "cancelled"},
    "answered": {"close": "closed"},
    "closed": {},
    "cancelled": {},
}
STATES = tuple(_NEXT)
# Waiting for the provider: the encounter may not be finalised meanwhile.
OPEN = frozenset({"sent", "escalated"})


def next_state(state: str, action: str) -> str:
    """The state ``action`` leads to from ``state``; QueryStateError when it is not allowed."""
    if state not in _NEXT:
        raise QueryStateError(f"unknown query state {state!r}")
    to = _NEXT[state].get(action)
    if to is None:
        allowed = ", ".join(_NEXT[state]) or "nothing"
        raise QueryStateError(
            f"a {state} query cannot be {_PAST.get(action, action)} (allowed: {allowed})"
        )
    return to


_PAST = {
    "send": "sent",
    "answer": "answered",
    "escalate": "escalated",
    "cancel": "cancelled",
    "close": "closed",
}


# --------------------------------------------------------------------------- answers


def check_answer(options: list[str], answer: str, text: str | None) -> list[Problem]:
    """An answer must be one of the offered options; 'other' needs the provider's own words."""
    if answer not in options:
        return [Problem("answer", "must be one of the query's options, as offered")]
    if _OTHER.search(answer) and not (text or "").strip():
        return [Problem("text", "an 'other' answer needs the provider's own words")]
    return []


def addendum(query_id: int, answer: str, text: str | None, on: date) -> str:
    """The addendum a provider's answer adds to the note (PHI): the chosen answer, then the
    provider's own words (an 'other' answer is the provider's words alone)."""
    words = (text or "").strip()
    if _OTHER.search(answer):
        body = words
    else:
        body = f"{answer.rstrip('.')}. {words}" if words else f"{answer.rstrip('.')}."
    return f"Addendum (provider query {query_id}, {on.isoformat()}): {body}"


def amended_note(note: str | None, addenda: list[str]) -> str | None:
    """The note with each addendum appended once (a re-sent note may already carry one)."""
    out = note or ""
    for a in addenda:
        if a and a not in out:
            out = f"{out.rstrip()}\n\n{a}" if out.strip() else a
    return out if (note is not None or addenda) else None


# --------------------------------------------------------------------------- engine hook

_DIABETES = re.compile(r"\b(?:diabet\w*|dm)\b", re.I)
_DIABETES_TYPE = re.compile(
    r"\b(?:type\s*(?:1|2|i{1,2}|one|two)|t[12]\s?dm|dm\s*(?:type\s*)?(?:1|2|i{1,2})|dm[12]"
    r"|iddm|niddm|gestational|steroid[- ]induced|drug[- ]induced|chemical[- ]induced"
    r"|secondary|due\s+to|juvenile|mody|lada|pre-?diabet\w*)\b",
    re.I,
)
_DIABETES_CLUES = re.compile(
    r"\b(?:insulin|metformin|glipizide|glyburide|glimepiride|sitagliptin|semaglutide"
    r"|empagliflozin|dapagliflozin|a1c|hba1c|hemoglobin a1c|glucose)\b",
    re.I,
)
_HISTORY = re.compile(r"\b(?:history\s+of|hx\s+of|h/o|s/p|status\s+post)\b", re.I)
_SIDES = (re.compile(r"\bright\b", re.I), re.compile(r"\bleft\b", re.I))
_BILATERAL = re.compile(r"\bbilateral\b", re.I)


def engine_drafts(note: str | None, suggestions: dict) -> list[QueryDraft]:
    """Drafts for what the engine's suggestions (``rcm code`` JSON) show the note leaves open.

    Each draft is compliant (``validate`` finds nothing); a coder reviews it before sending.
    """
    if not note:
        return []
    dx = [d for d in suggestions.get("diagnoses") or [] if isinstance(d, dict) and d.get("code")]
    out = [
        d
        for d in (_diabetes_type(note, dx), _laterality(note, dx), _history(note, dx))
        if d is not None
    ]
    return [d for d in out if not validate(d, note)]


def _sentence(note: str, start: int, end: int, limit: int = 300) -> Indicator:
    """The sentence (or line) around a span of the note, at most ``limit`` characters."""
    left = max(note.rfind(c, 0, start) for c in ".\n;") + 1
    rights = [i for i in (note.find(c, end) for c in ".\n;") if i >= 0]
    right = min(rights) if rights else len(note)
    while left < start and note[left].isspace():
        left += 1
    if right - left > limit:
        left, right = max(left, start - limit // 2), min(right, end + limit // 2)
    return Indicator(note[left:right], left, right)


def _unique(indicators: list[Indicator], most: int = 5) -> tuple[Indicator, ...]:
    seen: dict[tuple[int, int], Indicator] = {}
    for ind in indicators:
        if ind.text.strip() and not any(
            ind.start < o.end and o.start < ind.end for o in seen.values()
        ):
            seen[(ind.start, ind.end)] = ind
    return tuple(sorted(seen.values(), key=lambda i: i.start)[:most])


def _evidence(note: str, d: dict) -> Indicator | None:
    ev = d.get("evidence")
    if not isinstance(ev, dict):
        return None
    start, end = ev.get("start"), ev.get("end")
    if not isinstance(start, int) or not isinstance(end, int) or not 0 <= start < end <= len(note):
        return None
    return _sentence(note, start, end)


def _diabetes_type(note: str, dx: list[dict]) -> QueryDraft | None:
    if not any(str(d["code"])[:3] in ("E08", "E09", "E10", "E11", "E13") for d in dx):
        return None
    mentions = list(_DIABETES.finditer(note))
    if not mentions or _DIABETES_TYPE.search(note):
        return None
    indicators = [_sentence(note, m.start(), m.end()) for m in mentions[:3]]
    indicators += [_sentence(note, m.start(), m.end()) for m in _DIABETES_CLUES.finditer(note)]
    return QueryDraft(
        "diabetes_type",
        "The note documents diabetes mellitus without stating its type. Based on the clinical "
        "indicators quoted from the record, please clarify the type of diabetes mellitus being "
        "evaluated or treated at this encounter.",
        _unique(indicators),
        with_standard_options(
            (
                "Type 1 diabetes mellitus",
                "Type 2 diabetes mellitus",
                "Diabetes mellitus due to an underlying condition",
                "Drug or chemical induced diabetes mellitus",
            )
        ),
    )


def _laterality(note: str, dx: list[dict]) -> QueryDraft | None:
    indicators, bilateral = [], False
    for d in dx:
        found = _unsided(str(d["code"]))
        if found is None:
            continue
        ind = _evidence(note, d)
        if ind is None:
            continue
        indicators.append(ind)
        bilateral = bilateral or found
    if not indicators:
        return None
    options = ["Right", "Left"] + (["Bilateral"] if bilateral else [])
    return QueryDraft(
        "laterality",
        "The documentation quoted below does not state the side affected. Based on the "
        "clinical indicators in the record, please clarify the laterality of the condition.",
        _unique(indicators),
        with_standard_options(options),
    )


def _unsided(code: str) -> bool | None:
    """None when ``code`` is not an 'unspecified side' choice among sided siblings; else
    whether a bilateral sibling exists."""
    c = icd10cm.normalize(code)
    if not icd10cm.is_valid(c):
        return None
    path = c
    for parent in icd10cm.ancestors(c)[:3]:
        if not icd10cm.is_valid(parent):
            break
        own = icd10cm.description(path) or ""
        kids = [icd10cm.description(k) or "" for k in icd10cm.children(parent) if k != path]
        if all(any(side.search(k) for k in kids) for side in _SIDES):
            if "unspecified" in own.lower() and not any(side.search(own) for side in _SIDES):
                if not _BILATERAL.search(own):
                    return any(_BILATERAL.search(k) for k in kids)
            return None
        path = parent
    return None


def _history(note: str, dx: list[dict]) -> QueryDraft | None:
    indicators = []
    for d in dx:
        code = str(d["code"])
        if code[:2] in ("Z8", "Z9"):  # already coded as history or status
            continue
        ind = _evidence(note, d)
        if ind is not None and _HISTORY.search(ind.text):
            indicators.append(ind)
    if not indicators:
        return None
    return QueryDraft(
        "history_status",
        "The condition quoted below is documented with 'history of' wording. Based on the "
        "clinical indicators in the record, please clarify its status at this encounter.",
        _unique(indicators),
        with_standard_options(
            (
                "Current condition, evaluated, monitored or treated at this encounter",
                "Resolved condition, history only, not treated at this encounter",
            )
        ),
    )
