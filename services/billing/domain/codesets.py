"""Small static code sets the scrubber checks against (CMS place of service, formats)."""

from __future__ import annotations

import re

# CMS place-of-service code set (codes in effect 2024; unassigned numbers are invalid).
PLACE_OF_SERVICE = frozenset(
    "01 02 03 04 05 06 07 08 09 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 "
    "31 32 33 34 41 42 49 50 51 52 53 54 55 56 57 58 60 61 62 65 66 71 72 81 99".split()
)

_CPT = re.compile(r"^\d{4}[0-9FTU]$")  # CPT category I, II (F), III (T), PLA (U)
_HCPCS = re.compile(r"^[A-VX-Z]\d{4}$")  # HCPCS Level II (letter + 4 digits)
_MODIFIER = re.compile(r"^[0-9A-Z]{2}$")
_REVENUE = re.compile(r"^0\d{3}$")
# Type of bill: leading 0, facility type 1-8, classification 1-9, frequency code.
_TYPE_OF_BILL = re.compile(r"^0[1-8][1-9][0-9A-Z]$")
_ICD10CM = re.compile(r"^[A-Z]\d[0-9A-Z]{1,5}$")
_ICD10PCS = re.compile(r"^[0-9A-HJ-NP-Z]{7}$")  # 7 characters, no I or O

FREQUENCY_CODES = frozenset({"1", "7", "8"})


def is_procedure_code(code: str) -> bool:
    """CPT or HCPCS Level II shape (coders sometimes label one as the other: accept both)."""
    return bool(_CPT.match(code) or _HCPCS.match(code))


def is_modifier(value: str) -> bool:
    return bool(_MODIFIER.match(value))


def is_revenue_code(value: str) -> bool:
    return bool(_REVENUE.match(value)) and value != "0000"


def is_type_of_bill(value: str) -> bool:
    return bool(_TYPE_OF_BILL.match(value))


def is_icd10cm_format(code: str) -> bool:
    return bool(_ICD10CM.match(code))


def is_icd10pcs_format(code: str) -> bool:
    return bool(_ICD10PCS.match(code))


def ndc_11(ndc: str) -> str | None:
    """NDC in the 11-digit 5-4-2 billing form, or None when it cannot be normalised.

    Hyphenated 10-digit NDCs (4-4-2, 5-3-2, 5-4-1) are zero-padded per segment; an
    unhyphenated 10-digit NDC is ambiguous and refused.
    """
    ndc = ndc.strip()
    if "-" in ndc:
        parts = ndc.split("-")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            return None
        padded = parts[0].zfill(5) + parts[1].zfill(4) + parts[2].zfill(2)
        return padded if len(padded) == 11 else None
    return ndc if len(ndc) == 11 and ndc.isdigit() else None
