"""Diagnosis statements in the note -> ICD-10-CM candidates with evidence.

Where the note has an assessment/impression/diagnosis section, only its
statements (and the plan's) are coded: conditions merely listed in the past
medical history are not addressed at the visit. Without such a section every
narrative section is read, except history, family, medication, allergy, review
of systems and results sections.

Status of each mention (NegEx-style, see ``text.context``):
- negated, family, hypothetical: never coded;
- history: chronic conditions still count ('history of hypertension, on
  lisinopril'); others become personal-history Z codes where a mapping exists;
- uncertain ('probable', 'rule out', 'likely'): not coded; outpatient
  guideline IV.H codes the documented signs/symptoms instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from services.coding.domain import lexicon as lx
from services.coding.domain import specificity as sp
from services.coding.domain.prefilter import fold, gated
from services.coding.domain.text import (
    Context,
    Scope,
    Sentence,
    Token,
    context,
    sentence_scopes,
    sentences,
    tokenize,
)
from shared import icd10cm

# Conditions that stay current when the note says 'history of' (and that the
# E/M logic counts as chronic illnesses).
CHRONIC = (
    "E08",
    "E09",
    "E10",
    "E11",
    "E13",
    "E03",
    "E05",
    "E66",
    "E78",
    "I10",
    "I11",
    "I12",
    "I13",
    "I25",
    "I48",
    "I50",
    "I73",
    "J30",
    "J44",
    "J45",
    "N18",
    "F32",
    "F33",
    "F41",
    "F90",
    "G47",
    "K21",
    "M17",
    "M16",
    "M19",
    "M10",
    "G43",
    "N40",
    "E55",
    "D50",
    "M81",
    "L40",
    "L20",
    "K58",
    "G56",
)
# 'history of X' for resolved conditions -> personal history code (ICD-10-CM Z85-Z87, I25.2)
HISTORY = {
    "I21": "I252",
    "I22": "I252",
    "I63": "Z8673",
    "G45": "Z8673",
    "N20": "Z87442",
    "N39": "Z87440",
    "C50": "Z853",
    "C61": "Z8546",
    "C18": "Z85038",
    "C43": "Z85820",
    "J18": "Z8701",
    "I82": "Z86718",
    "I26": "Z86711",
    "D12": "Z860100",
    "F17": "Z87891",
    "S": "Z8781",
    "L02": None,
}
_SKIP_SECTIONS = {"pmh", "family", "meds", "allergies", "ros", "social", "results", "time"}
_SYMPTOM_SECTIONS = {"cc", "hpi", "assessment", "other", "mdm"}
# Tests, vaccines and shots name diseases without diagnosing them.
_NOT_A_DIAGNOSIS = gated(
    r"\b(?:rapid\s+)?(?:strep(?:tococcal)?|flu|influenza|covid(?:-?19)?|sars-cov-2|rsv|mono|hpv|tdap|dtap|mmr"
    r"|pneumococcal|pneumonia|shingles|zoster|hepatitis\s+[ab]|varicella|tetanus|hep\s+[ab]|urine|blood|a1c)"
    r"(?:\s+(?:a|b|a\s*(?:and|/|&)\s*b|19|ag))?\s+(?:vaccine|vaccination|shot|immunization|booster|tests?|testing|swab"
    r"|screen|antigen|pcr|naat|culture|panel|dip(?:stick)?)\b|\brapid\s+(?:strep|flu|influenza|covid)\b"
    # drug classes name a condition's words ('on oral hypoglycemic': no oral complication)
    r"|\boral\s+(?:hypoglycemic|antidiabetic|diabetes)(?:\s+(?:agent|medication|drug)s?|s)?\b",
    re.I,
)
_DIAGNOSED = gated(
    r"\b(?:diagnosed with|diagnosis of|consistent with|impression of|treated for|this is)\s+([^.;\n]+)",
    re.I,
)

fold(_NOT_A_DIAGNOSIS)  # spans only; _DIAGNOSED's phrase keeps its case for the searcher


@dataclass
class Dx:
    code: str
    conf: float
    start: int | None = None
    end: int | None = None
    source: str = "note"  # note | ehr | rule
    kind: str = "dx"  # dx | sx | preventive | companion | history
    rank: tuple = (9, 0)  # (section rank, position)
    anchor: str | None = None  # companions follow this code
    stem: str = ""
    guessed: bool = False  # from the term index, not a curated phrase
    defaulted: bool = False  # refinement fell back on a default among siblings


@dataclass
class DxFindings:
    found: list[Dx] = field(default_factory=list)
    uncertain: list[Dx] = field(default_factory=list)
    has_assessment: bool = False
    sents: list[Sentence] = field(default_factory=list)
    ctx: Context = field(default_factory=Context)
    phase: sp.Phase = field(default_factory=sp.Phase)
    # assessment statements that name something no code was found for (spans)
    unmatched: list[tuple[int, int]] = field(default_factory=list)
    # mentions in the assessment that context set aside (negated, uncertain, ...)
    set_aside: list[tuple[str, int, int]] = field(default_factory=list)
    # code stems a read sentence negates ('no pneumonia on CXR', 'denies fever'):
    # a coded diagnosis with one of them has conflicting mentions
    negated: set[str] = field(default_factory=set)


# (code prefixes, note pattern, words the pattern adds to a mention's context)
_INFERENCES = [
    (
        ("J02", "J03"),
        gated(
            r"\b(?:rapid\s+)?strep(?:tococcal)?(?:\s+(?:a|test|screen|antigen|pcr|swab))*\s*(?:was|is|:|returned|came back)?\s*(?:positive|\+)"
            r"|\bpositive\s+(?:rapid\s+)?strep|\bgroup a strep(?:tococcus)?\b(?! negative)",
            re.I,
        ),
        {"streptococcal"},
    ),
    (
        ("E08", "E09", "E10", "E11", "E13"),
        gated(
            r"\buncontrolled\b|\bpoorly controlled\b|\bnot (?:well[- ])?controlled\b|\bout of control\b"
            r"|\binadequately controlled\b|\bsuboptimal(?:ly)? control",
            re.I,
        ),
        {"hyperglycemia"},
    ),
    (
        ("E08", "E09", "E10", "E11", "E13"),
        # the event, not the drug class ('on oral hypoglycemic (metformin)')
        gated(
            r"\bhypoglyc(?:a)?emi(?:as?|c (?:episode|event|reaction|spell)s?)\b",
            re.I,
        ),
        {"hypoglycemia"},
    ),
]
_FLU_POSITIVE = gated(
    r"\b(?:influenza|flu)\s*(?:a|b)?\s*(?:test|swab|antigen|pcr)?\s*(?:was|is|:)?\s*positive"
    r"|\bpositive for (?:influenza|flu)",
    re.I,
)

fold(_FLU_POSITIVE, *(rx for _, rx, _ in _INFERENCES))


def find(note: str, age: int, index: lx.Searcher | None = None) -> DxFindings:
    """Diagnosis candidates from a note (codes already refined to billable where possible)."""
    res = DxFindings()
    res.sents = sentences(note)
    res.ctx = context(note, res.sents)
    res.phase = sp.phase_of(note)
    res.has_assessment = any(s.section == "assessment" for s in res.sents)
    masked = [(m.start(), m.end()) for m in _NOT_A_DIAGNOSIS.finditer(note)]
    ascii_note = note.isascii()
    symptoms: list[Dx] = []
    for s in res.sents:
        coding = (
            (s.section in ("assessment", "plan", "mdm"))
            if res.has_assessment
            else s.section not in _SKIP_SECTIONS
        )
        if not coding and s.section not in _SYMPTOM_SECTIONS:
            continue
        # the masks that reach into this sentence, relative to it
        mask = tuple(
            (max(a - s.start, 0), min(b - s.start, s.end - s.start))
            for a, b in masked
            if a < s.end and b > s.start
        )
        readings = _read(note[s.start : s.end], ascii_note, mask)
        if coding and s.section == "assessment":
            res.set_aside.extend(
                (r.status, s.start + r.start, s.start + r.end)
                for r in readings
                if r.status not in ("affirmed", "history")
            )
        explained = (
            _explained_in_statement(note[s.start : s.end], readings)
            if coding and len(readings) > 1
            else ()
        )
        for r in readings:
            if r.status in ("negated", "resolved"):
                res.negated.add(r.entry.code)
            if r in explained:
                continue
            d = _mention(note, res, s, r, age)
            if d is None:
                continue
            if not coding:
                if d.kind == "sx":
                    symptoms.append(d)
                elif d.kind == "preventive" and (s.section == "cc" or s is res.sents[0]):
                    # the reason for the visit in its title or chief complaint ('Annual
                    # Physical Exam', 'Adolescent well visit'): first-listed (IV.G)
                    res.found.append(d)
                continue
            (res.uncertain if d.kind == "uncertain" else res.found).append(d)
            if d.kind == "sx":
                symptoms.append(d)
        # a statement whose only phrase is negated by its own 'without' list ('Lumbar
        # spondylosis w/o myelopathy or radiculopathy') is read as if none matched
        if coding and (
            not readings
            or (
                all(r.status == "negated" for r in readings)
                and _WITHOUT_WORD.search(note, s.start, s.end) is not None
            )
        ):
            got = _fallback(note, res, s, index or lx.term_index(), age)
            head = _head(note, s) if not got and s.section == "assessment" else None
            if head is not None and head[1] < s.end:
                # the whole statement carries its plan and qualifiers ("Addison's disease -
                # stable on current replacement"): its head alone names the condition
                got = _fallback(note, res, s, index or lx.term_index(), age, head=head)
            res.found.extend(got)
            if not got and s.section == "assessment" and _names_something(note, s, res.ctx):
                res.unmatched.append((s.start, s.end))
        elif coding and s.section == "assessment" and min(r.start for r in readings) > 2:
            # the statement's head ('Bell's palsy, L - prednisone ...') names a condition
            # the synonym list does not know: the term index reads the head alone
            head = _head(note, s)
            if head is not None:
                # 'Chronic rhinosinusitis w/ nasal polyps': the phrases read name only what
                # follows the 'with'; the condition before it is the head
                cut = _QUALIFIED.search(note, head[0], head[1])
                if cut and cut.start() - s.start > 2:
                    head = (head[0], cut.start())
            if head is not None and not any(
                r.start < head[1] - s.start for r in readings if r.status != "negated"
            ):
                got = _fallback(note, res, s, index or lx.term_index(), age, head=head)
                if _CAUSED_BY.match(note, head[1] + 1):
                    # 'LLQ pain due to <a condition read below>': the symptom is integral
                    got = [d for d in got if not d.code.startswith("R")]
                res.found.extend(got)
                if not got and _names_something(note, Sentence(*head, s.section), res.ctx):
                    res.unmatched.append(head)
    _follow_up_after_treatment(note, res)
    # guideline IV.H: uncertain diagnosis -> the documented symptoms (those a
    # definitive diagnosis explains are dropped later, see rules.absorb)
    if res.uncertain:
        have = {d.code for d in res.found}
        for d in symptoms:
            if d.code not in have:
                d.source, d.conf = "rule", min(d.conf, 0.85)
                res.found.append(d)
                have.add(d.code)
    return res


_FOLLOW_UP = gated(r"\b(?:f/u|follow[- ]?up|recheck)\b", re.I)
fold(_FOLLOW_UP)


def _follow_up_after_treatment(note: str, res: DxFindings) -> None:
    """Z09 (follow-up examination after completed treatment) leads when the assessment's
    first coded statement is a condition it calls resolved and the note is a follow-up
    visit; the condition's personal-history code follows (Z09's 'use additional code')."""
    listed = sorted((d for d in res.found if d.rank[0] == 0), key=lambda d: d.rank)
    if not listed or listed[0].kind != "history" or not listed[0].code.startswith(("Z86", "Z87")):
        return
    if _FOLLOW_UP.search(note) is None:
        return
    first = listed[0]
    res.found.append(
        Dx("Z09", round(first.conf * 0.9, 3), first.start, first.end, rank=(0, first.rank[1] - 1))
    )


_PLAN_ONLY = re.compile(
    r"^\s*(?:rtc|return|f/u|follow|continue|start|stop|hold|discussed|counsel|reviewed|recheck|refer"
    r"|order|labs?\b|plan|will|call|see|schedule|dressing|wound care|work note|ed precautions|precautions"
    r"|rest|ice|fluids|diet|exercise|encourage|patient|pt\b|sun protection|education|total time|time\b|no\b|not\b"
    r"|\d+\s*(?:min|mo|wk|day))",
    re.I,
)


def _names_something(note: str, s: Sentence, ctx: Context) -> bool:
    """An assessment statement that reads like a diagnosis, not a plan step nor a
    finding it sets aside ('Strep negative', 'No signs of cellulitis')."""
    text = note[s.start : s.end]
    first = re.match(r"\s*\S+", text)
    if first and ctx.status(s.start, s.start + first.end()) in (
        "negated",
        "uncertain",
        "hypothetical",
        "family",
    ):
        return False
    return (
        _PLAN_ONLY.match(text) is None
        and _DX_LIKE.match(text) is not None
        and 1 <= len(lx.content(lx.norm_tokens(text))) <= 12
    )


def _inside(t: Token, spans: tuple[tuple[int, int], ...]) -> bool:
    return any(s <= t.start < e for s, e in spans)


@dataclass(frozen=True, slots=True)
class _Reading:
    """A phrase match in one sentence and what the sentence alone says about
    it; offsets relative to the sentence."""

    entry: lx.Entry
    start: int
    end: int
    status: str
    words: frozenset[str]  # see _local_words
    ev_start: int
    ev_end: int


@lru_cache(maxsize=8192)
def _read(text: str, ascii_note: bool, mask: tuple[tuple[int, int], ...]) -> tuple[_Reading, ...]:
    """The phrase matches of one sentence (tokens starting in ``mask`` left
    out). Everything here depends on the sentence text alone (a context scope
    never leaves its sentence), so templated sentences are read once."""
    toks = tokenize(text)
    if mask:
        toks = [t for t in toks if not _inside(t, mask)]
    matches = lx.lexicon().spot(toks)
    if not matches:
        return ()
    ctx = Context(
        [Scope(a, b, kind, trigger) for a, b, kind, trigger in sentence_scopes(text, ascii_note)]
    )
    out = []
    for m in matches:
        words, ev_start, ev_end = _local_words(text, ctx, toks, matches, m)
        status = ctx.status(m.start, m.end)
        if status == "negated" and _only_resolved(ctx, m.start, m.end):
            status = "resolved"
        elif status == "affirmed" and _WITHOUT_LIST.search(
            text, 0, text.rfind(" ", 0, m.end) + 1 or m.start
        ):
            # the last item of a 'without A or B' list (the phrase's last word: an
            # order-free phrase may start before the list, 'Lumbar ... radiculopathy')
            status = "negated"
        out.append(
            _Reading(
                m.entry,
                m.start,
                m.end,
                status,
                frozenset(words),
                ev_start,
                ev_end,
            )
        )
    return tuple(out)


# 'w/o myelopathy or radiculopathy': every item of a 'without' list is absent
_WITHOUT_LIST = re.compile(r"\b(?:without|w/o)\s+(?:[\w-]+\s+){1,4}(?:or|nor|and)\s+$", re.I)
_WITHOUT_WORD = re.compile(r"\b(?:without|w/o)\s", re.I)
_CAUSED_BY = re.compile(r"\b(?:due to|secondary to|caused by|from)\b", re.I)


def _explained_in_statement(text: str, readings: tuple[_Reading, ...]) -> tuple[_Reading, ...]:
    """Symptoms the statement itself puts down to an affirmed condition ('RLQ pain due to
    a simple ovarian cyst'): integral to it, not coded (I.B.5)."""
    causes = [r for r in readings if r.entry.kind == "dx" and r.status == "affirmed"]
    return tuple(
        r
        for r in readings
        if r.entry.kind == "sx"
        and any(c.start >= r.end and _CAUSED_BY.search(text, r.end, c.start) for c in causes)
    )


def _only_resolved(ctx: Context, start: int, end: int) -> bool:
    """Every negation covering the mention is 'resolved': the condition was there and
    has been treated, which is a history, not an absence."""
    return all(
        sc.trigger.strip().lower() == "resolved"
        for sc in ctx.scopes
        if sc.kind == "negated" and sc.start <= start and end <= sc.end + 1
    )


def _mention(note, res, s, r: _Reading, age) -> Dx | None:
    status = r.status
    e = r.entry
    start, end = s.start + r.start, s.start + r.end
    rank = (_section_rank(s.section), start)
    if status in ("negated", "family", "hypothetical"):
        return None
    if status == "uncertain":
        return Dx(
            e.code,
            0.0,
            start,
            end,
            kind="uncertain" if e.kind != "sx" else "sx-uncertain",
            rank=rank,
        )
    code = e.code
    kind = e.kind
    if status == "resolved":
        # 'Pneumonia - resolved, completed treatment': no longer a current condition, its
        # personal history is what is coded (with Z09 when the visit is the follow-up)
        if code.startswith((*CHRONIC, "Z")):
            return None
        status = "history"
    if status == "history" and not code.startswith(CHRONIC) and not code.startswith("Z"):
        hist = next((v for k, v in HISTORY.items() if code.startswith(k)), None)
        if not hist:
            return None
        code, kind = hist, "history"
    if kind == "preventive":
        code = _preventive_code(age)
    if code.startswith("J11") and _FLU_POSITIVE.search(note):
        code = "J101"
    words, ev_start, ev_end = set(r.words), s.start + r.ev_start, s.start + r.ev_end
    for prefixes, rx, add in _INFERENCES:
        if code.startswith(prefixes):
            # any mention the note affirms ('No hypoglycemia' in the plan is not one)
            if any(
                res.ctx.status(hit.start(), hit.end()) not in ("negated", "hypothetical")
                for hit in rx.finditer(note)
            ):
                words |= add
    lat = sp.laterality(words) or _note_laterality(note, e, code)
    if lat:
        words |= sp.context_tokens([lat])
    refined, factor = sp.refine(code, sp.Ctx(words, lat, res.phase))
    if not icd10cm.is_billable(refined):
        return None
    base = _SECTION_CONF.get(s.section, 0.9)
    conf = base * factor * (0.9 if status == "history" else 1.0)
    return Dx(
        refined,
        round(conf, 3),
        ev_start,
        ev_end,
        kind=kind,
        rank=rank,
        stem=e.code,
        defaulted=factor < 1.0,
    )


_KEEP_WORDS = sp.BODY_PARTS | {"right", "left", "bilateral", "unilateral"}


_SECTION_CONF = {"assessment": 0.95, "mdm": 0.92, "plan": 0.88}
_SECTION_RANK = {"assessment": 0, "mdm": 1, "plan": 2}


def _section_rank(section: str) -> int:
    return _SECTION_RANK.get(section, 3)


# a short aside inside a phrase ("Chronic diastolic (HFpEF) heart failure") does not cut it
_CUTS = re.compile(r"[,:]|\((?![^)(]{0,25}\)[ \t]+[A-Za-z])")


def _local_words(text: str, ctx: Context, toks, matches, m) -> tuple[set[str], int, int]:
    """Words of the mention's comma-chunk, plus following chunks naming no other
    condition; and the chunk's span (the evidence shown to the coder). Offsets
    relative to the sentence ``text``; ``ctx`` holds the sentence's scopes."""
    cuts = [c.start() for c in _CUTS.finditer(text)] + [len(text)]
    starts = sorted(x.start for x in matches)
    lo = max([c + 1 for c in cuts if c < m.start] + [0])
    hi = next(c for c in cuts if c >= m.end)
    ev_start = lo + len(text[lo:hi]) - len(text[lo:hi].lstrip())
    ev_end = hi - (len(text[lo:hi]) - len(text[lo:hi].rstrip()))
    if any(lo < st < hi for st in starts if st != m.start):
        ev_start, ev_end = m.start, m.end  # several conditions in one chunk: the phrase itself
    while hi < len(text):
        nxt = next((c for c in cuts if c > hi), len(text))
        if any(hi < st < nxt for st in starts):
            break
        hi = nxt
    # body parts and sides are never findings: keep them even inside 'without ...'
    words = [
        t.norm
        for t in toks
        if lo <= t.start < hi
        and (t.norm in _KEEP_WORDS or ctx.status(t.start, t.end) not in ("negated", "hypothetical"))
    ]
    return sp.context_tokens(words), ev_start, ev_end


_SIDE_RX = gated(r"\b(right|left|bilateral|both|rt|lt)\b\s+(\w+)(?:\s+(\w+))?", re.I)
fold(_SIDE_RX)  # its groups are lower-cased below


def _note_laterality(note: str, entry: lx.Entry, code: str) -> str | None:
    """Laterality stated next to the mention's body part anywhere in the note."""
    parts = set(entry.tokens) & sp.BODY_PARTS
    if not parts:
        return None
    sides = set()
    for m in _SIDE_RX.finditer(note):
        words = {w.lower().rstrip("s") for w in m.groups()[1:] if w}
        if words & parts:
            side = m.group(1).lower()
            sides.add({"rt": "right", "lt": "left", "both": "bilateral"}.get(side, side))
    if len(sides) == 1:
        return sides.pop()
    return "bilateral" if {"right", "left"} <= sides else None


def _preventive_code(age: int) -> str:
    # refined later to 'with/without abnormal findings' once the other codes are known
    return "Z0000" if age >= 18 else "Z00129"


_DX_LIKE = re.compile(
    # an order or a service ('Mammogram ordered (due)') is a plan step, not a condition
    r"^(?!.*\b(?:mg|ml|tablets?|daily|bid|tid|prn|return|follow|continue|start|rtc|discussed"
    r"|ordered|scheduled|referral|given|administered)\b)",
    re.I,
)


# where an assessment statement's diagnosis ends and its plan or qualifiers begin
_HEAD_END = re.compile(
    r"\s[-\u2013/]+\s|:|;|\(|,|\.\s|\s(?:continue|start|started|add|increase|decrease|refill|stop|hold"
    r"|discussed|recommend|order|ordered|check|recheck|reviewed|plan|counsel\w*|on|due to|s/p)\b",
    re.I,
)


_QUALIFIED = re.compile(r"\s(?:with|w/|without|w/o)\s", re.I)
_ORDERED_NEXT = re.compile(
    r"\s*(?:ordered|order|scheduled|given|done|performed|administered)\b", re.I
)


def _head(note: str, s: Sentence) -> tuple[int, int] | None:
    """The span of an assessment statement's diagnosis: up to a dash, colon, comma,
    parenthesis or plan verb."""
    text = note[s.start : s.end]
    m = _HEAD_END.search(text)
    end = m.start() if m else len(text)
    if end < 3 or not text[:end].strip():
        return None
    return s.start, s.start + end


def _fallback(
    note: str,
    res: DxFindings,
    s: Sentence,
    index: lx.Searcher,
    age: int,
    head: tuple[int, int] | None = None,
) -> list[Dx]:
    """Statements the synonym list does not know: the term index, low confidence."""
    text = note[s.start : s.end]
    phrases: list[tuple[int, str]] = []
    if head is not None:
        phrase = note[head[0] : head[1]]
        if _ORDERED_NEXT.match(note, head[1]):
            return []  # 'Mammogram ordered (due)': the head is what was ordered
        if _DX_LIKE.match(phrase) and 1 <= len(lx.content(lx.norm_tokens(phrase))) <= 8:
            phrases.append((head[0], phrase))
    elif (
        s.section == "assessment"
        and _DX_LIKE.match(text)
        and 1 <= len(lx.content(lx.norm_tokens(text))) <= 8
    ):
        phrases.append((s.start, text))
    elif not res.has_assessment:
        phrases.extend((s.start + m.start(1), m.group(1)) for m in _DIAGNOSED.finditer(text))
    # the condition before its 'with'/'without' qualifiers ('Graves disease w/o thyroid
    # storm', 'Sarcoidosis of lung and lymph nodes with new erythema nodosum'), looked up
    # when the whole finds nothing; the qualifiers still choose among its children (refine)
    first = (head[0], note[head[0] : head[1]]) if head is not None else (s.start, text)
    cut = _QUALIFIED.search(first[1])
    retry = (
        (first[0], first[1][: cut.start()])
        if s.section == "assessment"
        and cut
        and _DX_LIKE.match(first[1][: cut.start()])
        and 1 <= len(lx.content(lx.norm_tokens(first[1][: cut.start()]))) <= 8
        and not _ORDERED_NEXT.match(note, first[0] + len(first[1]))
        else None
    )
    out = []
    for start, phrase in [*phrases, *([retry] if retry else [])]:
        if out:
            break
        end = start + len(phrase)
        if res.ctx.status(start, end) != "affirmed" or _NOT_A_DIAGNOSIS.search(phrase):
            continue
        if _ABBREVIATION.match(phrase) and len(lx.norm_tokens(phrase)) < 2:
            continue  # an abbreviation the engine does not expand matches titles by chance
        query = _known_words(index, _MEASURE.sub(" ", _BITE.sub("open bite", phrase)))
        found = index.search(query, 6)
        # the statement must name a term of the code set well; a code the patient's age
        # rules out ('Hyponatremia of newborn') then leaves the best that names all of it.
        # A statement that is a disease's own name ('Diverticulosis') names its category
        # even where every title adds site and complication words
        if not found or found[0][1] < (0.35 if _DISEASE_NAME.search(query) else 0.75):
            continue
        hits = _by_coverage(
            index,
            query,
            [
                h
                for h in found
                if not icd10cm.age_sex_conflicts(h[0], age, "U") and not _service_z(h[0], query)
            ],
        )
        if not hits or hits[0][1] < (
            0.75 if hits[0][2] < 1.0 else 0.35 if _DISEASE_NAME.search(query) else 0.6
        ):
            continue
        hits = [(c, sc) for c, sc, _ in hits]
        words = _statement_words(note, res.ctx, s)
        code, factor = sp.refine(
            _near_tie_stem(hits), sp.Ctx(words, sp.laterality(words), res.phase)
        )
        if icd10cm.is_billable(code):
            conf = round(min(0.75, hits[0][1] * 0.75) * factor, 3)
            out.append(
                Dx(
                    code,
                    conf,
                    start,
                    end,
                    rank=(_section_rank(s.section), start),
                    stem=hits[0][0],
                    guessed=True,
                )
            )
    return out


def _known_words(index: lx.Searcher, phrase: str) -> str:
    """The phrase with each word the code set never uses replaced by the longest code-set
    word it ends with: the Index sends a prefixed form to its root ('Rhinosinusitis - see
    Sinusitis', 'pansinusitis', 'polyneuropathy')."""
    vocab = getattr(index, "vocab", None)
    if vocab is None:
        return phrase
    words = lx.content(lx.norm_tokens(phrase))
    out = []
    for w in words:
        if w not in vocab and len(w) >= 8:
            w = next((w[i:] for i in range(2, len(w) - 5) if w[i:] in vocab), w)
        out.append(w)
    return " ".join(out)


# a disease's name by its Greek/Latin suffix (inflammation, condition, blood level, tumour,
# disease, pain, flow): such a word names a condition, not a qualifier ('stable', 'acute')
_DISEASE_NAME = re.compile(
    r"^(?:\S+ ){0,2}\S+(?:osis|itis|emia|aemia|oma|pathy|algia|rrhea|uria|iasis|plasia|trophy)"
    r"(?: \S+){0,2}$"
)
# the Z codes of a service or circumstance: a statement that does not name the service
# ('Tobacco abuse') is the condition, not its counselling ('Tobacco abuse counseling')
_SERVICE_WORDS = frozenset(
    "counseling screening examination history status observation aftercare".split()
)


def _service_z(code: str, query: str) -> bool:
    return code.startswith("Z") and bool(
        (sp.desc_tokens(code) & _SERVICE_WORDS) - set(query.split())
    )


# a size or a value ('9 mm', '2.5 cm', '40%') says nothing the code set's titles say
_MEASURE = re.compile(r"\b\d+(?:\.\d+)?\s*(?:mm|cm|%|mg|kg)(?!\w)", re.I)
_ABBREVIATION = re.compile(r"^\s*[A-Z][A-Z0-9/&-]{1,5}\s*$")


def _by_coverage(
    index: lx.Searcher, phrase: str, hits: list[tuple[str, float]]
) -> list[tuple[str, float, float]]:
    """The hits with the share of the statement's words (by weight) that one title or
    inclusion term of the code holds, the codes holding them all first: the index's
    score also counts a title's own extra words, and a short title naming half the
    statement ('Tobacco use' for 'tobacco use disorder') must not beat the term that
    names all of it."""
    vocab, toks = getattr(index, "vocab", None), getattr(index, "toks", None)
    entries_of = getattr(index, "entries_of", None)
    if vocab is None or toks is None or entries_of is None or not hits:
        return [(c, sc, 0.0) for c, sc in hits]
    q = {vocab[t]: index.idf[vocab[t]] for t in lx.content(lx.norm_tokens(phrase)) if t in vocab}
    total = sum(q.values())
    if not q or len(q) < len(set(lx.content(lx.norm_tokens(phrase)))):
        return [(c, sc, 0.0) for c, sc in hits]
    out = []
    for c, sc in hits:
        cover = max((sum(q[w] for w in toks.row(i) if w in q) for i in entries_of(c)), default=0.0)
        out.append((c, sc, round(cover / total, 4)))
    return sorted(out, key=lambda h: (-(h[2] >= 0.999), -h[1]))


# the Index's 'Bite (animal) (human) - see Wound, open, by site, bite': the code set's
# titles say 'open bite of <site>'
_BITE = re.compile(r"\b(?:dog|cat|animal|human)\s+bite\b", re.I)


def _statement_words(note: str, ctx: Context, s: Sentence) -> set[str]:
    """The words of the whole statement that select among a code's children: its side
    ('Nursemaid's elbow (radial head subluxation) R') and its affirmed qualifiers, not the
    findings it negates ('no dyskinesia')."""
    return sp.context_tokens(
        [
            t.norm
            for t in tokenize(note[s.start : s.end])
            if t.norm in _KEEP_WORDS
            or ctx.status(s.start + t.start, s.start + t.end) not in ("negated", "hypothetical")
        ]
    )


def _near_tie_stem(hits: list[tuple[str, float]]) -> str:
    """The term index's best code, or, when codes of its category score within a hair of
    it, the code they share: the words of the note then choose among them (refine), not
    the index's ranking of title words."""
    best, score = hits[0]
    close = [c for c, sc in hits[1:] if sc >= score - 0.05 and c[:3] == best[:3]]
    if not close:
        return best
    # a billable code tied with its own ancestor: the term is that code's ('Dementia NOS'
    # is F03.90's inclusion term, not a reason to walk F03 again)
    tied = [c for c, sc in hits if sc == score]
    own = [c for c in tied if icd10cm.is_billable(c)]
    if (
        len(own) == 1
        and sp.is_default(own[0])
        and not (icd10cm.description(own[0]) or "").startswith("Other")
        and all(own[0].startswith(c) for c in tied)
    ):
        return own[0]
    stem = best
    for c in close:
        while not c.startswith(stem):
            stem = stem[:-1]
    return stem if len(stem) >= 3 else best
