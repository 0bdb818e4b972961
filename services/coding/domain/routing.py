"""Why an encounter goes to a coder: the reasons that make a suggestion unsafe to bill unread.

The engine finalises an encounter (``auto``) only when none of these holds; each reason
found is shown to the coder as an info edit (``ROUTE_*``). They were calibrated on the
tuning half of the blind evaluation set (tests/fixtures/coding_eval, docs/coding.md): an
encounter routed ``auto`` must carry every diagnosis, E/M and procedure right, so every
kind of doubt the engine can see in the documentation sends it to review:

- the assessment names something no code was found for, or a diagnosis came from the
  ICD-10-CM term index rather than the curated synonyms (a guess among many codes);
- context set a mention aside in the assessment (negated, uncertain, hypothetical,
  family) or a code rests on a 'history of' mention: the status decides whether to code;
  a negated or uncertain mention in the sentence documenting a coded diagnosis, or the
  coded condition negated elsewhere in the note (conflicting mentions);
- a combination code, a companion code or a symptom beside definitive diagnoses: the
  'with' convention and integral-symptom rules are judgement calls;
- two codes an Excludes1 note forbids together, or two stages of one condition;
- a code chosen over its siblings on defaults ('unspecified' where the note may say more);
- no assessment section (diagnoses read from the narrative);
- an E/M level read from MDM near a threshold, or a visit whose E/M billing depends on
  a separately identifiable service;
- a service documented as done that no CPT/HCPCS rule recognised.

Each side of the claim has its own guard, so that a wrong code cannot go out merely
because an unrelated reason happened not to hold: on the tuning half, the encounters
no diagnosis reason holds for have their diagnoses right (bar one with none, which is
never auto), those no E/M reason (``em_*``, ``no_em``, ``service``) holds for have the
E/M right, and those no procedure reason (``service``, ``drug``, ``no_em``,
``em_separate``) holds for have the procedures right (bar one timed cessation
counselling the authors did not bill).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from functools import lru_cache

from services.coding.domain import specificity as sp
from services.coding.domain.prefilter import by_initial, lower_ascii
from services.coding.domain.text import norm_tokens
from shared import icd10cm

# a service the note says was done at this visit ('Procedure:', 'performed', 'administered')
_SERVICE_DONE = re.compile(
    r"\bprocedure\b|\bperformed\b|\badministered\b|\binjected\b|\binjection\b|\binterpreted\b"
    r"|\binterrogation\b|\bremoved\b|\bdebrid\w*|\breduction\b|\bcatheter\b|\bbiops\w+|\bexcision\b"
    r"|\baspirat\w+|\bin[- ]office\b|\bin[- ]clinic\b|\bpoint[- ]of[- ]care\b|\bpoc\b|\bbladder scan\b"
    r"|\btest(?:ing)? (?:today|in clinic)|\bdownload\b|\bscreen\w* (?:administered|scored)\b"
    r"|\bin[- ]house\b|\bmy (?:read|interpretation)\b|\b(?:performed|done) here\b"
    r"|\bcounsel\w*[^.;]{0,40}\b\d+\s*min"
    r"|\b(?:vaccine|injection|dose|shot|medication|neb\w*)s? (?:was |were )?given\b|\bgiven (?:im|iv|sc|subq|po|today)\b"
    r"|\b(?:test|antigen|screen|swab|pcr|dip|dipstick|culture)\b[^.;]{0,30}\b(?:positive|negative|pos|neg)\b"
    r"|\b(?:"
    + by_initial(
        r"ecg|ekg|electrocardiogram|x-?ray|xr|radiograph\w*|ultrasound|echo\w*|spirometry|nebuliz\w*|neb\b"
        r"|splint\w*|sutur\w*|repair\w*|i&d|incision|cryo\w*|vaccin\w*|immuniz\w*|phq|gad-?7|urinalysis|ua\b"
        r"|dipstick|glucose|a1c|monitor\w*|scan\b|endoscop\w*|colonoscop\w*|tympanometr\w*|audiometr\w*"
        r"|fluorescein|slit lamp|tonometr\w*|oct\b|elastograph\w*|fibroscan|walk test|abi\b|doppler"
    )
    + ")",
)  # matched on lower-cased text
# status and history a code may be owed for ('s/p stent', 'long-term aspirin', 'hx of')
_STATUS = re.compile(
    r"\bs/p\b|\bstatus post\b|\bstent\b|\blong[- ]term\b|\bhistory of\b|\bhx\b|\bpersonal history\b"
    r"|\bfamily history\b|\bfhx?\b|\bscreening\b|\bprior\b|\bold\b|\bremission\b|\bpump\b|\bdependen\w+",
)  # matched on lower-cased text
# the service itself not done at this visit: deferred, sent out, another clinician's
# result read in the record. A finding's 'no' ('ECG: NSR, no ST changes') is not one.
_NOT_DONE = re.compile(
    r"\b(?:declined|refused|deferred|will|ordered|sent|scheduled|planned|referr\w*|pending"
    r"|outpatient|prior|previous|last (?:week|month|year)|(?<!personally )(?<!independently )reviewed"
    r"|not (?:done|performed|obtained|indicated))\b",
    re.I,
)
# a supply handed over at the visit (a brace, splint, boot, crutches): a HCPCS line a coder
# decides on (L-, E-, A-codes), checked whatever else the sentence defers ('PT referral')
_SUPPLY_GIVEN = re.compile(
    r"\b(?:brace|splint|boot|sling|crutch(?:es)?|walker|cane|collar|ortho(?:sis|tic)|immobili[sz]er)"
    r"\b[^.;,\n]{0,20}\b(?:dispensed|fitted|provided|issued)\b"
    r"|\b(?:dispensed|fitted|issued)\s+(?:(?:a|an|with|the|\w+)\s+){0,2}"
    r"(?:brace|splint|boot|sling|crutch(?:es)?|walker|cane|collar|ortho(?:sis|tic)|immobili[sz]er)\b"
)  # matched on lower-cased text
_NEGATED_BEFORE = re.compile(r"\b(?:no|not|without|denies|never)\s+(?:\S+\s+)?$")

REASONS = {
    "unmatched": "the assessment names a condition no code was found for",
    "index": "a diagnosis was matched from the ICD-10-CM index, not the curated terms",
    "set_aside": "the assessment negates, questions or defers a condition",
    "uncertain": "an uncertain diagnosis is documented (signs and symptoms coded instead)",
    "conflict": "a coded condition is also negated elsewhere in the note",
    "context": "the sentence documenting a coded diagnosis negates or questions something",
    "history": "a code rests on a 'history of' mention",
    "combination": "a combination code ('with' convention) was chosen",
    "companion": "a companion code ('use additional code', status) was added",
    "symptom": "a sign or symptom is coded beside a definitive diagnosis",
    "exclusive": "two codes excluded together (Excludes1 or two stages): one was dropped",
    "unspecified": "a code was chosen over its siblings with nothing in the note to choose by",
    "no_assessment": "the note has no assessment section",
    "em_mdm": "the E/M level read from MDM is above low, rests on one element, or moves with data the note may hold",
    "em_separate": "the E/M depends on a separately identifiable service beside a procedure",
    "service": "a service documented as done was not recognised as a CPT/HCPCS code",
    "ehr": "codes came from the EHR rather than the note",
    "many": "more than four diagnoses",
    "status": "the assessment mentions a status or history a Z code may be owed for",
    "symptom_only": "only signs or symptoms were coded",
    "no_em": "no E/M billed (a procedure-only or nurse visit): a coder confirms",
    "drug": "a drug, vaccine or its administration is billed: code, dose and units to confirm",
    "plan_only": "a diagnosis was read from the plan, not the assessment",
    "siblings": "the evidence has words that name a sibling of the chosen code",
    "use_additional": "a code's 'use additional code' note names something the note documents",
}

_GENERIC = frozenset(
    "right left bilateral unilateral unspecified other specified initial subsequent encounter"
    " sequela with without due to of and or the in".split()
)


def sibling_words(code: str, evidence: str) -> bool:
    """Words of the evidence that titles of the code's siblings and cousins use and its
    own title does not ('seasonal allergic rhinitis due to tree pollen' chosen as
    J30.2: 'pollen' is J30.1's)."""
    told = _sibling_vocab(code)
    return bool(told) and not told.isdisjoint(norm_tokens(evidence))


@lru_cache(maxsize=20000)
def _sibling_vocab(code: str) -> frozenset[str]:
    """The words siblings' and cousins' titles add that the code's own title lacks."""
    own = sp.desc_tokens(code)
    up = icd10cm.parent(code)
    out: set[str] = set()
    for p in (up, icd10cm.parent(up) if up else None):
        if p and icd10cm.is_valid(p):
            others = set().union(*(sp.desc_tokens(k) for k in icd10cm.children(p) if k != code))
            out |= others - own - sp.desc_tokens(p)
    return frozenset(out - _GENERIC)


def owed_companion(codes: list[str], documented) -> bool:
    """A code's 'use additional code' note names a condition whose words the
    documentation (lower-cased; a function that makes it, called only when a code has
    such a note) has, and no code of that range is on the list (nocturia with N40.1)."""
    text = None
    for c in codes:
        for refs, words in _asks(c):
            if text is None:
                text = documented()
            if all(w in text for w in words) and not any(
                icd10cm.in_range(o, r) for o in codes for r in refs
            ):
                return True
    return False


@lru_cache(maxsize=20000)
def _asks(code: str) -> tuple[tuple[tuple, tuple[str, ...]], ...]:
    """Per 'use additional code' line of a code that names code ranges and words:
    (its ranges, the words it names its condition with)."""
    out = []
    for line in icd10cm.use_additional(code):
        refs = tuple(icd10cm.code_refs(line))
        words = _named(line)
        if refs and words:
            out.append((refs, words))
    return tuple(out)


@lru_cache(maxsize=20000)
def _named(line: str) -> tuple[str, ...]:
    """The words a 'use additional code' line names its condition with."""
    return tuple(
        w
        for w in norm_tokens(line.split("(")[0])
        if w not in _GENERIC and w not in ("code", "use", "additional", "identify", "to")
    )


def context_near(ordered, sents, ctx) -> bool:
    """A negated or uncertain mention shares the assessment sentence of a coded
    diagnosis' evidence ('Acute pharyngitis, likely viral', 'Sprain, no fracture'):
    the status of what is coded is a judgement (tuning half: 22 such encounters,
    3 of them coded right)."""
    spans = [s for s in sents if s.section == "assessment"]
    near = [
        (s.start, s.end)
        for s in spans
        if any(
            d.source == "note" and d.start is not None and s.start <= d.start < s.end
            for d in ordered
        )
    ]
    return any(
        sc.kind in ("negated", "uncertain") and a <= sc.start < b
        for a, b in near
        for sc in ctx.scopes
    )


def status_mentioned(note: str, sents) -> bool:
    """The assessment speaks of a status, a history or a screening."""
    low = lower_ascii(note) or note.lower()
    return any(
        s.section in ("assessment", "plan") and _STATUS.search(low, s.start, s.end) is not None
        for s in sents
    )


def service_unrecognised(note: str, coded_spans: list[tuple[int, int]], sents) -> bool:
    """A sentence outside history sections says a service was done, and no procedure
    line's evidence lies in it."""
    low = lower_ascii(note) or note.lower()
    supplied = any(w in low for w in ("dispensed", "fitted", "provided", "issued"))
    for m in _SUPPLY_GIVEN.finditer(low) if supplied else ():
        s = next((s for s in sents if s.start <= m.start() < s.end), None)
        if (
            s is not None
            and s.section
            not in ("pmh", "family", "meds", "allergies", "ros", "social", "hpi", "cc")
            and not _NEGATED_BEFORE.search(low, s.start, m.start())
            and not any(a is not None and s.start <= a < s.end for a, _ in coded_spans)
        ):
            return True
    ends = {m.start(): m.end() for m in _SERVICE_DONE.finditer(low)}
    if not ends and not any(s.section == "procedure" for s in sents):
        return False
    starts = sorted(ends)
    for s in sents:
        if s.section in ("pmh", "family", "meds", "allergies", "ros", "social", "hpi", "cc"):
            continue
        if s.section != "procedure":
            i = bisect_left(starts, s.start)
            said = i < len(starts) and starts[i] < s.end and ends[starts[i]] <= s.end
            if (
                not said
                or _NOT_DONE.search(low, s.start, s.end)
                or _NEGATED_BEFORE.search(low, s.start, starts[i])
            ):
                continue
        if not any(a is not None and s.start <= a < s.end for a, _ in coded_spans):
            return True
    return False
