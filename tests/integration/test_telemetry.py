"""One trace per encounter across services; no PHI in spans or logs (marker values scanned for)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import date

import httpx
import pytest

from rcm.simulation.samples import generate_samples
from services.intake.domain.fhir import parse_intake
from tests.integration.pipeline_support import RECENT, fetch, simulated_coders, wait_for

pytestmark = pytest.mark.integration

MARKERS = {
    "first_name": "Zqxmarkerfirst",
    "last_name": "Zqxmarkerlast",
    "member_id": "ZQXMEMBER991",
    "note": "zqxnotemarker",
    "birth_date": "1911-11-11",
}


def _marked_encounters(n: int):
    out = []
    for s in generate_samples(30, seed=909, start_date=RECENT):
        enc = parse_intake(s.bundle)
        if enc.institutional is not None or enc.patient.birth_date.year < 1930:
            continue
        patient = enc.patient.model_copy(
            update={
                "first_name": MARKERS["first_name"],
                "last_name": MARKERS["last_name"],
                "birth_date": date(1911, 11, 11),
            }
        )
        coverages = [
            c.model_copy(
                update={
                    "member_id": MARKERS["member_id"],
                    "subscriber": None,
                    "relationship": "self",
                }
            )
            for c in enc.coverages
        ]
        note = (enc.note or "") + f"\nSocial: works as a {MARKERS['note']}."
        out.append(
            (
                enc.model_copy(update={"patient": patient, "coverages": coverages, "note": note}),
                s.expected,
            )
        )
        if len(out) == n:
            return out
    return out


def _spans(run_dir) -> list[dict]:
    path = run_dir / "traces" / "spans.jsonl"
    return (
        [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if path.exists()
        else []
    )


async def test_traces_follow_each_encounter_and_carry_no_phi(pipeline):
    marked = _marked_encounters(4)
    ids = [e.encounter_id for e, _ in marked]
    expected = {e.encounter_id: x for e, x in marked}
    async with simulated_coders(pipeline, expected, {e.site_id for e, _ in marked}):
        async with httpx.AsyncClient(
            base_url=pipeline.intake_url, headers=pipeline.intake_headers, timeout=30
        ) as client:
            for enc, _ in marked:
                r = await client.post(
                    "/encounters",
                    content=enc.model_dump_json(),
                    headers={"content-type": "application/json"},
                )
                assert r.status_code == 202, r.text
        await wait_for(
            pipeline.dsn,
            "SELECT count(*) FROM followup.encounter_outcome WHERE encounter_id = ANY($1)",
            ids,
            predicate=lambda n: n == len(ids),
            timeout=120,
        )
    outcomes = dict(
        (r["encounter_id"], r["outcome"])
        for r in await fetch(
            pipeline.dsn,
            "SELECT encounter_id, outcome FROM followup.encounter_outcome"
            " WHERE encounter_id = ANY($1)",
            ids,
        )
    )
    # Payments' spans come from its claim.submitted handler: wait (bounded) until it has
    # applied one of these claims, so a lagging consumer is told apart from lost spans.
    submitted = [e for e, o in outcomes.items() if o != "held"]
    if submitted:
        await wait_for(
            pipeline.dsn,
            "SELECT count(*) FROM payments.claim WHERE encounter_id = ANY($1)",
            submitted,
            predicate=lambda n: n >= 1,
            timeout=120,
        )
    run_dir = pipeline.settings.run_path
    # Spans are exported in batches: wait until every service's spans for these encounters are on disk.
    deadline = time.monotonic() + 90
    while True:
        spans = _spans(run_dir)
        services_per_enc = {}
        for eid in ids:
            traces = {
                s["trace_id"] for s in spans if s["attributes"].get("rcm.encounter_id") == eid
            }
            services_per_enc[eid] = {s["service"] for s in spans if s["trace_id"] in traces}
        if (
            all({"coding", "billing", "followup"} <= v for v in services_per_enc.values())
            and any("payments" in v for v in services_per_enc.values())
        ) or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    # One trace per encounter, crossing services through Kafka headers and the outbox.
    for eid in ids:
        traces = {s["trace_id"] for s in spans if s["attributes"].get("rcm.encounter_id") == eid}
        assert len(traces) == 1, (eid, traces)
        assert {"coding", "billing", "followup"} <= services_per_enc[eid], services_per_enc[eid]
    in_payments = await fetch(
        pipeline.dsn, "SELECT encounter_id FROM payments.claim WHERE encounter_id = ANY($1)", ids
    )
    assert any("payments" in v for v in services_per_enc.values()), (
        services_per_enc,
        outcomes,
        sorted(r["encounter_id"] for r in in_payments),
    )
    # No PHI in any exported span, nor in any service log.
    blob = json.dumps(spans).lower()
    logs = "".join(p.read_text(errors="replace") for p in (run_dir / "logs").glob("*.log")).lower()
    for name, marker in MARKERS.items():
        assert marker.lower() not in blob, f"{name} leaked into spans"
        assert marker.lower() not in logs, f"{name} leaked into logs"
    # `rcm trace` prints the tree for one of them.
    env = {**os.environ, "RCM_RUN_DIR": str(run_dir)}
    out = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "rcm.cli.main", "trace", ids[0]],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert ids[0] in out.stdout and "coding handle encounter.documented" in out.stdout
    assert "billing handle encounter.coded" in out.stdout
    # Each batch transaction is its own trace, linked to the event spans it applied; the tree
    # shows it indented under the event span.
    lines = out.stdout.splitlines()
    at = next(
        i
        for i, line in enumerate(lines)
        if line.lstrip().startswith("billing handle encounter.coded")
    )
    depth = len(lines[at]) - len(lines[at].lstrip())
    below = lines[at + 1]
    assert below.lstrip().startswith("billing db transaction") and "linked batch of" in below, (
        lines[at : at + 2]
    )
    assert len(below) - len(below.lstrip()) > depth
    event_span = next(
        s
        for s in spans
        if s["name"] == "billing handle encounter.coded"
        and s["attributes"]["rcm.encounter_id"] == ids[0]
    )
    batch = [s for s in spans if event_span["span_id"] in s.get("links", ())]
    assert len(batch) == 1 and batch[0]["trace_id"] != event_span["trace_id"]
    assert batch[0]["name"] == "billing db transaction" and batch[0]["attributes"]["rcm.batch"] >= 1
