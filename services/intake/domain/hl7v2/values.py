"""HL7 v2 data types as the claim needs them: dates (DTM/TS/DR), names (XPN), addresses (XAD),
practitioners (XCN, with the NPI), identifiers (CX) and coded values (CE/CWE/CNE).

Readers take a segment and field and return None for what is absent; what is present but
unusable is a warning naming the segment and field, never the value."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from pydantic import ValidationError

from services.intake.domain.hl7v2.message import Rep, Segment
from services.intake.domain.hl7v2.problems import Hl7Problem
from services.intake.domain.states import usps_state
from shared.events import Address, Person

_DTM = re.compile(r"(\d{4})(\d{2})?(\d{2})?(\d{2}(\d{2}(\d{2}(\.\d{1,4})?)?)?)?([+-]\d{4})?")
_ZIP = re.compile(r"\d{5}(-?\d{4})?")
_US = {"", "US", "USA", "840", "UNITED STATES"}
NPI_OID = "2.16.840.1.113883.4.6"
_SEX = {"M": "M", "F": "F"}
# XAD.7 address types read as the person's address, in order of preference.
_ADDRESS_TYPES = ("H", "L", "M", "C", "P", "")


def dtm(value: str) -> tuple[date | None, bool]:
    """(the day of an HL7 date/time, whether it was well formed). A value with only a year
    or a month is well formed but has no day."""
    m = _DTM.fullmatch(value.strip())
    if m is None:
        return None, False
    if m.group(2) is None or m.group(3) is None:
        return None, True
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3))), True
    except ValueError:
        return None, False


def read_date(
    seg: Segment, n: int, problems: list[Hl7Problem], *, what: str = "a date"
) -> date | None:
    """The day of a TS/DTM/DR field (its first component). Malformed or without a day: a
    warning and None."""
    value = seg.get(n)
    if not value:
        return None
    day, ok = dtm(value)
    if day is None:
        problems.append(
            seg.problem(
                n,
                f"expected {what} (YYYYMMDD[HHMM[SS]][+/-ZZZZ])"
                if not ok
                else f"expected {what} with a day (YYYYMMDD)",
            )
        )
    return day


def decimal_of(
    seg: Segment, n: int, problems: list[Hl7Problem], component: int = 1
) -> Decimal | None:
    value = seg.get(n, component)
    if not value:
        return None
    try:
        out = Decimal(value)
    except InvalidOperation:
        problems.append(seg.problem(n, "expected a number"))
        return None
    if not out.is_finite():
        problems.append(seg.problem(n, "expected a number"))
        return None
    return out


# --------------------------------------------------------------------------- people


def name_of(seg: Segment, n: int) -> tuple[str | None, str | None]:
    """(given, family) of an XPN field: of the repetitions with both names, the legal one
    (XPN.7 = L), else the first. XPN.1 is the family name (its first subcomponent), XPN.2
    the given name."""
    reps = seg.reps(n)
    if not reps:
        return None, None
    whole = [r for r in reps if r.get(1, 1) and r.get(2)] or reps
    rep = next((r for r in whole if r.get(7).upper() == "L"), whole[0])
    return rep.get(2) or None, rep.get(1, 1) or None


def sex_of(seg: Segment, n: int) -> str:
    return _SEX.get(seg.get(n).upper()[:1], "U")


def address_of(seg: Segment, n: int, problems: list[Hl7Problem]) -> Address | None:
    """A US address from an XAD field: the home (else legal, mailing, current, permanent,
    untyped) repetition; a bad address (BA) is skipped. Incomplete: None. Not a US state or
    ZIP code: a warning and None."""
    reps = [r for r in seg.reps(n) if r.get(7).upper() != "BA"]
    if not reps:
        return None
    rank = {t: i for i, t in enumerate(_ADDRESS_TYPES)}
    rep = min(reps, key=lambda r: rank.get(r.get(7).upper(), len(rank)))
    line1 = _street(rep)
    city, state, postal = rep.get(3), rep.get(4), rep.get(5)
    if not (line1 and city and state and postal):
        return None
    if rep.get(6).upper() not in _US:
        problems.append(seg.problem(n, "not a US address: not used"))
        return None
    code = usps_state(state)
    if code is None:
        problems.append(seg.problem(n, "expected a US state (USPS code or name)", component=4))
        return None
    if not _ZIP.fullmatch(postal):
        problems.append(seg.problem(n, "expected a ZIP or ZIP+4 code", component=5))
        return None
    try:
        return Address(
            line1=line1, line2=rep.get(2) or None, city=city, state=code, postal_code=postal
        )
    except ValidationError:
        problems.append(seg.problem(n, "expected an address the claim can carry"))
        return None


def _street(rep: Rep) -> str:
    """XAD.1 (SAD): the street address, else its street name and dwelling number joined (a
    house number alone in SAD.1 with the street in SAD.2 is common)."""
    first = rep.get(1, 1)
    if re.search(r"[A-Za-z]", first):
        return first
    return " ".join(p for p in (first, rep.get(1, 2), rep.get(1, 3)) if p)


def person_of(
    seg: Segment,
    problems: list[Hl7Problem],
    *,
    name: int,
    birth: int,
    sex: int,
    address: int,
    patient_id: str | None = None,
) -> Person:
    first, last = name_of(seg, name)
    born = read_date(seg, birth, problems, what="a birth date")
    return Person(
        patient_id=patient_id,
        first_name=first,
        last_name=last,
        birth_date=born,
        gender=sex_of(seg, sex),  # type: ignore[arg-type]
        address=address_of(seg, address, problems),
    )


def mrn_of(seg: Segment, n: int = 3) -> str | None:
    """The medical record number of a CX list: the repetition typed MR (CX.5), else the first."""
    reps = seg.reps(n)
    if not reps:
        return None
    rep = next((r for r in reps if r.get(5).upper() in ("MR", "MRN")), reps[0])
    return rep.get(1) or None


# --------------------------------------------------------------------------- practitioners


@dataclass(frozen=True)
class Practitioner:
    """A practitioner as an XCN names it: the NPI when the field says it is one (XCN.13 NPI,
    or the assigning authority NPI / its OID), else the sender's own id."""

    npi: str | None
    other_id: str | None
    first_name: str | None
    last_name: str | None
    segment: str = ""
    field: int = 0


def practitioner_of(seg: Segment, n: int) -> Practitioner | None:
    reps = seg.reps(n)
    if not reps:
        return None
    typed = [r for r in reps if _is_npi(r)]
    rep = typed[0] if typed else reps[0]
    ident = rep.get(1) or None
    if not (ident or rep.get(2, 1) or rep.get(3)):
        return None
    return Practitioner(
        npi=ident if typed else None,
        other_id=None if typed else ident,
        first_name=rep.get(3) or None,
        last_name=rep.get(2, 1) or None,
        segment=seg.id,
        field=n,
    )


def _is_npi(rep: Rep) -> bool:
    return (
        rep.get(13).upper() == "NPI"
        or rep.get(9, 1).upper() == "NPI"
        or rep.get(9, 2) == NPI_OID
        or rep.get(9, 1) == NPI_OID
    )


# --------------------------------------------------------------------------- codes


@dataclass(frozen=True)
class Coded:
    code: str
    text: str | None
    system: str  # as sent (CE.3 / CWE.3), upper-cased; "" when absent


def coded_of(rep: Rep) -> list[Coded]:
    """The codings of one CE/CWE/CNE repetition: the identifier and the alternate one."""
    out = []
    for c in (1, 4):
        code = rep.get(c)
        if code:
            out.append(Coded(code, rep.get(c + 1) or None, rep.get(c + 2).upper()))
    return out
