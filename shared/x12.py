"""X12 5010 primitives shared by every service that reads or writes X12.

Reading: separators come from the ISA header (never assumed), segments are split
into plain lists of strings (no per-segment objects: parsers stay fast).
Writing: ``Interchange`` builds ISA/GS/ST...SE/GE/IEA with correct counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

ISA_LENGTH = 106


class X12Error(ValueError):
    """Malformed X12. ``segment`` is the 1-based segment number within the file."""

    def __init__(self, message: str, segment: int | None = None, segment_id: str | None = None):
        self.segment = segment
        self.segment_id = segment_id
        where = ""
        if segment is not None:
            where = f"segment {segment}" + (f" ({segment_id})" if segment_id else "") + ": "
        super().__init__(where + message)


@dataclass(frozen=True, slots=True)
class Separators:
    element: str = "*"
    component: str = ":"
    repetition: str = "^"
    segment: str = "~"


def detect_separators(text: str) -> Separators:
    """Read the separators from the fixed-width ISA segment."""
    start = text.find("ISA")
    if start < 0:
        raise X12Error("no ISA segment: not an X12 interchange", 1, "ISA")
    isa = text[start : start + ISA_LENGTH]
    if len(isa) < ISA_LENGTH:
        raise X12Error("ISA segment truncated (expected 106 characters)", 1, "ISA")
    element = isa[3]
    if isa.count(element) != 16:
        raise X12Error(
            f"ISA must have 16 elements separated by {element!r}, found {isa.count(element)}",
            1,
            "ISA",
        )
    seps = Separators(element=element, component=isa[104], repetition=isa[82], segment=isa[105])
    if seps.segment.isalnum():
        raise X12Error(f"invalid segment terminator {seps.segment!r}", 1, "ISA")
    return seps


def split_segments(text: str, seps: Separators | None = None) -> tuple[list[list[str]], Separators]:
    """Split an interchange into segments, each a list of element strings.

    Tolerates line breaks after terminators (common in files edited by hand).
    """
    seps = seps or detect_separators(text)
    text = text[text.find("ISA") :]
    out: list[list[str]] = []
    el = seps.element
    for raw in text.split(seps.segment):
        raw = raw.strip("\r\n\t ")
        if raw:
            out.append(raw.split(el))
    return out, seps


def components(value: str, seps: Separators) -> list[str]:
    return value.split(seps.component)


def x12_date(d) -> str:
    return d.strftime("%Y%m%d")


def clean(value: object, max_len: int | None = None) -> str:
    """Make a value safe for an X12 element: no separators, upper-case, trimmed."""
    s = str(value).upper()
    for ch in "*~:^\r\n":
        s = s.replace(ch, " ")
    s = " ".join(s.split())
    return s[:max_len] if max_len else s


def amount(value) -> str:
    """Format a Decimal for X12 (R type): no trailing zeros beyond need, no exponent."""
    s = format(value.quantize(value.__class__("0.01")), "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s or "0"


@dataclass
class Transaction:
    """One ST...SE transaction set being written."""

    control_number: str
    segments: list[list[str]] = field(default_factory=list)

    def add(self, *elements: object) -> None:
        # Trailing empty elements must be dropped: X12 forbids trailing separators.
        items = ["" if e is None else str(e) for e in elements]
        while items and items[-1] == "":
            items.pop()
        self.segments.append(items)


@dataclass
class Interchange:
    """Builds one interchange (ISA/IEA) holding one functional group (GS/GE)."""

    sender_id: str
    receiver_id: str
    control_number: int  # ISA13, 1..999999999
    group_control_number: int  # GS06
    functional_id: str  # GS01: HC 837, HP 835, FA 999, HN 277, HR 276
    version: str  # GS08, e.g. 005010X222A1
    transaction_type: str  # ST01, e.g. 837
    created_at: datetime
    usage: str = "P"  # ISA15: P production, T test
    seps: Separators = field(default_factory=Separators)
    gs_sender: str | None = None
    gs_receiver: str | None = None
    transactions: list[Transaction] = field(default_factory=list)

    def new_transaction(self, control_number: str | None = None) -> Transaction:
        cn = control_number or f"{len(self.transactions) + 1:04d}"
        tx = Transaction(cn)
        tx.add("ST", self.transaction_type, cn, self.version)
        self.transactions.append(tx)
        return tx

    @property
    def isa13(self) -> str:
        return f"{self.control_number:09d}"

    def render(self) -> str:
        s = self.seps
        ts = self.created_at
        isa = [
            "ISA", "00", " " * 10, "00", " " * 10,
            "ZZ", f"{self.sender_id:<15}"[:15], "ZZ", f"{self.receiver_id:<15}"[:15],
            ts.strftime("%y%m%d"), ts.strftime("%H%M"), s.repetition, "00501",
            self.isa13, "0", self.usage, s.component,
        ]  # fmt: skip
        lines = [s.element.join(isa)]
        lines.append(
            s.element.join(
                [
                    "GS", self.functional_id, self.gs_sender or self.sender_id.strip(),
                    self.gs_receiver or self.receiver_id.strip(), ts.strftime("%Y%m%d"),
                    ts.strftime("%H%M"), str(self.group_control_number), "X", self.version,
                ]
            )
        )  # fmt: skip
        for tx in self.transactions:
            for seg in tx.segments:
                lines.append(s.element.join(seg))
            lines.append(s.element.join(["SE", str(len(tx.segments) + 1), tx.control_number]))
        lines.append(
            s.element.join(["GE", str(len(self.transactions)), str(self.group_control_number)])
        )
        lines.append(s.element.join(["IEA", "1", self.isa13]))
        return s.segment.join(lines) + s.segment + "\n"
