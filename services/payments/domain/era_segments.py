"""Element and segment readers for the 835 parser (see ``era``).

Each takes the element list of one segment and its 1-based number in the file,
returns plain values or the light remittance objects, and raises ``X12Error``
naming the segment and element position (never the element's value: claim
loops carry PHI).

The ``*_record`` readers tell the parser whether a DTM or loop-2100 NM1 is
clean enough for its per-file memo of repeated segments (the same service-date
DTM or rendering-provider NM1 recurs on thousands of claims in a large
remittance; see ``era._parse``). They never raise and never warn: they return
``None`` for anything that is not clean, and the parser then takes the
checking path, which raises or warns with the segment number. A record holds
only immutable values (str, date, Decimal, NamedTuple), so the objects it
yields can be shared by every claim that repeats the segment.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from shared.x12 import X12Error, shown

from .remittance import (
    ADJUSTMENT_GROUPS,
    CLAIM_STATUS,
    Adjustment,
    ClaimPayment,
    PersonName,
    ProviderAdjustment,
    ServiceLine,
    new_claim_payment,
)

PAD = [""] * 25
_D = Decimal
NUMBER_CHARS = "0123456789.-"  # an X12 R (decimal) value has only these
new_tuple = tuple.__new__  # builds NamedTuples without their Python-level __new__
# Dates repeat across a file (one service date per batch); immutable, safe to share.
DATES: dict[str, date] = {}
ONE_UNIT = ServiceLine.__dataclass_fields__["units"].default  # TR3: SVC05 absent means 1 unit
# NM101 entity codes allowed in loop 2100.
CLAIM_NAMES = frozenset({"QC", "IL", "74", "82", "TT", "PR", "GB"})


def number(v: str, n: int, sid: str, pos: int) -> Decimal:
    """X12 R-type value -> Decimal; rejects '', NaN, exponents, spaces, '1_0'."""
    try:
        d = _D(v)
    except (ArithmeticError, ValueError):
        pass
    else:
        if not v.strip(NUMBER_CHARS):
            return d
    what = "is empty" if not v else "is not a number"
    raise X12Error(f"{sid}{pos:02d} {what}; expected a decimal amount like 123.45", n, sid)


def _amount(v: str, mc: dict[str, Decimal], n: int, sid: str, pos: int) -> Decimal:
    d = mc.get(v)
    if d is None:
        d = mc[v] = number(v, n, sid, pos)
    return d


def _date(v: str) -> date | None:
    d = DATES.get(v)
    if d is None and len(v) == 8 and v.isdigit():
        try:
            d = date.fromisoformat(v)
        except ValueError:
            return None
        if len(DATES) < 100_000:
            DATES[v] = d
    return d


def read_date(v: str, n: int, sid: str, pos: int, warnings: list[str]) -> date | None:
    """CCYYMMDD -> date. A bad date is a warning, not a reason to drop money."""
    d = _date(v)
    if d is None:
        warnings.append(f"segment {n} ({sid}): {sid}{pos:02d} is not a valid CCYYMMDD date")
    return d


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


def svc_procedure(
    s1: str, n: int, comp: str, warnings: list[str], procedures: dict[str, tuple]
) -> tuple[str, str, tuple[str, ...]]:
    """SVC01 composite -> (qualifier, code, modifiers); clean ones memoized in ``procedures``."""
    parts = s1.split(comp) if comp in s1 else composite(s1, comp, n, 1, warnings)
    code = parts[1] if len(parts) > 1 else ""
    if not code:
        warnings.append(f"segment {n} (SVC): SVC01-2 procedure code is missing")
    proc = (parts[0], code, modifiers(parts) if len(parts) > 2 else ())
    if code and comp in s1:  # no warning tied to this segment number: reusable
        procedures[s1] = proc
    return proc


def svc_original(line: ServiceLine, seg: list[str], n: int, comp: str, warnings: list[str]) -> None:
    """SVC06 (procedure as billed, when the payer changed it) and SVC07 (billed units)."""
    if seg[6]:
        orig = composite(seg[6], comp, n, 6, warnings)
        line.original_qualifier = orig[0]
        line.original_code = orig[1] if len(orig) > 1 else ""
        line.original_modifiers = modifiers(orig)
        if not line.original_code:
            warnings.append(f"segment {n} (SVC): SVC06-2 original procedure code is missing")
    if len(seg) > 7 and seg[7]:
        line.original_units = number(seg[7], n, "SVC", 7)


def claim_payment(seg: list[str], n: int) -> ClaimPayment:
    """CLP -> ClaimPayment. Claim totals are nearly all distinct: no amount memo."""
    ln = len(seg)
    if ln < 5 or not seg[1]:
        raise X12Error("CLP01-CLP04 (claim id, status, charge, payment) are required", n, "CLP")
    status = seg[2]
    if status not in CLAIM_STATUS:
        raise X12Error(f"CLP02 {shown(status)} is not a claim status code", n, "CLP")
    s = seg if ln >= 12 else seg + PAD
    return new_claim_payment(
        s[1],
        status,
        number(s[3], n, "CLP", 3),
        number(s[4], n, "CLP", 4),
        number(s[5], n, "CLP", 5) if s[5] else None,
        s[6],
        s[7] or None,
        s[8] or None,
        s[9] or None,
        s[11] or None,
    )


def claim_remarks(seg: list[str]) -> list[str]:
    """MOA03-MOA07 or MIA05, MIA20-MIA24 remark codes (the segment id picks which)."""
    idx = (3, 4, 5, 6, 7) if seg[0] == "MOA" else (5, 20, 21, 22, 23, 24)
    return [seg[i] for i in idx if i < len(seg) and seg[i]]


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
        amt = _amount(seg[3], mc, n, "CAS", 3)
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


# ----------------------------------------------------------- memo records


def dtm_record(seg: list[str]) -> tuple | None:
    """('DTM', qualifier, date) for a DTM with a valid CCYYMMDD date."""
    if len(seg) < 3:
        return None
    d = _date(seg[2])
    return None if d is None else ("DTM", seg[1], d)


def name_record(seg: list[str]) -> tuple | None:
    """('NM1', entity code, PersonName) for an NM1 allowed in loop 2100."""
    if len(seg) < 2 or seg[1] not in CLAIM_NAMES:
        return None
    return ("NM1", seg[1], person_name(seg))
