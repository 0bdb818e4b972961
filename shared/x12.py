"""X12 5010 primitives shared by every service that reads or writes X12.

Reading: separators come from the ISA header (never assumed), segments are split
into plain lists of strings (no per-segment objects: parsers stay fast).
Writing: ``Interchange`` builds ISA/GS/ST...SE/GE/IEA with correct counts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import repeat

ISA_LENGTH = 106


_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{1,2}")


def is_segment_id(text: str) -> bool:
    """Two or three capitals/digits starting with a letter (ISA, N1, NM1, SE...)."""
    return _SEGMENT_ID.fullmatch(text) is not None


def segment_id_problem(sid: str) -> str:
    """What to say about a segment whose first element is no segment id, without quoting it.

    Quoting it would copy the segment's content into the message: when its elements are
    not separated by the separator ISA declares, the whole segment (a patient's name and
    member id) is its "first element".
    """
    if not sid:
        return "segment id is empty"
    return (
        f"segment id is not 2-3 letters or digits ({len(sid)} characters): "
        "a separator other than the one ISA declares?"
    )


def shown(value: str, max_digits: int = 3, quote: bool = True) -> str:
    """An element value fit for a message: itself when it is a short number (a qualifier,
    status or control number) or one letter or digit (a status code), else only its length.
    Names, member ids, dates and free text never reach a message or a log through it."""
    if value.isascii() and (
        (value.isdigit() and len(value) <= max_digits) or (len(value) == 1 and value.isalnum())
    ):
        return repr(value) if quote else value
    return f"(a {len(value)}-character value, not shown)" if value else "(empty)"


class X12Error(ValueError):
    """Malformed X12. ``segment`` is the 1-based segment number within the file.

    Messages name positions and ids, never element values (claim loops carry PHI);
    a ``segment_id`` that is not one (a whole unsplit segment) is dropped.
    """

    def __init__(self, message: str, segment: int | None = None, segment_id: str | None = None):
        if segment_id is not None and not is_segment_id(segment_id):
            segment_id = None
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


# What some systems leave after the last IEA: DOS end-of-file (Ctrl-Z) and NUL block padding.
_PADDING = "\x00\x1a\r\n\t "
_LINE_BREAKS = str.maketrans("", "", "\r\n")
# For a bare ST..SE: GS01 of each transaction set rcm reads or writes, and GS08 when ST03 is
# missing and 5010 has one version of it (a 277 is a status response or a 277CA: not guessed).
_FUNCTIONAL_IDS = {
    "835": ("HP", "005010X221A1"),
    "837": ("HC", ""),
    "999": ("FA", "005010X231A1"),
    "277": ("HN", ""),
    "276": ("HR", "005010X212"),
    "270": ("HS", "005010X279A1"),
    "271": ("HB", "005010X279A1"),
}
BARE_TRANSACTION_WARNING = (
    "no ISA/GS envelope: a bare ST..SE transaction set, read as if enveloped"
    " (segment numbers count the supplied ISA and GS as 1 and 2)"
)
WRAPPED_WARNING = (
    "line breaks inside segments (the file was wrapped at a fixed width): removed before reading"
)


@dataclass(frozen=True, slots=True)
class Prepared:
    """An interchange ready to split: ``text`` starts at its first ISA."""

    text: str
    seps: Separators
    warnings: tuple[str, ...] = ()
    enveloped: bool = True  # False: a bare ST..SE was wrapped in a supplied ISA/GS...GE/IEA


def prepare(text: str) -> Prepared:
    """The one place an inbound interchange is made readable, before it is split.

    - text before the first ISA is dropped;
    - an ISA broken by CR/LF inside its 106 characters (a file wrapped at a fixed width) is
      read without them, and so is the whole file (CR/LF are no X12 data characters);
    - Ctrl-Z or NUL padding after the last IEA is dropped;
    - a bare ST..SE transaction set with no ISA/GS is wrapped in an envelope with empty
      sender, receiver and control numbers, and a warning says so (as other readers accept it).

    Raises ``X12Error`` like ``detect_separators`` when there is no interchange to read.
    """
    body = text.lstrip("\ufeff" + _PADDING)
    if body.startswith("ST") and len(body) > 2 and not body[2].isalnum() and body[2] != " ":
        return _bare_transaction(body.rstrip(_PADDING))
    start = text.find("ISA")
    if start < 0:
        raise X12Error("no ISA segment: not an X12 interchange", 1, "ISA")
    text = text[start:].rstrip(_PADDING)
    warnings: tuple[str, ...] = ()
    isa = text[: ISA_LENGTH - 1]
    if "\r" in isa or "\n" in isa:
        # Wrapped at a width under 106 (80 columns is the classic): its terminator, element
        # 16 and the component separator are read off the wrong positions unless unwrapped.
        unwrapped = text[: 4 * ISA_LENGTH].translate(_LINE_BREAKS)
        if len(unwrapped) >= ISA_LENGTH:
            text, warnings = text.translate(_LINE_BREAKS), (WRAPPED_WARNING,)
    return Prepared(text, detect_separators(text), warnings)


def _bare_transaction(body: str) -> Prepared:
    el = body[2]
    term = next((c for c in body[3:] if not c.isalnum() and c not in (el, " ")), "~")
    candidates = [c for c in ":>|\\}" if c not in (el, term)]
    comp = max(candidates, key=body.count) if any(c in body for c in candidates) else ":"
    rep = next(c for c in "^{!" if c not in (el, comp, term))
    seps = Separators(element=el, component=comp, repetition=rep, segment=term)
    first = body[: body.find(term)].split(el) if term in body else [body]
    st01 = first[1] if len(first) > 1 else ""
    functional_id, default_version = _FUNCTIONAL_IDS.get(st01, ("XX", ""))
    version = first[3] if len(first) > 3 and first[3] else default_version
    sets = sum(1 for seg in body.split(term) if seg.strip("\r\n\t ").startswith("ST" + el))
    isa = el.join(
        ["ISA", "00", " " * 10, "00", " " * 10, "ZZ", " " * 15, "ZZ", " " * 15, "000000", "0000"]
        + [rep, "00501", "000000000", "0", "P", comp]
    )
    gs = el.join(["GS", functional_id, "", "", "00000000", "0000", "0", "X"])
    tail = el.join(["GE", str(sets), "0"]) + term + el.join(["IEA", "1", "000000000"]) + term
    sep = "" if body.endswith(term) else term
    text = isa + term + gs + el + version + term + body + sep + tail
    return Prepared(text, seps, (BARE_TRANSACTION_WARNING,), enveloped=False)


def detect_separators(text: str) -> Separators:
    """Read the separators from the fixed-width ISA segment (see ``prepare`` for a wrapped one)."""
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


def split_segments(
    text: str, seps: Separators | None = None, warnings: list[str] | None = None
) -> tuple[list[list[str]], Separators]:
    """Split an interchange into segments, each a list of element strings.

    The text is read through ``prepare`` (wrapped ISA, padding, bare ST..SE); what it
    repaired is appended to ``warnings`` when given. Tolerates line breaks after
    terminators (common in files edited by hand).
    """
    prepared = prepare(text)
    if warnings is not None:
        warnings.extend(prepared.warnings)
    seps = seps or prepared.seps
    out: list[list[str]] = []
    el = seps.element
    for raw in prepared.text.split(seps.segment):
        raw = raw.strip("\r\n\t ")
        if raw:
            out.append(raw.split(el))
    return out, seps


def segment_chunks(
    text: str,
    seps: Separators | None = None,
    size: int = 1 << 15,
    warnings: list[str] | None = None,
) -> tuple[Iterator[list[str]], Separators]:
    """Split an interchange into segment strings, a chunk of about ``size`` characters at a time.

    Concatenated, the chunks hold exactly the segments of ``split_segments``,
    in order (read through ``prepare``, whitespace around terminators removed,
    blank segments skipped), but the elements are NOT split: fast readers
    split only the segments they use, or memoize repeated segment strings.
    Chunks keep a large file's segment strings cache-resident while they are
    read (splitting 10 MB at once is markedly slower to consume). Raises
    ``X12Error`` like ``detect_separators`` (before iteration starts); what
    ``prepare`` repaired is appended to ``warnings`` when given.
    """
    prepared = prepare(text)
    if warnings is not None:
        warnings.extend(prepared.warnings)
    seps = seps or prepared.seps
    return _chunks(prepared.text, seps.segment, max(size, 1)), seps


def _chunks(text: str, term: str, size: int) -> Iterator[list[str]]:
    ws = "\r\n\t "
    # Stripping every segment costs more than finding out that none needs it.
    loose = [c for c in "\r\n\t" if c != term]
    spaced = (" " + term, term + " ")
    start, end = 0, len(text)
    while start < end:
        stop = text.find(term, start + size)
        stop = end if stop < 0 else stop + 1
        piece = text[start:stop]
        if stop == end:
            piece = piece.rstrip(ws)  # the usual newline after the last terminator
        if (
            any(c in piece for c in loose)
            or " " in piece
            and (piece[0] == " " or spaced[0] in piece or spaced[1] in piece)
        ):
            yield list(filter(None, map(str.strip, piece.split(term), repeat(ws))))
        else:
            yield list(filter(None, piece.split(term)))
        start = stop


def check_envelope(segments: list[list[str]]) -> None:
    """Raise X12Error unless every ISA/GS/ST is closed by its IEA/GE/SE with matching counts and numbers.

    A file cut short (no SE, GE or IEA) or a count that does not add up is refused whole,
    so nothing from a damaged file is ever applied.
    """
    isa = gs = st = None  # (segment number, control number, ...) of the open envelope
    groups = txs = st_segs = 0
    for n, seg in enumerate(segments, start=1):
        sid = seg[0]
        if st is not None:
            st_segs += 1
        if sid == "ISA":
            if isa is not None:
                raise X12Error("ISA before the previous interchange's IEA", n, sid)
            isa, groups = (n, seg[13] if len(seg) > 13 else ""), 0
        elif sid == "GS":
            if isa is None or gs is not None:
                raise X12Error("GS outside an interchange or inside another group", n, sid)
            gs, txs = (n, seg[6] if len(seg) > 6 else ""), 0
        elif sid == "ST":
            if gs is None or st is not None:
                raise X12Error("ST outside a functional group or before the previous SE", n, sid)
            st, st_segs = (n, seg[2] if len(seg) > 2 else ""), 1
        elif sid == "SE":
            if st is None:
                raise X12Error("SE without ST", n, sid)
            if len(seg) < 3 or seg[1] != str(st_segs) or seg[2] != st[1]:
                raise X12Error(
                    f"SE must count {st_segs} segments and close ST {shown(st[1], 9, quote=False)}",
                    n,
                    sid,
                )
            st, txs = None, txs + 1
        elif sid == "GE":
            if gs is None or st is not None:
                raise X12Error("GE without GS, or before SE", n, sid)
            # Real senders sometimes repeat a stale control number in GE02/IEA02 (the imsweb
            # samples do): the counts are what protect against a truncated file.
            if len(seg) < 2 or seg[1] != str(txs):
                raise X12Error(f"GE must count {txs} transaction sets", n, sid)
            gs, groups = None, groups + 1
        elif sid == "IEA":
            if isa is None or gs is not None:
                raise X12Error("IEA without ISA, or before GE", n, sid)
            if len(seg) < 2 or seg[1] != str(groups):
                raise X12Error(f"IEA must count {groups} functional groups", n, sid)
            isa = None
        elif not is_segment_id(sid):
            raise X12Error(segment_id_problem(sid), n)
        elif st is None:
            raise X12Error("segment outside a transaction set", n, sid)
    if st is not None:
        raise X12Error(
            f"file ends inside transaction set {shown(st[1], 9, quote=False)}: expected SE",
            st[0],
            "ST",
        )
    if gs is not None:
        raise X12Error(
            f"file ends inside functional group {shown(gs[1], 9, quote=False)}: expected GE",
            gs[0],
            "GS",
        )
    if isa is not None:
        raise X12Error(
            f"file ends inside interchange {shown(isa[1], 9, quote=False)}: expected IEA",
            isa[0],
            "ISA",
        )


def components(value: str, seps: Separators) -> list[str]:
    return value.split(seps.component)


def x12_date(d) -> str:
    return f"{d.year:04d}{d.month:02d}{d.day:02d}"  # twice as fast as strftime, and always 8 digits


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

    def add_person(
        self, entity: str, last: object, first: object, id_code: object = None, qualifier="MI"
    ) -> None:
        """NM1 of a person (NM102 1): the last name (NM103) to 60 characters, the first (NM104)
        to 35, the 5010 maxima; then the id (NM108 ``qualifier``, NM109 to 80) when there is one."""
        ids = (qualifier, clean(id_code, 80)) if id_code else ()
        self.add("NM1", entity, "1", clean(last, 60), clean(first, 35), "", "", "", *ids)


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
            "ISA",
            "00",
            " " * 10,
            "00",
            " " * 10,
            "ZZ",
            f"{self.sender_id:<15}"[:15],
            "ZZ",
            f"{self.receiver_id:<15}"[:15],
            ts.strftime("%y%m%d"),
            ts.strftime("%H%M"),
            s.repetition,
            "00501",
            self.isa13,
            "0",
            self.usage,
            s.component,
        ]
        lines = [s.element.join(isa)]
        lines.append(
            s.element.join(
                [
                    "GS",
                    self.functional_id,
                    self.gs_sender or self.sender_id.strip(),
                    self.gs_receiver or self.receiver_id.strip(),
                    x12_date(ts),
                    ts.strftime("%H%M"),
                    str(self.group_control_number),
                    "X",
                    self.version,
                ]
            )
        )
        for tx in self.transactions:
            for seg in tx.segments:
                lines.append(s.element.join(seg))
            lines.append(s.element.join(["SE", str(len(tx.segments) + 1), tx.control_number]))
        lines.append(
            s.element.join(["GE", str(len(self.transactions)), str(self.group_control_number)])
        )
        lines.append(s.element.join(["IEA", "1", self.isa13]))
        return s.segment.join(lines) + s.segment + "\n"
