"""A file or stream of HL7 v2 messages -> one text per message.

Real files end segments with CR (the standard), LF or CRLF, mix them, start with a UTF-8 BOM,
wrap messages in FHS/BHS ... BTS/FTS batch envelopes, and sometimes keep the MLLP frame bytes.
Splitting happens on the bytes, so that each message is then decoded by its own MSH-18.
A line that is not a segment continues the segment before it (a line break in its text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from services.intake.domain.hl7v2.charset import decode
from services.intake.domain.hl7v2.problems import Hl7Problem

_LINE = re.compile(rb"\r\n|\r|\n")
_SEGMENT_ID = re.compile(rb"[A-Z][A-Z0-9]{2}")
_BOM = b"\xef\xbb\xbf"
_ENVELOPE = {b"FHS", b"BHS", b"BTS", b"FTS"}


@dataclass
class RawMessage:
    """One message as text, segments separated by CR; ``lines`` holds each segment's input
    line; ``warnings`` concern how it was framed or decoded."""

    text: str
    lines: list[int]
    warnings: list[Hl7Problem] = field(default_factory=list)

    @property
    def line(self) -> int:
        return self.lines[0] if self.lines else 1


@dataclass
class Split:
    messages: list[RawMessage]
    problems: list[Hl7Problem]  # input-level: lines outside any message, batch counts
    batches: int = 0


@dataclass
class _Pending:
    segments: list[bytes]
    lines: list[int]
    warnings: list[Hl7Problem]


def split_messages(data: bytes | str) -> Split:
    """Split an input into its messages (see the module docstring). Never raises."""
    as_text = isinstance(data, str)
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff") or (len(raw) > 3 and raw[1:2] == b"\x00"):
        raw, as_text = _utf16(raw), True
    raw = raw.replace(b"\x0b", b"").replace(b"\x1c", b"\r")  # MLLP start/end blocks
    out = Split([], [])
    current: _Pending | None = None
    batch_count: list[int] = []  # messages seen in the open batch
    orphan_reported = False
    for number, line in enumerate(_LINE.split(raw), 1):
        line = line.removeprefix(_BOM)
        if not line.strip():
            continue
        seg_id = line[:3]
        is_segment = _SEGMENT_ID.fullmatch(seg_id) is not None and (
            len(line) == 3 or not line[3:4].isalnum()
        )
        if is_segment and seg_id in _ENVELOPE:
            _close(current, out, as_text, batch_count)
            current = None
            if seg_id == b"BHS":
                out.batches += 1
                batch_count.append(0)
            elif seg_id == b"BTS" and batch_count:
                _check_count(line, batch_count.pop(), "BTS", number, out)
            continue
        if is_segment and seg_id == b"MSH":
            _close(current, out, as_text, batch_count)
            current = _Pending([line], [number], [])
            orphan_reported = False
            continue
        if current is None:
            if not orphan_reported:
                out.problems.append(
                    Hl7Problem(
                        "expected an MSH segment to begin the message"
                        + (f"; found a {seg_id.decode('ascii')} segment" if is_segment else ""),
                        line=number,
                        code=100,
                    )
                )
                orphan_reported = True
            continue
        if is_segment:
            current.segments.append(line)
            current.lines.append(number)
        else:
            current.segments[-1] += b"\n" + line
            current.warnings.append(
                Hl7Problem(
                    "not a segment (no segment id): read as a line break in the segment before it",
                    line=number,
                    code=100,
                    severity="W",
                )
            )
    _close(current, out, as_text, batch_count)
    return out


def _utf16(raw: bytes) -> bytes:
    """UTF-16 input (a BOM, or NULs between ASCII letters) re-encoded as UTF-8."""
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return raw.decode("utf-16", errors="replace").encode("utf-8")
    return raw.decode("utf-16-le", errors="replace").encode("utf-8")


def _close(current: _Pending | None, out: Split, as_text: bool, batch_count: list[int]) -> None:
    if current is None:
        return
    body = b"\r".join(current.segments)
    warnings = list(current.warnings)
    if as_text:
        text = body.decode("utf-8", errors="replace")
    else:
        text, note = decode(body, _msh18(current.segments[0]))
        if note:
            warnings.append(
                Hl7Problem(
                    note, "MSH", 18, code=103, severity="W", position=1, line=current.lines[0]
                )
            )
    out.messages.append(RawMessage(text, current.lines, warnings))
    if batch_count:
        batch_count[-1] += 1


def _msh18(msh: bytes) -> str:
    """MSH-18's first repetition, read from the header's bytes (ASCII in every set)."""
    if len(msh) < 4:
        return ""
    sep = msh[3:4]
    fields = msh.split(sep)
    if len(fields) < 18:
        return ""
    enc = fields[1]
    value = fields[17].split(enc[1:2] or b"~")[0] if enc else fields[17]
    return value.decode("latin-1").strip()


def _check_count(line: bytes, found: int, seg: str, number: int, out: Split) -> None:
    fields = line.split(line[3:4]) if len(line) > 3 else []
    declared = fields[1].strip() if len(fields) > 1 else b""
    if declared.isdigit() and int(declared) != found:
        out.problems.append(
            Hl7Problem(
                "the batch message count differs from the messages the batch holds",
                seg,
                1,
                line=number,
                code=100,
                severity="W",
            )
        )
