"""Read a 270 eligibility inquiry (005010X279A1) as the payer simulator needs it.

The simulator is a test double: it reads the 270 on its own (it shares no code with
intake's eligibility package), one ``Inquiry`` per TRN-traced subscriber or dependent loop.
Raises ``shared.x12.X12Error`` naming the segment for what it cannot answer (not a 270,
envelopes that do not close, an HL with no parent, a patient loop with no TRN, a bad date);
PHI never goes into a message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from shared.x12 import X12Error, check_envelope, split_segments

_LEVELS = ("20", "21", "22", "23")


@dataclass(frozen=True, slots=True)
class Person270:
    """A subscriber or dependent as the 270 names them (PHI: kept out of repr)."""

    last_name: str = field(default="", repr=False)
    first_name: str = field(default="", repr=False)
    birth_date: date | None = field(default=None, repr=False)
    gender: str | None = None


@dataclass(frozen=True, slots=True)
class Inquiry:
    """One subscriber (2000C) or dependent (2000D) inquiry."""

    trace_number: str  # TRN02 of the TRN*1, echoed as TRN*2 in the 271
    originator: str  # TRN03
    reference: str  # BHT03 of its transaction set, echoed in the 271's BHT03
    payer_id: str
    payer_name: str
    provider_npi: str
    provider_name: str
    member_id: str | None = field(repr=False)
    subscriber: Person270
    dependent: Person270 | None  # the patient, when not the subscriber
    relationship: str | None  # INS02 of a dependent: 01 spouse, 19 child, 34 other
    group_number: str | None
    service_date: date | None
    service_types: tuple[str, ...]
    place_of_service: str | None


@dataclass(frozen=True, slots=True)
class InquiryFile:
    interchange_control_number: str  # ISA13
    sender_id: str  # ISA06
    receiver_id: str  # ISA08
    inquiries: tuple[Inquiry, ...]


@dataclass
class _Node:
    """One HL and what its loops say."""

    level: str
    parent: _Node | None
    segment: int
    has_children: bool
    reference: str
    name: str = ""
    identifier: str = ""
    trace: tuple[str, str] | None = None
    member_id: str | None = None
    person: Person270 = field(default_factory=Person270)
    relationship: str | None = None
    group_number: str | None = None
    service_date: date | None = None
    service_types: list[str] = field(default_factory=list)
    place_of_service: str | None = None


def read_270(text: str) -> InquiryFile:
    """Every traced inquiry of a 270 file, in file order."""
    segments, seps = split_segments(text)
    check_envelope(segments)
    isa = segments[0]
    repetition = seps.repetition if not seps.repetition.isalnum() else None
    reference = ""  # BHT03 of the current transaction set
    nodes: dict[tuple[int, str], _Node] = {}  # (transaction, HL01) -> node
    order: list[_Node] = []
    current: _Node | None = None
    tx = 0
    for n, seg in enumerate(segments, start=1):
        sid = seg[0]
        if sid == "ST":
            if _el(seg, 1) != "270":
                raise X12Error("transaction set is not a 270 (ST01)", n, sid)
            tx, current, reference = tx + 1, None, ""
        elif sid == "BHT":
            reference = _el(seg, 3)
        elif sid == "HL":
            current = _hl(seg, n, tx, nodes, reference)
            order.append(current)
        elif current is not None:
            _segment(current, seg, n, repetition)
    return InquiryFile(
        interchange_control_number=isa[13],
        sender_id=isa[6].strip(),
        receiver_id=isa[8].strip(),
        inquiries=tuple(_inquiries(order)),
    )


def _el(seg: list[str], i: int) -> str:
    return seg[i] if len(seg) > i else ""


def _hl(seg: list[str], n: int, tx: int, nodes: dict, reference: str) -> _Node:
    hl_id, parent_id, code = _el(seg, 1), _el(seg, 2), _el(seg, 3)
    if code not in _LEVELS:
        raise X12Error("HL03 is not 20, 21, 22 or 23", n, "HL")
    parent = nodes.get((tx, parent_id))
    if code != "20" and (parent is None or parent.level != _LEVELS[_LEVELS.index(code) - 1]):
        raise X12Error("HL02 does not name the HL of the level above", n, "HL")
    if (tx, hl_id) in nodes:
        raise X12Error("HL01 repeats an earlier HL's", n, "HL")
    node = _Node(code, parent, n, _el(seg, 4) == "1", reference)
    nodes[(tx, hl_id)] = node
    return node


def _segment(node: _Node, seg: list[str], n: int, repetition: str | None) -> None:
    sid = seg[0]
    if sid == "NM1":
        if node.level in ("20", "21"):
            node.name, node.identifier = _el(seg, 3), _el(seg, 9)
            return
        node.person = Person270(_el(seg, 3), _el(seg, 4), node.person.birth_date)
        if _el(seg, 8) in ("MI", "II"):
            node.member_id = _el(seg, 9) or None
    elif sid == "TRN" and _el(seg, 1) == "1":
        node.trace = (_el(seg, 2), _el(seg, 3))
    elif sid == "REF" and _el(seg, 1) in ("6P", "1L"):
        node.group_number = _el(seg, 2) or None
    elif sid == "DMG" and _el(seg, 1) == "D8":
        p = node.person
        node.person = Person270(
            p.last_name, p.first_name, _date(_el(seg, 2), n), _el(seg, 3) or None
        )
    elif sid == "INS":
        node.relationship = _el(seg, 2) or None
    elif sid == "DTP" and _el(seg, 1) == "291":
        node.service_date = _date(_el(seg, 3).split("-")[0], n)
    elif sid == "EQ":
        raw = _el(seg, 1)
        node.service_types.extend(t for t in (raw.split(repetition) if repetition else [raw]) if t)
    elif sid == "III" and _el(seg, 1) == "ZZ":
        node.place_of_service = _el(seg, 2) or None


def _inquiries(order: list[_Node]):
    for node in order:
        if node.level not in ("22", "23"):
            continue
        if node.level == "22" and node.has_children and node.trace is None:
            continue  # the dependent loop below carries the inquiry
        if node.trace is None:
            raise X12Error("subscriber or dependent loop has no TRN*1 trace number", node.segment)
        dependent = node.level == "23"
        sub = node.parent if dependent else node
        assert sub is not None and sub.parent is not None  # checked by _hl
        receiver = sub.parent
        source = receiver.parent
        assert source is not None
        yield Inquiry(
            trace_number=node.trace[0],
            originator=node.trace[1],
            reference=node.reference,
            payer_id=source.identifier,
            payer_name=source.name,
            provider_npi=receiver.identifier,
            provider_name=receiver.name,
            member_id=sub.member_id,
            subscriber=sub.person,
            dependent=node.person if dependent else None,
            relationship=node.relationship if dependent else None,
            group_number=sub.group_number,
            service_date=node.service_date or sub.service_date,
            service_types=tuple(node.service_types or sub.service_types) or ("30",),
            place_of_service=node.place_of_service or sub.place_of_service,
        )


def _date(raw: str, n: int) -> date:
    try:
        return date(int(raw[:4]), int(raw[4:6]), int(raw[6:8]))
    except ValueError:
        raise X12Error("date is not CCYYMMDD", n) from None
