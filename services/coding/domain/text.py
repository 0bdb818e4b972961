"""Clinical note text: sections, sentences, tokens and NegEx-style context.

Offsets always refer to the original note so every suggestion can carry its
evidence span. Tokens are normalised (lower case, abbreviations expanded, a
light plural/participle stemmer) so lexicon phrases and note text meet in the
same vocabulary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from services.coding.domain.prefilter import Gate, any_in, folded, lower_ascii

# ----------------------------------------------------------------------------- sections

SECTION_KINDS: dict[str, str] = {
    "assessment": "assessment",
    "assessment and plan": "assessment",
    "assessment/plan": "assessment",
    "a/p": "assessment",
    "a&p": "assessment",
    "a": "assessment",  # SOAP notes: S:, O:, A:, P:
    "impression": "assessment",
    "impressions": "assessment",
    "impression and plan": "assessment",
    "impression/plan": "assessment",
    "diagnosis": "assessment",
    "diagnoses": "assessment",
    "dx": "assessment",
    "final diagnosis": "assessment",
    "final diagnoses": "assessment",
    "clinical impression": "assessment",
    "ed diagnosis": "assessment",
    "ed diagnoses": "assessment",
    "problem list addressed": "assessment",
    "assessment & plan": "assessment",
    "medical decision making": "mdm",
    "mdm": "mdm",
    "ed course": "mdm",
    "plan": "plan",
    "p": "plan",
    "disposition": "plan",
    "dispo": "plan",
    "recommendation": "plan",
    "recommendations": "plan",
    "chief complaint": "cc",
    "cc": "cc",
    "reason for visit": "cc",
    "indication": "cc",
    "indications": "cc",
    "hpi": "hpi",
    "history of present illness": "hpi",
    "subjective": "hpi",
    "s": "hpi",
    "interval history": "hpi",
    "pmh": "pmh",
    "past medical history": "pmh",
    "medical history": "pmh",
    "problem list": "pmh",
    "past surgical history": "pmh",
    "psh": "pmh",
    "hx": "pmh",
    "pmhx": "pmh",
    "family history": "family",
    "fh": "family",
    "fhx": "family",
    "social history": "social",
    "sh": "social",
    "medications": "meds",
    "meds": "meds",
    "current medications": "meds",
    "medication list": "meds",
    "allergies": "allergies",
    "ros": "ros",
    "review of systems": "ros",
    "exam": "exam",
    "physical exam": "exam",
    "pe": "exam",
    "objective": "exam",
    "o": "exam",
    "vitals": "exam",
    "vital signs": "exam",
    "mse": "exam",
    "procedure": "procedure",
    "procedures": "procedure",
    "procedure note": "procedure",
    "tx in clinic": "procedure",
    "treatment in clinic": "procedure",
    "injection": "procedure",
    "wound care": "procedure",
    "results": "results",
    "labs": "results",
    "data": "results",
    "imaging": "results",
    "diagnostics": "results",
    "tests": "results",
    "findings": "results",
    "immunizations": "procedure",
    "time": "time",
    "attestation": "time",
}
# a header line may say more after its name ('Exam L ankle:', 'Procedure - lac repair:')
_HEADER_PREFIX = ("exam", "procedure", "physical exam")
# headers that also start mid-line in templated text ('PMH: none. Meds: none. SH: ...')
_INLINE = frozenset(
    "pmh psh meds medications allergies sh fh fhx ros social history family history".split(" ")
) | {"social history", "family history", "past medical history"}

_HEADER = re.compile(r"^[ \t]*([A-Za-z][A-Za-z /&\-]{0,40}?)[ \t]*:(?![/\d])", re.M)
_INLINE_HEADER = re.compile(
    r"[.;] (PMH|PSH|Meds|Medications|Allergies|SH|FH|FHx|ROS|Social [Hh]istory|Family [Hh]istory"
    r"|Past [Mm]edical [Hh]istory)[ \t]*:"
)


# built by the dozen per note: hashable and never assigned to, but not frozen, whose
# __init__ (object.__setattr__ per field) costs three to four times a plain one
@dataclass(unsafe_hash=True, slots=True)
class Section:
    kind: str
    start: int
    end: int


def _header_kind(name: str, line_start: bool) -> str | None:
    name = name.strip().lower()
    kind = SECTION_KINDS.get(name)
    if kind is not None:
        return kind if line_start or name in _INLINE else None
    if line_start:
        for p in _HEADER_PREFIX:
            if name.startswith((p + " ", p + "-")):
                return SECTION_KINDS[p]
    return None


def sections(note: str) -> list[Section]:
    """Known headers ('Assessment:', 'HPI:', SOAP's 'A:') split the note; text before any
    header is 'other'. History, medication and social headers also split a line
    ('PMH: none. Meds: none.')."""
    got = _SECTIONS.get(note)
    if got is None:
        got = _SECTIONS.put(note, _sections(note))
    return list(got)


def _sections(note: str) -> tuple[Section, ...]:
    marks = []
    for m in _HEADER.finditer(note):
        kind = _header_kind(m.group(1), True)
        if kind is not None:
            marks.append((m.start(), m.end(), kind))
    if ":" in note:
        for m in _INLINE_HEADER.finditer(note):
            marks.append((m.start(1), m.end(), SECTION_KINDS[m.group(1).lower()]))
        marks.sort()
    out, pos, kind = [], 0, "other"
    resume = "other"  # the section a one-line history list interrupted
    for i, (s, e, k) in enumerate(marks):
        if s < pos:
            continue
        if s > pos:
            out.append(Section(kind, pos, s))
        if k not in _ONE_LINE:
            resume = k
        pos, kind = e, k
        if k in _ONE_LINE:
            # 'Meds: a, b' with its list on the header's line ends there: the next
            # line ('Spirometry today: ...', 'Denies fever') is not on the list
            nl = note.find("\n", e)
            if nl > 0 and note[e:nl].strip() and (i + 1 == len(marks) or marks[i + 1][0] > nl):
                if note[nl + 1 : nl + 2] not in ("-", "*", "\u2022", " ", "\t", ""):
                    out.append(Section(kind, e, nl))
                    pos, kind = nl + 1, resume
    out.append(Section(kind, pos, len(note)))
    return tuple(s for s in out if note[s.start : s.end].strip())


# history lists whose items may stand on the header's own line
_ONE_LINE = frozenset(("pmh", "meds", "allergies", "family", "social"))


# ----------------------------------------------------------------------------- sentences

# Sentence ends: newline, ';', or '.', '!' '?' followed by white space
# (never the dot in '2.5 cm' or 'E11.22'); a leading list marker '1.' is dropped. An
# organism's initial ('UTI due to E. coli', 'C. diff', 'H. pylori') ends nothing when a
# lower-case word follows. (The shared look-behind '[.!?]' is tested once, first: the
# same matches, a third faster.)
_SENT_END = re.compile(r"\n+|;|(?<=[.!?])(?:(?<![\s(/][A-Z]\.)\s+|(?<=[\s(/][A-Z]\.)\s+(?![a-z]))")


@dataclass(unsafe_hash=True, slots=True)  # see Section
class Sentence:
    start: int
    end: int
    section: str


class Memo(dict):
    """Answers kept per key, emptied when ``size`` is reached: bounded memory for
    keys drawn from unbounded note text (repeats are what it is for)."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def put(self, key, value):
        if len(self) >= self.size:
            self.clear()
        self[key] = value
        return value


_SECTIONS = Memo(2048)  # sections by note text (a note is coded more than once)


def sentences(note: str) -> list[Sentence]:
    out: list[Sentence] = []
    for sec in sections(note):
        base, kind = sec.start, sec.kind
        for s, e in _split(note[sec.start : sec.end]):
            out.append(Sentence(base + s, base + e, kind))
    return out


@lru_cache(maxsize=8192)
def _split(text: str) -> tuple[tuple[int, int], ...]:
    """Sentence spans of one section's text, relative to it: templated
    sections repeat from note to note. (A section starts after a header's ':'
    or at the note's start, so the look-behind sees nothing outside it.)"""
    out: list[tuple[int, int]] = []
    pos = 0
    for m in _SENT_END.finditer(text):
        _add_sentence(text, out, pos, m.start())
        pos = m.end()
    _add_sentence(text, out, pos, len(text))
    return tuple(out)


_LIST_MARK = re.compile(r"[\s\-*•#]*(?:\d{1,2}[.)]\s*)?")


def _add_sentence(text: str, out: list, s: int, e: int) -> None:
    m = _LIST_MARK.match(text, s, e)
    s = m.end() if m else s
    while e > s and text[e - 1] in " \t\r.":
        e -= 1
    if e > s:
        out.append((s, e))


# ----------------------------------------------------------------------------- tokens

ABBREVIATIONS: dict[str, str] = {
    "htn": "hypertension",
    "hld": "hyperlipidemia",
    "dm": "diabetes mellitus",
    "dm2": "type 2 diabetes mellitus",
    "t2dm": "type 2 diabetes mellitus",
    "dmii": "type 2 diabetes mellitus",
    "niddm": "type 2 diabetes mellitus",
    "t1dm": "type 1 diabetes mellitus",
    "dm1": "type 1 diabetes mellitus",
    "iddm": "type 1 diabetes mellitus",
    "ckd": "chronic kidney disease",
    "esrd": "end stage renal disease",
    "chf": "congestive heart failure",
    "hfref": "heart failure reduced ejection fraction",
    "hfpef": "heart failure preserved ejection fraction",
    "afib": "atrial fibrillation",
    "copd": "chronic obstructive pulmonary disease",
    "uri": "upper respiratory infection",
    "urti": "upper respiratory infection",
    "uti": "urinary tract infection",
    "aom": "acute otitis media",
    "om": "otitis media",
    "oa": "osteoarthritis",
    "djd": "osteoarthritis",
    "lbp": "low back pain",
    "gerd": "gastroesophageal reflux disease",
    "cad": "coronary artery disease",
    "mi": "myocardial infarction",
    "cva": "stroke",
    "dvt": "deep vein thrombosis",
    "bph": "benign prostatic hyperplasia",
    "osa": "obstructive sleep apnea",
    "adhd": "attention deficit hyperactivity disorder",
    "mdd": "major depressive disorder",
    "gad": "generalized anxiety disorder",
    "sob": "shortness of breath",
    "doe": "dyspnea",
    "fx": "fracture",
    "lac": "laceration",
    "abd": "abdominal",
    "rlq": "right lower quadrant",
    "llq": "left lower quadrant",
    "ruq": "right upper quadrant",
    "luq": "left upper quadrant",
    "bilat": "bilateral",
    "b/l": "bilateral",
    "rt": "right",
    "lt": "left",
    "r": "right",
    "l": "left",
    "strep": "streptococcal",
    "pna": "pneumonia",
    "ii": "2",
    "covid": "covid19",
    "sars": "covid19",
    "hyperlipidaemia": "hyperlipidemia",
    "tm": "tympanic membrane",
    "n/v": "nausea vomiting",
    "w/": "with",
    "w/o": "without",
    "gi": "gastrointestinal",
    "ha": "headache",
    "tia": "transient ischemic attack",
    "hypothyroid": "hypothyroidism",
    "hyperthyroid": "hyperthyroidism",
    "rsv": "respiratory syncytial virus",
    "luts": "lower urinary tract symptoms",
    "ipf": "idiopathic pulmonary fibrosis",
    "pvc": "premature ventricular contraction",
    "pvcs": "premature ventricular contraction",
    "oud": "opioid use disorder",
    "bcc": "basal cell carcinoma",
    "scc": "squamous cell carcinoma",
    "ak": "actinic keratosis",
    "aks": "actinic keratosis",
    "cts": "carpal tunnel syndrome",
    "nafld": "nonalcoholic fatty liver disease",
    "masld": "metabolic dysfunction associated steatotic liver disease",
    "paf": "paroxysmal atrial fibrillation",
    "sss": "sick sinus syndrome",
    "aki": "acute kidney injury",
    "ibs": "irritable bowel syndrome",
    "pcos": "polycystic ovary syndrome",
    "ptsd": "post traumatic stress disorder",
    "dka": "diabetic ketoacidosis",
    "cdiff": "clostridium difficile",
    "af": "atrial fibrillation",
    "rul": "right upper lobe",
    "rml": "right middle lobe",
    "rll": "right lower lobe",
    "lul": "left upper lobe",
    "lll": "left lower lobe",
    "crswnp": "chronic rhinosinusitis with nasal polyps",
    "nstemi": "non st elevation myocardial infarction",
    "stemi": "st elevation myocardial infarction",
    "ecigarette": "other tobacco product",
    "vape": "other tobacco product",
    "vapes": "other tobacco product",
    "vaping": "other tobacco product",
}

LEMMAS: dict[str, str] = {
    "sprained": "sprain",
    "strained": "strain",
    "fractured": "fracture",
    "broken": "fracture",
    "twisted": "sprain",
    "rolled": "sprain",
    "bruise": "contusion",
    "bruised": "contusion",
    "bruising": "contusion",
    "lacerated": "laceration",
    "dislocated": "dislocation",
    "infected": "infection",
    "diabetic": "diabetes",
    "hypertensive": "hypertension",
    "asthmatic": "asthma",
    "obese": "obesity",
    "painful": "pain",
    "aching": "pain",
    "ache": "pain",
    "coughing": "cough",
    "vomited": "vomiting",
    "wheezes": "wheezing",
    "wheeze": "wheezing",
    "feverish": "fever",
    "febrile": "fever",
    "kidneys": "kidney",
    "ears": "ear",
    "knees": "knee",
    "burning": "burning",
    "pharyngeal": "pharyngitis",
    "otalgia": "earache",
    "buckle": "torus",
    "examination": "exam",
    "examinations": "exam",
    "nevi": "nevus",
    "calculi": "calculus",
    # the organism's current name; the code set still says Clostridium
    "clostridioides": "clostridium",
    "emboli": "embolus",
    "thrombi": "thrombus",
    "fungi": "fungus",
    "bronchi": "bronchus",
    "metastases": "metastasis",
    "feet": "foot",
    "teeth": "tooth",
}

_TOKEN = re.compile(r"b/l|w/o|w/|n/v|[a-z]+(?:-[a-z]+)+|[a-z0-9]+(?:\.[0-9]+)?", re.I)
# British spellings and common misspellings -> the code set's American spelling
_SPELLING = [
    (re.compile(p), r)
    for p, r in (
        (r"^(\w*?)aemi(a|c)$", r"\1emi\2"),
        (r"^oedema", "edema"),
        (r"^oesophag", "esophag"),
        (r"^(\w*?)haem", r"\1hem"),
        (r"^paed", "ped"),
        (r"^coeliac", "celiac"),
        (r"^(\w*?)ischaem", r"\1ischem"),
        (r"^(\w*?)oea$", r"\1ea"),
        (r"^(\w*?)our$", r"\1or"),
        (r"^diabet(?:is|ies|ees)$", "diabetes"),
    )
]
_SPELLING_KEEP = frozenset(
    {"four", "hour", "your", "our", "pour", "sour", "tour", "flour", "colour"}
)
_TOKEN_LOW = folded(_TOKEN)


def stem(word: str) -> str:
    w = word.lower()
    w = LEMMAS.get(w, w)
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is", "ous")):
        return w[:-1]
    return w


@dataclass(unsafe_hash=True, slots=True)  # see Section
class Token:
    norm: str
    start: int
    end: int


_BOUND = frozenset({"type", "stage", "grade", "class"})
_NUMBERED = re.compile(r"^(?:\d{1,2}[a-z]?|i{1,3}[ab]?|iv|v)$")
_ROMAN = {"i": "1", "ii": "2", "iii": "3", "iv": "4", "v": "5"}
_BINDERS = _BOUND | {"covid19"}


def _bind(words: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """'type 2' -> 'type2', 'stage 3a' -> 'stage3a': the number belongs to the word."""
    out: list[tuple[str, int, int]] = []
    i = 0
    while i < len(words):
        w, s, e = words[i]
        if w == "covid19" and i + 1 < len(words) and words[i + 1][0] == "19":
            out.append((w, s, words[i + 1][2]))  # 'COVID-19'
            i += 2
            continue
        if w in _BOUND and i + 1 < len(words) and _NUMBERED.match(words[i + 1][0]):
            n = words[i + 1][0]
            roman = re.match(r"^(i{1,3}|iv|v)([ab]?)$", n)
            if roman:
                n = _ROMAN[roman.group(1)] + roman.group(2)
            out.append((w + n, s, words[i + 1][2]))
            i += 2
            continue
        out.append((w, s, e))
        i += 1
    return out


def tokenize(text: str, offset: int = 0) -> list[Token]:
    """Normalised tokens; an abbreviation becomes several tokens sharing its span."""
    toks: list[Token] = []
    bind = False
    if _TOKEN_LOW is not None and text.isascii():
        # ASCII: the case-sensitive twin on the lower-cased text finds the same words
        for m in _TOKEN_LOW.finditer(text.lower()):
            raw = m.group(0)
            s, e = m.span()
            # single letters 'r'/'l' mean right/left only in upper case ('R ankle')
            if (raw == "r" or raw == "l") and text[s] == raw:
                continue
            for part in _norm_word(raw, True):
                toks.append(Token(part, s + offset, e + offset))
                if part in _BINDERS:
                    bind = True
    else:
        for m in _TOKEN.finditer(text):
            word = m.group(0)
            raw = word.lower()
            if (raw == "r" or raw == "l") and word.islower():
                continue
            s, e = m.span()
            for part in _norm_word(raw, True):
                toks.append(Token(part, s + offset, e + offset))
                if part in _BINDERS:
                    bind = True
    # _bind changes nothing unless a binding word occurs
    if bind:
        toks = [Token(w, s, e) for w, s, e in _bind([(t.norm, t.start, t.end) for t in toks])]
    return toks


# hyphenated words whose first part only qualifies the second ('non-severe' is not 'severe')
_PREFIXES = frozenset("non un anti pre post sub semi mid ex co re de in intra extra e".split())


@lru_cache(maxsize=65536)
def _norm_word(raw: str, split: bool = False) -> tuple[str, ...]:
    """A word's normalised token(s). A hyphenated word becomes its joined form
    ('gastro-esophageal' -> 'gastroesophageal', 'a-fib' -> 'atrial fibrillation'); with
    ``split`` (note text) its parts too, unless the first is a prefix ('non-', 'post-')."""
    if "-" in raw:
        parts = [p for p in raw.split("-") if p]
        out = list(_norm_word("".join(parts)))
        if split and parts and parts[0] not in _PREFIXES:
            for p in parts:
                out.extend(_norm_word(p))
        return tuple(dict.fromkeys(out))
    raw = _spelled(raw)
    exp = ABBREVIATIONS.get(raw)
    return tuple(stem(p) for p in exp.split()) if exp else (stem(raw),)


def _spelled(raw: str) -> str:
    if len(raw) < 5 or raw in _SPELLING_KEEP:
        return raw
    for rx, rep in _SPELLING:
        raw = rx.sub(rep, raw)
    return raw


def norm_tokens(phrase: str) -> list[str]:
    """Normalised words of a phrase (no offsets): the fast path for indexing."""
    words: list[tuple[str, int, int]] = []
    for raw in _TOKEN.findall(phrase.lower()):
        if raw in ("r", "l"):
            continue
        words.extend((w, 0, 0) for w in _norm_word(raw))
    if not _BOUND.intersection(w for w, _, _ in words) and "covid19" not in (
        w for w, _, _ in words
    ):
        return [w for w, _, _ in words]
    return [w for w, _, _ in _bind(words)]


# ----------------------------------------------------------------------------- context

# (regex, kind, direction). kind: negated | uncertain | history | family | hypothetical.
# Pre-triggers scope forward to the end of the sentence or a termination term;
# post-triggers scope back over the current comma-delimited chunk (max 6 tokens).
_PRE = [
    (
        r"\bnegative for\b|\bdenie[sd]\b|\bdeny(?:ing)?\b|\bno evidence of\b|\bno signs? of\b|\bfree of\b"
        r"|\babsence of\b|\bwithout\b|\bw/o\b|\bno\b|\bnot\b|\bnever\b|\bnone\b|\bruled out for\b"
        r"|\brules out\b|\bresolved\b|\bhold\b|\bheld\b|\bholding\b|\bdiscontinued?\b|\bstopped\b",
        "negated",
    ),
    (
        r"\brule out\b|\br/o\b|\bprobable\b|\bprobably\b|\bpossible\b|\bpossibly\b|\bsuspect(?:ed)?\b"
        r"|\bsuspicious for\b|\bsuspicion (?:of|for)\b|\blikely\b|\bquestionable\b|\bconcern(?:ing)? for\b"
        r"|\bpresumed\b|\bdifferential(?: diagnosis)? includes\b|\bconsider(?:ing)?\b|\bversus\b|\bvs\.?\b"
        r"|\bcannot exclude\b|\bequivocal\b|\bworrisome for\b|\bevaluate for\b|\bscreen(?:ing)? for\b"
        r"|\?(?<![\w?]\?)(?=\s*[a-z])|\bnot excluded\b|\bmust exclude\b|\bto exclude\b"
        r"|\bto confirm\b|\bconfirm(?:/| or )exclude\b",
        "uncertain",
    ),
    (
        r"\bhistory of\b|\bhx of\b|\bh/o\b|\bhx\b(?<!family hx)(?=\s+[a-z])|\bpast history\b|\bprior history\b|\bprevious(?:ly)?\b"
        r"|\bs/p\b|\bstatus post\b|\bformer\b|\bremote\b|\bex-",
        "history",
    ),
    (
        r"\bfamily history\b|\bfamily hx\b|\bfhx?\b|\b(?:mother|father|brother|sister|sibling|grandmother"
        r"|grandfather|aunt|uncle|parent)s?\b (?:has|had|with)\b|\b(?:mother|father|brother|sister|sibling"
        r"|grandmother|grandfather|aunt|uncle|maternal|paternal)\b\s*(?:[-:\u2013]|w/)",
        "family",
    ),
    (
        r"\bwill\b|\bplan(?:s|ned)? to\b|\bscheduled? for\b|\bto be\b|\bif\b|\bshould\b|\brecommend(?:ed)?\b"
        r"|\bdeclined\b|\brefused\b|\bdeferred\b|\bnext visit\b|\breturn for\b|\bprecautions (?:for|if)\b|\bprecautions\s*[(:]|\bsent (?:out|to)\b"
        r"|\breferr(?:al|ed) (?:to|for)\b",
        "hypothetical",
    ),
]
_POST = [
    (
        r"\bnegative\b|\bneg\b|\bruled out\b|\bwas excluded\b|\bis excluded\b|\babsent\b"
        r"|\bnot (?:seen|present|found)\b|\bunlikely\b|\bresolved\b",
        "negated",
    ),
    (
        r"\bis suspected\b|\bsuspected\b|\bpossible\b|\bquestioned\b|\bnot excluded\b|\?(?<=\w\?)",
        "uncertain",
    ),
    (r"\bin the past\b|\byears ago\b|\bhx\b", "history"),
    (
        r"\bprecautions\b|\bwarning signs\b|\bprevention\b|\bup to date\b|\butd\b|\bscreening\b"
        r"|\bscreen\b|\bsurveillance\b|\brisk\b",
        "hypothetical",
    ),
]
_PRE_RE = [(re.compile(p, re.I), k) for p, k in _PRE]
_POST_RE = [(re.compile(p, re.I), k) for p, k in _POST]
_PRE_GATES = [(Gate(rx, fold=True), k) for rx, k in _PRE_RE]
_POST_GATES = [(Gate(rx, fold=True), k) for rx, k in _POST_RE]
_TERMINATION = re.compile(
    r"\bbut\b|\bhowever\b|\balthough\b|\bthough\b|\bexcept\b|\baside from\b|\byet\b|\bpositive\b"
    r"|\breports?\b|\bendorses?\b|\bcomplains? of\b|\bpresents?\b|\bstates?\b|\badmits?\b|\bwhich\b"
    r"|\bwho\b|\bapart from\b|\bconfirm(?:s|ed)?\b|\bdiagnosed with\b|\bconsistent with\b|\bshows\b"
    r"|\bdemonstrates\b|\breveals?\b|\bwith\b|\bdue to\b|\bsecondary to\b|\bbecause\b|\bsince\b|\bnow\b",
    re.I,
)
_TERMINATION_GATE = Gate(_TERMINATION, fold=True)
_WORD = re.compile(r"\S+")
_CHUNK_END = re.compile(r"[,:;(\-\u2013]|\band\b|\bwith\b")


@dataclass
class Scope:
    start: int
    end: int
    kind: str
    trigger: str


_STATUS_ORDER = ("family", "negated", "hypothetical", "uncertain", "history", "affirmed")
_RANK = {kind: i for i, kind in enumerate(_STATUS_ORDER[:-1])}


@dataclass
class Context:
    """Context spans of one note; ``status(start, end)`` of a mention."""

    scopes: list[Scope] = field(default_factory=list)

    def kinds(self, start: int, end: int) -> set[str]:
        return {s.kind for s in self.scopes if s.start <= start and end <= s.end + 1}

    def status(self, start: int, end: int) -> str:
        # the strongest kind among the scopes covering the span (ranked as
        # _STATUS_ORDER); called for every token of a mention, hence the
        # packed (start, end + 1, rank) copy of the scopes
        scopes = self.scopes
        packed = self.__dict__.get("_packed")
        if packed is None or packed[0] is not scopes or packed[1] != len(scopes):
            packed = (
                scopes,
                len(scopes),
                [(s.start, s.end + 1, _RANK.get(s.kind, 5)) for s in scopes],
            )
            self.__dict__["_packed"] = packed
        best = 5
        for lo, hi, rank in packed[2]:
            if lo <= start and end <= hi and rank < best:
                best = rank
        return _STATUS_ORDER[best]


def context(note: str, sents: list[Sentence]) -> Context:
    ctx = Context()
    # a scope never leaves its sentence, so each sentence's scopes are read
    # once per distinct sentence text (templated notes repeat most of them)
    low_note = lower_ascii(note)
    triggers = None  # the note's keyword pre-check, made when a sentence is new
    scopes = ctx.scopes
    for s in sents:
        text = note[s.start : s.end]
        key = (text, low_note is None)
        got = _SCOPES.get(key)
        if got is None:
            if triggers is None:
                triggers = _note_triggers(low_note)
            got = _SCOPES.put(
                key,
                _scopes(text, None if low_note is None else low_note[s.start : s.end], triggers),
            )
        base = s.start
        for a, b, kind, trigger in got:
            scopes.append(Scope(base + a, base + b, kind, trigger))
    return ctx


# (start, end, kind, trigger) of the scopes in a sentence, offsets relative to
# it, by (sentence text, whether the note is non-ASCII)
_SCOPES: Memo = Memo(8192)


def sentence_scopes(text: str, ascii_note: bool) -> tuple[tuple[int, int, str, str], ...]:
    """The context scopes of one sentence, offsets relative to it (as ``context`` reads them)."""
    got = _SCOPES.get((text, not ascii_note))
    if got is None:
        got = _scopes(text, text.lower() if ascii_note else None, _ALL_TRIGGERS)
    return got


def _note_triggers(low_note: str | None):
    """The triggers (and their keywords) that can occur somewhere in the note:
    one whose keywords the note lacks occurs in none of its sentences."""
    pre = [(g, keys, k) for g, k in _PRE_GATES if (keys := g.present(low_note)) != ()]
    post = [(g, keys, k) for g, k in _POST_GATES if (keys := g.present(low_note)) != ()]
    return pre, post, _TERMINATION_GATE.present(low_note)


def _scopes(text: str, low: str | None, triggers) -> tuple[tuple[int, int, str, str], ...]:
    # on ASCII notes the lower-cased sentence (``low``) is matched
    # case-sensitively (same spans, faster) and the trigger text is read from
    # the sentence itself; the keyword pre-checks never change a match
    pre, post, terminations = triggers
    out: list[tuple[int, int, str, str]] = []
    terms = (
        [m.start() for m in _TERMINATION_GATE.scan(text, low)] if any_in(terminations, low) else []
    )
    for gate, keys, kind in pre:
        if not any_in(keys, low):
            continue
        for m in gate.scan(text, low):
            trigger = text[m.start() : m.end()]
            if kind == "negated" and trigger.lower() in ("no", "not") and _not_negation(text, m):
                continue
            end = min([t for t in terms if t >= m.end()] + [len(text)])
            if kind == "negated" and trigger.lower() == "without":
                # 'X without Y' negates only Y's chunk
                end = min(end, _chunk_end(text, m.end()))
            out.append((m.end(), end, kind, trigger))
    for gate, keys, kind in post:
        if not any_in(keys, low):
            continue
        for m in gate.scan(text, low):
            chunk = max(
                text.rfind(",", 0, m.start()),
                text.rfind(":", 0, m.start()),
                max([t for t in terms if t < m.start()] + [-1]),
            )
            start = chunk + 1
            toks = list(_WORD.finditer(text[start : m.start()]))
            if len(toks) > 6:
                start += toks[-6].start()
            out.append((start, m.start(), kind, text[m.start() : m.end()]))
    return tuple(out)


_ALL_TRIGGERS = (
    [(g, g.keys, k) for g, k in _PRE_GATES],
    [(g, g.keys, k) for g, k in _POST_GATES],
    _TERMINATION_GATE.keys,
)


def _not_negation(text: str, m: re.Match) -> bool:
    """'no' / 'not' that do not negate a finding ('not improving', 'no longer')."""
    after = text[m.end() : m.end() + 20].lower()
    return after.lstrip().startswith(
        ("improv", "longer", "only", "better", "sure", "certain", "responding")
    )


def _chunk_end(text: str, pos: int) -> int:
    """'without' negates a few words: up to punctuation, 'and'/'with', or 4 words."""
    m = _CHUNK_END.search(text, pos)
    end = m.start() if m else len(text)
    words = list(_WORD.finditer(text[pos:end]))
    return pos + words[3].end() if len(words) > 4 else end
