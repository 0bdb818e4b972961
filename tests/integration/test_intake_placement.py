"""An encounter intake first put on the unassigned site (no registry entry told its site) moves
to its real site when the EHR re-sends it after the site was registered: a new document
version, and coding's work item and billing's held claim follow it. One real site never gives
way to another, and only a sender that may send for the unassigned site may move one off it."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.integration.pipeline_support import RECENT, fetchval, wait_for

pytestmark = pytest.mark.integration


def _native(site: str, encounter_id: str) -> dict:
    """An encounter with what an 837 needs but the billing provider's EIN (billing holds it)."""
    return {
        "encounter_id": encounter_id,
        "site_id": site,
        "service_date": RECENT.isoformat(),
        "visit_type": "established",
        "billing_provider": {
            "name": "QA Placement Clinic",
            "npi": "1234567893",
            "address": {
                "line1": "1 Main St",
                "city": "Columbus",
                "state": "OH",
                "postal_code": "432151407",
            },
        },
        "patient": {
            "first_name": "Zqxplace",
            "last_name": "Zqxpatient",
            "birth_date": "1980-02-03",
            "gender": "F",
            "address": {
                "line1": "2 Side St",
                "city": "Columbus",
                "state": "OH",
                "postal_code": "43215",
            },
        },
        "coverages": [{"payer_id": "AETNA1", "payer_name": "Aster Health", "member_id": "M-1"}],
        "note": "Sore throat for two days.",
    }


def _feed(pipeline, sites) -> httpx.AsyncClient:
    token = pipeline.token(user="ehr-feed", role="integration", sites=sites)
    return httpx.AsyncClient(
        base_url=pipeline.intake_url, headers={"authorization": f"Bearer {token}"}, timeout=30
    )


async def _site_of(pipeline, schema_table: str, key: str, value: str) -> str | None:
    return await fetchval(
        pipeline.dsn, f"SELECT site_id FROM {schema_table} WHERE {key} = $1", value
    )


async def test_a_resend_moves_an_unassigned_encounter_to_its_site_once(pipeline):
    eid = f"QA-place-{uuid.uuid4().hex[:8]}"
    site = f"qa-pl-{uuid.uuid4().hex[:6]}"
    async with _feed(pipeline, ["*"]) as feed:
        r1 = await feed.post("/encounters", json=_native("unassigned", eid))
        assert r1.status_code == 202, r1.text
        assert "placed_from" not in r1.json()
        # Coding routes it to a coder on the unassigned site; billing has not seen it yet.
        await wait_for(
            pipeline.dsn,
            "SELECT count(*) FROM coding.encounter WHERE encounter_id = $1 AND site_id = $2",
            eid,
            "unassigned",
            predicate=lambda n: n == 1,
            timeout=60,
        )
        r2 = await feed.post("/encounters", json=_native(site, eid))
        assert r2.status_code == 202, r2.text
        v2 = r2.json()
        assert v2["document_version"] == 2 and v2["placed_from"] == "unassigned"
        # Never from one real site to another, nor back to unassigned.
        for other in (f"{site}-b", "unassigned"):
            r = await feed.post("/encounters", json=_native(other, eid))
            assert r.status_code == 409, r.text
    assert await _site_of(pipeline, "intake.encounter", "encounter_id", eid) == site
    await wait_for(
        pipeline.dsn,
        "SELECT count(*) FROM coding.encounter e JOIN coding.work_item w USING (encounter_id)"
        " WHERE e.encounter_id = $1 AND e.site_id = $2 AND w.site_id = $2"
        " AND e.document_version = 2",
        eid,
        site,
        predicate=lambda n: n == 1,
        timeout=60,
    )
    # The versions list answers to the encounter's site now.
    token = pipeline.token(user="biller", role="biller", sites=[site])
    async with httpx.AsyncClient(
        base_url=pipeline.intake_url, headers={"authorization": f"Bearer {token}"}
    ) as reader:
        r = await reader.get(f"/encounters/{eid}/versions")
        assert r.status_code == 200, r.text
        assert r.json()["site_id"] == site
        assert [v["document_version"] for v in r.json()["versions"]] == [1, 2]


async def test_a_feed_of_one_site_cannot_take_an_unassigned_encounter(pipeline):
    eid = f"QA-place-{uuid.uuid4().hex[:8]}"
    site = f"qa-pl-{uuid.uuid4().hex[:6]}"
    async with _feed(pipeline, ["*"]) as feed:
        assert (await feed.post("/encounters", json=_native("unassigned", eid))).status_code == 202
    async with _feed(pipeline, [site]) as own_site_feed:
        r = await own_site_feed.post("/encounters", json=_native(site, eid))
        assert r.status_code == 409, r.text
    assert await _site_of(pipeline, "intake.encounter", "encounter_id", eid) == "unassigned"
