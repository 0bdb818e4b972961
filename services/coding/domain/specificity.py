"""From a code stem to the billable code the documentation supports.

``refine`` walks down the ICD-10-CM tree. At each level it scores the children
by the words that set them apart from their parent ('right', 'stage 3a',
'with hyperglycemia'), looking ahead into grandchildren, and falls back to the
'unspecified' / 'uncomplicated' child when the note says nothing more. The 7th
character comes from the encounter phase (initial / subsequent / sequela, and
for fractures open/closed and healing), padded with the placeholder X by the
code set itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from services.coding.domain.prefilter import fold, gated
from services.coding.domain.text import Memo, norm_tokens
from shared import icd10cm

_STOP = frozenset("of the a an and or in on to for by at as is with without not other part".split())
# words a coder assumes when the note is silent (guideline defaults included:
# fractures are displaced and closed unless documented otherwise)
_DEFAULT_WORDS = re.compile(
    r"^Unspecified\b|, unspecified\b|\bunspecified$|\buncomplicated\b|\bwithout\b|\bNOS\b"
    r"|\bnot intractable\b|^Displaced|^Asymptomatic\b",
    re.I,
)
_SIDES = ("right", "left", "bilateral")
BODY_PARTS = frozenset(
    "ankle knee wrist hand finger thumb foot toe ear eye shoulder elbow hip leg arm forearm thigh calf "
    "shin axilla buttock cheek eyebrow eyelid scalp forehead chin lip radius ulna clavicle rib "
    "metatarsal heel palm back neck".split()
)
# lay words for limb regions used in code titles
_EXPAND = {
    "thigh": ("lower", "limb"),
    "leg": ("lower", "limb"),
    "calf": ("lower", "limb", "leg"),
    "shin": ("lower", "limb", "leg"),
    "knee": ("lower", "limb"),
    "distal": ("lower",),
    "proximal": ("upper",),
    "arm": ("upper", "limb"),
    "forearm": ("upper", "limb"),
    "elbow": ("upper", "limb"),
    "foot": ("lower", "limb"),
    "ankle": ("lower", "limb"),
    "pinky": ("little",),
    "toe": ("foot",),
    "mtp": ("foot", "toe"),
    "finger": ("hand",),
    "thumb": ("hand",),
    "both": ("bilateral",),
    # the code set says 'limb' where notes say 'extremity' (and some titles the reverse)
    "extremity": ("limb",),
    "limb": ("extremity",),
    "index": ("index",),
}


@dataclass
class Phase:
    """What the 7th character must say about this encounter."""

    stage: str = "initial"  # initial | subsequent | sequela
    open_fracture: bool = False
    healing: str = "routine"  # routine | delayed | nonunion | malunion


_SUBSEQUENT = gated(
    r"\b(?:here|presents?|returns?|returning|seen|comes? in|back|visit)\s+(?:today\s+)?for\s+(?:a\s+|her\s+|his\s+)?"
    r"(?:follow[- ]?up|recheck|re-check|cast check|wound check|suture removal|reevaluation)"
    r"|\bfollow[- ]?up (?:visit|encounter|of|for|on)\b|\bsubsequent encounter\b|\broutine healing\b"
    r"|\bhealing (?:well|appropriately|as expected|normally)\b|\bin (?:a )?cast\b|\bweeks? (?:post|after) (?:injury|fracture)\b",
    re.I,
)
_SEQUELA = gated(r"\bsequela\b|\blate effect\b|\bresidual (?:from|of|after)\b", re.I)


_OPEN = gated(r"\bopen fracture\b|\bcompound fracture\b|\bbone (?:exposed|visible)\b", re.I)
_HEALING = [(word, gated(rf"\b{word}\b", re.I)) for word in ("delayed", "nonunion", "malunion")]

fold(_SUBSEQUENT, _SEQUELA, _OPEN, *(rx for _, rx in _HEALING))


def phase_of(note: str) -> Phase:
    p = Phase()
    if _SEQUELA.search(note):
        p.stage = "sequela"
    elif _SUBSEQUENT.search(note):
        p.stage = "subsequent"
    if _OPEN.search(note):
        p.open_fracture = True
    for word, rx in _HEALING:
        if rx.search(note):
            p.healing = word
    return p


@dataclass
class Ctx:
    """Words around one mention that may select a more specific child code."""

    tokens: set[str] = field(default_factory=set)
    laterality: str | None = None
    phase: Phase = field(default_factory=Phase)


def context_tokens(words: list[str]) -> set[str]:
    out = set(words)
    for w in words:
        out.update(_EXPAND.get(w, ()))
    if "right" in out or "left" in out:
        out.add("unilateral")
    if "bilateral" in out:
        out.discard("right")
        out.discard("left")
    return out


def laterality(words: set[str]) -> str | None:
    if "bilateral" in words or ("right" in words and "left" in words):
        return "bilateral"
    if "right" in words:
        return "right"
    if "left" in words:
        return "left"
    return None


@lru_cache(maxsize=50000)
def desc_tokens(code: str) -> frozenset[str]:
    desc = icd10cm.description(code) or ""
    desc = re.sub(r"\([^)]*\)", " ", desc)  # nonessential modifiers
    return frozenset(t for t in norm_tokens(desc) if t not in _STOP)


# The code set is fixed, so everything below that depends only on codes is
# memoised: refine runs for every mention of every note.
@lru_cache(maxsize=50000)
def _subtree(code: str, depth: int = 3) -> tuple[str, ...]:
    out, frontier = [], [code]
    for _ in range(depth):
        frontier = [k for c in frontier for k in icd10cm.children(c) if len(k) < 7 or len(c) >= 6]
        out.extend(frontier)
    return tuple(out)


# Generic qualifiers confirm a code less than the words naming the condition or site.
_QUALIFIERS = frozenset(
    "right left bilateral unilateral displaced nondisplaced closed open acute chronic".split()
)
_SIDE_SET = frozenset(_SIDES)


@lru_cache(maxsize=200000)
def _fit_parts(code: str, parent: str) -> tuple[frozenset[str], ...]:
    """The word sets ``_fit`` compares with the context: the words the code adds
    to its parent and its own words (less 'unspecified'), each split into
    condition/site words and qualifiers; and the sides it adds."""
    own = desc_tokens(code)
    diff = own - desc_tokens(parent)
    wanted = own - {"unspecified"} - without_words(code) - not_words(code)
    return (
        diff - _QUALIFIERS,
        diff & _QUALIFIERS,
        wanted - _QUALIFIERS,
        wanted & _QUALIFIERS,
        diff & _SIDE_SET,
    )


@lru_cache(maxsize=50000)
def without_words(code: str) -> frozenset[str]:
    """Words a title excludes ('... without lower urinary tract symptoms')."""
    desc = icd10cm.description(code) or ""
    out: set[str] = set()
    # a listed exclusion ('without behavioral disturbance, psychotic disturbance, mood
    # disturbance, and anxiety') excludes every item of the list
    for m in re.finditer(r"\bwithout ((?:[\w -]+, )+and [\w -]+)", desc, re.I):
        out.update(t for t in norm_tokens(m.group(1)) if t not in _STOP)
    # 'without mention of fluctuations' excludes fluctuations, not 'mention'
    for m in re.finditer(
        r"\bwithout (?:mention of )?(.+?)(?=,|\(| of | with | in | due | and |$)", desc, re.I
    ):
        out.update(t for t in norm_tokens(m.group(1)) if t not in _STOP)
    return frozenset(out)


@lru_cache(maxsize=50000)
def not_words(code: str) -> frozenset[str]:
    """Words a title denies ('Migraine without aura, not intractable')."""
    desc = icd10cm.description(code) or ""
    out: set[str] = set()
    for m in re.finditer(r"\bnot (.+?)(?=,|\(| of | with | in | due | and |$)", desc, re.I):
        out.update(t for t in norm_tokens(m.group(1)) if t not in _STOP)
    return frozenset(out)


def _fit(code: str, parent: str, ctx: Ctx) -> float | None:
    """Words of the code the context confirms, minus words it lacks (qualifiers count
    less); a title's 'without X' counts against it when the context has X."""
    hit_words, hit_qual, own_words, own_qual, side = _fit_parts(code, parent)
    if side and ctx.laterality and ctx.laterality not in side:
        return None
    t = ctx.tokens
    return (
        len(hit_words & t)
        + 0.3 * len(hit_qual & t)
        - 0.5 * len(own_words - t)
        - 0.1 * len(own_qual - t)
        - 0.6 * len(without_words(code) & t)
        # 'intractable' documented, and no 'not' anywhere near it
        - (0.6 * len(not_words(code) & t) if "not" not in t else 0.0)
    )


def is_default(code: str) -> bool:
    """A title a coder falls back on when the note says no more ('unspecified', 'without ...')."""
    desc = (icd10cm.description(code) or "").lower()
    return _default_bonus(code) > 0 or "unspecified" in desc


@lru_cache(maxsize=50000)
def _default_bonus(code: str) -> float:
    return 0.05 * len(_DEFAULT_WORDS.findall(icd10cm.description(code) or ""))


def _score(child: str, parent: str, ctx: Ctx) -> float:
    own = _fit(child, parent, ctx)
    if own is None:
        return -5.0
    fits = [f for d in _subtree(child, 3) if (f := _fit(d, parent, ctx)) is not None]
    best = max([own, *fits])
    return best + _default_bonus(child)


def _seventh(code: str, kids: list[str], phase: Phase) -> str:
    defs = icd10cm.seven_chr_def(kids[0])
    want = {phase.stage}
    fracture = any("fracture" in v for v in defs.values())

    def score(ch: str) -> float:
        label = defs.get(ch, "").split("/")[0].lower()
        s = 3.0 if phase.stage in label else 0.0
        if fracture and phase.stage != "sequela":
            s += 1.0 if ("open" in label) == phase.open_fracture else 0.0
            if phase.stage == "subsequent":
                s += 1.0 if phase.healing in label else 0.0
        return s - 0.01 * ord(ch)  # earliest letter on ties (A before B)

    del want
    return max(kids, key=lambda k: score(k[-1]))


@lru_cache(maxsize=50000)
def _level(code: str) -> tuple[tuple[str, ...], bool, bool]:
    """Children of a code; whether they are 7th-character extensions; whether
    some say 'right' and some 'left'."""
    kids = tuple(icd10cm.children(code))
    if not kids:
        return kids, False, False
    extensions = all(len(k) == 7 for k in kids) and bool(icd10cm.seven_chr_def(kids[0]))
    sided = any("right" in desc_tokens(k) for k in kids) and any(
        "left" in desc_tokens(k) for k in kids
    )
    return kids, extensions, sided


@lru_cache(maxsize=50000)
def _level_words(code: str) -> frozenset[str]:
    """Every word ``_score`` may compare with the context when choosing among
    the children of ``code``: the titles of the children and their subtrees."""
    kids, _, _ = _level(code)
    titles = [d for k in kids for d in (k, *_subtree(k, 3))]
    words = frozenset().union(*(desc_tokens(d) for d in titles))
    # a title's 'not X' is read with whether the context says 'not' (see _fit)
    return words | {"not"} if any(not_words(d) for d in titles) else words


# refine answers by (code, laterality, phase): each entry keeps the words the
# walk compared with the context and the context words among them. Another
# context with the same words among those takes the same walk, so the entry
# answers for it exactly.
_REFINED = Memo(50000)  # per key: [(tokens used, tokens seen, answer)]
_REFINED_PER_KEY = 64


def refine(code: str, ctx: Ctx) -> tuple[str, float]:
    """The billable descendant of ``code`` the context supports, and a confidence factor.

    The factor drops below 1 when a choice had to default: 0.7 when laterality
    decided between children but the note gives none, 0.95 for other defaults.
    """
    c = icd10cm.normalize(code)
    ph = ctx.phase
    key = (c, ctx.laterality, ph.stage, ph.open_fracture, ph.healing)
    entries = _REFINED.get(key)
    if entries is None:
        entries = _REFINED.put(key, [])
    for used, seen, answer in entries:
        if ctx.tokens & used == seen:
            return answer
    answer, used = _refine(c, ctx)
    if len(entries) >= _REFINED_PER_KEY:
        del entries[0]
    entries.append((used, frozenset(ctx.tokens & used), answer))
    return answer


@lru_cache(maxsize=50000)
def _named_siblings(code: str) -> tuple[tuple[str, frozenset[str]], ...]:
    """For an 'unspecified' billable code: its billable siblings and the words each adds
    to their parent's title ('Irritable bowel syndrome' -> '... with diarrhea'), less
    the generic qualifiers. Empty for any other code."""
    desc = (icd10cm.description(code) or "").lower()
    parent = icd10cm.parent(code) if "unspecified" in desc else None
    if not parent:
        return ()
    base = desc_tokens(parent)
    vague = desc.count("unspecified")
    out = []
    for k in icd10cm.children(parent):
        if k == code or not icd10cm.is_billable(k):
            continue
        title = (icd10cm.description(k) or "").lower()
        words = desc_tokens(k) - base - (_QUALIFIERS - _SIDE_SET)
        # only a sibling that leaves less unspecified ('unspecified eye' is no more
        # specific than 'unspecified', 'uncomplicated' is another default)
        if title.count("unspecified") >= vague or "uncomplicated" in title:
            continue
        # its inclusion terms name it too ('Other constipation': 'Chronic constipation'),
        # each by all its words, qualifiers included
        terms = [
            t
            for term in icd10cm.inclusion_terms(k)
            if (t := frozenset(w for w in norm_tokens(term) if w not in _STOP)) - base
        ]
        for ws in ([frozenset(words)] if words else []) + terms:
            out.append((k, ws))
    return tuple(out)


_SITE_WORDS = BODY_PARTS | frozenset(
    "limb extremity trunk face head abdomen chest breast nose".split()
)


@lru_cache(maxsize=50000)
def _site_unspecified(code: str) -> bool:
    """An 'unspecified' billable code under a category whose other children are sited."""
    cat = code[:3]
    if len(code) <= 3 or icd10cm.is_billable(cat) or not icd10cm.is_valid(cat):
        return False
    if "unspecified" not in (icd10cm.description(code) or "").lower():
        return False
    return any(desc_tokens(k) & _SITE_WORDS for k in icd10cm.children(cat))


def _named_sibling(code: str, ctx: Ctx) -> str | None:
    """The sibling of an 'unspecified' code whose own words the context all documents
    (the tabular's titles choose, not a synonym's default), when exactly one does."""
    named = {
        k
        for k, words in _named_siblings(code)
        if words <= ctx.tokens and not without_words(k) & ctx.tokens
    }
    return named.pop() if len(named) == 1 else None


def _refine(c: str, ctx: Ctx, again: bool = True) -> tuple[tuple[str, float], frozenset[str]]:
    """``refine`` and the words it compared with the context (``again``: a code that
    leaves its site or type unspecified may be walked once more from its category)."""
    used: frozenset[str] = frozenset()
    factor = 1.0
    if icd10cm.is_billable(c):
        if again and _site_unspecified(c):
            # 'Cellulitis, R lower extremity' mapped to 'Cellulitis, unspecified': the
            # category's own walk takes the site the statement names
            used |= _SITE_WORDS
            if ctx.tokens & _SITE_WORDS:
                (alt, alt_factor), alt_used = _refine(c[:3], ctx, again=False)
                used |= alt_used
                if alt != c and desc_tokens(alt) & ctx.tokens & _SITE_WORDS:
                    return (alt, alt_factor), used
    for _ in range(8):
        if icd10cm.is_billable(c) or not icd10cm.is_valid(c):
            break
        kids, extensions, sided = _level(c)
        if not kids:
            break
        if extensions:
            c = _seventh(c, list(kids), ctx.phase)
            continue
        used |= _level_words(c)
        scored = sorted(((_score(k, c, ctx), k) for k in kids), key=lambda sk: (-sk[0], sk[1]))
        best_score, best = scored[0]
        if sided and ctx.laterality is None:
            factor = min(factor, 0.7)
        elif best_score < 0.5 and len(kids) > 1:
            factor = min(factor, 0.95)
        c = best
    if again and (icd10cm.description(c) or "").startswith("Unspecified") and len(c) > 3:
        # 'Unspecified nonsuppurative otitis media' when the statement names another
        # type of its category ('Chronic serous otitis media'): the category's walk,
        # kept when every word that sets the type apart is documented
        cat = c[:3]
        used |= _level_words(cat) if not icd10cm.is_billable(cat) else frozenset()
        if icd10cm.is_valid(cat) and not icd10cm.is_billable(cat):
            (alt, alt_factor), alt_used = _refine(cat, ctx, again=False)
            used |= alt_used
            own = desc_tokens(alt) - desc_tokens(cat) - _QUALIFIERS - {"unspecified"}
            if (
                alt != c
                and not (icd10cm.description(alt) or "").startswith("Unspecified")
                and own
                and own <= ctx.tokens
            ):
                return (alt, alt_factor), used
    sib = _named_siblings(c)
    if sib:
        used |= frozenset().union(*(w | without_words(k) for k, w in sib))
        c = _named_sibling(c, ctx) or c
    absent = without_words(c)
    if absent and icd10cm.is_billable(c):
        # the default 'without X' when the statement affirms X ('GERD with esophagitis'
        # mapped to K21.9, 'without esophagitis'): the sibling that has X
        used |= absent
        present = absent & ctx.tokens
        parent = icd10cm.parent(c) if present else None
        for k in icd10cm.children(parent) if parent else ():
            if k != c and present <= desc_tokens(k) and not without_words(k) & present:
                (alt, _), alt_used = _refine(k, ctx, again=False)
                used |= alt_used
                if not without_words(alt) & ctx.tokens:
                    return (alt, factor), used
    return (c, factor), used
