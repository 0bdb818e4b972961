"""From the bytes an EHR sends to resources, and from resources to one group per Encounter.

Accepted: JSON text or bytes (a UTF-8 BOM is skipped), NDJSON (one resource a line, as bulk
``$export`` writes), a JSON array of resources, one resource, or a Bundle of any type
(transaction, batch, collection, searchset, document, history, batch-response...; Bundles
inside Bundles too). DELETE entries and entries without a resource are skipped; in a history
Bundle (newest first) the first version of a resource wins, elsewhere a repeated identity is a
warning and the first wins.
"""

from __future__ import annotations

import json
import re
from datetime import date

from services.intake.domain.problems import Problem, Sink
from services.intake.domain.references import Index, Res, join

_MAX_DEPTH = 8
_DAY = re.compile(r"(\d{4}-\d{2}-\d{2})")


def decode(data: object) -> tuple[object, str, list[Problem]]:
    """Parse text or bytes: (document, "json" | "ndjson", problems)."""
    if isinstance(data, (bytes, bytearray)):
        raw = bytes(data)
        if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            encoding = "utf-16"
        else:
            encoding = "utf-8-sig"
        try:
            data = raw.decode(encoding)
        except UnicodeDecodeError:
            return None, "json", [Problem("$", "expected UTF-8 text")]
    if not isinstance(data, str):
        return data, "json", []
    text = data.lstrip("\ufeff")
    try:
        return json.loads(text), "json", []
    except ValueError:
        pass
    docs = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            docs = []
            break
        if not isinstance(doc, dict):
            docs = []
            break
        docs.append((n, doc))
    if len(docs) > 1 or (docs and len(text.strip().splitlines()) > 1):
        return docs, "ndjson", []
    return None, "json", [Problem("$", "expected JSON text (or NDJSON, one resource a line)")]


def collect(doc: object, kind: str, sink: Sink) -> list[Res]:
    """Every resource of a decoded input, contained ones attached to their container."""
    out: list[Res] = []
    seen: set[str] = set()
    if kind == "ndjson":
        for n, res in doc:  # type: ignore[union-attr]
            _add(res, f"line[{n}]", None, out, seen, sink, 0, False)
    elif isinstance(doc, list):
        for i, res in enumerate(doc):
            _add(res, f"[{i}]", None, out, seen, sink, 0, False)
    else:
        _add(doc, "", None, out, seen, sink, 0, False)
    return out


def _add(
    res: object,
    path: str,
    full_url: str | None,
    out: list[Res],
    seen: set[str],
    sink: Sink,
    depth: int,
    history: bool,
) -> None:
    if not isinstance(res, dict):
        return sink.add(path or "$", "expected a resource object")
    rtype = res.get("resourceType")
    if not isinstance(rtype, str) or not rtype:
        return sink.add(join(path, "resourceType"), "expected a string")
    if rtype == "Bundle":
        if depth >= _MAX_DEPTH:
            return sink.add(path or "$", "Bundles nested too deep")
        return _entries(res, path, out, seen, sink, depth + 1)
    if full_url is not None and (not full_url.strip() or full_url.rstrip().endswith((":", "/"))):
        full_url = None  # "urn:uuid:" with no id names nothing
    r = Res(path, res, rtype, full_url.strip() if full_url else None)
    keys = [k for k in (r.full_url, f"{rtype}/{r.id}" if r.id else None) if k]
    if any(k in seen for k in keys):
        if not history:
            sink.add(path, "duplicate resource identity in the input: the first is used")
        return
    seen.update(keys)
    contained = res.get("contained")
    if isinstance(contained, list):
        for j, inner in enumerate(contained):
            cp = join(path, f"contained[{j}]")
            if isinstance(inner, dict) and isinstance(inner.get("resourceType"), str):
                c = Res(cp, inner, inner["resourceType"], None, container=r)
                if c.id:
                    r.contained[f"#{c.id}"] = c
    out.append(r)


def _entries(
    bundle: dict, path: str, out: list[Res], seen: set[str], sink: Sink, depth: int
) -> None:
    entries = bundle.get("entry")
    if entries is None:
        return
    if not isinstance(entries, list):
        return sink.add(join(path, "entry"), "expected a list of bundle entries")
    history = bundle.get("type") == "history"
    for i, entry in enumerate(entries):
        ep = join(path, f"entry[{i}]")
        if not isinstance(entry, dict):
            sink.add(ep, "expected an object")
            continue
        request = entry.get("request")
        if isinstance(request, dict) and request.get("method") == "DELETE":
            continue
        res = entry.get("resource")
        if res is None and isinstance(entry.get("resourceType"), str):
            sink.add(ep, "a resource where an entry was expected: read as the entry's resource")
            _add(entry, ep, None, out, seen, sink, depth, history)
            continue
        if res is None:
            continue  # a GET entry or a response without a body: no data
        full = entry.get("fullUrl")
        if full is not None and not isinstance(full, str):
            sink.add(join(ep, "fullUrl"), "expected a string")
            full = None
        _add(res, join(ep, "resource"), full, out, seen, sink, depth, history)


# --------------------------------------------------------------------------- grouping

# Where each resource type names its encounter.
_LINKS: dict[str, tuple[tuple[str, ...], ...]] = {
    "Condition": (("encounter",),),
    "Procedure": (("encounter",),),
    "Composition": (("encounter",),),
    "DocumentReference": (("context", "encounter"), ("context",)),
    "Claim": (("item", "encounter"),),
    "ExplanationOfBenefit": (("item", "encounter"),),
}
GROUPED = tuple(_LINKS)
_DATES: dict[str, tuple[tuple[str, ...], ...]] = {
    "Condition": (("recordedDate",), ("onsetDateTime",), ("onsetPeriod", "start")),
    "Procedure": (("performedDateTime",), ("performedPeriod", "start")),
    "Composition": (("date",),),
    "DocumentReference": (("context", "period", "start"), ("date",)),
    "Claim": (("billablePeriod", "start"), ("created",)),
    "ExplanationOfBenefit": (("billablePeriod", "start"), ("created",)),
}


def _walk(value: object, keys: tuple[str, ...]) -> list[object]:
    """Values at ``keys``, flattening lists on the way (``item[].encounter[]``)."""
    found = [value]
    for key in keys:
        nxt: list[object] = []
        for v in found:
            for item in v if isinstance(v, list) else [v]:
                if isinstance(item, dict) and key in item:
                    nxt.append(item[key])
        found = nxt
    flat: list[object] = []
    for v in found:
        flat.extend(v if isinstance(v, list) else [v])
    return flat


def encounter_refs(r: Res) -> list[str]:
    """The reference strings by which ``r`` names its encounter(s)."""
    refs = []
    for keys in _LINKS.get(r.type, ()):
        for ref in _walk(r.data, keys):
            if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
                refs.append(ref["reference"])
    return refs


def day(value: object) -> date | None:
    """The day of a FHIR date or dateTime as written; None for anything else."""
    if isinstance(value, str) and (m := _DAY.match(value)):
        try:
            return date.fromisoformat(m.group(1))
        except ValueError:
            return None
    return None


def stamp_of(r: Res) -> str | None:
    """The date or dateTime a grouped resource was written or happened, as written."""
    for keys in _DATES.get(r.type, ()):
        for v in _walk(r.data, keys):
            if day(v) is not None:
                return v  # type: ignore[return-value]
    return None


def day_of(r: Res) -> date | None:
    """The day a grouped resource was written or happened, for matching by date."""
    return day(stamp_of(r))


def subject_ref(r: Res) -> object:
    data = r.data
    return data.get("subject") or data.get("patient")


def group(
    index: Index,
    encounters: list[Res],
    spans: dict[int, tuple[date, date] | None],
    patients: dict[int, Res | None],
    sink: Sink,
) -> dict[int, list[Res]]:
    """Assign Conditions, Procedures, notes, Claims and EOBs to the Encounters they belong to:
    by their encounter reference (one naming an Encounter not in the input belongs to none);
    without one, to the only Encounter, else to the one Encounter of the same patient whose
    dates include the resource's date. A resource that fits several is not guessed at: a
    warning says so.

    ``spans`` and ``patients`` are keyed by ``id()`` of the Encounter's ``Res``."""
    out: dict[int, list[Res]] = {id(e): [] for e in encounters}
    for r in index.of_type(*GROUPED):
        refs = encounter_refs(r)
        targets = []
        for ref in refs:
            hit = index.lookup(ref, r)
            if hit is not None and hit.type == "Encounter" and id(hit) in out:
                targets.append(hit)
        for t in dict.fromkeys(targets):
            out[id(t)].append(r)
        if refs:
            continue  # it names its encounter: another one when none of these
        mine = _patient_of(index, r)
        fits = [
            e
            for e in encounters
            if mine is None or patients.get(id(e)) is None or patients[id(e)] is mine
        ]
        if len(encounters) == 1:
            if fits:
                out[id(fits[0])].append(r)
            continue
        day = day_of(r)
        if day is None:
            continue
        fits = [e for e in fits if (s := spans.get(id(e))) and s[0] <= day <= s[1]]
        if len(fits) == 1:
            out[id(fits[0])].append(r)
        elif len(fits) > 1:
            sink.add(r.path, "fits several encounters by patient and date: not attached to any")
    return out


def _patient_of(index: Index, r: Res) -> Res | None:
    ref = subject_ref(r)
    if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
        hit = index.lookup(ref["reference"], r)
        return hit if hit is not None and hit.type == "Patient" else None
    return None
