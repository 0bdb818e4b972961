"""`rcm trace ENCOUNTER_ID`: the encounter's spans across services, as a tree, and the trace
viewer's link to it when the viewer runs (``rcm stack up --traces``)."""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from rcm.localstack.zipkin import Zipkin, healthy, trace_link
from shared.settings import ServiceSettings

LOOKBACK_MS = 7 * 24 * 3600 * 1000


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


def viewer_url(settings: ServiceSettings) -> str | None:
    """The base URL of this run dir's trace viewer, when it runs and answers."""
    zipkin = Zipkin(settings.run_path, settings.runtime.home)
    return zipkin.url if zipkin.pid() and healthy(zipkin.url) else None


def viewer_trace_ids(url: str, encounter_id: str, timeout: float = 10) -> list[str]:
    """The ids of the traces the viewer holds with a span tagged with this encounter."""
    query = urllib.parse.urlencode(
        {
            "annotationQuery": f"rcm.encounter_id={encounter_id}",
            "endTs": int(time.time() * 1000),
            "lookback": LOOKBACK_MS,
            "limit": 10,
        }
    )
    try:
        with urllib.request.urlopen(f"{url}/api/v2/traces?{query}", timeout=timeout) as r:
            traces = json.load(r)
    except (OSError, urllib.error.URLError, ValueError):
        return []
    return [t[0]["traceId"] for t in traces if t]


def print_trace(settings: ServiceSettings, encounter_id: str) -> int:
    spans = trace_for(load_spans(settings), encounter_id)
    url = viewer_url(settings)
    if spans:
        services = sorted({s["service"] for s in spans})
        print(f"encounter {encounter_id}: {len(spans)} spans across {', '.join(services)}")
        print(render(spans))
        # The encounter's own trace (batch transactions are traces of their own, linked).
        trace_ids = sorted(
            {
                s["trace_id"]
                for s in spans
                if s.get("attributes", {}).get("rcm.encounter_id") == encounter_id
            }
        )
    else:
        trace_ids = viewer_trace_ids(url, encounter_id) if url else []
        if not trace_ids:
            where = f"{settings.traces_file}" + (" nor in the trace viewer" if url else "")
            print(f"rcm: no spans for encounter {encounter_id} in {where}", file=sys.stderr)
            return 1
        print(f"encounter {encounter_id}: {len(trace_ids)} trace(s) in the trace viewer")
    if url:
        for trace_id in trace_ids:
            print(f"trace viewer: {trace_link(url, trace_id)}")
    return 0
