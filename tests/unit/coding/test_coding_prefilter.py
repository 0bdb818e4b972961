"""Guards for the coding engine's speed-ups: each must answer exactly as the
plain computation it replaces (keyword pre-checks, case folding, memoised
refinement, term-index answers, code-set caches, context status)."""

import importlib.util
import random
import re
from datetime import date
from pathlib import Path

import pytest

from services.coding.domain import (
    diagnoses,
    drugs,
    em,
    engine,
    lexicon,
    procedures,
    rules,
    specificity,
    text,
)
from services.coding.domain.prefilter import Gate, by_initial, folded, lower_ascii, required_keys
from shared import icd10cm
from tests.unit.coding.coding_support import engine_gates

VIGNETTES = Path(__file__).resolve().parents[2] / "fixtures" / "vignettes"


def _engine_patterns() -> list[re.Pattern]:
    pats: list[re.Pattern] = [r.rx for r in procedures.RULES]
    pats += (
        [rx for rx, *_ in drugs.VACCINES_RX]
        + [rx for rx, *_ in drugs.DRUGS_RX]
        + [drugs.INJECTED, drugs.ORAL]
    )
    pats += [rx for rx, _ in text._PRE_RE + text._POST_RE] + [text._TERMINATION, text._TOKEN]
    for mod in (em, rules, diagnoses, specificity, engine):
        for v in vars(mod).values():
            items = v if isinstance(v, list) else list(v.values()) if isinstance(v, dict) else [v]
            for x in items:
                for y in x if isinstance(x, tuple) else (x,):
                    if isinstance(y, Gate):
                        pats.append(y.rx)
                    elif isinstance(y, re.Pattern):
                        pats.append(y)
    return pats


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    from rcm.simulation.samples import generate_samples

    spec = importlib.util.spec_from_file_location("bv_prefilter", VIGNETTES / "build_vignettes.py")
    bv = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bv)
    notes = [bv.encounter(v).note or "" for v in bv.VIGNETTES]
    notes += [
        s.encounter.note or "" for s in generate_samples(30, seed=11, start_date=date(2026, 10, 1))
    ]
    notes.append(
        "R ankle X-RAY, 3 views. PCV20 given IM. Denies CP; no fever. Influenza A and B test NEGATIVE."
    )
    texts = []
    for n in notes:
        texts.append(n)
        texts.extend(n[s.start : s.end] for s in text.sentences(n))
    return texts + [t.upper() for t in texts[::3]] + [t.swapcase() for t in texts[1::3]]


def test_required_keys_are_words_every_match_contains():
    assert required_keys(re.compile(r"\bvenipuncture\b|\bblood (?:was )?drawn\b", re.I)) == (
        "venipuncture",
        "blood ",
    )
    assert required_keys(re.compile(r"\burinalysis\b|\bua\b|\bu/a\b", re.I)) == (
        "urinalysis",
        "u/a",
        "ua",
    )
    assert required_keys(re.compile(r"\d+\s*mg|x?")) is None  # the second alternative needs nothing


def test_keyword_gates_never_skip_a_match(corpus):
    misses = []
    for rx in _engine_patterns():
        gate = Gate(rx)
        for t in corpus:
            if t.isascii() and rx.search(t) and not gate.possible(t.lower()):
                misses.append((rx.pattern[:40], t[:60]))
    assert misses == []


def test_folded_twins_find_the_same_spans(corpus):
    checked = 0
    for rx in _engine_patterns():
        twin = folded(rx)
        if twin is None:
            continue
        checked += 1
        for t in corpus:
            if t.isascii():
                assert [m.span() for m in twin.finditer(t.lower())] == [
                    m.span() for m in rx.finditer(t)
                ], rx.pattern
    assert checked > 40


def test_folding_refuses_patterns_it_cannot_mirror():
    assert folded(re.compile(r"\bBMI\b", re.I)) is None  # upper-case literal
    assert folded(re.compile(r"[A-Z]\d", re.I)) is None  # upper-case range
    assert folded(re.compile(r"a(?-i:b)", re.I)) is None  # scoped flags
    assert folded(re.compile(r"(a)\1", re.I)) is None  # back-reference
    assert folded(re.compile("\u017fpine", re.I)) is None  # long s folds onto 's'
    assert folded(re.compile(r"abc")) is None  # already case-sensitive
    assert folded(re.compile(r"\bfever\b", re.I)).flags & re.I == 0


def test_gates_fall_back_to_the_regex_on_non_ascii_text():
    gate = Gate(re.compile(r"\bspine\b", re.I), fold=True)
    assert lower_ascii("ſpine") is None
    assert gate.search("lumbar ſpine") is not None  # re.I folds the long s onto 's'
    assert gate.search("lumbar SPINE").span() == (7, 12)
    assert gate.search("lumbar back") is None
    assert [m.span() for m in gate.finditer("Spine, spine")] == [(0, 5), (7, 12)]


def test_tokenize_ascii_fast_path_matches_general_path():
    for t in [
        "R ankle sprain, r ankle; L knee pain w/o swelling",
        "DM2 with CKD stage IIIa, COVID-19 negative",
        "Type 2 diabetes mellitus, b/l otitis media, HTN",
    ]:
        fast = text.tokenize(t, 5)
        slow = text.tokenize(t + " \u2014", 5)  # a non-ASCII character forces the general path
        assert fast == slow
    assert [x.norm for x in text.tokenize("R ankle, r ankle")] == ["right", "ankle", "ankle"]


def _status_by_kinds(ctx: text.Context, start: int, end: int) -> str:
    k = {s.kind for s in ctx.scopes if s.start <= start and end <= s.end + 1}
    return next(
        (x for x in ("family", "negated", "hypothetical", "uncertain", "history") if x in k),
        "affirmed",
    )


def test_context_status_matches_the_kinds_rule():
    rnd = random.Random(5)
    kinds = ["negated", "uncertain", "history", "family", "hypothetical", "other"]
    ctx = text.Context()
    for round_ in range(3):
        ctx.scopes.extend(
            text.Scope(a, a + rnd.randint(0, 30), rnd.choice(kinds), "t")
            for a in (rnd.randint(0, 100) for _ in range(8))
        )
        for _ in range(300):
            s = rnd.randint(0, 130)
            e = s + rnd.randint(0, 10)
            assert ctx.status(s, e) == _status_by_kinds(ctx, s, e), round_
    ctx.scopes = [text.Scope(0, 50, "family", "fh")]  # a new list is noticed too
    assert ctx.status(10, 20) == "family"


@pytest.mark.parametrize(
    "code, words, lat",
    [
        ("S934", {"ankle", "sprain", "lower", "limb"}, "right"),
        ("S934", {"ankle", "sprain"}, None),
        ("E11", {"type2", "diabetes", "hyperglycemia"}, None),
        ("E11", {"type2", "diabetes"}, None),
        ("H66", {"otitis", "media", "acute"}, "left"),
        ("M17", {"osteoarthritis", "knee"}, "bilateral"),
        ("J45", {"asthma", "exacerbation", "mild", "intermittent"}, None),
        ("S52", {"fracture", "radius"}, "left"),
    ],
)
def test_memoised_refine_answers_as_a_fresh_walk(code, words, lat):
    for phase in (
        specificity.Phase(),
        specificity.Phase(stage="subsequent"),
        specificity.Phase(stage="sequela"),
    ):
        for extra in (set(), {"unrelated", "words", "here"}, {"chronic"}):
            ctx = specificity.Ctx(set(words) | extra, lat, phase)
            fresh, _ = specificity._refine(icd10cm.normalize(code), ctx)
            assert specificity.refine(code, ctx) == fresh
            assert specificity.refine(code, ctx) == fresh  # the second answer comes from the memo


def test_term_index_answers_are_copies():
    idx = lexicon.term_index()
    first = idx.search("acute maxillary sinusitis", 3)
    first.append(("X", 0.0))
    assert idx.search("acute maxillary sinusitis", 3) == idx._search("acute maxillary sinusitis", 3)
    assert idx.search("acute maxillary sinusitis", 3) == first[:-1]


def test_code_set_caches_hand_out_copies():
    kids = icd10cm.children("S934")
    kids.append("BOGUS")
    assert "BOGUS" not in icd10cm.children("s93.4")
    notes = icd10cm.excludes1("E11")
    notes.append("BOGUS")
    assert "BOGUS" not in icd10cm.excludes1("E11")
    refs = icd10cm.code_refs("diabetes (E08-E13)")
    refs.append(("X", "X"))
    assert icd10cm.code_refs("diabetes (E08-E13)") == [("E08", "E13")]
    assert icd10cm.normalize(" s93.401a ") == "S93401A" and icd10cm.ancestors("E119")[0] == "E11"


def test_alternatives_grouped_by_initial_match_the_same_spans():
    words = r"amoxicillin|augmentin|amoxicillin-clavulanate|z-?pak|x-?rays?|ecg|echo\w*|ekg|ua\b|hydrocortisone 2\.5"
    grouped = by_initial(words)
    assert grouped.startswith(
        "a(?:moxicillin|ugmentin|moxicillin-clavulanate)|z-?pak|x-?rays?|e(?:"
    )
    old, new = re.compile(rf"\b(?:{words})\b"), re.compile(rf"\b(?:{grouped})\b")
    for note in (
        "start amoxicillin-clavulanate; zpak, z-pak. xray x-rays; echocardiogram, ekg, ua",
        "ua\nhydrocortisone 2.5% cream, amoxicillin x 10 days; augmentin",
    ):
        assert [m.span() for m in new.finditer(note)] == [m.span() for m in old.finditer(note)]
    # an alternative that does not start with a plain letter: left as it is
    assert by_initial(r"(?:hemo)?dialysis|dialysate") == r"(?:hemo)?dialysis|dialysate"
    assert by_initial(r"x?ray|xr") == r"x?ray|xr"


def test_a_codes_entries_are_found_by_bisection_as_a_scan_finds_them():
    """``entries_of`` replaced a table over every entry built by each process (a tenth of a
    second of `rcm code`): the same entries, from a built index and from the cached one."""
    cached = lexicon.term_index()
    built = lexicon.TermIndex(
        [("E11.9", "type 2 diabetes"), ("I10", "hypertension"), ("E11.9", "diabetes type ii")]
    )
    assert list(built.entries_of("E11.9")) == [0, 2] and list(built.entries_of("Z00")) == []
    for code in ("E119", "I10", "J45909", "S52501A", "Z0000", "A00", "NOPE"):
        scan = [i for i, c in enumerate(cached.codes) if c == code]
        assert list(cached.entries_of(code)) == scan
    assert len(cached.entries_of("I10")) > 1  # a real code: its title and terms
    again = lexicon.TermIndex.from_parts(built.parts())
    assert list(again.entries_of("E11.9")) == [0, 2]


def test_pattern_facts_read_back_are_those_a_parse_gives(tmp_path, monkeypatch):
    """The Gates' facts come from ``$RCM_HOME/cache`` after the first process: they must be
    what parsing each pattern gives, and a Gate compiles its regex only when a text can
    match (a note without its keywords never pays for it)."""
    from services.coding.domain import prefilter

    patterns = [(g.pattern, g.flags) for g in engine_gates()]
    assert len(patterns) > 100
    for pattern, flags in patterns:
        rx = re.compile(pattern, flags)
        keys, foldable, nonempty = prefilter.facts(pattern, flags)
        assert keys == required_keys(rx)
        assert foldable == (folded(rx) is not None)
        assert nonempty == (re._parser.parse(pattern, flags).getwidth()[0] > 0)
    # written by one process, read by the next: the same facts
    monkeypatch.setattr(icd10cm, "_home", tmp_path)
    monkeypatch.setattr(prefilter, "_facts_added", True)
    prefilter.keep_facts()
    kept = dict(prefilter._facts)
    monkeypatch.setattr(prefilter, "_facts", None)
    assert prefilter.facts(*patterns[0]) == kept[patterns[0]]
    assert prefilter._facts == kept
    g = prefilter.gated(r"\bvenipuncture\b", re.I)
    assert g._rx is None
    assert g.search("No procedures today.") is None and g._rx is None
    assert g.search("Venipuncture done.").group(0) == "Venipuncture" and g._rx is not None


def test_the_cached_synonym_list_is_the_parsed_one(tmp_path, monkeypatch):
    """``lexicon()`` reads the tokenised synonym list from the cache after the first process:
    the same entries, in the same order, as parsing data/synonyms.csv; written, then read."""
    parsed = lexicon.Lexicon.from_csv(lexicon.DATA / "synonyms.csv").entries
    assert lexicon.lexicon().entries == parsed
    monkeypatch.setattr(icd10cm, "_home", tmp_path)
    lexicon.lexicon.cache_clear()
    try:
        assert lexicon.lexicon().entries == parsed  # built and written under tmp_path
        assert list(tmp_path.glob("cache/lexicon-*.cache"))
        lexicon.lexicon.cache_clear()
        assert lexicon.lexicon().entries == parsed  # read back
    finally:
        lexicon.lexicon.cache_clear()
