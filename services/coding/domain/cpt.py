"""CPT and HCPCS Level II code tables.

CPT is licensed by the AMA: the bundled ``cpt_codes.csv`` holds code numbers
with the project's own short labels and an engine category. Sites with a CPT
licence load the real descriptors with ``load_cpt_descriptors``.

HCPCS Level II comes from CMS's quarterly update. ``parse_hcpcs_quarterly``
reads the fixed-width "record layout" text file of that release
(HCPC<YYYY>_<MON>_ANWEB ... ``_v`` txt): positions 1-5 code (modifier records:
4-5), 6-10 sequence number, 11 record id (3 = first line of a procedure,
4 = its continuation, 7 = first line of a modifier, 8 = continuation), 12-91
long description, 92-119 short description; the rest of the 320-character
record (pricing, coverage, dates) is not used here. It also accepts the CSV
export of the same release (header with ``HCPC``, ``LONG DESCRIPTION``,
``SHORT DESCRIPTION`` and optionally ``RECID``/``SEQNUM``).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data"
CPT_FORMAT = re.compile(r"^(?:\d{5}|\d{4}[FTU])$")
HCPCS_FORMAT = re.compile(r"^[A-V]\d{4}$")


@dataclass(frozen=True)
class CptCode:
    code: str
    label: str  # project-authored short label, never an AMA descriptor
    category: str


@lru_cache(maxsize=1)
def cpt_table() -> dict[str, CptCode]:
    with (DATA / "cpt_codes.csv").open(encoding="utf-8") as f:
        rows = csv.DictReader(line for line in f if not line.startswith("#"))
        return {r["code"]: CptCode(r["code"], r["label"], r["category"]) for r in rows}


def category(code: str) -> str | None:
    c = cpt_table().get(code)
    return c.category if c else None


def system_of(code: str) -> str | None:
    """'cpt' / 'hcpcs' by code shape, None when it is neither."""
    if CPT_FORMAT.match(code):
        return "cpt"
    if HCPCS_FORMAT.match(code):
        return "hcpcs"
    return None


def is_em(code: str) -> bool:
    return (category(code) or "").startswith("em-") and category(code) != "em-addon"


def label(code: str) -> str | None:
    c = cpt_table().get(code)
    if c:
        return c.label
    h = hcpcs_sample().get(code)
    return h.short_description if h else None


def load_cpt_descriptors(text: str) -> dict[str, str]:
    """Licensed CPT descriptors from a user-supplied file.

    Accepted: one code per line as ``code,descriptor`` (CSV, quotes allowed) or
    ``code<TAB>descriptor``; an optional header line whose first field is not
    a code is skipped; blank lines and lines starting with '#' are ignored.
    Raises ValueError naming the line of a malformed row.
    """
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if "\t" in line:
            fields = line.split("\t")
        else:
            fields = next(csv.reader([line]))
        code = fields[0].strip().upper()
        if not CPT_FORMAT.match(code):
            if not out and n == 1:
                continue  # header
            raise ValueError(f"CPT descriptor file line {n}: {code!r} is not a CPT code")
        desc = ",".join(fields[1:]).strip() if "\t" not in line else "\t".join(fields[1:]).strip()
        if not desc:
            raise ValueError(f"CPT descriptor file line {n}: code {code} has no descriptor")
        out[code] = desc
    return out


@dataclass(frozen=True)
class HcpcsCode:
    code: str
    long_description: str
    short_description: str
    kind: str  # procedure | modifier


def parse_hcpcs_quarterly(text: str) -> dict[str, HcpcsCode]:
    """HCPCS Level II codes and modifiers from the CMS quarterly file (see module doc).

    Raises ValueError naming the line of a record that cannot be read.
    """
    first = text.lstrip().splitlines()[0] if text.strip() else ""
    if "HCPC" in first.upper() and ("," in first or "\t" in first):
        return _parse_csv(text)
    parts: dict[str, list[str]] = {}
    short: dict[str, str] = {}
    kind: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if len(line) < 12:
            raise ValueError(f"HCPCS file line {n}: record shorter than 12 characters")
        rec = line[10]
        if rec not in "3478":
            raise ValueError(f"HCPCS file line {n}: unknown record id {rec!r} at position 11")
        code = (line[3:5] if rec in "78" else line[0:5]).strip()
        if not code:
            raise ValueError(f"HCPCS file line {n}: empty code at positions 1-5")
        if rec in "37":
            parts[code] = [line[11:91].strip()]
            short[code] = line[91:119].strip()
            kind[code] = "modifier" if rec == "7" else "procedure"
        elif code in parts:
            parts[code].append(line[11:91].strip())
        else:
            raise ValueError(f"HCPCS file line {n}: continuation of {code} before its first line")
    return {c: HcpcsCode(c, " ".join(p).strip(), short[c], kind[c]) for c, p in parts.items()}


def _parse_csv(text: str) -> dict[str, HcpcsCode]:
    dialect = "excel-tab" if "\t" in text.splitlines()[0] else "excel"
    rows = csv.DictReader(io.StringIO(text), dialect=dialect)
    out: dict[str, HcpcsCode] = {}
    for n, r in enumerate(rows, start=2):
        r = {(k or "").strip().upper(): (v or "").strip() for k, v in r.items()}
        code = r.get("HCPC") or r.get("HCPCS") or r.get("CODE")
        if not code:
            raise ValueError(f"HCPCS file line {n}: no HCPC column value")
        long = r.get("LONG DESCRIPTION", "")
        if code in out and r.get("RECID") in ("4", "8"):
            prev = out[code]
            out[code] = HcpcsCode(
                code, f"{prev.long_description} {long}".strip(), prev.short_description, prev.kind
            )
            continue
        kind = "modifier" if r.get("RECID") in ("7", "8") or len(code) == 2 else "procedure"
        out[code] = HcpcsCode(code, long, r.get("SHORT DESCRIPTION", ""), kind)
    return out


@lru_cache(maxsize=1)
def hcpcs_sample() -> dict[str, HcpcsCode]:
    return parse_hcpcs_quarterly((DATA / "hcpcs_sample.txt").read_text(encoding="utf-8"))
