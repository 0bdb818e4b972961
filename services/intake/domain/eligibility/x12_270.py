"""X12 270 eligibility inquiry writer (005010X279A1), and the requests for an encounter.

One interchange with one functional group (GS*HS) and a transaction set per payer and
provider (see ``_transaction_sets``), with its 2000A information source and 2000B
information receiver; each request is its own 2000C subscriber loop (plus a 2000D dependent loop when
the patient is not the subscriber) carrying the request's TRN trace number, the date of
service (DTP*291) and one 2110 loop per service type code (EQ).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from shared.events import Encounter, Person
from shared.x12 import Interchange, Transaction, clean, x12_date

from .model import EligibilityRequest

VERSION = "005010X279A1"
MAX_CONTROL_NUMBER = 999_999_999
MAX_TRACE = 50  # TRN02
_SEPARATORS = set("*~:^|>")
# INS02 of a dependent (2100D): 01 spouse, 19 child, 34 other adult.
_DEPENDENT_RELATIONSHIP = {"spouse": "01", "child": "19", "other": "34"}
_SEQUENCE_DIGIT = {"primary": "1", "secondary": "2", "tertiary": "3"}


def requests_for_encounter(
    enc: Encounter,
    *,
    trace_prefix: str | None = None,
    service_types: Sequence[str] = ("30",),
    service_date: date | None = None,
) -> list[EligibilityRequest]:
    """One request per coverage of the encounter, in coordination-of-benefits order.

    Trace numbers are ``<trace_prefix or encounter id>-<1|2|3>`` (the coverage's sequence);
    a retry should pass a new prefix so its 271 is not mistaken for the first one's.
    Raises ValueError naming the field when the encounter has no coverage or its billing
    provider (the 270's information receiver) has no NPI or name.
    """
    if not enc.coverages:
        raise ValueError("encounter.coverages: no coverage to check (self-pay)")
    bp = enc.billing_provider
    for name, value in (("npi", bp.npi), ("name", bp.name)):
        if not value:
            raise ValueError(f"encounter.billing_provider.{name} is required for a 270")
    prefix = trace_prefix or enc.encounter_id
    out = []
    for cov in sorted(enc.coverages, key=lambda c: _SEQUENCE_DIGIT[c.sequence]):
        dependent = cov.relationship != "self"
        out.append(
            EligibilityRequest(
                trace_number=f"{prefix}-{_SEQUENCE_DIGIT[cov.sequence]}",
                payer_id=cov.payer_id,
                payer_name=cov.payer_name,
                provider_npi=bp.npi or "",
                provider_name=bp.name or "",
                member_id=cov.member_id,
                subscriber=(cov.subscriber or Person()) if dependent else enc.patient,
                service_date=service_date or enc.service_date,
                relationship=cov.relationship,
                patient=enc.patient if dependent else None,
                group_number=cov.group_number,
                service_types=tuple(service_types),
                place_of_service=enc.place_of_service,
            )
        )
    return out


def build_270(
    requests: Sequence[EligibilityRequest],
    *,
    sender_id: str,
    receiver_id: str,
    interchange_control_number: int,
    group_control_number: int,
    created_at: datetime,
    usage: str = "P",
    originator_id: str | None = None,
) -> str:
    """Write the requests as one 270 interchange and return its text.

    ``originator_id`` is TRN03 (10 characters; by default "9", meaning user-assigned, and
    the sender id padded with zeros). Raises ValueError naming the request index and field for a request
    the 270 cannot carry (no member id and no name plus birth date, a trace number that is
    empty, too long, repeated or holds a separator, an unknown service type), and for bad
    control numbers or usage. Messages never quote the request's values.
    """
    if not requests:
        raise ValueError("build_270: no requests")
    for name, value in (
        ("interchange_control_number", interchange_control_number),
        ("group_control_number", group_control_number),
    ):
        if not 1 <= value <= MAX_CONTROL_NUMBER:
            raise ValueError(f"build_270: {name} must be 1..{MAX_CONTROL_NUMBER}")
    if usage not in ("P", "T"):
        raise ValueError("build_270: usage must be 'P' or 'T'")
    _check(requests)
    ix = Interchange(
        sender_id=clean(sender_id, 15),
        receiver_id=clean(receiver_id, 15),
        control_number=interchange_control_number,
        group_control_number=group_control_number,
        functional_id="HS",
        version=VERSION,
        transaction_type="270",
        created_at=created_at,
        usage=usage,
    )
    originator = originator_id or "9" + clean(sender_id).replace(" ", "")[:9].ljust(9, "0")
    if len(originator) != 10 or set(originator) & _SEPARATORS:
        raise ValueError("build_270: originator_id must be 10 characters without separators")
    for chunk in _transaction_sets(requests):
        tx = ix.new_transaction()
        tx.add(
            "BHT",
            "0022",
            "13",
            f"{group_control_number}-{tx.control_number}",
            x12_date(created_at),
            created_at.strftime("%H%M"),
        )
        r0 = chunk[0]
        tx.add("HL", 1, "", "20", "1")
        tx.add(
            "NM1", "PR", "2", clean(r0.payer_name, 60), "", "", "", "", "PI", clean(r0.payer_id, 80)
        )
        tx.add("HL", 2, 1, "21", "1")
        tx.add("NM1", "1P", "2", clean(r0.provider_name, 60), "", "", "", "", "XX", r0.provider_npi)
        hl = 2
        for r in chunk:
            hl = _write_request(tx, r, hl, 2, originator)
    return ix.render()


def _transaction_sets(requests: Sequence[EligibilityRequest]) -> list[list[EligibilityRequest]]:
    """Requests per transaction set: one payer and one provider each, the requests for
    subscribers first and at most one for a dependent, last.

    The TR3 allows any number of each in one set, in any order. pyx12's 005010X279A1 maps
    read the HL levels as consecutive tables, so a 2000A after a 2000C, or a 2000C after a
    2000D, is refused; sets shaped like this are valid under both.
    """
    groups: dict[tuple[str, str, str, str], list[EligibilityRequest]] = {}
    for r in requests:
        groups.setdefault((r.payer_id, r.payer_name, r.provider_npi, r.provider_name), []).append(r)
    out: list[list[EligibilityRequest]] = []
    for items in groups.values():
        subscribers = [r for r in items if r.relationship == "self"]
        dependents = [r for r in items if r.relationship != "self"]
        out.append(subscribers + dependents[:1])
        out.extend([r] for r in dependents[1:])
    return [chunk for chunk in out if chunk]


def _check(requests: Sequence[EligibilityRequest]) -> None:
    seen: set[str] = set()
    for i, r in enumerate(requests):
        where = f"build_270: requests[{i}]"
        t = r.trace_number
        if not t or len(t) > MAX_TRACE or set(t) & _SEPARATORS:
            raise ValueError(
                f"{where}.trace_number must be 1-{MAX_TRACE} characters without X12 separators"
            )
        if t in seen:
            raise ValueError(f"{where}.trace_number repeats an earlier request's")
        seen.add(t)
        for name in ("payer_id", "payer_name", "provider_name"):
            if not clean(getattr(r, name)):
                raise ValueError(f"{where}.{name} is required")
        if not (r.provider_npi.isdigit() and len(r.provider_npi) == 10):
            raise ValueError(f"{where}.provider_npi must be a 10-digit NPI")
        s = r.subscriber
        if not r.member_id and not (s.last_name and s.first_name and s.birth_date):
            raise ValueError(
                f"{where}: member_id, or the subscriber's name and birth date, is required"
            )
        if r.relationship != "self":
            p = r.patient
            if p is None or not (p.last_name and p.first_name):
                raise ValueError(f"{where}.patient name is required for a dependent")
        if not r.service_types:
            raise ValueError(f"{where}.service_types is empty")
        for code in r.service_types:
            if not (1 <= len(code) <= 2 and code.isalnum()):
                raise ValueError(f"{where}.service_types holds a code that is not 1-2 characters")
        pos = r.place_of_service
        if pos is not None and not (len(pos) == 2 and pos.isdigit()):
            raise ValueError(f"{where}.place_of_service must be a 2-digit CMS code")


def _write_request(
    tx: Transaction, r: EligibilityRequest, hl: int, receiver_hl: int, originator: str
) -> int:
    dependent = r.relationship != "self"
    hl += 1
    subscriber_hl = hl
    tx.add("HL", hl, receiver_hl, "22", "1" if dependent else "0")
    if not dependent:
        tx.add("TRN", "1", r.trace_number, originator)
    s = r.subscriber
    ids = ("MI", clean(r.member_id, 80)) if r.member_id else ("", "")
    tx.add(
        "NM1",
        "IL",
        "1",
        clean(s.last_name or "", 60),
        clean(s.first_name or "", 35),
        "",
        "",
        "",
        *ids,
    )
    if r.group_number:
        tx.add("REF", "6P", clean(r.group_number, 50))
    if not dependent:
        _demographics(tx, s)
        _inquiry(tx, r)
        return hl
    hl += 1
    tx.add("HL", hl, subscriber_hl, "23", "0")
    tx.add("TRN", "1", r.trace_number, originator)
    p = r.patient
    assert p is not None  # checked by _check
    tx.add("NM1", "03", "1", clean(p.last_name or "", 60), clean(p.first_name or "", 35))
    _demographics(tx, p)
    tx.add("INS", "N", _DEPENDENT_RELATIONSHIP[r.relationship])
    _inquiry(tx, r)
    return hl


def _demographics(tx: Transaction, person: Person) -> None:
    """DMG with the birth date, and the gender when it is M or F (the only codes a 270 has)."""
    if person.birth_date is not None:
        gender = (person.gender,) if person.gender in ("M", "F") else ()
        tx.add("DMG", "D8", x12_date(person.birth_date), *gender)


def _inquiry(tx: Transaction, r: EligibilityRequest) -> None:
    """DTP*291 (the date of service) and one 2110 loop per service type code."""
    tx.add("DTP", "291", "D8", x12_date(r.service_date))
    for code in r.service_types:
        tx.add("EQ", code)
        if r.place_of_service:
            tx.add("III", "ZZ", r.place_of_service)
