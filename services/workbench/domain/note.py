"""The note cut into segments for display: which suggestions' evidence and which context
(negated, history, family, uncertain, hypothetical) cover each piece.

Spans may overlap (two codes from one phrase, evidence inside a negated sentence): the note
is cut at every span boundary, so each segment carries the full set covering it. A span
whose offsets do not fit the note, or whose text differs from the note at those offsets
and is not found nearby, is left out (the code is then shown without evidence).
"""

from __future__ import annotations

from dataclasses import dataclass

CONTEXT_KINDS = ("negated", "history", "family", "uncertain", "hypothetical")
NEARBY = 200  # characters around the given offsets searched for evidence text that moved


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    ref: str = ""  # the suggestion ("dx-0", "px-1") whose evidence this is
    kind: str = ""  # a context kind instead


@dataclass(frozen=True)
class Segment:
    text: str
    refs: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    opens: tuple[str, ...] = ()  # context kinds whose span starts here (labelled once)


def locate(note: str, start, end, text: str | None) -> tuple[int, int] | None:
    """The span's offsets in ``note``, checked against its text; None when it cannot be placed."""
    if not isinstance(start, int) or not isinstance(end, int):
        return None
    fits = 0 <= start < end <= len(note)
    if text is None or text == "":
        return (start, end) if fits else None
    if fits and note[start:end] == text:
        return start, end
    lo = max(0, (start if isinstance(start, int) else 0) - NEARBY)
    at = note.find(text, lo, min(len(note), max(end, 0) + NEARBY + len(text)))
    if at < 0:
        return None
    return at, at + len(text)


def evidence_spans(note: str, suggestions: dict) -> tuple[list[Span], set[str]]:
    """Evidence spans of the suggestions ("dx-i", "px-i"), and the refs that have one placed."""
    spans: list[Span] = []
    for prefix, key in (("dx", "diagnoses"), ("px", "procedures")):
        for i, s in enumerate(suggestions.get(key) or []):
            ev = s.get("evidence") if isinstance(s, dict) else None
            if not isinstance(ev, dict):
                continue
            placed = locate(note, ev.get("start"), ev.get("end"), ev.get("text"))
            if placed is not None:
                spans.append(Span(placed[0], placed[1], ref=f"{prefix}-{i}"))
    return spans, {s.ref for s in spans}


def context_spans(note: str, suggestions: dict) -> list[Span]:
    """Negated / historical / family / uncertain / hypothetical mentions the coding engine marked."""
    out = []
    for c in suggestions.get("context") or []:
        if not isinstance(c, dict) or c.get("kind") not in CONTEXT_KINDS:
            continue
        placed = locate(note, c.get("start"), c.get("end"), c.get("text"))
        if placed is not None:
            out.append(Span(placed[0], placed[1], kind=c["kind"]))
    return out


def segments(note: str, spans: list[Span]) -> list[Segment]:
    """``note`` cut at every span boundary; each piece with the refs and kinds covering it."""
    cuts = {0, len(note)}
    for s in spans:
        cuts.update((s.start, s.end))
    points = sorted(cuts)
    out: list[Segment] = []
    opened: set[Span] = set()
    for a, b in zip(points, points[1:], strict=False):
        if a == b:
            continue
        covering = [s for s in spans if s.start <= a and b <= s.end]
        refs = tuple(sorted({s.ref for s in covering if s.ref}))
        kinds = tuple(k for k in CONTEXT_KINDS if any(s.kind == k for s in covering))
        opens = tuple(
            k for k in CONTEXT_KINDS if any(s.kind == k and s not in opened for s in covering)
        )
        opened.update(s for s in covering if s.kind)
        out.append(Segment(note[a:b], refs, kinds, opens))
    return out
