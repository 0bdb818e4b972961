"""Code search for coders: ICD-10-CM, CPT and HCPCS by code prefix or by words, billable first.

One in-memory index per code system, built once per process (``CodeSearch.build``, about a
second for the ICD-10-CM release, off the event loop). Each system's codes are numbered in
the order results are shown: billable codes first, then shorter titles (the general code
before its elaborations), then by code. A search is then a walk in that order:

- a query shaped like a code (``E11``, ``e11.6``, ``9921``, ``J07``) lists the codes that
  start with it (dots and case ignored);
- otherwise its words must all occur in the code's title or inclusion terms, each word
  whole except the last, which may be a prefix (the coder is still typing it). The walk
  follows the rarest word's list and stops at ``limit`` matches.

ICD-10-CM comes from ``shared.icd10cm`` (the bundled release), CPT numbers with rcm's own
short labels (``services/coding/data/cpt_codes.csv``, never AMA descriptors), HCPCS Level II
from the bundled file.
"""

from __future__ import annotations

import heapq
import re
import sys
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

from services.coding.domain import cpt
from shared import icd10cm

SYSTEMS = ("icd10cm", "cpt", "hcpcs")
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset("a an and by for in of on or the to".split())
_CODE_LIKE = re.compile(r"[a-z]\d[0-9a-z.]{0,6}|\d{1,5}[a-z]?", re.I)
# 7th-character extensions after the first encounter: shown after the initial one
_LATER = re.compile(r"\b(?:subsequent encounter|sequela)\b", re.I)
RERANK = 400  # matches walked in display order before ranking by where the words are


@dataclass(frozen=True, slots=True)
class CodeHit:
    code: str  # as coders write it: ICD-10-CM with its dot
    label: str
    billable: bool
    system: str

    def as_json(self) -> dict:
        return {
            "code": self.code,
            "label": self.label,
            "billable": self.billable,
            "system": self.system,
        }


def _stem(word: str) -> str:
    """Plural 's' off ('fractures' finds 'fracture'), keeping 'abscess', 'sinus', 'arthritis'."""
    if len(word) > 4 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


_NORMAL: dict[str, str] = {w: "" for w in _STOP}  # raw word -> indexed form ("": not indexed)
# Abbreviations of rcm's short CPT labels, indexed with the words they stand for too
# ('Office visit est pt lvl 3' is found by 'established patient level').
_ABBREVIATIONS = {
    "est": "established",
    "pt": "patient",
    "lvl": "level",
    "inj": "injection",
    "addl": "additional",
    "admin": "administration",
    "unilat": "unilateral",
    "bilat": "bilateral",
    "ext": "extremities",
    "ed": "emergency department",
    "hep": "hepatitis",
    "w": "with",
}


def words_of(text: str) -> list[str]:
    """The indexed forms of the words of ``text``, in order (stop words left out)."""
    out = []
    for w in _WORD.findall(text.lower()):
        n = _NORMAL.get(w)
        if n is None:
            n = _NORMAL[w] = sys.intern(_stem(w))
        if n:
            out.append(n)
    return out


class SystemIndex:
    """The codes of one system, numbered in display order, with a word index."""

    def __init__(self, system: str, entries: Iterable[tuple[str, str, bool, tuple[str, ...]]]):
        """``entries``: (code without dot, label, billable, other terms to find it by)."""
        rows = []
        shared: dict[tuple, tuple] = {}  # one copy of each distinct word tuple

        def one(words) -> tuple[str, ...]:
            t = tuple(sorted(words))
            return shared.setdefault(t, t)

        for code, label, billable, terms in entries:
            own = words_of(label)
            words = set(own)
            for w in own:
                if w in _ABBREVIATIONS:
                    words.update(words_of(_ABBREVIATIONS[w]))
            heads = {own[0]} if own else set()
            for t in terms:
                tw = words_of(t)
                words.update(tw)
                heads.update(tw[:1])
            later = bool(_LATER.search(label))
            rows.append(
                (
                    not billable,
                    later,
                    len(own),
                    code,
                    label,
                    billable,
                    one(words),
                    one(heads),
                    one(own),
                )
            )
        rows.sort()
        self.system = system
        self.hits = [
            CodeHit(_dotted(r[3]) if system == "icd10cm" else r[3], r[4], r[5], system)
            for r in rows
        ]
        self.words = [r[6] for r in rows]
        self.heads = [r[7] for r in rows]
        self.titles = [r[8] for r in rows]  # the label's own words
        by_code = sorted((r[3], i) for i, r in enumerate(rows))  # codes are upper case
        self.codes = [c for c, _ in by_code]
        self.code_ids = [i for _, i in by_code]
        postings: dict[str, array] = {}
        for i, ws in enumerate(self.words):
            for w in ws:
                postings.setdefault(w, array("I")).append(i)
        self.postings = postings
        self.vocab = sorted(postings)

    def search(self, query: str, limit: int) -> list[int]:
        """Ids (display order) of the codes matching ``query``, at most ``limit``."""
        q = query.strip()
        if _CODE_LIKE.fullmatch(q):
            found = self._by_code(q.replace(".", "").upper(), limit)
            if found:
                return found
        return self._by_words(query, limit)

    def _by_code(self, prefix: str, limit: int) -> list[int]:
        billable, other = [], []
        at = bisect_left(self.codes, prefix)
        while at < len(self.codes) and self.codes[at].startswith(prefix):
            i = self.code_ids[at]
            (billable if self.hits[i].billable else other).append(i)
            if len(billable) >= limit:
                break
            at += 1
        return (billable + other)[:limit]  # each in code order

    def _by_words(self, query: str, limit: int) -> list[int]:
        """Codes having every word (the last one as typed so far), walked in display order;
        of the first ``RERANK`` found, billable first, then those whose own title has more of
        the words, then those whose title or a term starts with the first word."""
        typing = not query[-1:].isspace()  # the last word may be unfinished
        tokens = words_of(query)
        raw = _WORD.findall(query.lower())
        if typing and raw and raw[-1] in _STOP:  # 'an' may be the start of 'ankle' ...
            found = self._matching(tokens + [raw[-1]], True, limit)
            return found or self._matching(tokens, False, limit)  # ... or 'sprain of'
        return self._matching(tokens, typing, limit)

    def _matching(self, tokens: list[str], typing: bool, limit: int) -> list[int]:
        if not tokens:
            return []
        exact, prefixes = [], []
        for n, t in enumerate(tokens):
            if t in self.postings and not (n == len(tokens) - 1 and typing):
                exact.append(t)
            else:
                prefixes.append(t)
        # Walk the rarest word's codes (a typed prefix stands for every word it begins).
        lists = {p: self._prefix_lists(p) for p in prefixes}
        if not all(lists.values()):
            return []
        sizes = [(len(self.postings[t]), [self.postings[t]]) for t in exact]
        sizes += [(sum(map(len, ls)), ls) for ls in lists.values()]
        _, rarest = min(sizes, key=lambda x: x[0])
        driver: Iterator[int] = iter(rarest[0]) if len(rarest) == 1 else _merged(rarest)
        found: list[int] = []
        want = max(limit, RERANK)
        for i in driver:
            ws = self.words[i]
            if all(t in ws for t in exact) and all(
                any(w.startswith(p) for w in ws) for p in prefixes
            ):
                found.append(i)
                if len(found) >= want:
                    break
        first = tokens[0]

        def missing(i: int) -> int:
            title = self.titles[i]
            return sum(t not in title for t in exact) + sum(
                not any(w.startswith(p) for w in title) for p in prefixes
            )

        return sorted(
            found,
            key=lambda i: (
                not self.hits[i].billable,
                missing(i),
                not any(h.startswith(first) for h in self.heads[i]),
                i,
            ),
        )[:limit]

    def _prefix_lists(self, prefix: str) -> list[array]:
        lo = bisect_left(self.vocab, prefix)
        hi = bisect_left(self.vocab, prefix + "\uffff", lo)
        return [self.postings[w] for w in self.vocab[lo:hi]]


def _dotted(code: str) -> str:
    """ICD-10-CM as written (``S93.401A``); not ``icd10cm.with_dot``, whose cache would keep
    a copy of every code."""
    return code if len(code) <= 3 else f"{code[:3]}.{code[3:]}"


def _merged(lists: list[array]) -> Iterator[int]:
    """The ids of several sorted lists in order, each once."""
    last = -1
    for i in heapq.merge(*lists):
        if i != last:
            yield i
            last = i


class CodeSearch:
    """Search over the three systems; ``search`` answers in display order, billable first."""

    def __init__(self, indexes: dict[str, SystemIndex]):
        self.indexes = indexes

    @classmethod
    def build(cls) -> CodeSearch:
        """The index of every system (ICD-10-CM: the bundled release, loaded if not yet)."""
        return cls({s: SystemIndex(s, _ENTRIES[s]()) for s in SYSTEMS})

    def search(self, query: str, system: str | None = None, limit: int = 20) -> list[CodeHit]:
        systems = [system] if system else list(SYSTEMS)
        found = []
        for s in systems:
            index = self.indexes[s]
            found += [(i, index.hits[i]) for i in index.search(query, limit)]
        if len(systems) > 1:  # billable first across systems, then each system's own order
            found.sort(key=lambda x: (not x[1].billable,))
        return [hit for _, hit in islice(found, limit)]


def _icd10cm() -> Iterator[tuple[str, str, bool, tuple[str, ...]]]:
    """Each code with its inclusion terms and those of its ancestor codes (a category's
    inclusion terms hold for its subcodes: 'fracture of distal radius' finds S52.5-)."""
    own: dict[str, list[str]] = {}
    for code, term in icd10cm.iter_terms():
        own.setdefault(code, []).append(term)
    inherited: dict[str, tuple[str, ...]] = {}
    for code, desc, billable in icd10cm.iter_codes():  # tabular order: parents first
        parent = icd10cm.parent(code)
        terms = tuple(t for t in own.get(code, ()) if t != desc)
        inherited[code] = terms + (inherited.get(parent, ()) if parent else ())
        yield code, desc, billable, inherited[code]


def _cpt() -> Iterator[tuple[str, str, bool, tuple[str, ...]]]:
    for c in cpt.cpt_table().values():
        yield c.code, c.label, True, ()


def _hcpcs() -> Iterator[tuple[str, str, bool, tuple[str, ...]]]:
    for h in cpt.hcpcs_sample().values():
        if h.kind == "procedure":
            yield h.code, h.long_description, True, (h.short_description,)


_ENTRIES = {"icd10cm": _icd10cm, "cpt": _cpt, "hcpcs": _hcpcs}
