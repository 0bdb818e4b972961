"""After an end-to-end run with marker PHI, no marker is anywhere but where PHI belongs
(issue 18, "done when": "a scan of every log, trace, error body and file after an end-to-end
run with marker PHI finds 0 markers outside the places PHI belongs").

On the session's pipeline (every service a process, the payer simulator answering 837s
with 835s): a handful of FHIR encounters whose patient names, birth date, member ids,
street addresses and notes carry marker strings go in over HTTP and settle (paid, denied,
held). On the way, what an attacker or a clumsy feed would send, each answer kept: a
malformed body and a NUL byte in a name (422), a body over the limit (413), reads with no
token and with a forged one (401, the marker in the path and query), a coder's 422, and
835s whose broken segments name a marker patient (to ``failed/`` with a reason). A coder
reads the work items with their notes: that answer is PHI shown to the authorised caller
(allowed), its access log line is not. Then ``tests.phi_scan_support`` walks the run dir
(service logs, traces, reason files, the Postgres and Kafka logs, everything outside the
database's and broker's storage, the mailboxes and statements) and every error body.
"""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from rcm.simulation.samples import generate_samples
from services.intake.domain.fhir import parse_intake
from shared.mailbox import write_atomically
from tests import phi_scan_support as scan
from tests.integration.payments_support import Clp, era_835
from tests.integration.pipeline_support import RECENT, wait_for
from tests.integration.test_pipeline_typical_journey import _code_if_review

pytestmark = pytest.mark.e2e

RUN = uuid.uuid4().hex[:8]
# Letters only (names and cities are letters in X12), unique to this run.
TAG = "".join(chr(ord("A") + int(c, 16)) for c in RUN)
BIRTH_DATE = "1911-11-11"  # as FHIR writes it; X12 writes 19111111
N_ENCOUNTERS = 4


def _markers(i: int) -> dict[str, str]:
    letter = chr(ord("A") + i)
    return {
        "family": f"ZQXFAM{TAG}{letter}",
        "given": f"ZQXGIV{TAG}{letter}",
        "street": f"ZQXSTREET{TAG}{letter}",
        "member": f"MBRZQX{RUN}{i}".upper(),
        "note": f"ZQXNOTE{TAG}{letter}",
    }


def _with_markers(bundle: dict, m: dict[str, str], birth_date: str | None) -> dict:
    """The sample bundle with the patient, subscriber and note carrying the markers."""
    bundle = copy.deepcopy(bundle)
    for entry in bundle["entry"]:
        r = entry["resource"]
        kind = r["resourceType"]
        if kind in ("Patient", "RelatedPerson"):
            r["name"] = [{"use": "official", "family": m["family"], "given": [m["given"]]}]
            for a in r.get("address", []):
                a["line"] = [f"12 {m['street']} Road"]
            if birth_date and kind == "Patient":
                r["birthDate"] = birth_date
        elif kind == "Coverage":
            r["subscriberId"] = m["member"]
        elif kind == "Composition":
            for s in r.get("section", []):
                div = s.get("text", {}).get("div")
                if div:
                    s["text"]["div"] = div.replace(
                        "</div>", f"<br/>Lives at 12 {m['street']} Road; {m['note']}.</div>", 1
                    )
    return bundle


def _patient_changed(bundle: dict, *, id: str, family: str | None = None, **fields) -> dict:
    """A copy under another encounter id whose Patient has ``fields`` (and ``family``)."""
    out = copy.deepcopy(bundle)
    for e in out["entry"]:
        r = e["resource"]
        if r["resourceType"] == "Patient":
            r.update(fields)
            if family is not None:
                r["name"][0]["family"] = family
        elif r["resourceType"] == "Encounter":
            r["identifier"][0]["value"] += id
    return out


class Bodies:
    """Every error answer of the run, to scan with the files."""

    def __init__(self) -> None:
        self.items: list[tuple[str, bytes]] = []
        self.unexpected: list[str] = []  # answered with another status than the contract's

    def keep(self, label: str, r: httpx.Response, status: int) -> None:
        if r.status_code != status:
            self.unexpected.append(f"{label}: HTTP {r.status_code}, expected {status}")
        self.items.append((f"{label} (HTTP {r.status_code})", r.content))
        # Headers are part of the answer too (a Location, an echoed value).
        head = "\n".join(f"{k}: {v}" for k, v in r.headers.items()).encode()
        self.items.append((f"{label} headers", head))


async def _bad_requests(pipeline, bodies: Bodies, m: dict[str, str], bundle: dict) -> None:
    marked = json.dumps(bundle)
    async with httpx.AsyncClient(
        base_url=pipeline.intake_url, headers=pipeline.intake_headers, timeout=60
    ) as intake:
        # Not JSON at all (cut short): the parser's complaint must not quote it.
        r = await intake.post(
            "/encounters",
            content=marked[: marked.index(m["note"]) + 40].encode(),
            headers={"content-type": "application/json"},
        )
        bodies.keep("intake malformed JSON", r, 422)
        # JSON, no encounter in it: only the patient with every marker.
        patient = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
        r = await intake.post("/encounters", json={"resourceType": "Bundle", "entry": [patient]})
        bodies.keep("intake bundle without an encounter", r, 422)
        # A field of the wrong type holding a marker (lenient intake may take the encounter
        # and leave the birth date missing: any answer but a 5xx, scanned).
        wrong = _patient_changed(bundle, birthDate={"value": m["family"]}, id=f"W{RUN}")
        r = await intake.post("/encounters", json=wrong)
        assert r.status_code < 500, r.text[:200]
        if r.status_code >= 400:
            bodies.keep("intake birth date of the wrong type", r, r.status_code)
        # Over the body limit, declared and streamed.
        limit = pipeline.settings.http.max_body_bytes
        big = (marked * (limit // len(marked) + 2)).encode()
        r = await intake.post(
            "/encounters", content=big, headers={"content-type": "application/json"}
        )
        bodies.keep("intake oversized body", r, 413)

        async def chunks():
            for i in range(0, len(big), 256 * 1024):
                yield big[i : i + 256 * 1024]

        try:
            r = await intake.post(
                "/encounters", content=chunks(), headers={"content-type": "application/json"}
            )
            bodies.keep("intake oversized streamed body", r, 413)
        except httpx.HTTPError:
            pass  # the server may close the connection before the client finishes sending
        # No token, then a forged one, with the marker in the path.
        r = await intake.get(
            f"/encounters/{m['family']}/versions", headers={"authorization": ""}
        )  # the client's feed token left out
        bodies.keep("intake read with no token", r, 401)
        r = await intake.get(
            f"/encounters/{m['family']}/versions",
            headers={"authorization": f"Bearer {m['member']}.{m['family']}.x"},
        )
        bodies.keep("intake read with a forged token", r, 401)
    async with httpx.AsyncClient(base_url=pipeline.coding_url, timeout=60) as coding:
        r = await coding.get("/codes/search", params={"q": m["note"]})
        bodies.keep("coding search with no token", r, 401)
        auth = {"authorization": f"Bearer {pipeline.token(user=f'phi-{RUN}')}"}
        r = await coding.post(
            f"/work/{uuid.uuid4()}/complete",
            json={"diagnoses": [{"code": m["note"]}], "procedures": m["family"]},
            headers=auth,
        )
        bodies.keep("coding complete with a malformed body", r, 422)
        r = await coding.get(f"/work/{m['member']}", headers=auth)
        assert r.status_code in (404, 422), r.text[:200]
        bodies.keep("coding read of a work item id that is a marker", r, r.status_code)
        # A search a coder might type (the query string carries the note's words).
        r = await coding.get("/codes/search", params={"q": f"sinusitis {m['note']}"}, headers=auth)
        assert r.status_code in (200, 422), r.text[:200]
        if r.status_code != 200:
            bodies.keep("coding search", r, r.status_code)


async def _broken_835s(pipeline, markers: list[dict[str, str]]) -> list[str]:
    """835s with a broken segment naming a marker patient; each goes to failed/."""
    inbound = Path(pipeline.settings.mailbox.inbound)
    names = []
    for n, m in enumerate(markers[:2]):
        text = era_835(
            [Clp(f"CLZQ{RUN}{n}", Decimal("100.00"), Decimal("80.00"), pr=Decimal("20.00"))],
            payer_id=f"PY{RUN}{n}",
            trace=f"TRN{RUN}{n}",
        )
        segment = next(s for s in text.split("~") if s.startswith("NM1*QC*"))
        patient = f"NM1*QC*1*{m['family']}*{m['given']}****MI*{m['member']}"
        if n == 0:  # the probe's: another separator than ISA's, taken whole for a segment id
            broken = patient.replace("*", "|")
        else:  # a claim segment cut in two by a stray terminator inside the name
            broken = f"NM1*QC*1*{m['family']}~{m['given']}*X*{m['member']}"
        text = text.replace(segment, broken)
        name = f"phi-{RUN}-{n}.835"
        write_atomically(inbound, name, text)
        names.append(name)
    for name in names:
        for _ in range(300):
            if (inbound / "failed" / name).exists() or (inbound / "processed" / name).exists():
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"{name} neither processed nor failed")
    return names


async def test_no_marker_phi_outside_its_place_after_an_end_to_end_run(pipeline, run_dir):
    samples = [
        s
        for s in generate_samples(60, seed=1811, start_date=RECENT)
        if parse_intake(s.bundle).institutional is None
    ][:N_ENCOUNTERS]
    markers = [_markers(i) for i in range(len(samples))]
    bundles = [
        _with_markers(s.bundle, m, BIRTH_DATE if i == 0 else None)
        for i, (s, m) in enumerate(zip(samples, markers, strict=True))
    ]
    encounter_ids = []
    async with httpx.AsyncClient(
        base_url=pipeline.intake_url, headers=pipeline.intake_headers, timeout=60
    ) as intake:
        for b in bundles:
            r = await intake.post("/encounters", json=b)
            assert r.status_code == 202, r.text[:300]
            encounter_ids.append(r.json()["encounter_id"])
    bodies = Bodies()
    await _bad_requests(pipeline, bodies, markers[0], bundles[0])
    await _broken_835s(pipeline, markers)
    # A coder works the review queue: the work items carry the notes (PHI to the coder).
    for sample, eid in zip(samples, encounter_ids, strict=True):
        await _code_if_review(pipeline, eid, sample.expected)
    for eid in encounter_ids:
        await wait_for(
            pipeline.dsn,
            "SELECT outcome FROM followup.encounter_outcome WHERE encounter_id = $1",
            eid,
            timeout=90,
        )
    await asyncio.sleep(1.5)  # the last log lines and spans of the run reach their files

    every = [v for m in markers for v in m.values()] + [BIRTH_DATE, BIRTH_DATE.replace("-", "")]
    found = scan.scan_run_dir(run_dir, every)
    print(scan.report(found))  # the whole list, even when a status assertion fails first
    for label, body in bodies.items:
        found += scan.scan_text(label, body, every)
    assert bodies.unexpected == [], bodies.unexpected
    assert found == [], scan.report(found)


async def test_a_nul_byte_in_a_name_is_refused_and_logged_nowhere(pipeline, run_dir):
    sample = next(
        s
        for s in generate_samples(20, seed=1812, start_date=RECENT)
        if parse_intake(s.bundle).institutional is None
    )
    m = {k: v.replace("ZQX", "ZQXNUL", 1) for k, v in _markers(0).items()}
    bundle = _patient_changed(
        _with_markers(sample.bundle, m, None), family=m["family"] + "\x00", id=""
    )
    bodies = Bodies()
    async with httpx.AsyncClient(
        base_url=pipeline.intake_url, headers=pipeline.intake_headers, timeout=60
    ) as intake:
        r = await intake.post("/encounters", json=bundle)
    bodies.keep("intake NUL byte in the family name", r, 422)
    await asyncio.sleep(1.5)  # the log lines and spans of the request reach their files
    found = scan.scan_run_dir(run_dir, list(m.values()))
    for label, body in bodies.items:
        found += scan.scan_text(label, body, list(m.values()))
    assert bodies.unexpected == [], bodies.unexpected
    assert found == [], scan.report(found)
