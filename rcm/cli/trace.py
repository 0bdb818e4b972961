"""`rcm trace ENCOUNTER_ID`: the encounter's spans across services, as a tree."""

from __future__ import annotations

import json
import sys

from shared.settings import ServiceSettings


def load_spans(settings: ServiceSettings) -> list[dict]:
    path = settings.traces_file
    if not path.exists():
        return []
    spans = []
    with open(path) as f:
        for line in f:
            try:
                spans.append(json.loads(line))
            except ValueError:
                continue  # a line cut by a crash mid-write
    return spans


def trace_for(spans: list[dict], encounter_id: str) -> list[dict]:
    """The encounter's trace, plus the batch transactions that applied its events.

    A batch transaction is a trace of its own (it applies many encounters' events) that
    links to each event span; it is shown under the event span it links to.
    """
    traces = {
        s["trace_id"]
        for s in spans
        if s.get("attributes", {}).get("rcm.encounter_id") == encounter_id
    }
    mine = [s for s in spans if s["trace_id"] in traces]
    ids = {s["span_id"] for s in mine}
    batches: dict[str, str] = {}  # batch trace id -> the event span its root links to
    for s in spans:
        if s["trace_id"] not in traces and s["trace_id"] not in batches:
            linked = next((link for link in s.get("links", ()) if link in ids), None)
            if linked is not None:
                batches[s["trace_id"]] = linked
    for s in spans:
        if s["trace_id"] in batches:
            if s.get("links"):  # the batch root: hang it under the event span it applied
                s = {**s, "parent_id": batches[s["trace_id"]], "linked": True}
            mine.append(s)
    return sorted(mine, key=lambda s: s["start"])


def render(spans: list[dict]) -> str:
    by_parent: dict[str | None, list[dict]] = {}
    ids = {s["span_id"] for s in spans}
    for s in spans:
        parent = s["parent_id"] if s["parent_id"] in ids else None
        by_parent.setdefault(parent, []).append(s)
    lines: list[str] = []
    t0 = min((s["start"] for s in spans), default=0)

    def walk(parent: str | None, depth: int) -> None:
        for s in by_parent.get(parent, []):
            ms = (s["end"] - s["start"]) / 1e6
            at = (s["start"] - t0) / 1e6
            status = "" if s["status"] in ("UNSET", "OK") else f"  [{s['status']}]"
            batch = (
                f", linked batch of {s['attributes'].get('rcm.batch', '?')}"
                if s.get("linked")
                else ""
            )
            lines.append(
                f"{'  ' * depth}{s['name']}  ({s['service']}, +{at:.1f} ms, {ms:.1f} ms{batch}){status}"
            )
            walk(s["span_id"], depth + 1)

    walk(None, 0)
    return "\n".join(lines)


def print_trace(settings: ServiceSettings, encounter_id: str) -> int:
    spans = trace_for(load_spans(settings), encounter_id)
    if not spans:
        print(
            f"rcm: no spans for encounter {encounter_id} in {settings.traces_file}", file=sys.stderr
        )
        return 1
    services = sorted({s["service"] for s in spans})
    print(f"encounter {encounter_id}: {len(spans)} spans across {', '.join(services)}")
    print(render(spans))
    return 0
