"""Element and segment readers for the 835 parser (see ``era``).

Each takes the element list of one segment and its 1-based number in the file,
returns plain values or the light remittance objects, and raises ``X12Error``
naming the segment and element position (never the element's value: claim
loops carry PHI).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from shared.x12 import X12Error

from .remittance import (
    ADJUSTMENT_GROUPS,
    CLAIM_STATUS,
    Adjustment,
    ClaimPayment,
    PersonName,
    ProviderAdjustment,
    ServiceLine,
)

PAD = [""] * 25
_D = Decimal
new_tuple = tuple.__new__  # builds NamedTuples without their Python-level __new__
# Dates repeat across a file (one service date per batch); immutable, safe to share.
DATES: dict[str, date] = {}


def number(v: str, n: int, sid: str, pos: int) -> Decimal:
    """X12 R-type value -> Decimal; rejects '', NaN, exponents, spaces, '1_0'."""
    s = v.replace(".", "", 1)
    if s[:1] == "-":
        s = s[1:]
    if s.isdigit() and s.isascii():
        return _D(v)
    what = "is empty" if not v else "is not a number"
    raise X12Error(f"{sid}{pos:02d} {what}; expected a decimal amount like 123.45", n, sid)


def read_date(v: str, n: int, sid: str, pos: int, warnings: list[str]) -> date | None:
    """CCYYMMDD -> date. A bad date is a warning, not a reason to drop money."""
    d = DATES.get(v)
    if d is not None:
        return d
    if len(v) == 8 and v.isdigit():
        try:
            d = date.fromisoformat(v)
        except ValueError:
            pass
        else:
            if len(DATES) < 100_000:
                DATES[v] = d
            return d
    warnings.append(f"segment {n} ({sid}): {sid}{pos:02d} is not a valid CCYYMMDD date")
    return None


def person_name(seg: list[str]) -> PersonName:
    s = seg + PAD
    return new_tuple(PersonName, (s[3], s[4], s[5], s[8], s[9]))


def composite(v: str, comp: str, n: int, pos: int, warnings: list[str]) -> list[str]:
    if comp in v:
        return v.split(comp)
    # Some payers write SVC01 with another component separator than ISA16 ("HC>99213").
    if len(v) > 3 and not v[2].isalnum() and v[:2].isalpha():
        warnings.append(
            f"segment {n} (SVC): SVC{pos:02d} uses {v[2]!r} as component separator, "
            f"ISA16 declares {comp!r}"
        )
        return v.split(v[2])
    return [v]


def modifiers(parts: list[str]) -> tuple[str, ...]:
    mods = tuple(parts[2:6])
    return tuple(m for m in mods if m) if "" in mods else mods


def service_line(
    seg: list[str], n: int, comp: str, warnings: list[str], mc: dict[str, Decimal]
) -> ServiceLine:
    ln = len(seg)
    if ln < 4:
        raise X12Error("SVC01-SVC03 (procedure, charge, payment) are required", n, "SVC")
    s1 = seg[1]
    parts = s1.split(comp) if comp in s1 else composite(s1, comp, n, 1, warnings)
    code = parts[1] if len(parts) > 1 else ""
    if not code:
        warnings.append(f"segment {n} (SVC): SVC01-2 procedure code is missing")
    charge = mc.get(seg[2])
    if charge is None:
        charge = mc[seg[2]] = number(seg[2], n, "SVC", 2)
    paid = mc.get(seg[3])
    if paid is None:
        paid = mc[seg[3]] = number(seg[3], n, "SVC", 3)
    mods = modifiers(parts) if len(parts) > 2 else ()
    line = ServiceLine(parts[0], code, mods, charge, paid)
    if ln > 4:
        if seg[4]:
            line.revenue_code = seg[4]
        if ln > 5 and seg[5]:
            units = mc.get(seg[5])
            if units is None:
                units = mc[seg[5]] = number(seg[5], n, "SVC", 5)
            line.units = units
        if ln > 6 and seg[6]:
            orig = composite(seg[6], comp, n, 6, warnings)
            line.original_qualifier = orig[0]
            line.original_code = orig[1] if len(orig) > 1 else ""
            line.original_modifiers = modifiers(orig)
            if not line.original_code:
                warnings.append(f"segment {n} (SVC): SVC06-2 original procedure code is missing")
        if ln > 7 and seg[7]:
            line.original_units = number(seg[7], n, "SVC", 7)
    return line


def claim_payment(seg: list[str], n: int, mc: dict[str, Decimal]) -> ClaimPayment:
    ln = len(seg)
    if ln < 5 or not seg[1]:
        raise X12Error("CLP01-CLP04 (claim id, status, charge, payment) are required", n, "CLP")
    status = seg[2]
    if status not in CLAIM_STATUS:
        raise X12Error(f"CLP02 {status!r} is not a claim status code", n, "CLP")
    s = seg + PAD if ln < 12 else seg
    charge = mc.get(s[3])
    if charge is None:
        charge = mc[s[3]] = number(s[3], n, "CLP", 3)
    paid = mc.get(s[4])
    if paid is None:
        paid = mc[s[4]] = number(s[4], n, "CLP", 4)
    pr = None
    if s[5]:
        pr = mc.get(s[5])
        if pr is None:
            pr = mc[s[5]] = number(s[5], n, "CLP", 5)
    return ClaimPayment(
        s[1], status, charge, paid, pr, s[6], s[7] or None, s[8] or None, s[9] or None,
        s[11] or None,
    )  # fmt: skip


def read_cas(
    seg: list[str], n: int, level: str, out: list[Adjustment], mc: dict[str, Decimal]
) -> None:
    ln = len(seg)
    group = seg[1] if ln > 1 else ""
    if group not in ADJUSTMENT_GROUPS:
        raise X12Error("CAS01 must be a group code (CO, CR, OA, PI, PR)", n, "CAS")
    if ln < 4 or ln > 20:
        raise X12Error("CAS needs 1 to 6 reason/amount[/quantity] triplets", n, "CAS")
    if ln == 4:  # the common case: one triplet, no quantity
        amt = mc.get(seg[3])
        if amt is None:
            amt = mc[seg[3]] = number(seg[3], n, "CAS", 3)
        out.append(new_tuple(Adjustment, (group, seg[2], amt, None, level)))
        return
    for j in range(2, ln, 3):
        reason = seg[j]
        if reason:
            amt = number(seg[j + 1] if j + 1 < ln else "", n, "CAS", j + 1)
            qty = number(seg[j + 2], n, "CAS", j + 2) if j + 2 < ln and seg[j + 2] else None
            out.append(new_tuple(Adjustment, (group, reason, amt, qty, level)))


def read_plb(seg: list[str], n: int, comp: str, warnings: list[str]) -> list[ProviderAdjustment]:
    ln = len(seg)
    if ln < 5 or ln % 2 == 0 or ln > 15:
        raise X12Error(
            "PLB needs provider id, fiscal period date and 1-6 adjustment pairs", n, "PLB"
        )
    fiscal = read_date(seg[2], n, "PLB", 2, warnings)
    out = []
    for j in range(3, ln, 2):
        reason, _, ref = seg[j].partition(comp)
        if not reason:
            raise X12Error(f"PLB{j:02d}-1 adjustment reason code is required", n, "PLB")
        amt = number(seg[j + 1], n, "PLB", j + 1)
        out.append(ProviderAdjustment(seg[1], fiscal, reason, ref or None, amt))
    return out


def same_number(a: str, b: str) -> bool:
    return a == b or (a.isdigit() and b.isdigit() and int(a) == int(b))
