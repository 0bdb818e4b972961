"""Text PostgreSQL cannot store: the one rule every service applies to what it is sent.

A ``text`` or ``jsonb`` value may hold no NUL character, and UTF-8 (the database encoding) has
no lone surrogate (U+D800-U+DFFF without its pair), so either would fail the INSERT: a 500
instead of a 4xx naming the field. Each service words the refusal for its own field; the rule
of what is refused lives here.
"""

from __future__ import annotations

import re
from enum import StrEnum

# Any code point in the surrogate range; searched in C (a per-character Python loop cost 0.3 ms
# of a 2 ms intake request).
_SURROGATE = re.compile("[\ud800-\udfff]")
# A JSON escape in the surrogate range, before which the exact pairing check is worth running.
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


class Unstorable(StrEnum):
    """Why a value cannot be stored as text."""

    NOT_UTF8 = "bytes that are not UTF-8"
    NUL = "a NUL character"
    LONE_SURROGATE = "a lone surrogate"


def unstorable(text: str) -> Unstorable | None:
    """What in ``text`` Postgres cannot store (a NUL, a lone surrogate); None when it can.

    A Python string holds an astral character as one code point, so any code point in the
    surrogate range is one without its pair (what ``json.loads`` makes of a ``\\ud800``).
    """
    if "\x00" in text:
        return Unstorable.NUL
    if _SURROGATE.search(text):
        return Unstorable.LONE_SURROGATE
    return None


def unstorable_json(body: bytes) -> Unstorable | None:
    """What in a raw JSON body Postgres cannot store, before it is parsed; None when it can.

    Besides bytes that are not UTF-8, a NUL or lone surrogate counts whether it is sent as the
    character or as a JSON escape (``\\u0000``, a ``\\uD800`` not followed by a low half), since
    ``json.loads`` turns the escape into the character.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return Unstorable.NOT_UTF8
    if "\x00" in text or "\\u0000" in text:
        return Unstorable.NUL
    # A strict UTF-8 decode never yields a surrogate (their encodings are refused above), so
    # only escapes can make one.
    if _ESCAPED_SURROGATE.search(text) and _escaped_lone_surrogate(text):
        return Unstorable.LONE_SURROGATE
    return None


def _escaped_lone_surrogate(text: str) -> bool:
    """A JSON \\uD800-\\uDFFF escape not paired high-then-low (json.loads would accept it)."""
    i = text.find("\\u")
    while i != -1:
        v = _hex(text[i + 2 : i + 6])
        if 0xD800 <= v <= 0xDBFF:
            nxt = text[i + 6 : i + 12]
            if not (nxt[:2] == "\\u" and 0xDC00 <= _hex(nxt[2:6]) <= 0xDFFF):
                return True
            i = text.find("\\u", i + 12)
            continue
        if 0xDC00 <= v <= 0xDFFF:
            return True
        i = text.find("\\u", i + 2)
    return False


def _hex(s: str) -> int:
    try:
        return int(s, 16)
    except ValueError:
        return -1
