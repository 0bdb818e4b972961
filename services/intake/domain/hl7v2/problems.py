"""What HL7 v2 intake reports: a problem names the segment (id and position) and the field, and
carries the HL7 error code (table 0357) an ACK's ERR segment needs. Never a value: values may
be PHI."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

# HL7 table 0357 (message error condition codes) with their standard texts.
ERROR_TEXT = {
    0: "Message accepted",
    100: "Segment sequence error",
    101: "Required field missing",
    102: "Data type error",
    103: "Table value not found",
    200: "Unsupported message type",
    201: "Unsupported event code",
    202: "Unsupported processing id",
    203: "Unsupported version id",
    204: "Unknown key identifier",
    205: "Duplicate key identifier",
    206: "Application record locked",
    207: "Application internal error",
}
# Codes that mean "not processed at all" (ACK AR) rather than "processed with errors" (AE).
REJECT_CODES = frozenset({200, 201, 202, 203})

Severity = Literal["E", "W"]


@dataclass(frozen=True)
class Hl7Problem:
    """One problem of a message (or of a file): ``segment`` is the segment id ("" for the
    input as a whole), ``position`` the segment's place in its message (1 = MSH),
    ``occurrence`` its place among the segments of its id (ERR-2.2), ``line`` the input
    line when known. ``severity`` E is an error, W a warning (the message is still used)."""

    message: str
    segment: str = ""
    field: int | None = None
    component: int | None = None
    code: int = 102
    severity: Severity = "E"
    position: int | None = None
    occurrence: int | None = None
    repetition: int | None = None
    line: int | None = None

    @property
    def location(self) -> str:
        """``PID-7``, ``PID-5.2``, ``PV1``, or ``line 12`` for input-level problems."""
        if not self.segment:
            return f"line {self.line}" if self.line else "message"
        out = self.segment
        if self.field is not None:
            out += f"-{self.field}"
            if self.component is not None:
                out += f".{self.component}"
        return out

    @property
    def path(self) -> str:
        where = []
        if self.position is not None:
            where.append(f"segment {self.position}")
        if self.line is not None and self.segment:
            where.append(f"line {self.line}")
        return self.location + (f" ({', '.join(where)})" if where else "")

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        """The ``{"path", "message"}`` shape every intake API and command reports."""
        return {"path": self.path, "message": self.message}

    @property
    def is_error(self) -> bool:
        return self.severity == "E"


def errors(problems: Iterable[Hl7Problem]) -> list[Hl7Problem]:
    return [p for p in problems if p.is_error]


def ack_code(problems: Iterable[Hl7Problem]) -> str:
    """AA without errors; AR when the message was not processed (unsupported type, event,
    processing id, version, or an unreadable header); AE for other errors."""
    errs = errors(problems)
    if not errs:
        return "AA"
    if any(p.code in REJECT_CODES or (p.segment == "MSH" or not p.segment) for p in errs):
        return "AR"
    return "AE"


class Hl7Error(ValueError):
    """A message that cannot be read. ``problems`` name segment and field (no values);
    ``meta`` is what the header gave (for the ACK), when it could be read."""

    def __init__(self, problems: Iterable[Hl7Problem], meta=None):
        self.problems = list(problems)
        self.meta = meta
        shown = "; ".join(str(p) for p in self.problems[:10])
        more = f" (and {len(self.problems) - 10} more)" if len(self.problems) > 10 else ""
        super().__init__(f"invalid HL7 v2 message: {shown}{more}")
