"""ICD-10-CM code set (CMS, April 2026 tabular) as a small in-memory accessor.

The data files ship inside the ``simple_icd_10_cm`` wheel. That library builds
a heavy object tree on import (about 3 s), so this module parses the same two
files itself (tabular XML + code list, about 0.6 s) into compact dictionaries
on first use and keeps them for the life of the process. Nothing is written to
disk.

Codes are handled without the dot (``S93401A``); every function accepts either
form. Notes (Excludes1, Code first, Use additional code, 7th characters) are
returned as they appear in the tabular list, own notes first, then those of the
ancestors (subcategory, category, block, chapter), because they are inherited.

Release window: this is the April 1, 2026 update of FY2026 (``EFFECTIVE_FROM``
.. ``EFFECTIVE_TO``). Being practical, ``is_billable_on`` accepts any date of
service on or after ``ACCEPT_FROM`` (2025-10-01, the start of FY2026): the
April update only adds a handful of codes, and no older release is loaded, so
earlier dates of service answer ``None`` (unknown) rather than guessing.
"""

from __future__ import annotations

import importlib.util
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

VERSION = "2026-04"
EFFECTIVE_FROM = date(2026, 4, 1)
EFFECTIVE_TO = date(2026, 9, 30)
ACCEPT_FROM = date(2025, 10, 1)

_XML = "icd10c-tabular-April-1-2026.xml"
_LIST = "code-list-April-2026.txt"
_NOTE_TAGS = {
    "excludes1": "excludes1",
    "excludes2": "excludes2",
    "inclusionTerm": "inclusion",
    "includes": "includes",
    "codeFirst": "code_first",
    "useAdditionalCode": "use_additional",
    "codeAlso": "code_also",
}


class _CodeSet:
    """Dictionaries built once from the tabular list."""

    def __init__(self) -> None:
        self.desc: dict[str, str] = {}  # codes and blocks/chapters
        self.parent: dict[str, str] = {}  # code -> parent code, category -> block, block -> chapter
        self.children: dict[str, list[str]] = {}
        self.notes: dict[str, dict[str, list[str]]] = {}  # sparse
        self.seven: dict[str, dict[str, str]] = {}  # node that defines 7th characters
        self.blocks: set[str] = set()  # chapters and sections: not codes
        self.order: list[str] = []  # tabular order of codes
        self.seven_users: set[str] = set()  # leaves whose children are 7th-character extensions


def _data_dir() -> Path:
    # find_spec of a top-level package does not execute it (importing it would
    # trigger the library's own slow load).
    spec = importlib.util.find_spec("simple_icd_10_cm")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("ICD-10-CM data package simple_icd_10_cm is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _build() -> _CodeSet:
    cs = _CodeSet()
    ddir = _data_dir()
    confirmed = {
        line.split(" ")[0].strip() for line in (ddir / _LIST).read_text("utf-8").splitlines()
    }
    root = ET.parse(ddir / _XML).getroot()

    def walk(el: ET.Element, parent: str | None, seven_from: str | None) -> None:
        if el.tag == "section":
            name = el.get("id", "")
        else:
            n = el.find("name")
            name = (n.text or "").strip() if n is not None else ""
        name = name.replace(".", "")
        is_block = el.tag in ("chapter", "section")
        if is_block:
            name = "ch" + name if el.tag == "chapter" else name
            cs.blocks.add(name)
        else:
            cs.order.append(name)
        d = el.find("desc")
        cs.desc[name] = (d.text or "").strip() if d is not None else ""
        if parent is not None:
            cs.parent[name] = parent
            cs.children.setdefault(parent, []).append(name)
        kids = []
        for sub in el:
            tag = sub.tag
            if tag in ("diag", "section"):
                kids.append(sub)
            elif tag in _NOTE_TAGS:
                texts = [t.text.strip() for t in sub if t.tag == "note" and t.text]
                if texts:
                    cs.notes.setdefault(name, {}).setdefault(_NOTE_TAGS[tag], []).extend(texts)
            elif tag == "sevenChrDef":
                exts: dict[str, str] = {}
                last = None
                for x in sub:
                    if x.tag == "extension":
                        last = x.get("char")
                        exts[last] = (x.text or "").strip()
                    elif x.tag == "note" and last and x.text:
                        exts[last] += "/" + x.text.strip()
                cs.seven[name] = exts
                seven_from = name
        for k in kids:
            walk(k, name, seven_from)
        if not kids and not is_block and seven_from is not None:
            # Leaf that needs a 7th character: the billable codes are the
            # X-padded extensions the code list confirms.
            base = name.ljust(6, "X")
            cs.seven_users.add(name)
            for ch, label in cs.seven[seven_from].items():
                ext = base + ch
                if ext in confirmed:
                    cs.desc[ext] = f"{cs.desc[name]}, {label.split('/')[0]}"
                    cs.parent[ext] = name
                    cs.children.setdefault(name, []).append(ext)
                    cs.order.append(ext)

    for chapter in root.iter("chapter"):
        walk(chapter, None, None)
    return cs


_lock = threading.Lock()
_cs: _CodeSet | None = None


def _set() -> _CodeSet:
    global _cs
    if _cs is None:
        with _lock:
            if _cs is None:
                _cs = _build()
    return _cs


def load() -> None:
    """Load the code set now (otherwise it loads on first use)."""
    _set()


# --------------------------------------------------------------------------- lookups


# Lookups run hundreds of times per coded encounter; the code set never
# changes once loaded, so answers are memoised in plain dicts (bounded where
# the key is caller-supplied text).
_NORM: dict[str, str] = {}
_NORM_MAX = 200_000


def normalize(code: str) -> str:
    """``' s93.401a '`` -> ``'S93401A'``."""
    if type(code) is str:
        c = _NORM.get(code)
        if c is None:
            c = code.strip().replace(".", "").replace(" ", "").upper()
            if len(_NORM) >= _NORM_MAX:
                _NORM.clear()
            _NORM[code] = c
        return c
    return str(code).strip().replace(".", "").replace(" ", "").upper()


def with_dot(code: str) -> str:
    c = normalize(code)
    return c if len(c) <= 3 else f"{c[:3]}.{c[3:]}"


def is_valid(code: str) -> bool:
    """A real ICD-10-CM code (category or below), billable or not."""
    c = normalize(code)
    cs = _set()
    return c in cs.desc and c not in cs.blocks


def is_billable(code: str) -> bool:
    """Valid leaf code, which includes a valid 7th character where one is required."""
    c = normalize(code)
    cs = _set()
    return c in cs.desc and c not in cs.blocks and c not in cs.children


_KIDS: dict[str, tuple[str, ...]] = {}
_ANCESTORS: dict[str, tuple[str, ...]] = {}
_NOTES: dict[tuple[str, str, bool], tuple[str, ...]] = {}
_REFS: dict[str, tuple[tuple[str, str], ...]] = {}


def description(code: str) -> str | None:
    c = normalize(code)
    return _set().desc.get(c) if is_valid(c) else None


def parent(code: str) -> str | None:
    """Parent code, or None for a category (3 characters) or an unknown code."""
    c = normalize(code)
    if not is_valid(c):
        return None
    p = _set().parent.get(c)
    return None if p is None or p in _set().blocks else p


def children(code: str) -> list[str]:
    c = normalize(code)
    kids = _KIDS.get(c)
    if kids is None:
        kids = tuple(_set().children.get(c, ())) if is_valid(c) else ()
        if len(_KIDS) >= _NORM_MAX:
            _KIDS.clear()
        _KIDS[c] = kids
    return list(kids)


def ancestors(code: str) -> list[str]:
    """Parent chain up to the chapter, blocks included (nearest first)."""
    return list(_ancestors(normalize(code)))


def _ancestors(c: str) -> tuple[str, ...]:
    got = _ANCESTORS.get(c)
    if got is not None:
        return got
    key = c
    cs = _set()
    out: list[str] = []
    seen = {c}
    # A one-category section (e.g. B10) shares its id with its code: stop at a repeat.
    while c in cs.parent and cs.parent[c] not in seen:
        c = cs.parent[c]
        seen.add(c)
        out.append(c)
    if len(_ANCESTORS) >= _NORM_MAX:
        _ANCESTORS.clear()
    _ANCESTORS[key] = got = tuple(out)
    return got


def _notes(code: str, kind: str, inherit: bool = True) -> list[str]:
    c = normalize(code)
    key = (c, kind, inherit)
    got = _NOTES.get(key)
    if got is None:
        cs = _set()
        out: list[str] = []
        if c in cs.desc:
            chain = [c, *_ancestors(c)] if inherit else [c]
            for n in chain:
                out.extend(cs.notes.get(n, {}).get(kind, ()))
        if len(_NOTES) >= _NORM_MAX:
            _NOTES.clear()
        _NOTES[key] = got = tuple(out)
    return list(got)


def excludes1(code: str) -> list[str]:
    return _notes(code, "excludes1")


def excludes2(code: str) -> list[str]:
    return _notes(code, "excludes2")


def inclusion_terms(code: str) -> list[str]:
    """Inclusion terms and 'Includes' notes of the code itself (not inherited)."""
    return _notes(code, "inclusion", False) + _notes(code, "includes", False)


def code_first(code: str) -> list[str]:
    return _notes(code, "code_first")


def use_additional(code: str) -> list[str]:
    return _notes(code, "use_additional")


def code_also(code: str) -> list[str]:
    return _notes(code, "code_also")


def seven_chr_def(code: str) -> dict[str, str]:
    """7th characters that apply to the code (nearest definition), else {}."""
    c = normalize(code)
    cs = _set()
    for n in [c, *_ancestors(c)]:
        if n in cs.seven:
            return dict(cs.seven[n])
    return {}


def seventh_char_problem(code: str) -> str | None:
    """Why a code needing a 7th character is not billable, else None."""
    c = normalize(code)
    if is_billable(c):
        return None
    defs = seven_chr_def(c[:6]) or seven_chr_def(c[:5]) or seven_chr_def(c[:3])
    if not defs or not is_valid(c[:3]):
        return None
    if len(c) < 7:
        # only when the code is the deepest subcategory (its children are extensions)
        kids = children(c) if is_valid(c) else []
        if is_valid(c) and kids and all(len(k) == 7 for k in kids):
            return "missing 7th character"
        return None
    if c[6] not in defs:
        return f"invalid 7th character {c[6]!r}"
    return "7th character not valid for this code (check placeholder X)"


def is_billable_on(code: str, dos: date) -> bool | None:
    """Billable on the date of service; None when the code is unknown or the date
    is outside what this release can answer (before ``ACCEPT_FROM``)."""
    if dos < ACCEPT_FROM or not is_valid(code):
        return None
    return is_billable(code)


def iter_codes() -> Iterator[tuple[str, str, bool]]:
    """(code without dot, description, billable) in tabular order."""
    cs = _set()
    for c in cs.order:
        yield c, cs.desc[c], c not in cs.children


def iter_terms() -> Iterator[tuple[str, str]]:
    """(code, term) for every description and inclusion term, for search indexes.

    The 7th-character extensions are left out: their text is their parent's plus
    'initial encounter' and the like.
    """
    cs = _set()
    for c in cs.order:
        p = cs.parent.get(c)
        if len(c) == 7 and p is not None and p in cs.seven_users:
            continue
        yield c, cs.desc[c]
        notes = cs.notes.get(c)
        if notes:
            for t in [*notes.get("inclusion", ()), *notes.get("includes", ())]:
                yield c, t


def chapter(code: str) -> str | None:
    """Chapter number as a string ('1'..'22') of a valid code."""
    anc = ancestors(code)
    return anc[-1][2:] if anc and anc[-1].startswith("ch") else None


# --------------------------------------------------------------------------- code references in notes

_REF = re.compile(
    r"([A-Z]\d[0-9A-Z](?:\.[0-9A-Z]*)?)(?:\s*-\s*([A-Z]\d[0-9A-Z](?:\.[0-9A-Z]*)?))?(\.?-)?"
)


def code_refs(note: str) -> list[tuple[str, str]]:
    """Code ranges referenced in parentheses of a note, as (low, high) prefixes.

    ``'(E08.-)'`` -> [('E08', 'E08')]; ``'(O10-O11, O13-O16)'`` ->
    [('O10', 'O11'), ('O13', 'O16')]; ``'(N18.1-N18.6)'`` -> [('N181', 'N186')].
    """
    got = _REFS.get(note)
    if got is None:
        out = []
        for group in re.findall(r"\(([^()]*)\)", note):
            for lo, hi, _ in _REF.findall(group):
                lo = normalize(lo)
                out.append((lo, normalize(hi) if hi else lo))
        if len(_REFS) >= _NORM_MAX:
            _REFS.clear()
        _REFS[note] = got = tuple(out)
    return list(got)


def in_range(code: str, ref: tuple[str, str]) -> bool:
    c = normalize(code)
    lo, hi = ref
    return c[: len(lo)] >= lo and c[: len(hi)] <= hi


def excludes1_conflict(a: str, b: str) -> str | None:
    """The Excludes1 note that forbids reporting a with b (either direction), else None."""
    a, b = normalize(a), normalize(b)
    for x, y in ((a, b), (b, a)):
        for note in excludes1(x):
            for ref in code_refs(note):
                if in_range(y, ref) and not in_range(x, ref):
                    return note
    return None


# --------------------------------------------------------------------------- age / sex edits


@dataclass(frozen=True)
class AgeSexRule:
    """Who a code range is for. Ages in whole years (newborn: 0)."""

    lo: str
    hi: str
    sex: str | None = None  # "M" / "F"
    min_age: int | None = None
    max_age: int | None = None
    why: str = ""


# Small curated table, after the code set's chapter notes ("for use only on
# maternal records", "newborn records only") and the CMS Medicare Code Editor's
# maternity/newborn/pediatric/adult and sex edits.
AGE_SEX_RULES: tuple[AgeSexRule, ...] = (
    AgeSexRule("O00", "O9A", "F", 12, 55, "maternity (chapter 15)"),
    AgeSexRule("Z3A", "Z3A", "F", 12, 55, "weeks of gestation"),
    AgeSexRule("Z33", "Z34", "F", 12, 55, "pregnancy"),
    AgeSexRule("Z37", "Z37", "F", 12, 55, "outcome of delivery"),
    AgeSexRule("Z39", "Z39", "F", 12, 55, "postpartum care"),
    AgeSexRule("P00", "P96", None, 0, 0, "perinatal (newborn records only)"),
    AgeSexRule("Z38", "Z38", None, 0, 0, "liveborn infant"),
    AgeSexRule("Z001", "Z001", None, 0, 17, "routine child health exam"),
    AgeSexRule("Z000", "Z000", None, 18, None, "adult general medical exam"),
    AgeSexRule("Z681", "Z684", None, 20, None, "adult body mass index"),
    AgeSexRule("Z685", "Z685", None, 2, 19, "pediatric body mass index"),
    AgeSexRule("N40", "N53", "M", None, None, "male genital organs"),
    AgeSexRule("C60", "C63", "M", None, None, "malignant neoplasm of male genital organs"),
    AgeSexRule("D29", "D29", "M", None, None, "benign neoplasm of male genital organs"),
    AgeSexRule("Z125", "Z125", "M", None, None, "prostate cancer screening"),
    AgeSexRule("N70", "N98", "F", None, None, "female pelvic and genital organs"),
    AgeSexRule("C51", "C58", "F", None, None, "malignant neoplasm of female genital organs"),
    AgeSexRule("D25", "D28", "F", None, None, "benign neoplasm of female genital organs"),
    AgeSexRule("Z124", "Z124", "F", None, None, "cervical cancer screening"),
    AgeSexRule("Z014", "Z014", "F", None, None, "gynecological examination"),
)


_AGE_SEX_OF: dict[str, tuple[AgeSexRule, ...]] = {}  # the rules whose range holds a code


def age_sex_conflicts(code: str, age_years: int, sex: str) -> list[tuple[str, str, str]]:
    """[(kind 'sex'|'age', severity, reason)]: sex conflicts are blocking, age conflicts warnings."""
    c = normalize(code)
    out = []
    rules = _AGE_SEX_OF.get(c)
    if rules is None:
        rules = tuple(r for r in AGE_SEX_RULES if in_range(c, (r.lo, r.hi)))
        if len(_AGE_SEX_OF) >= _NORM_MAX:
            _AGE_SEX_OF.clear()
        _AGE_SEX_OF[c] = rules
    for r in rules:
        if r.sex and sex in ("M", "F") and sex != r.sex:
            out.append(
                (
                    "sex",
                    "blocking",
                    f"{r.why}: code is for {'female' if r.sex == 'F' else 'male'} patients",
                )
            )
        if (r.min_age is not None and age_years < r.min_age) or (
            r.max_age is not None and age_years > r.max_age
        ):
            span = f"{r.min_age if r.min_age is not None else 0}-{r.max_age if r.max_age is not None else 124}"
            out.append(("age", "warning", f"{r.why}: code is for ages {span}"))
    return out
