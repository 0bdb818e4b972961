"""One HL7 v2 message, parsed by python-hl7 (``hl7``): segments, fields, repetitions,
components and subcomponents with the message's own delimiters, escape sequences decoded.

``parse_message`` checks the header (MSH-1/2 delimiters, MSH-9 type, MSH-10 control id,
MSH-12 version) and raises ``Hl7Error`` naming what is wrong; everything else is read
leniently by the segment readers. Only the segments intake reads are handed to the library;
the others (Z-segments, ROL, PRT, NK1 ...) are kept by id and position and ignored.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace

import hl7
import hl7.containers
import hl7.util

from services.intake.domain.hl7v2.charset import codec_for
from services.intake.domain.hl7v2.framing import RawMessage, split_messages
from services.intake.domain.hl7v2.problems import Hl7Error, Hl7Problem

# The segments intake reads; a message's other segments are not parsed into fields.
READ_SEGMENTS = frozenset(
    {"MSH", "EVN", "PID", "PV1", "PV2", "GT1", "IN1", "IN2", "TXA", "OBX", "FT1", "DG1"}
)
# python-hl7 logs a field's value when it meets an escape sequence it cannot decode; values
# may be PHI, so its loggers are silenced (``_unescape`` also never hands it such sequences).
for _module in (hl7.util, hl7.containers):
    logging.getLogger(_module.__file__).addFilter(lambda _record: False)

_VERSION = re.compile(r"2\.[1-9](\.\d{1,2})?")
_HIGHLIGHT = {"H": "", "N": ""}  # \H\ ... \N\: highlighting on/off, no text
_FORMAT = re.compile(r"\.(br|fi|nf|ce)|\.(sp|in|ti|sk)([+-]?\d{1,3})?")


@dataclass(frozen=True)
class MessageMeta:
    """What an ACK and idempotency need from MSH (applications and facilities as their
    components, unescaped). PHI-free."""

    control_id: str = ""
    sending_application: tuple[str, ...] = ()
    sending_facility: tuple[str, ...] = ()
    receiving_application: tuple[str, ...] = ()
    receiving_facility: tuple[str, ...] = ()
    message_type: str = ""
    trigger: str = ""
    structure: str = ""
    processing_id: str = ""
    version: str = ""
    charset: str = ""
    accept_ack_type: str = ""
    application_ack_type: str = ""

    @property
    def facility(self) -> str:
        """The sending facility's first component: the namespace of MSH-10 for idempotency."""
        return self.sending_facility[0] if self.sending_facility else ""

    @property
    def version_tuple(self) -> tuple[int, ...]:
        try:
            return tuple(int(p) for p in self.version.split("."))
        except ValueError:
            return (2, 5)


class Segment:
    """A parsed segment. ``get`` and ``text`` return unescaped values ("" when absent; the
    HL7 null ``""`` reads as absent). Field numbers are HL7's (MSH-9 is ``get(9)``)."""

    __slots__ = ("id", "position", "occurrence", "line", "_seg", "_codec")

    def __init__(self, seg_id: str, position: int, occurrence: int, line: int, seg, codec: str):
        self.id, self.position, self.occurrence, self.line = seg_id, position, occurrence, line
        self._seg, self._codec = seg, codec

    def _field(self, n: int):
        if self._seg is None or n < 1 or n >= len(self._seg):
            return ""
        return self._seg[n]

    def reps(self, n: int) -> list[Rep]:
        """The field's repetitions that hold something."""
        f = self._field(n)
        items = [f] if isinstance(f, str) else list(f)
        return [Rep(self, r) for r in items if not _blank(r)] if items else []

    def get(self, n: int, component: int = 1, sub: int = 1, rep: int = 1) -> str:
        node = _child(_child(_child(self._field(n), rep), component), sub)
        return self.unescape(_leaf(node))

    def text(self, n: int) -> str:
        """The whole field as text: repetitions on their own lines, stray component
        separators kept as written (free text that was not escaped)."""
        f = self._field(n)
        items = [f] if isinstance(f, str) else list(f)
        return "\n".join(self.unescape(str(r)) for r in items)

    def raw(self, n: int) -> str:
        f = self._field(n)
        return f if isinstance(f, str) else str(f)

    def unescape(self, value: str) -> str:
        value = value.strip()
        if value == '""':
            return ""
        if self._seg is None or self._seg.esc not in value:
            return value
        return _unescape(self._seg, value, self._codec)

    def problem(
        self,
        n: int | None,
        message: str,
        *,
        code: int = 102,
        severity: str = "W",
        component: int | None = None,
    ) -> Hl7Problem:
        return Hl7Problem(
            message,
            self.id,
            n,
            component=component,
            code=code,
            severity=severity,  # type: ignore[arg-type]
            position=self.position,
            occurrence=self.occurrence,
            repetition=1 if n is not None else None,
            line=self.line,
        )


class Rep:
    """One repetition of a field."""

    __slots__ = ("_segment", "_node")

    def __init__(self, segment: Segment, node):
        self._segment, self._node = segment, node

    def get(self, component: int = 1, sub: int = 1) -> str:
        return self._segment.unescape(_leaf(_child(_child(self._node, component), sub)))


@dataclass
class Hl7Message:
    """A parsed message: its header, every segment (by id and position; only the ones intake
    reads have fields), and the warnings reading it gave. Holds PHI: never log it."""

    meta: MessageMeta
    segments: list[Segment]
    warnings: list[Hl7Problem] = field(default_factory=list)

    def all(self, seg_id: str) -> list[Segment]:
        return [s for s in self.segments if s.id == seg_id]

    def first(self, seg_id: str) -> Segment | None:
        return next((s for s in self.segments if s.id == seg_id), None)


def parse_message(data: RawMessage | bytes | str) -> Hl7Message:
    """Parse one message (an MLLP frame's content, or one ``RawMessage`` of a split file).

    Raises ``Hl7Error`` when the header cannot be read or lacks MSH-9/MSH-10 (``meta`` holds
    what was read, for the ACK), or when bytes hold no message or several."""
    if isinstance(data, RawMessage):
        raw = data
    else:
        split = split_messages(data)
        if len(split.messages) != 1:
            problems = split.problems or [
                Hl7Problem(f"expected one message; found {len(split.messages)}", "MSH", code=100)
            ]
            raise Hl7Error(problems)
        raw = split.messages[0]
    warnings = list(raw.warnings)
    lines = raw.lines
    texts = raw.text.split("\r")
    texts[0] = _header(texts[0], lines[0], warnings)
    ids = [t[:3] for t in texts]
    wanted = [i for i, s in enumerate(ids) if s in READ_SEGMENTS]
    try:
        parsed = hl7.parse("\r".join(texts[i] for i in wanted))
        lib = dict(zip(wanted, parsed, strict=True))
    except Exception:  # the library's own failure on a header we accepted: name the header
        raise Hl7Error(
            [Hl7Problem("expected a readable message header", "MSH", 2, position=1)]
        ) from None
    codec = codec_for(_msh18(parsed[0])) or "utf-8"
    counts: dict[str, int] = {}
    segments = []
    for i, seg_id in enumerate(ids):
        counts[seg_id] = counts.get(seg_id, 0) + 1
        line = lines[i] if i < len(lines) else lines[-1]
        segments.append(Segment(seg_id, i + 1, counts[seg_id], line, lib.get(i), codec))
    msh = segments[0]
    meta = _meta(msh)
    problems = []
    if not meta.message_type:
        problems.append(msh.problem(9, "required: the message type", code=101, severity="E"))
    if not meta.control_id:
        problems.append(msh.problem(10, "required: the message control id", code=101, severity="E"))
    if not meta.version:
        warnings.append(msh.problem(12, "absent: version 2.5 assumed", code=101))
        meta = replace(meta, version="2.5")
    elif not _VERSION.fullmatch(meta.version):
        problems.append(
            msh.problem(12, "expected an HL7 v2 version (2.1 to 2.9)", code=203, severity="E")
        )
    if problems:
        raise Hl7Error(problems, meta)
    return Hl7Message(meta, segments, warnings)


def parse_messages(data: bytes | str) -> tuple[list[Hl7Message | Hl7Error], list[Hl7Problem]]:
    """Every message of a file (any terminator, batch envelopes allowed), each parsed or its
    ``Hl7Error``; and the file's own problems (lines outside any message)."""
    split = split_messages(data)
    out: list[Hl7Message | Hl7Error] = []
    for raw in split.messages:
        try:
            out.append(parse_message(raw))
        except Hl7Error as e:
            out.append(e)
    return out, split.problems


# --------------------------------------------------------------------------- header


def _header(text: str, line: int, warnings: list[Hl7Problem]) -> str:
    """The MSH segment with usable delimiters. Raises
    ``Hl7Error`` (AR) when MSH-1/MSH-2 cannot be delimiters."""

    def fail(n: int, message: str) -> Hl7Error:
        return Hl7Error(
            [Hl7Problem(message, "MSH", n, code=102, position=1, occurrence=1, line=line)]
        )

    if len(text) < 8 or not text.startswith("MSH"):
        raise fail(1, "expected MSH, a field separator and the encoding characters")
    sep = text[3]
    if sep.isalnum() or sep.isspace():
        raise fail(1, "expected a field separator character (|)")
    end = text.find(sep, 4)
    enc = text[4:end] if end > 0 else text[4:]
    if len(enc) == 5 and enc[2] == enc[3] and enc[2] not in (enc[0], enc[1], enc[4]):
        # ^~\\& : the escape character written twice (an escaped copy of ^~\&)
        fixed = enc[:3] + enc[4]
        warnings.append(
            Hl7Problem(
                "encoding characters with the escape character doubled: read as four",
                "MSH",
                2,
                code=102,
                severity="W",
                position=1,
                occurrence=1,
                line=line,
            )
        )
        text = text[:4] + fixed + text[4 + len(enc) :]
        enc = fixed
    core = enc[:4]
    if len(enc) < 4 or len(set(core + sep)) != 5 or any(c.isalnum() or c.isspace() for c in enc):
        raise fail(2, "expected four distinct encoding characters (^~\\&)")
    return text


def _msh18(msh) -> str:
    try:
        return str(msh(18)).split(str(msh(2))[1])[0].strip() if len(msh) > 18 else ""
    except (IndexError, ValueError):
        return ""


def _meta(msh: Segment) -> MessageMeta:
    def hd(n: int) -> tuple[str, ...]:
        parts = [msh.get(n, c) for c in (1, 2, 3)]
        while parts and not parts[-1]:
            parts.pop()
        return tuple(parts)

    return MessageMeta(
        control_id=msh.get(10),
        sending_application=hd(3),
        sending_facility=hd(4),
        receiving_application=hd(5),
        receiving_facility=hd(6),
        message_type=msh.get(9, 1).upper(),
        trigger=msh.get(9, 2).upper(),
        structure=msh.get(9, 3).upper(),
        processing_id=msh.get(11),
        version=msh.get(12),
        charset=msh.get(18),
        accept_ack_type=msh.get(15).upper(),
        application_ack_type=msh.get(16).upper(),
    )


# --------------------------------------------------------------------------- values


def _blank(node) -> bool:
    return node == "" if isinstance(node, str) else not str(node).strip()


def _child(node, i: int):
    """The i-th (1-based) child of a python-hl7 container; a string is its own first child."""
    if isinstance(node, str):
        return node if i == 1 else ""
    return node[i - 1] if 0 < i <= len(node) else ""


def _leaf(node) -> str:
    """Deeper than asked: the first leaf (HL7's rule for reading a component as a field)."""
    while not isinstance(node, str):
        node = node[0] if len(node) else ""
    return node


def _unescape(seg, value: str, codec: str) -> str:
    """HL7 escape sequences decoded: \\F\\ \\S\\ \\T\\ \\R\\ \\E\\ and formatting (\\.br\\ ...) by
    the library; \\Xhh..\\ as bytes of the message's character set; highlighting, character-set
    switches (\\C..\\ \\M..\\) and local \\Z..\\ sequences give no text; an escape character
    without a closing one is text."""
    esc = seg.esc
    pattern = _sequence(esc)
    literal = f"{esc}E{esc}"
    out, pos = [], 0
    for m in pattern.finditer(value):
        out.append(value[pos : m.start()])
        body = m.group(1)
        if body in ("F", "S", "T", "R", "E", "H", "N") or _FORMAT.fullmatch(body):
            out.append(m.group(0))
        elif body[:1] == "X" and re.fullmatch(r"(?:[0-9A-Fa-f]{2})+", body[1:]):
            out.append(
                bytes.fromhex(body[1:]).decode(codec, errors="replace").replace(esc, literal)
            )
        pos = m.end()
    out.append(value[pos:].replace(esc, literal))
    text = hl7.util.unescape(seg, "".join(out), _HIGHLIGHT)
    return text.replace("\r\n", "\n").replace("\r", "\n")


_SEQUENCES: dict[str, re.Pattern] = {}


def _sequence(esc: str) -> re.Pattern:
    if esc not in _SEQUENCES:
        e = re.escape(esc)
        _SEQUENCES[esc] = re.compile(f"{e}([^{e}]*){e}")
    return _SEQUENCES[esc]
