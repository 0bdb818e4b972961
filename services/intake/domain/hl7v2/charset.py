"""MSH-18 character sets (HL7 table 0211) and the Python codecs that read them.

A message is decoded by what its own MSH-18 declares (its first repetition: the default set);
one that declares nothing is read as UTF-8 (ASCII is a subset), else Windows-1252. Bytes that
break the declared set are read the same way, with a warning.
"""

from __future__ import annotations

import re

_CODECS = {
    "ASCII": "ascii",
    "ISOIR6": "ascii",
    "USASCII": "ascii",
    "ISOIR100": "iso8859-1",
    "ISOIR101": "iso8859-2",
    "ISOIR109": "iso8859-3",
    "ISOIR110": "iso8859-4",
    "ISOIR144": "iso8859-5",
    "ISOIR127": "iso8859-6",
    "ISOIR126": "iso8859-7",
    "ISOIR138": "iso8859-8",
    "ISOIR148": "iso8859-9",
    "ISOIR203": "iso8859-15",
    "ISOIR14": "shift_jis",
    "ISOIR87": "iso2022_jp",
    "ISOIR159": "iso2022_jp_2",
    "ISOIR192": "utf-8",
    "GB180302000": "gb18030",
    "GB18030": "gb18030",
    "KSX1001": "euc_kr",
    "BIG5": "big5",
    "UNICODE": "utf-8",
    "UNICODEUTF8": "utf-8",
    "UTF8": "utf-8",
    "UNICODEUTF16": "utf-16",
    "UTF16": "utf-16",
    "UNICODEUTF32": "utf-32",
    "UTF32": "utf-32",
    "WINDOWS1252": "cp1252",
    "CP1252": "cp1252",
}
for _n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 15):
    _CODECS[f"8859{_n}"] = _CODECS[f"ISO8859{_n}"] = f"iso8859-{_n}"


def codec_for(declared: str) -> str | None:
    """The Python codec of an MSH-18 value (``8859/1``, ``UNICODE UTF-8``, ``ISO IR100``,
    common spellings too); None when the set is not known."""
    key = re.sub(r"[\s/_.-]+", "", declared.upper())
    return _CODECS.get(key)


def decode(raw: bytes, declared: str) -> tuple[str, str | None]:
    """The text of one message's bytes and, when they were not what MSH-18 declared, a
    warning saying how they were read (no value quoted)."""
    codec = codec_for(declared) if declared else None
    if codec is not None:
        try:
            return raw.decode(codec), None
        except UnicodeDecodeError:
            pass
    try:
        text = raw.decode("utf-8")
        read_as = "UTF-8"
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
        read_as = "Windows-1252"
    if codec is not None:
        return (
            text,
            f"the message holds bytes that are not valid in its character set: read as {read_as}",
        )
    if declared:
        return text, f"character set not recognised (HL7 table 0211): read as {read_as}"
    if read_as != "UTF-8":
        return text, "no character set declared and the message is not UTF-8: read as Windows-1252"
    return text, None
