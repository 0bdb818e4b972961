"""NCCI procedure-to-procedure (PTP) and MUE edits from the CMS quarterly tables.

File layouts read (CMS Medicaid/Medicare NCCI downloads, practitioner tables):

PTP (``ccipra-*.txt`` tab-delimited, or the same columns as CSV), one edit per row:
  col 1  Column 1 code
  col 2  Column 2 code (the code that is denied/bundled)
  col 3  "*" = in existence prior to 1996 (ignored)
  col 4  Effective date, YYYYMMDD
  col 5  Deletion date, YYYYMMDD, or "*" = none
  col 6  Modifier indicator: 0 not allowed, 1 allowed, 9 not applicable
  col 7  PTP edit rationale (optional)
MUE (``MCR_MUE_PractitionerServices_*.csv``), one code per row:
  col 1  HCPCS/CPT code
  col 2  MUE value (maximum units)
  col 3  MUE adjudication indicator, e.g. "2 Date of Service Edit: Policy" (leading digit)
  col 4  MUE rationale (optional)
The CMS files open with copyright/notice lines and column headings; any row whose first
two columns are not a code and a code (PTP) or a code and a number (MUE) is skipped as
such a heading. A row that looks like data but is malformed raises ValueError naming it.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from importlib import resources

from shared.events import Reason

# Modifiers that may bypass a PTP edit whose modifier indicator is 1 (NCCI policy manual).
NCCI_BYPASS_MODIFIERS = frozenset(
    "24 25 27 57 58 59 78 79 91 XE XP XS XU E1 E2 E3 E4 FA F1 F2 F3 F4 F5 F6 F7 F8 F9 "
    "LC LD LM LT RC RI RT TA T1 T2 T3 T4 T5 T6 T7 T8 T9".split()
)


@dataclass(frozen=True, slots=True)
class PtpEdit:
    column1: str
    column2: str
    effective: date
    deleted: date | None
    modifier_indicator: str  # "0", "1" or "9"
    rationale: str = ""

    def active_on(self, d: date) -> bool:
        return self.effective <= d and (self.deleted is None or d < self.deleted)


@dataclass(frozen=True, slots=True)
class MueEdit:
    code: str
    max_units: Decimal
    adjudication_indicator: str  # "1" per line, "2"/"3" per date of service
    rationale: str = ""


@dataclass
class NcciTables:
    ptp: dict[tuple[str, str], list[PtpEdit]] = field(default_factory=lambda: defaultdict(list))
    mue: dict[str, MueEdit] = field(default_factory=dict)

    def ptp_edits(self, code_a: str, code_b: str) -> list[PtpEdit]:
        """Edits between two codes, in either column order."""
        return self.ptp.get((code_a, code_b), []) + self.ptp.get((code_b, code_a), [])


def _rows(text: str) -> list[tuple[int, list[str]]]:
    delimiter = "\t" if "\t" in text else ","
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=delimiter)
    return [(n, [c.strip() for c in row]) for n, row in enumerate(reader, start=1) if row]


def _is_code(s: str) -> bool:
    return len(s) == 5 and s.isalnum()


def _date(value: str, where: str) -> date:
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except (ValueError, IndexError):
        raise ValueError(f"{where}: {value!r} is not a YYYYMMDD date") from None


def parse_ncci_ptp(text: str, tables: NcciTables | None = None) -> NcciTables:
    """Parse a CMS PTP edit table into (new or given) ``NcciTables``. Raises ValueError."""
    tables = tables or NcciTables()
    for n, row in _rows(text):
        if len(row) < 2 or not (_is_code(row[0]) and _is_code(row[1])):
            continue  # notice or heading line
        if len(row) < 6:
            raise ValueError(f"PTP line {n}: expected at least 6 columns, found {len(row)}")
        indicator = row[5][:1]
        if indicator not in ("0", "1", "9"):
            raise ValueError(f"PTP line {n}, column 6: modifier indicator {row[5]!r} not 0/1/9")
        deleted = None if row[4] in ("", "*") else _date(row[4], f"PTP line {n}, column 5")
        edit = PtpEdit(
            column1=row[0].upper(),
            column2=row[1].upper(),
            effective=_date(row[3], f"PTP line {n}, column 4"),
            deleted=deleted,
            modifier_indicator=indicator,
            rationale=row[6] if len(row) > 6 else "",
        )
        tables.ptp[(edit.column1, edit.column2)].append(edit)
    return tables


def parse_mue(text: str, tables: NcciTables | None = None) -> NcciTables:
    """Parse a CMS MUE table into (new or given) ``NcciTables``. Raises ValueError."""
    tables = tables or NcciTables()
    for n, row in _rows(text):
        if len(row) < 2 or not _is_code(row[0]) or not row[1].isdigit():
            continue
        if len(row) < 3 or row[2][:1] not in ("1", "2", "3"):
            raise ValueError(f"MUE line {n}, column 3: adjudication indicator must start 1/2/3")
        code = row[0].upper()
        tables.mue[code] = MueEdit(
            code, Decimal(row[1]), row[2][:1], row[3] if len(row) > 3 else ""
        )
    return tables


def load_sample_ncci() -> NcciTables:
    """The tiny bundled sample (illustrative rows in the CMS layouts, not the real tables)."""
    data = resources.files("services.billing.data")
    tables = parse_ncci_ptp(data.joinpath("ncci_ptp_sample.txt").read_text(encoding="utf-8"))
    return parse_mue(data.joinpath("mue_sample.csv").read_text(encoding="utf-8"), tables)


def ncci_findings(claim, tables: NcciTables) -> list[Reason]:
    """PTP and MUE findings for a claim's service lines.

    PTP: two lines on the same date of service whose codes form an active edit. Indicator 0
    can never be bypassed; indicator 1 is bypassed when either line carries an
    NCCI-associated modifier (59, XU, LT/RT...). MUE: units per line (indicator 1) or summed
    per code and date of service (indicators 2 and 3) above the table's maximum.
    """
    found: list[Reason] = []
    lines = claim.lines
    for i, a in enumerate(lines):
        for j in range(i + 1, len(lines)):
            b = lines[j]
            if a.service_date != b.service_date or a.code == b.code:
                continue
            for edit in tables.ptp_edits(a.code, b.code):
                if not edit.active_on(a.service_date) or edit.modifier_indicator == "9":
                    continue
                col2_index = j if b.code == edit.column2 else i
                if edit.modifier_indicator == "1" and NCCI_BYPASS_MODIFIERS & set(
                    a.modifiers + b.modifiers
                ):
                    continue
                hint = (
                    ""
                    if edit.modifier_indicator == "0"
                    else " (a modifier such as 59/XU may apply)"
                )
                found.append(
                    Reason(
                        code="NCCI_PTP",
                        message=f"{edit.column2} is bundled into {edit.column1} on the same date{hint}",
                        field=f"lines[{col2_index}].code",
                    )
                )
    per_day: dict[tuple[str, date], Decimal] = defaultdict(Decimal)
    first_line: dict[tuple[str, date], int] = {}
    for i, ln in enumerate(lines):
        mue = tables.mue.get(ln.code)
        if mue is None:
            continue
        if mue.adjudication_indicator == "1":
            if ln.units > mue.max_units:
                found.append(_mue_reason(ln.code, mue, i))
        else:
            key = (ln.code, ln.service_date)
            per_day[key] += ln.units
            first_line.setdefault(key, i)
    for key, units in per_day.items():
        mue = tables.mue[key[0]]
        if units > mue.max_units:
            found.append(_mue_reason(key[0], mue, first_line[key]))
    return found


def _mue_reason(code: str, mue: MueEdit, index: int) -> Reason:
    scope = "on one line" if mue.adjudication_indicator == "1" else "per date of service"
    return Reason(
        code="MUE_EXCEEDED",
        message=f"{code} units exceed the MUE of {mue.max_units} {scope}",
        field=f"lines[{index}].units",
    )
