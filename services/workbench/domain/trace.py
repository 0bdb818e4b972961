"""An encounter's spans (the local span file `rcm trace` reads) as a timeline of bars."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class TraceBar:
    name: str
    service: str
    depth: int
    offset_ms: float
    duration_ms: float
    left: float  # percent of the whole trace
    width: float
    failed: bool


def spans_of(lines: Iterable[str], encounter_id: str) -> list[dict]:
    """The spans of the encounter's traces, plus the batch transactions linking to them."""
    spans = []
    for line in lines:
        try:
            s = json.loads(line)
        except ValueError:
            continue  # a line cut by a crash mid-write
        if isinstance(s, dict) and {"trace_id", "span_id", "start", "end"} <= s.keys():
            spans.append(s)
    traces = {
        s["trace_id"]
        for s in spans
        if (s.get("attributes") or {}).get("rcm.encounter_id") == encounter_id
    }
    mine = [s for s in spans if s["trace_id"] in traces]
    ids = {s["span_id"] for s in mine}
    linked: dict[str, str] = {}  # batch trace -> the event span its root links to
    for s in spans:
        if s["trace_id"] not in traces:
            hit = next((x for x in s.get("links") or () if x in ids), None)
            if hit is not None:
                linked.setdefault(s["trace_id"], hit)
    for s in spans:
        if s["trace_id"] in linked:
            if s.get("links"):
                s = {**s, "parent_id": linked[s["trace_id"]]}
            mine.append(s)
    return mine


def bars(spans: list[dict]) -> list[TraceBar]:
    """Depth-first (parents before children, siblings by start), positioned on one time axis."""
    if not spans:
        return []
    ids = {s["span_id"] for s in spans}
    children: dict[str | None, list[dict]] = {}
    for s in spans:
        parent = s.get("parent_id") if s.get("parent_id") in ids else None
        children.setdefault(parent, []).append(s)
    t0 = min(s["start"] for s in spans)
    t1 = max(s["end"] for s in spans)
    total = max(t1 - t0, 1)
    out: list[TraceBar] = []

    def walk(parent, depth: int) -> None:
        for s in sorted(children.get(parent, []), key=lambda x: x["start"]):
            out.append(
                TraceBar(
                    name=str(s.get("name", "")),
                    service=str(s.get("service", "")),
                    depth=depth,
                    offset_ms=round((s["start"] - t0) / 1e6, 1),
                    duration_ms=round((s["end"] - s["start"]) / 1e6, 1),
                    left=round((s["start"] - t0) / total * 100, 2),
                    width=max(round((s["end"] - s["start"]) / total * 100, 2), 0.3),
                    failed=str(s.get("status", "")) not in ("", "UNSET", "OK"),
                )
            )
            walk(s["span_id"], depth + 1)

    walk(None, 0)
    return out
