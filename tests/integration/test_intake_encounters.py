"""POST /encounters on the intake service, on the real stack: accepted, duplicate, a new
version emitted again, several encounters in one bundle, 422 naming every problem."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid

import httpx
import pytest

from tests.conftest import FIXTURES
from tests.integration.pipeline_support import RECENT, fetch, fetchval, wait_for

pytestmark = pytest.mark.integration

SYNTHEA = (
    FIXTURES
    / "realworld"
    / "fhir"
    / "google-fhir-data-pipes"
    / "Bob965_Keeling57_3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2b.json"
)
MARKERS = ("Zqxfirstname", "Zqxlastname", "ZQX-MEMBER-77")


def _native(site: str, encounter_id: str, note: str | None = "Sore throat for two days.") -> dict:
    return {
        "encounter_id": encounter_id,
        "site_id": site,
        "service_date": RECENT.isoformat(),
        "visit_type": "established",
        "billing_provider": {
            "name": "QA Clinic",
            "npi": "1234567893",
            "tax_id": "123456789",
            "address": {
                "line1": "1 Main St",
                "city": "Columbus",
                "state": "OH",
                "postal_code": "432151407",
            },
        },
        "patient": {
            "first_name": MARKERS[0],
            "last_name": MARKERS[1],
            "birth_date": "1980-02-03",
            "gender": "F",
        },
        "coverages": [
            {"payer_id": "AETNA1", "payer_name": "Aster Health", "member_id": MARKERS[2]}
        ],
        "note": note,
    }


async def _emitted(pipeline, event_ids: list[str]) -> None:
    """Each event went through intake's outbox and Kafka to coding (its inbox has it)."""
    await wait_for(
        pipeline.dsn,
        "SELECT count(*) FROM coding.inbox WHERE event_id = ANY($1::uuid[])",
        event_ids,
        predicate=lambda n: n == len(event_ids),
        timeout=60,
    )


async def test_accepted_then_duplicate_then_a_new_version_emitted_again(pipeline):
    site, eid = "qa-intake", f"QA-int-{uuid.uuid4().hex[:8]}"
    first = _native(site, eid)
    async with httpx.AsyncClient(
        base_url=pipeline.intake_url, headers=pipeline.intake_headers, timeout=30
    ) as client:
        r1 = await client.post("/encounters", json=first)
        assert r1.status_code == 202, r1.text
        v1 = r1.json()
        assert v1["encounter_id"] == eid and v1["status"] == "accepted"
        assert v1["document_version"] == 1 and uuid.UUID(v1["event_id"])
        again = await client.post("/encounters", json=first)
        assert again.status_code == 200
        assert again.json() == {"encounter_id": eid, "status": "duplicate", "document_version": 1}
        # The EHR re-sends the encounter after a fix: a new version, emitted again.
        fixed = copy.deepcopy(first)
        fixed["note"] = "Sore throat for two days. Rapid strep negative."
        r2 = await client.post("/encounters", json=fixed)
        assert r2.status_code == 202, r2.text
        v2 = r2.json()
        assert v2["document_version"] == 2 and v2["event_id"] != v1["event_id"]
        assert (await client.post("/encounters", json=fixed)).json()["status"] == "duplicate"
        # The first content again differs from the current version: version 3.
        r3 = await client.post("/encounters", json=first)
        assert r3.status_code == 202 and r3.json()["document_version"] == 3
    await _emitted(pipeline, [v1["event_id"], v2["event_id"], r3.json()["event_id"]])
    rows = await fetch(
        pipeline.dsn,
        "SELECT version, source, document->>'document_version' AS v, document->>'note' AS note"
        " FROM intake.encounter_document WHERE encounter_id = $1 ORDER BY version",
        eid,
    )
    assert [(r["version"], r["v"], r["source"]) for r in rows] == [
        (1, "1", "http"),
        (2, "2", "http"),
        (3, "3", "http"),
    ]
    assert rows[1]["note"].endswith("negative.")
    # The versions over HTTP: metadata only.
    token = pipeline.token(user="biller", role="biller", sites=[site])
    async with httpx.AsyncClient(
        base_url=pipeline.intake_url, headers={"authorization": f"Bearer {token}"}
    ) as client:
        r = await client.get(f"/encounters/{eid}/versions")
        assert r.status_code == 200
        assert [v["document_version"] for v in r.json()["versions"]] == [1, 2, 3]
        assert not any(m in r.text for m in MARKERS)
    other = pipeline.token(user="other", role="biller", sites=["elsewhere"])
    async with httpx.AsyncClient(
        base_url=pipeline.intake_url, headers={"authorization": f"Bearer {other}"}
    ) as client:
        assert (await client.get(f"/encounters/{eid}/versions")).status_code == 403
        assert (await client.get("/encounters/no-such/versions")).status_code == 404
    async with httpx.AsyncClient(base_url=pipeline.intake_url) as anon:
        assert (await anon.get(f"/encounters/{eid}/versions")).status_code == 401


async def test_another_sites_encounter_id_is_a_conflict(pipeline):
    eid = f"QA-conf-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(
        base_url=pipeline.intake_url, headers=pipeline.intake_headers, timeout=30
    ) as client:
        assert (await client.post("/encounters", json=_native("qa-a", eid))).status_code == 202
        r = await client.post("/encounters", json=_native("qa-b", eid))
        assert r.status_code == 409
        assert r.json()["detail"][0]["message"].startswith("the encounter id belongs to another")
    assert (
        await fetchval(
            pipeline.dsn, "SELECT site_id FROM intake.encounter WHERE encounter_id = $1", eid
        )
        == "qa-a"
    )


async def test_422_lists_every_problem_with_its_path_and_no_value(pipeline):
    bad = _native("qa-bad", f"QA-bad-{uuid.uuid4().hex[:6]}")
    bad["patient"]["birth_date"] = "Zqx-not-a-date"
    bad["service_date"] = "Zqx-never"
    bad["coverages"][0]["relationship"] = "Zqx-cousin"
    async with httpx.AsyncClient(
        base_url=pipeline.intake_url, headers=pipeline.intake_headers, timeout=30
    ) as client:
        r = await client.post("/encounters", json=bad)
        assert r.status_code == 422
        problems = r.json()["detail"]
        paths = {p["path"] for p in problems}
        assert {"patient.birth_date", "service_date", "coverages[0].relationship"} <= paths
        assert all(set(p) == {"path", "message"} for p in problems)
        assert "Zqx" not in r.text and MARKERS[0] not in r.text
        r = await client.post(
            "/encounters", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert r.status_code == 422 and r.json()["detail"][0]["path"] == "$"
        r = await client.post("/encounters", json={"resourceType": "Bundle", "entry": []})
        assert r.status_code == 422 and "Encounter" in r.text
        r = await client.post("/encounters", content=b"\xff\xfe\x00garbage")
        assert r.status_code == 422
    assert (
        await fetchval(
            pipeline.dsn,
            "SELECT count(*) FROM intake.encounter WHERE encounter_id = $1",
            bad["encounter_id"],
        )
        == 0
    )


async def test_a_whole_patient_bundle_is_one_response_per_encounter(pipeline):
    """A real Synthea patient bundle (written by others: google/fhir-data-pipes): each of its
    Encounters is versioned and emitted on its own; sent again, each is a duplicate."""
    body = SYNTHEA.read_bytes()
    held = sum(
        e["resource"]["resourceType"] == "Encounter"
        for e in json.loads(body.decode("utf-8-sig"))["entry"]
    )
    async with httpx.AsyncClient(
        base_url=pipeline.intake_url, headers=pipeline.intake_headers, timeout=120
    ) as client:
        r = await client.post("/encounters", content=body)
        assert r.status_code in (202, 200), r.text
        answer = r.json()
        outcomes = answer["encounters"]
        assert len(outcomes) + len(answer.get("problems", [])) >= held
        ids = {o["encounter_id"] for o in outcomes}
        assert len(ids) == len(outcomes)
        fresh = [o for o in outcomes if o["status"] == "accepted"]
        assert all(o["document_version"] >= 1 and "missing" in o for o in fresh)
        again = await client.post("/encounters", content=body)
        assert again.status_code in (200, 409)
        # Sent again, each is a duplicate; an encounter another test of this session already
        # sent under another site stays the conflict it was the first time.
        first = {o["encounter_id"]: o["status"] for o in outcomes}
        expected = {
            eid: ("conflict" if status == "conflict" else "duplicate")
            for eid, status in first.items()
        }
        assert {o["encounter_id"]: o["status"] for o in again.json()["encounters"]} == expected
        assert "duplicate" in expected.values()
    await _emitted(pipeline, [o["event_id"] for o in fresh])


async def test_concurrent_sends_of_one_encounter_make_one_version(pipeline):
    """An EHR retrying in parallel (or two feeds sending the same visit): one version stored and
    emitted, every other request answered duplicate; distinct encounters all go in."""
    eid = f"QA-race-{uuid.uuid4().hex[:8]}"
    body = _native("qa-race", eid)
    others = [_native("qa-race", f"{eid}-{i}") for i in range(10)]
    async with httpx.AsyncClient(
        base_url=pipeline.intake_url, headers=pipeline.intake_headers, timeout=60
    ) as client:
        answers = await asyncio.gather(
            *(client.post("/encounters", json=b) for b in [body] * 12 + others)
        )
    same = [r.json() for r in answers[:12]]
    assert sorted(a["status"] for a in same) == ["accepted"] + ["duplicate"] * 11
    assert {a["document_version"] for a in same} == {1}
    assert all(r.status_code == 202 for r in answers[12:])
    assert (
        await fetchval(
            pipeline.dsn,
            "SELECT count(*) FROM intake.encounter_document WHERE encounter_id = $1",
            eid,
        )
        == 1
    )
