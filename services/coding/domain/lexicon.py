"""Finding diagnosis phrases: the curated synonym spotter and the ICD-10-CM term index.

``Lexicon.spot`` finds curated phrases (services/coding/data/synonyms.csv) in
a sentence's tokens: every phrase token must occur within a short window, in
any order ('left ankle sprain' and 'sprain of the left ankle' both match
'ankle sprain'); longer phrases win over the shorter ones they contain.

``TermIndex`` is the fallback for statements no curated phrase covers: an
inverted index over every code's description and inclusion terms, scored by
IDF-weighted Dice overlap. Anything with a ``search(phrase) -> [(code, score)]``
method can replace it (the service may plug in Postgres full-text search).
"""

from __future__ import annotations

import csv
import math
from array import array
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from services.coding.domain.text import Memo, Token, norm_tokens
from shared import icd10cm

DATA = Path(__file__).resolve().parent.parent / "data"

# Words that carry no meaning for matching (laterality and encounter words are
# handled by the specificity step, not by the search).
STOPWORDS = frozenset(
    "of the a an and or in on to for by at as is was with w has have nos due patient pt her his "
    "their this that from be been are were unspecified other specified site type initial "
    "subsequent encounter sequela right left bilateral unilateral".split()
)
BODY_WORDS = frozenset(
    "ankle knee wrist hand finger thumb foot toe ear eye shoulder elbow hip leg arm forearm thigh calf "
    "shin axilla buttock cheek eyebrow eyelid scalp forehead chin lip back neck groin face chest palm".split()
)
# curated phrases drop only function words; everything else must be in the note
PHRASE_STOP = frozenset("of the a an and or in on to for by at with w is was as".split())


def content(tokens: Iterable[str], keep: frozenset[str] = frozenset()) -> list[str]:
    return [t for t in tokens if t not in STOPWORDS or t in keep]


@dataclass(frozen=True)
class Entry:
    phrase: str
    code: str
    kind: str  # dx | sx | preventive
    tokens: tuple[str, ...]


@dataclass(frozen=True)
class Match:
    entry: Entry
    positions: tuple[int, ...]  # indexes into the sentence's token list
    start: int  # char offsets in the note
    end: int


class Lexicon:
    def __init__(self, entries: list[Entry]):
        self.entries = entries
        self._by_token: dict[str, list[Entry]] = defaultdict(list)
        for e in entries:
            for t in set(e.tokens):
                self._by_token[t].append(e)
        # the same postings with a number per distinct entry (equal entries
        # share one), so spotting tracks what it has placed without hashing entries
        ids: dict[Entry, int] = {}
        self._postings: dict[str, tuple[tuple[int, Entry], ...]] = {
            t: tuple((ids.setdefault(e, len(ids)), e) for e in es)
            for t, es in self._by_token.items()
        }

    @classmethod
    def from_csv(cls, path: Path) -> Lexicon:
        entries = []
        with path.open(encoding="utf-8") as f:
            rows = csv.DictReader(line for line in f if not line.startswith("#"))
            for r in rows:
                toks = tuple(
                    dict.fromkeys(t for t in norm_tokens(r["phrase"]) if t not in PHRASE_STOP)
                )
                if toks:
                    code = icd10cm.normalize(r["code"])
                    entries.append(Entry(r["phrase"], code, (r.get("kind") or "dx").strip(), toks))
        return cls(entries)

    def spot(self, tokens: list[Token]) -> list[Match]:
        """Non-overlapping phrase matches in one sentence, longest phrases first."""
        tokens = [t for t in tokens if t.norm not in PHRASE_STOP]
        where: dict[str, list[int]] = {}
        for i, t in enumerate(tokens):
            at = where.get(t.norm)
            if at is None:
                where[t.norm] = [i]
            else:
                at.append(i)
        cands: list[Match] = []
        seen: set[int] = set()
        postings = self._postings
        for norm in where:
            for uid, e in postings.get(norm, ()):
                if uid in seen:
                    continue
                for t in e.tokens:
                    if t not in where:
                        break
                else:
                    seen.add(uid)
                    cands.extend(self._place(e, where, tokens))
        # longer phrases first; among equals, the one naming a body part (it is more specific)
        cands.sort(
            key=lambda m: (
                -len(m.entry.tokens),
                -len(BODY_WORDS.intersection(m.entry.tokens)),
                m.positions[-1] - m.positions[0],
                m.start,
            )
        )
        used: set[int] = set()
        out = []
        for m in cands:
            if used.isdisjoint(m.positions):
                used.update(m.positions)
                out.append(m)
        return sorted(out, key=lambda m: m.start)

    @staticmethod
    def _place(e: Entry, where: dict[str, list[int]], tokens: list[Token]) -> list[Match]:
        anchor = min(e.tokens, key=lambda t: len(where[t]))
        out = []
        for p in where[anchor]:
            pos = {p}
            for t in e.tokens:
                if t == anchor:
                    continue
                free = [q for q in where[t] if q not in pos]
                if not free:
                    break
                pos.add(min(free, key=lambda q: abs(q - p)))
            else:
                ordered = tuple(sorted(pos))
                # a visit type's words stand together: 'annual eye exam' is a plan item,
                # not an annual exam
                span = len(e.tokens) - 1 if e.kind == "preventive" else len(e.tokens) + 3
                if ordered[-1] - ordered[0] <= span:
                    out.append(Match(e, ordered, tokens[ordered[0]].start, tokens[ordered[-1]].end))
        return out


@lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    """The synonym list, parsed (tokenised) by the first process and read back from
    ``$RCM_HOME/cache`` by the others, under the term index's key."""
    parts = icd10cm.cached(
        "lexicon",
        _cache_key(),
        lambda: {
            "entries": [
                (e.phrase, e.code, e.kind, e.tokens)
                for e in Lexicon.from_csv(DATA / "synonyms.csv").entries
            ]
        },
    )
    return Lexicon([Entry(*e) for e in parts["entries"]])


# ----------------------------------------------------------------------------- term index


class Searcher(Protocol):
    def search(self, phrase: str, limit: int = 10) -> list[tuple[str, float]]: ...


class _Rows:
    """Rows of word or entry numbers in two flat arrays (the numbers, where each row starts):
    a few byte strings on disk instead of hundreds of thousands of Python objects."""

    __slots__ = ("values", "starts")

    def __init__(self, values: array, starts: array):
        self.values, self.starts = values, starts

    @classmethod
    def of(cls, rows: Iterable[Iterable[int]]) -> _Rows:
        values, starts = array("i"), array("q", [0])
        for row in rows:
            values.extend(row)
            starts.append(len(values))
        return cls(values, starts)

    def row(self, i: int) -> array:
        return self.values[self.starts[i] : self.starts[i + 1]]

    def size(self, i: int) -> int:
        return self.starts[i + 1] - self.starts[i]

    def dump(self) -> tuple[bytes, bytes]:
        return self.values.tobytes(), self.starts.tobytes()

    @classmethod
    def load(cls, dumped: tuple[bytes, bytes]) -> _Rows:
        values, starts = array("i"), array("q")
        values.frombytes(dumped[0])
        starts.frombytes(dumped[1])
        return cls(values, starts)


def _ints(dumped: bytes) -> array:
    out = array("i")
    out.frombytes(dumped)
    return out


def _floats(dumped: bytes) -> array:
    out = array("d")
    out.frombytes(dumped)
    return out


class TermIndex:
    """In-memory inverted index over ICD-10-CM descriptions and inclusion terms.

    Words are numbered (``vocab``); each entry keeps its code, its words' numbers and
    their summed IDF weight, each word its postings (the entries it occurs in). Lists,
    arrays and a dict, so that ``term_index`` can keep them on disk (``parts``/``from_parts``).
    """

    # candidates come from the rarest query words until this many postings
    _BUDGET = 2500

    def __init__(self, docs: Iterable[tuple[str, str]]):
        self.codes: list[str] = []
        self.vocab: dict[str, int] = {}
        toks: list[list[int]] = []
        post: list[list[int]] = []
        for code, text in docs:
            ts = frozenset(content(norm_tokens(text)))
            if not ts:
                continue
            i = len(self.codes)
            self.codes.append(code)
            ids = []
            for t in ts:
                w = self.vocab.get(t)
                if w is None:
                    w = self.vocab[t] = len(post)
                    post.append([])
                post[w].append(i)
                ids.append(w)
            toks.append(sorted(ids))
        n = len(self.codes)
        self.idf = array("d", (math.log(1 + n / len(ids)) for ids in post))
        self.weight = array("d", (sum(self.idf[w] for w in ws) for ws in toks))
        self.toks, self.post = _Rows.of(toks), _Rows.of(post)
        self._by_code = self._code_order(self.codes)
        self._ready()

    @staticmethod
    def _code_order(codes: list[str]) -> tuple[list[str], array]:
        """The entries by code: codes sorted, and each one's entry number in that order."""
        order = sorted(range(len(codes)), key=codes.__getitem__)
        return [codes[i] for i in order], array("i", order)

    def entries_of(self, code: str) -> array:
        """The entry numbers of a code's title and terms (a bisection, no per-process table:
        building one over all entries cost `rcm code` a tenth of a second)."""
        by_code = self._by_code
        if by_code is None:
            sorted_codes, order = self._parts["by_code"]
            by_code = self._by_code = (sorted_codes, _ints(order))
        sorted_codes, order = by_code
        lo = bisect_left(sorted_codes, code)
        return order[lo : bisect_right(sorted_codes, code, lo)]

    def _ready(self) -> None:
        self._unknown = math.log(1 + len(self.codes))
        # answers by (phrase, limit): the index never changes once built, and
        # assessment statements recur from note to note
        self._answers = Memo(20000)

    def parts(self) -> dict[str, object]:
        return {
            "codes": self.codes,
            "vocab": self.vocab,
            "toks": self.toks.dump(),
            "post": self.post.dump(),
            "idf": self.idf.tobytes(),
            "weight": self.weight.tobytes(),
            "by_code": (self._by_code[0], self._by_code[1].tobytes()),
        }

    @classmethod
    def from_parts(cls, parts) -> TermIndex:
        """The index from ``parts()`` (any mapping of the same names)."""
        index = cls.__new__(cls)
        index.codes, index.vocab = parts["codes"], parts["vocab"]
        index.toks, index.post = _Rows.load(parts["toks"]), _Rows.load(parts["post"])
        index.idf, index.weight = _floats(parts["idf"]), _floats(parts["weight"])
        index._parts, index._by_code = parts, None  # by_code read on first use
        index._ready()
        return index

    @classmethod
    def from_code_set(cls, lex: Lexicon | None = None) -> TermIndex:
        docs = list(icd10cm.iter_terms())
        if lex is not None:
            docs.extend((e.code, e.phrase) for e in lex.entries)
        return cls(docs)

    def search(self, phrase: str, limit: int = 10) -> list[tuple[str, float]]:
        """Best codes for a phrase, score in 0..1 (1: same words)."""
        key = (phrase, limit)
        got = self._answers.get(key)
        if got is None:
            got = self._answers.put(key, tuple(self._search(phrase, limit)))
        return list(got)

    def _search(self, phrase: str, limit: int) -> list[tuple[str, float]]:
        q = set(content(norm_tokens(phrase)))
        if not q:
            return []
        vocab, idf = self.vocab, self.idf
        qw = {t: idf[vocab[t]] if t in vocab else self._unknown for t in q}
        qsum = sum(qw.values())
        known = {vocab[t]: w for t, w in qw.items() if t in vocab}
        cand: set[int] = set()
        for w in sorted(known, key=self.post.size):
            if cand and len(cand) + self.post.size(w) > self._BUDGET:
                break
            cand.update(self.post.row(w))
        best: dict[str, float] = {}
        for i in cand:
            ov = sum(known[w] for w in self.toks.row(i) if w in known)
            score = 2 * ov / (qsum + self.weight[i])
            c = self.codes[i]
            if score > best.get(c, 0.0):
                best[c] = score
        ranked = sorted(best.items(), key=lambda kv: (-kv[1], len(kv[0]), kv[0]))
        return [(c, round(s, 4)) for c, s in ranked[:limit]]


# what the index is built from, besides the code set: a change to any rebuilds it
_INDEX_SOURCES = (
    DATA / "synonyms.csv",
    Path(__file__),
    Path(__file__).with_name("text.py"),
    Path(__file__).with_name("prefilter.py"),
)


@lru_cache(maxsize=1)
def _cache_key() -> str:
    return icd10cm.source_key(icd10cm.cache_key(), *(p.read_bytes() for p in _INDEX_SOURCES))


@lru_cache(maxsize=1)
def term_index() -> TermIndex:
    """The index over the bundled code set and the synonym list, built by the first process
    that needs it (about 2 s) and read back from ``$RCM_HOME/cache`` by the others (tens of
    ms); the cache is keyed by the code set and these modules' and the synonym list's text."""
    return TermIndex.from_parts(
        icd10cm.cached(
            "term-index", _cache_key(), lambda: TermIndex.from_code_set(lexicon()).parts()
        )
    )
