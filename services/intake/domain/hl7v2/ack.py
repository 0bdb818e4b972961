"""HL7 v2 acknowledgements (original mode): MSH + MSA, and ERR segments naming each problem.

v2.5 and later: one ERR per problem with ERR-2 (error location: segment id, sequence, field
position, repetition, component), ERR-3 (HL7 table 0357 code), ERR-4 (severity E/W) and
ERR-7 (what was expected); warnings travel on an AA too. Before v2.5: MSA-3 carries the text
(2.3 style) and one ERR-1 repetition (segment^sequence^field^code) per error.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import hl7
import hl7.util

from services.intake.domain.hl7v2.message import MessageMeta
from services.intake.domain.hl7v2.problems import ERROR_TEXT, Hl7Problem

ACK_CODES = ("AA", "AE", "AR", "CA", "CE", "CR")
_MSA3_MAX = 80  # MSA-3 length in v2.3


# A python-hl7 message with the standard delimiters the ACK is written with (for ``escape``).
_DELIMITERS = hl7.parse("MSH|^~\\&|")


def build_ack(
    message_meta: MessageMeta | None,
    code: str = "AA",
    errors: Iterable[Hl7Problem] = (),
    *,
    control_id: str | None = None,
    now: datetime | None = None,
) -> str:
    """The ACK for a message whose header gave ``message_meta`` (None when even MSH could not
    be read: the ACK then names no control id). Segments end with CR. ``control_id`` is the
    ACK's own MSH-10 (default: ``A`` + the message's control id, cut to 20 characters)."""
    if code not in ACK_CODES:
        raise ValueError(f"ACK code must be one of {', '.join(ACK_CODES)}")
    meta = message_meta or MessageMeta()
    version = meta.version or "2.5"
    vt = meta.version_tuple if meta.version else (2, 5)
    problems = [p for p in errors if p.is_error or vt >= (2, 5)]
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")
    if vt < (2, 3):
        msg_type = "ACK"
    elif vt < (2, 3, 1):
        msg_type = _join(["ACK", meta.trigger])
    else:
        msg_type = _join(["ACK", meta.trigger, "ACK"])
    msh = [
        "MSH",
        "^~\\&",
        _hd(meta.receiving_application),
        _hd(meta.receiving_facility),
        _hd(meta.sending_application),
        _hd(meta.sending_facility),
        stamp,
        "",
        msg_type,
        _esc(control_id or ("A" + meta.control_id)[:20]),
        _esc(meta.processing_id or "P"),
        _esc(version),
    ]
    if meta.charset:
        msh += ["", "", "", "", "", _esc(meta.charset)]
    msa = ["MSA", code, _esc(meta.control_id)]
    segments = ["|".join(msh)]
    if vt < (2, 5):
        errs = [p for p in problems if p.is_error]
        if errs:
            msa.append(_esc(_text(errs)))
        segments.append("|".join(msa))
        if errs:
            segments.append("ERR|" + "~".join(_eld(p) for p in errs))
    else:
        segments.append("|".join(msa))
        segments += ["|".join(_err(p)) for p in problems]
    return "".join(s.rstrip("|") + "\r" for s in segments)


def _esc(value: str) -> str:
    return hl7.util.escape(_DELIMITERS, value) if value else ""


def _join(parts: list[str]) -> str:
    return "^".join(_esc(p) for p in parts).rstrip("^")


def _hd(parts: tuple[str, ...]) -> str:
    return _join(list(parts))


def _text(problems: list[Hl7Problem]) -> str:
    text = "; ".join(str(p.location) + ": " + p.message for p in problems)
    return text if len(text) <= _MSA3_MAX else text[: _MSA3_MAX - 3] + "..."


def _cwe(code: int) -> str:
    return f"{code}^{ERROR_TEXT.get(code, 'Application error')}^HL70357"


def _eld(p: Hl7Problem) -> str:
    """v2.2-2.4 ERR-1: segment id ^ sequence ^ field position ^ code (a CE as subcomponents)."""
    code = f"{p.code}&{ERROR_TEXT.get(p.code, 'Application error')}&HL70357"
    parts = [p.segment, str(p.occurrence or (1 if p.segment else "")), str(p.field or ""), code]
    return "^".join(parts)


def _err(p: Hl7Problem) -> list[str]:
    """v2.5+ ERR: ERR-2 location, ERR-3 code, ERR-4 severity, ERR-7 diagnostic text."""
    location = ""
    if p.segment:
        loc = [p.segment, str(p.occurrence or 1)]
        if p.field is not None:
            loc += [str(p.field), str(p.repetition or 1)]
            if p.component is not None:
                loc.append(str(p.component))
        location = "^".join(loc)
    return [
        "ERR",
        "",
        location,
        _cwe(p.code),
        p.severity,
        "",
        "",
        _esc(f"{p.location}: {p.message}"),
    ]
