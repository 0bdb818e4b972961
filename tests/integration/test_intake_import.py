"""`rcm import` on the real stack, with bulk FHIR data written by others: the pathling and
fhir-data-pipes NDJSON exports, and a Synthea patient export (google/fhir-data-pipes)
written out as an `$export` would (one NDJSON file per resource type; lines untouched)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from tests.integration.pipeline_support import fetch, wait_for

pytestmark = pytest.mark.integration

REAL = FIXTURES / "realworld" / "fhir"
SYNTHEA = (
    REAL
    / "google-fhir-data-pipes"
    / "Porsha375_Nienow652_87971181-9885-c79c-b296-5ca2fee37363.json"
)


def rcm(pipeline, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DATABASE_URL": pipeline.dsn,
        "KAFKA_BOOTSTRAP_SERVERS": pipeline.endpoints["kafka"],
    }
    return subprocess.run(
        [sys.executable, "-m", "rcm.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def export_of(bundle: Path, out: Path) -> dict[str, int]:
    """The bundle's resources as an `$export` writes them: a file per type, a resource a line."""
    out.mkdir()
    by_type: dict[str, list[str]] = {}
    for entry in json.loads(bundle.read_bytes().decode("utf-8-sig"))["entry"]:
        res = entry["resource"]
        by_type.setdefault(res["resourceType"], []).append(json.dumps(res))
    for rtype, lines in by_type.items():
        (out / f"{rtype}.ndjson").write_text("\n".join(lines) + "\n")
    return {t: len(v) for t, v in by_type.items()}


async def test_the_real_ndjson_exports_import_with_a_summary(pipeline):
    r = await asyncio.to_thread(rcm, pipeline, "import", str(REAL / "ndjson"), "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["files"] == 5 and summary["lines"] == 822 and summary["bad_lines"] == 0
    assert summary["resources"] == {"Condition": 710, "Patient": 112}
    assert summary["encounters"] == 0 and summary["unmatched_resources"] == 710
    assert "reading" in r.stderr and "Traceback" not in r.stderr


async def test_a_synthea_export_flows_into_intake_and_on_to_coding(pipeline, tmp_path):
    counts = export_of(SYNTHEA, tmp_path / "export")
    r = await asyncio.to_thread(rcm, pipeline, "import", str(tmp_path / "export"), "--json")
    assert r.returncode in (0, 1), r.stderr
    summary = json.loads(r.stdout)
    assert summary["encounters"] == counts["Encounter"]
    assert summary["skipped"]["Observation"] == counts["Observation"]
    # Every Encounter is accepted, or refused with the file and line it came from.
    assert summary["accepted"] + summary["unchanged"] + summary["rejected"] == counts["Encounter"]
    assert summary["accepted"] >= 0.95 * counts["Encounter"], summary["problems"]
    for p in summary["examples"]:
        assert ".ndjson:" in p["path"], p
    assert "missing billing data" in r.stderr or summary["missing"] == {}
    encounter_ids = [
        json.loads(line)["id"]
        for line in (tmp_path / "export" / "Encounter.ndjson").read_text().splitlines()
    ]
    rows = await fetch(
        pipeline.dsn,
        "SELECT encounter_id, event_id FROM intake.encounter_document"
        " WHERE source = 'import' AND encounter_id = ANY($1)",
        encounter_ids,
    )
    assert len(rows) >= summary["accepted"]
    # Published through intake's outbox and consumed by coding.
    await wait_for(pipeline.dsn, "SELECT count(*) = 0 FROM intake.outbox")
    events = [row["event_id"] for row in rows]
    await wait_for(
        pipeline.dsn,
        "SELECT count(*) FROM (SELECT event_id FROM coding.inbox UNION"
        " SELECT event_id FROM coding.dead_letter) x WHERE event_id = ANY($1::uuid[])",
        events,
        predicate=lambda n: n == len(events),
        timeout=120,
    )
    # The same export again changes nothing, straight into the database or over HTTP.
    again = await asyncio.to_thread(rcm, pipeline, "import", str(tmp_path / "export"), "--json")
    assert json.loads(again.stdout)["unchanged"] == summary["accepted"] + summary["unchanged"]
    http = await asyncio.to_thread(
        rcm, pipeline, "import", str(tmp_path / "export"), "--url", pipeline.intake_url, "--json"
    )
    assert http.returncode in (0, 1), http.stderr
    assert json.loads(http.stdout)["unchanged"] == summary["accepted"] + summary["unchanged"]
