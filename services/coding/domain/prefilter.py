"""Cheap pre-checks that let the engine skip or speed up regexes, never changing a match.

Keywords: the note rules are many regexes run over every sentence, and most
sentences mention none of them. ``required_keys`` reads a compiled pattern's
syntax tree and returns words of which every match must contain at least one
(in lower case), e.g. ``('venipuncture', 'blood draw', 'phlebotomy', ...)``. A
substring test of those on the lower-cased text is far cheaper than the
regex, and a miss proves the regex would find nothing.

Folding: a case-insensitive regex is several times slower in ``re`` than a
case-sensitive one. For an all-lower-case pattern, matching the lower-cased
text case-sensitively finds the same spans (``folded``); the match then reads
lower-cased text, so ``Gate(..., fold=True)`` is only for callers that use
spans, digits or lower-cased groups.

Both apply to ASCII text only (``lower_ascii`` returns None otherwise):
case-insensitive regexes fold some non-ASCII letters onto ASCII ones (the
Kelvin sign onto 'k', the long s onto 's') where ``str.lower`` does not.
"""

from __future__ import annotations

import marshal
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from re import _constants as C  # type: ignore[attr-defined]
from re import _parser as P  # type: ignore[attr-defined]

from shared import icd10cm

_REPEATS = (C.MAX_REPEAT, C.MIN_REPEAT, getattr(C, "POSSESSIVE_REPEAT", C.MAX_REPEAT))


def _best(options: list[frozenset[str]]) -> frozenset[str]:
    # the most selective requirement: longest shortest word, then longest words on average
    return max(options, key=lambda o: (min(len(w) for w in o), sum(map(len, o)) / len(o)))


def _lead(items) -> str:
    """The literal text every match of a sequence starts with."""
    out = []
    for op, av in items:
        if op is not C.LITERAL:
            break
        out.append(chr(av).lower())
    return "".join(out)


def _joined(run: str, branches) -> frozenset[str] | None:
    """'u' + (rinalysis|a|...): the parser factors common prefixes out of
    alternatives; glue them back so the words stay selective."""
    out: set[str] = set()
    for branch in branches:
        lead = _lead(branch)
        if lead:
            out.add(run + lead)
            continue
        req = _seq(branch)
        if req is None:
            return None
        out |= req
    return frozenset(out)


def _seq(items) -> frozenset[str] | None:
    options: list[frozenset[str]] = []
    run: list[str] = []
    for op, av in items:
        if op is C.LITERAL:
            run.append(chr(av).lower())
            continue
        if run:
            options.append(frozenset({"".join(run)}))
            if op is C.BRANCH and (glued := _joined("".join(run), av[1])) is not None:
                options.append(glued)
            run = []
        req = _node(op, av)
        if req is not None:
            options.append(req)
    if run:
        options.append(frozenset({"".join(run)}))
    return _best(options) if options else None


def _node(op, av) -> frozenset[str] | None:
    if op is C.SUBPATTERN:
        return _seq(av[-1])
    if op is getattr(C, "ATOMIC_GROUP", None):
        return _seq(av)
    if op is C.BRANCH:
        out: set[str] = set()
        for branch in av[1]:
            req = _seq(branch)
            if req is None:
                return None  # this alternative needs no literal at all
            out |= req
        return frozenset(out)
    if op in _REPEATS:
        lo, _, body = av
        return _seq(body) if lo >= 1 else None
    return None  # classes, any, assertions, back-references: no literal guaranteed


def required_keys(rx: re.Pattern | str) -> tuple[str, ...] | None:
    """Lower-case words of which every match contains one; None when there is no such set."""
    pattern = rx.pattern if isinstance(rx, re.Pattern) else rx
    flags = rx.flags if isinstance(rx, re.Pattern) else 0
    return _keys_of(P.parse(pattern, flags))


def _keys_of(tree) -> tuple[str, ...] | None:
    req = _seq(tree)
    if not req or not all(w.isascii() and w for w in req):
        return None
    return tuple(sorted(req, key=lambda w: (-len(w), w)))


_last: tuple[str, str | None] = ("", "")


def lower_ascii(text: str) -> str | None:
    """``text.lower()`` (same length, same offsets) when the text is ASCII, else None.

    The last answer is kept: the engine checks many patterns against one note."""
    global _last
    last = _last  # one read: another thread may replace it
    if last[0] is text:
        return last[1]
    low = text.lower() if text.isascii() else None
    _last = (text, low)
    return low


def _caseless(items) -> bool:
    """No upper-case or non-ASCII letter, scoped flag or back-reference anywhere in the tree."""
    for op, av in items:
        # non-ASCII letters may fold onto ASCII ones ('ſ' matches 's'): refuse them too
        if op in (C.LITERAL, C.NOT_LITERAL):
            if av > 127 or chr(av).lower() != chr(av):
                return False
        elif op is C.RANGE:
            if av[1] > 127 or any(chr(c).lower() != chr(c) for c in range(av[0], av[1] + 1)):
                return False
        elif op is C.IN:
            if not _caseless(av):
                return False
        elif op is C.SUBPATTERN:
            if av[1] or av[2] or not _caseless(av[-1]):  # (?i:...) / (?-i:...)
                return False
        elif op is C.BRANCH:
            if not all(_caseless(b) for b in av[1]):
                return False
        elif op in _REPEATS:
            if not _caseless(av[2]):
                return False
        elif op in (C.ASSERT, C.ASSERT_NOT):
            if not _caseless(av[1]):
                return False
        elif op is getattr(C, "ATOMIC_GROUP", None):
            if not _caseless(av):
                return False
        elif op not in (C.AT, C.ANY, C.CATEGORY, C.NEGATE):
            return False  # back-references, conditionals, anything unforeseen
    return True


def folded(rx: re.Pattern) -> re.Pattern | None:
    """A case-sensitive twin of a case-insensitive, all-lower-case regex: on
    ``text.lower()`` of ASCII text it matches exactly the spans ``rx`` matches
    on ``text``. None when the pattern does not qualify."""
    if not _foldable(rx.pattern, rx.flags):
        return None
    return re.compile(rx.pattern, rx.flags & ~re.IGNORECASE)


def _foldable(pattern: str, flags: int, tree=None) -> bool:
    if not flags & re.IGNORECASE or flags & (re.LOCALE | re.VERBOSE) or not pattern.isascii():
        return False
    return _caseless(tree if tree is not None else P.parse(pattern, flags))


# more keywords than this: the pre-check is not worth its scans (see Gate.check)
_MAX_KEYS = 40


# ------------------------------------------------------------------ what each pattern allows
#
# A Gate needs three facts of its pattern: its keywords, whether a case-sensitive twin can
# mirror it, whether it can match the empty string. Each takes a parse of the pattern in pure
# Python; for the engine's few hundred patterns that was most of its import (a tenth of a
# second of every `rcm code`). They depend only on the pattern, its flags and this module,
# so the first process keeps them in ``$RCM_HOME/cache`` and the next ones read them back;
# the patterns themselves are compiled when first used.

_facts: dict[tuple[str, int], tuple[tuple[str, ...] | None, bool, bool]] | None = None
_facts_added = False


@lru_cache(maxsize=1)
def _facts_key() -> str:
    return icd10cm.source_key(Path(__file__).read_bytes(), str(_MAX_KEYS))


def _facts_path() -> Path:
    return icd10cm.home() / "cache" / f"gate-facts-{_facts_key()}.cache"


def facts(pattern: str, flags: int) -> tuple[tuple[str, ...] | None, bool, bool]:
    """(keywords, foldable, matches something non-empty) of a pattern; see ``required_keys``,
    ``folded`` and ``Gate``."""
    global _facts, _facts_added
    if _facts is None:
        try:
            _facts = marshal.loads(_facts_path().read_bytes())
        except (OSError, EOFError, ValueError, TypeError):
            _facts = {}
    got = _facts.get((pattern, flags))
    if got is None:
        tree = P.parse(pattern, flags)
        got = (
            _keys_of(tree),
            _foldable(pattern, flags, tree),
            tree.getwidth()[0] > 0,
        )
        _facts[(pattern, flags)] = got
        _facts_added = True
    return got


def keep_facts() -> None:
    """Write the facts learnt in this process for the next ones (once the engine's modules
    have made their Gates). A home that cannot be written is skipped: each process parses."""
    global _facts_added
    if not _facts_added or _facts is None:
        return
    try:
        icd10cm.write_atomic(_facts_path(), marshal.dumps(_facts))
        _facts_added = False
    except (OSError, ValueError):
        pass


class Gate:
    """A regex behind its keyword pre-check; ``search``/``finditer`` answer as the regex
    does (with ``fold``: the same spans, on lower-cased text), only faster.

    Without ``fold`` the caller gets the regex's own matches on its own text, but
    the scan for them runs case-sensitively on the lower-cased text (``twin``):
    it finds the same spans two to four times faster, and the regex then only
    matches at each span's start (``rx.match(text, start)``: look-behinds and
    ``\\b`` still see the text before it), which gives the very match its scan
    would have found there. Only for patterns that cannot match the empty string,
    so that ``finditer`` never steps over an empty match.

    The regex and its twin are compiled when first needed: a note whose text holds none
    of a Gate's keywords never needs them."""

    __slots__ = ("_rx", "keys", "check", "pattern", "flags", "folding", "_fast", "_twin", "_ok")

    def __init__(self, rx: re.Pattern | str, fold: bool = False, flags: int = 0):
        if isinstance(rx, re.Pattern):
            self._rx: re.Pattern | None = rx
            self.pattern, self.flags = rx.pattern, rx.flags
        else:  # compiled on first use (``gated``)
            self._rx, self.pattern, self.flags = None, rx, int(flags)  # a plain int: marshal
        keys, foldable, nonempty = facts(self.pattern, self.flags)
        self.keys = keys
        # the pre-check scans the text once per keyword: with dozens of them (a list of
        # drug or test names) that costs more than the regex, which then runs anyway
        self.check = keys if keys is not None and len(keys) <= _MAX_KEYS else None
        self._ok = (foldable, nonempty)
        self.folding = fold and foldable  # matches run on lower-cased text (``fold``)
        self._fast: re.Pattern | None | bool = False  # False: not compiled yet
        self._twin: re.Pattern | None | bool = False

    @property
    def rx(self) -> re.Pattern:
        rx = self._rx
        if rx is None:
            rx = self._rx = re.compile(self.pattern, self.flags)
        return rx

    @property
    def fast(self) -> re.Pattern | None:
        """The case-sensitive twin matched on lower-cased text when folding (else None)."""
        f = self._fast
        if f is False:
            f = self._fast = self._caseless() if self.folding else None
        return f  # type: ignore[return-value]

    def twin(self) -> re.Pattern | None:
        """The case-sensitive twin of the regex used to find spans (None: none)."""
        t = self._twin
        if t is False:
            t = self._twin = self._caseless() if all(self._ok) else None
        return t  # type: ignore[return-value]

    def _caseless(self) -> re.Pattern:
        return re.compile(self.pattern, self.flags & ~re.IGNORECASE)

    def possible(self, low: str | None) -> bool:
        """False only when the regex certainly has no match in the text ``low`` was lowered from."""
        if low is None or self.check is None:
            return True
        for k in self.check:
            if k in low:
                return True
        return False

    def present(self, low: str | None) -> tuple[str, ...] | None:
        """The keywords found in ``low`` (a note): a sentence of that note can
        only match when it holds one of them. None: no pre-check possible."""
        if low is None or self.keys is None:
            return None
        return tuple([k for k in self.keys if k in low])  # a list: no generator frames

    def search(self, text: str) -> re.Match | None:
        low = lower_ascii(text)
        if low is None:
            return self.rx.search(text)
        if self.check is not None and not self.possible(low):
            return None
        fast = self._fast
        if fast is False:
            fast = self.fast
        if fast is not None:
            return fast.search(low)  # type: ignore[union-attr]
        twin = self._twin
        if twin is False:
            twin = self.twin()
        if twin is None:
            return self.rx.search(text)
        m = twin.search(low)  # type: ignore[union-attr]
        return None if m is None else self.rx.match(text, m.start())

    def scan(self, text: str, low: str | None) -> Iterator[re.Match]:
        """``finditer`` when the caller has lowered the text already (None: not ASCII)."""
        if low is None:
            return self.rx.finditer(text)
        fast = self._fast
        if fast is False:
            fast = self.fast
        if fast is not None:
            return fast.finditer(low)  # type: ignore[union-attr]
        twin = self._twin
        if twin is False:
            twin = self.twin()
        if twin is None:
            return self.rx.finditer(text)
        return _relay(self.rx, text, twin.finditer(low))  # type: ignore[union-attr]

    def finditer(self, text: str) -> Iterator[re.Match]:
        low = lower_ascii(text)
        if low is not None and self.check is not None and not self.possible(low):
            return iter(())
        return self.scan(text, low)


def _relay(rx: re.Pattern, text: str, spans: Iterator[re.Match]) -> Iterator[re.Match]:
    """The regex's own match at the start of each span its twin found."""
    match = rx.match
    for m in spans:
        yield match(text, m.start())  # type: ignore[misc]


def any_in(keys: tuple[str, ...] | None, low: str | None) -> bool:
    """Whether a text (lowered) may match, given ``Gate.present`` of its note."""
    if keys is None or low is None:
        return True
    for k in keys:
        if k in low:
            return True
    return False


def fold(*gates: Gate) -> None:
    """Declare that the callers of these gates read only spans, digits or
    lower-cased groups of a match, so they may match on lower-cased text."""
    for g in gates:
        g.folding, g._fast = g._ok[0], False


def gated(pattern: str, flags: int = 0, fold: bool = False) -> Gate:
    """``re.compile`` with a keyword pre-check (and folding, see ``Gate``), compiled when
    first used."""
    return Gate(pattern, fold, flags)


def by_initial(alternatives: str) -> str:
    """``a|b|...`` (each alternative starting with a plain lower-case letter) grouped
    by that letter, in their order within each group: ``a(?:moxicillin|ugmentin)|b(?:...)``.

    The same matches: at any position only the group of its letter can match, and within
    it the alternatives are tried in the original order. ``re`` tries every alternative
    at every word start; grouped, it tries the few of one letter, so a list of a hundred
    drug or test names scans several times faster. Anything else is returned unchanged."""
    parts, depth, cur, i = [], 0, "", 0
    while i < len(alternatives):
        ch = alternatives[i]
        if ch == "\\":
            cur += alternatives[i : i + 2]
            i += 2
            continue
        if ch == "[":  # a class may hold '|' or ')'
            j = alternatives.index("]", i + 2)
            cur += alternatives[i : j + 1]
            i = j + 1
            continue
        depth += ch == "("
        depth -= ch == ")"
        if ch == "|" and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    parts.append(cur)
    if not all(len(p) >= 2 and "a" <= p[0] <= "z" and p[1] not in "?*+{" for p in parts):
        return alternatives
    groups: dict[str, list[str]] = {}
    for p in parts:
        groups.setdefault(p[0], []).append(p[1:])
    return "|".join(
        f"{k}{rest[0]}" if len(rest) == 1 else f"{k}(?:{'|'.join(rest)})"
        for k, rest in groups.items()
    )
