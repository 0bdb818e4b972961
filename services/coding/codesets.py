"""Loading code sets (`rcm codesets load`), each release recorded with its dates.

ICD-10-CM comes from the CMS tabular data shipped in the simple-icd-10-cm wheel, and
older (or newer) releases from the CMS files the user supplies (``read_icd10cm``: the
fixed-width order file ``icd10cm_order_YYYY.txt`` and/or the tabular list
``icd10cm_tabular_YYYY.xml``, plain or in CMS's zip), which are kept for offline
coding and the services (``shared.icd10cm.save_release``) and loaded into Postgres;
CPT numbers with our own labels (plus a user-supplied licensed descriptor file);
HCPCS Level II from a CMS quarterly file (or the bundled sample).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import asyncpg

from services.coding.domain import cpt as cpt_codes
from shared import icd10cm

S = "coding"
ICD10CM_COLUMNS = [
    "version",
    "code",
    "description",
    "billable",
    "parent",
    "inclusion_terms",
    "excludes1",
    "excludes2",
    "code_first",
    "use_additional",
    "code_also",
    "seventh_chars",
    "search_text",
]


def icd10cm_records() -> list[tuple]:
    """One row per ICD-10-CM code of the bundled release (inherited notes resolved)."""
    rows = []
    for code, desc, billable in icd10cm.iter_codes():
        inclusion = icd10cm.inclusion_terms(code)
        seven = icd10cm.seven_chr_def(code) if len(code) >= 3 else {}
        rows.append(
            (
                icd10cm.VERSION,
                code,
                desc,
                billable,
                icd10cm.parent(code),
                inclusion,
                icd10cm.excludes1(code),
                icd10cm.excludes2(code),
                icd10cm.code_first(code),
                icd10cm.use_additional(code),
                icd10cm.code_also(code),
                json.dumps(seven) if seven else None,
                " ".join([desc, *inclusion]),
            )
        )
    return rows


async def _replace(
    conn: asyncpg.Connection,
    system: str,
    version: str,
    table: str,
    columns: list[str],
    records: list[tuple],
    *,
    effective_from: date,
    effective_to: date | None,
    source: str,
    force: bool,
) -> int:
    exists = await conn.fetchval(
        f"SELECT code_count FROM {S}.code_set_version WHERE system = $1 AND version = $2",
        system,
        version,
    )
    if exists is not None and not force:
        return 0
    await conn.execute(f"DELETE FROM {S}.{table} WHERE version = $1", version)
    await conn.copy_records_to_table(table, schema_name=S, columns=columns, records=records)
    await conn.execute(
        f"INSERT INTO {S}.code_set_version (system, version, effective_from, effective_to, source, code_count)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (system, version) DO UPDATE SET effective_from = $3,"
        " effective_to = $4, source = $5, code_count = $6, loaded_at = now()",
        system,
        version,
        effective_from,
        effective_to,
        source,
        len(records),
    )
    return len(records)


async def load_all(
    conn: asyncpg.Connection,
    *,
    cpt_descriptors: Path | None = None,
    hcpcs_file: Path | None = None,
    cpt_version: str = "2026",
    hcpcs_version: str | None = None,
    force: bool = False,
) -> dict[str, int]:
    """Load every code set in one transaction; returns codes loaded per system (0 = already there)."""
    descriptors = (
        cpt_codes.load_cpt_descriptors(cpt_descriptors.read_text()) if cpt_descriptors else {}
    )
    hcpcs = (
        cpt_codes.parse_hcpcs_quarterly(hcpcs_file.read_text())
        if hcpcs_file
        else cpt_codes.hcpcs_sample()
    )
    out = {}
    async with conn.transaction():
        out["icd10cm"] = await _replace(
            conn,
            "icd10cm",
            icd10cm.VERSION,
            "icd10cm_code",
            ICD10CM_COLUMNS,
            icd10cm_records(),
            effective_from=icd10cm.EFFECTIVE_FROM,
            effective_to=icd10cm.EFFECTIVE_TO,
            source="CMS ICD-10-CM tabular (simple-icd-10-cm wheel)",
            force=force,
        )
        cpt_rows = [
            (cpt_version, c.code, c.label, c.category, descriptors.get(c.code))
            for c in cpt_codes.cpt_table().values()
        ]
        out["cpt"] = await _replace(
            conn,
            "cpt",
            cpt_version,
            "cpt_code",
            ["version", "code", "short_label", "category", "descriptor"],
            cpt_rows,
            effective_from=date(int(cpt_version[:4]), 1, 1),
            effective_to=date(int(cpt_version[:4]), 12, 31),
            source="rcm short labels"
            + (f" + descriptors from {cpt_descriptors.name}" if descriptors else ""),
            force=force or bool(descriptors),
        )
        hv = hcpcs_version or (hcpcs_file.stem if hcpcs_file else "sample")
        out["hcpcs"] = await _replace(
            conn,
            "hcpcs",
            hv,
            "hcpcs_code",
            ["version", "code", "short_description", "long_description", "kind"],
            [(hv, h.code, h.short_description, h.long_description, h.kind) for h in hcpcs.values()],
            effective_from=date.today().replace(month=1, day=1),
            effective_to=None,
            source=hcpcs_file.name if hcpcs_file else "bundled sample",
            force=force,
        )
    return out


async def search_icd10cm(
    conn: asyncpg.Connection, phrase: str, limit: int = 5, version: str = icd10cm.VERSION
):
    """Postgres full-text search over descriptions and inclusion terms (billable codes first)."""
    return await conn.fetch(
        f"SELECT code, description, ts_rank(tsv, q) AS rank FROM {S}.icd10cm_code,"
        " plainto_tsquery('english', $1) q WHERE version = $2 AND tsv @@ q"
        " ORDER BY billable DESC, rank DESC, length(code) LIMIT $3",
        phrase,
        version,
        limit,
    )


# --------------------------------------------------------------------------- CMS ICD-10-CM files

# Member names in CMS's zips (icd10cm_order_2024.txt, icd10cm-order-April-1-2026.txt,
# icd10cm_tabular_2024.xml, icd10cm-tabular-April-1-2026.xml); the zips also hold the
# index, drug and neoplasm tables, addenda and a billable-only code list, which are skipped.
_ORDER_MEMBER = re.compile(r"(^|/)icd10cm[-_ ]order[-_ ][^/]*\.txt$", re.I)
_TABULAR_MEMBER = re.compile(r"(^|/)icd10cm?[-_ ]tabular[-_ ][^/]*\.xml$", re.I)
_YEAR = re.compile(r"(?<!\d)(20\d\d)(?!\d)")
_MONTHS = {
    m: i
    for i, names in enumerate(
        ("jan january", "feb february", "mar march", "apr april", "may", "jun june"),
        start=1,
    )
    for m in names.split()
}
_MONTH = re.compile(r"(?<![a-z])(" + "|".join(_MONTHS) + r")(?![a-z])", re.I)
_ORDER_LAYOUT = (
    "expected the CMS order-file layout: order number in columns 1-5, the code in 7-13,"
    " 1 (billable) or 0 (header) in 15, descriptions from 17"
)


@dataclass
class Icd10cmRelease:
    """One ICD-10-CM release read from CMS files."""

    version: str  # see shared.icd10cm.parse_version
    source: str  # the files it was read from
    codes: dict[str, tuple[bool, str]]  # code without the dot -> (billable, description)
    tabular: icd10cm.Tabular | None = None  # notes etc., when a tabular list was given


def version_from_name(name: str) -> str | None:
    """``icd10cm_order_2024.txt`` -> ``"2024"``; ``icd10cm-order-April-1-2026.txt`` ->
    ``"2026-04"`` (an update published mid-year); None without a year."""
    years = _YEAR.findall(name)
    if not years:
        return None
    month = _MONTH.search(name)
    return f"{years[-1]}-{_MONTHS[month.group(1).lower()]:02d}" if month else years[-1]


def parse_order_file(text: str, where: str) -> dict[str, tuple[bool, str]]:
    """The CMS fixed-width order file (``icd10cm_order_YYYY.txt``): code -> (billable,
    long description). Raises ValueError naming the first line that does not fit."""
    codes: dict[str, tuple[bool, str]] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if (
            len(line) < 17
            or not line[:5].isdigit()
            or line[5] != " "
            or line[13] != " "
            or line[14] not in "01"
            or line[15] != " "
        ):
            raise ValueError(f"{where}: line {n}: {_ORDER_LAYOUT}")
        code = line[6:13].strip()
        if not icd10cm.is_code_shaped(code):
            raise ValueError(f"{where}: line {n}: columns 7-13 hold no ICD-10-CM code")
        codes[code] = (line[14] == "1", (line[77:] or line[16:76]).strip())
    if not codes:
        raise ValueError(f"{where}: no codes ({_ORDER_LAYOUT})")
    return codes


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _members(path: Path) -> list[tuple[str, str | None, bytes]]:
    """(name to show, version its name says, content) of the order files and tabular
    lists in one file or zip (a member's own name first, then the zip's)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ValueError(f"{path}: cannot read ({e.strerror})") from None
    if not zipfile.is_zipfile(io.BytesIO(data)):
        return [(path.name, version_from_name(path.name), data)]
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = [
                n for n in z.namelist() if _ORDER_MEMBER.search(n) or _TABULAR_MEMBER.search(n)
            ]
            if not names:
                raise ValueError(
                    f"{path}: the zip holds no icd10cm order file (icd10cm_order_YYYY.txt)"
                    " or tabular list (icd10cm_tabular_YYYY.xml)"
                )
            return [
                (
                    f"{path.name}:{n}",
                    version_from_name(n.rsplit("/", 1)[-1]) or version_from_name(path.name),
                    z.read(n),
                )
                for n in names
            ]
    except zipfile.BadZipFile as e:
        raise ValueError(f"{path}: damaged zip ({e})") from None


def read_icd10cm(paths: Sequence[Path], version: str | None = None) -> Icd10cmRelease:
    """One release from CMS files: order file(s) and/or tabular list(s), plain or zipped.

    The order file is authoritative for the codes and which are billable; a tabular list
    adds its notes (alone, it gives the codes too, 7th-character extensions included).
    ``version`` overrides the one taken from the file names (``_2024`` -> "2024", an
    ``April`` update -> "2024-04") or the tabular list's ``<version>``. Raises ValueError
    naming the file (and line) at fault, when versions disagree or none is found.
    """
    orders: list[dict[str, tuple[bool, str]]] = []
    tabulars: list[tuple[str, bytes]] = []
    named: dict[str, str] = {}
    for path in paths:
        for name, v, data in _members(path):
            head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
            if head.startswith(b"<"):
                tabulars.append((name, data))
                v = v or icd10cm.tabular_version(data)
            else:
                orders.append(parse_order_file(_decode(data), name))
            if v is not None:
                named[name] = v
    if version is None:
        found = sorted(set(named.values()))
        if len(found) > 1:
            listed = ", ".join(f"{n} ({v})" for n, v in named.items())
            raise ValueError(f"files of different ICD-10-CM releases: {listed}; load one at a time")
        if not found:
            raise ValueError(
                "no release year in the file names or the tabular list; name it with"
                " --release YYYY (or YYYY-04 for an April update)"
            )
        version = found[0]
    icd10cm.parse_version(version)
    tabular = None
    for name, data in tabulars:
        try:
            tabular = icd10cm.parse_tabular(data)
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
    codes: dict[str, tuple[bool, str]] = {}
    for order in orders:
        codes.update(order)
    if not codes and tabular is not None:
        codes = {c: (tabular.is_billable(c), tabular.desc[c]) for c in tabular.order}
    source = ", ".join(p.name for p in paths)
    return Icd10cmRelease(version, source, codes, tabular)


def _parent(code: str, codes: dict) -> str | None:
    for n in range(len(code) - 1, 2, -1):
        if code[:n] in codes:
            return code[:n]
    return None


def release_records(rel: Icd10cmRelease) -> list[tuple]:
    """``icd10cm_code`` rows of a release read from CMS files (notes when a tabular list was given)."""
    t = rel.tabular
    rows = []
    for code, (billable, desc) in rel.codes.items():

        def notes(kind: str, inherit: bool = True, code: str = code) -> list[str]:
            return t.own_notes(code, kind, inherit) if t is not None else []

        inclusion = notes("inclusion", False) + notes("includes", False)
        seven = t.seven_def(code) if t is not None else {}
        rows.append(
            (
                rel.version,
                code,
                desc,
                billable,
                _parent(code, rel.codes),
                inclusion,
                notes("excludes1"),
                notes("excludes2"),
                notes("code_first"),
                notes("use_additional"),
                notes("code_also"),
                json.dumps(seven) if seven else None,
                " ".join([desc, *inclusion]),
            )
        )
    return rows


def store_icd10cm(rel: Icd10cmRelease) -> icd10cm.Release:
    """Keep the release for offline coding and the services (``$RCM_HOME/codesets``)."""
    return icd10cm.save_release(
        rel.version, rel.source, {c: billable for c, (billable, _) in rel.codes.items()}
    )


async def load_icd10cm_release(
    conn: asyncpg.Connection, rel: Icd10cmRelease, *, force: bool = False
) -> int:
    """Load a release read from CMS files into Postgres; 0 when already there (and not ``force``)."""
    release = icd10cm.Release(rel.version)
    async with conn.transaction():
        return await _replace(
            conn,
            "icd10cm",
            rel.version,
            "icd10cm_code",
            ICD10CM_COLUMNS,
            release_records(rel),
            effective_from=release.effective_from,
            effective_to=release.fiscal_year_end,
            source=f"CMS ICD-10-CM ({rel.source})",
            force=force,
        )
