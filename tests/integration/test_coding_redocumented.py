"""Re-sent documentation (issue 17 item 6): a newer document version replaces the old one and is
coded again; the same or an older version changes nothing."""

from __future__ import annotations

import uuid

import pytest

from rcm.simulation.samples import generate_samples
from services.coding.domain import engine
from shared.events import Encounter
from shared.topics import ENCOUNTER_CODED
from tests.integration.pipeline_support import RECENT, fetch, fetchval, wait_for
from tests.integration.test_coding_support import (
    VAGUE,
    applied,
    coder,
    events_of,
    native,
    post_to_intake,
    publish,
)

pytestmark = pytest.mark.integration

PHARYNGITIS = (
    "Subjective: sore throat for three days, fever to 38.5.\n"
    "Objective: tonsillar exudate, tender anterior cervical nodes. Rapid strep negative.\n"
    "Assessment: Acute pharyngitis.\nPlan: supportive care, return if worse."
)


def _enc(site: str, eid: str, note: str, version: int, **changes) -> Encounter:
    enc = Encounter.model_validate(native(site, eid, note))
    return enc.model_copy(update={"document_version": version, **changes})


async def _row(pipeline, eid: str):
    [row] = await fetch(
        pipeline.dsn,
        "SELECT e.document_version, e.status, e.encounter->>'note' AS note, w.status AS item,"
        " w.leased_by, w.lease_token FROM coding.encounter e"
        " JOIN coding.work_item w USING (encounter_id) WHERE encounter_id = $1",
        eid,
    )
    return row


async def test_a_newer_version_refreshes_a_leased_item_and_older_ones_change_nothing(pipeline):
    site = f"qa-redoc-{uuid.uuid4().hex[:4]}"
    eid = f"RD-{uuid.uuid4().hex[:10]}"
    [v1] = await publish(pipeline, _enc(site, eid, VAGUE, 1))
    await applied(pipeline, v1)
    async with coder(pipeline, "coder-rd", [site]) as c:
        first = (await c.post("/work/next")).json()
        assert first["note"] == VAGUE and first["document_version"] == 1
        # The EHR re-sends the encounter with the real note: version 2.
        [v2] = await publish(pipeline, _enc(site, eid, PHARYNGITIS, 2))
        await applied(pipeline, v2)
        row = await _row(pipeline, eid)
        assert (row["document_version"], row["note"], row["item"]) == (2, PHARYNGITIS, "queued")
        assert row["leased_by"] is None and row["lease_token"] is None  # the lease is dropped
        body = {
            "lease_token": first["lease_token"],
            "diagnoses": ["J029"],
            "procedures": [{"code": "99213"}],
        }
        r = await c.post(f"/work/{first['work_item_id']}/complete", json=body)
        assert r.status_code == 409, r.text  # the old lease is gone with the old note
        again = (await c.post("/work/next")).json()
        assert again["work_item_id"] == first["work_item_id"]
        assert again["note"] == PHARYNGITIS and again["document_version"] == 2
        assert again["encounter"]["document_version"] == 2
        # Version 1 again (a replay, an EHR's retry), and version 2 again: nothing changes, the
        # coder's new lease included.
        for old in await publish(
            pipeline, _enc(site, eid, VAGUE, 1), _enc(site, eid, "Other text.", 2)
        ):
            await applied(pipeline, old)
        row = await _row(pipeline, eid)
        assert (row["document_version"], row["note"], row["item"]) == (2, PHARYNGITIS, "leased")
        assert str(row["lease_token"]) == again["lease_token"]
        body["lease_token"] = again["lease_token"]
        r = await c.post(f"/work/{again['work_item_id']}/complete", json=body)
        assert r.status_code == 200 and r.json()["document_version"] == 2, r.text
    [coded] = await events_of(pipeline, ENCOUNTER_CODED, eid, 1)
    assert coded.payload.encounter.document_version == 2
    assert coded.payload.encounter.note == PHARYNGITIS
    history = await fetch(
        pipeline.dsn,
        "SELECT action, before::text, after::text FROM coding.coding_audit"
        " WHERE encounter_id = $1 ORDER BY audit_id",
        eid,
    )
    assert [h["action"] for h in history] == ["lease", "redocument", "lease", "complete"]


async def test_an_auto_coded_encounter_sent_again_is_coded_again_with_its_version(pipeline):
    """The EHR sends the member id it had left out: intake's version 2, the same note. Coding
    finalises it again and encounter.coded carries version 2 (billing rebuilds an unsent claim)."""
    site = f"qa-reauto-{uuid.uuid4().hex[:4]}"
    sample = next(
        s.encounter
        for s in generate_samples(40, seed=2207, sites=["north-clinic"], start_date=RECENT)
        if s.encounter.institutional is None and engine.code_encounter(s.encounter).route == "auto"
    )
    eid = f"RA-{uuid.uuid4().hex[:10]}"
    v1 = sample.model_copy(update={"encounter_id": eid, "site_id": site})
    cov = [c.model_copy(update={"member_id": "ZQ998877"}) for c in v1.coverages]
    v2 = v1.model_copy(update={"document_version": 2, "coverages": cov})
    for version in (v1, v2):  # one after the other (in one batch, only the newer is coded)
        await applied(pipeline, (await publish(pipeline, version))[0])
    row = await fetch(
        pipeline.dsn,
        "SELECT document_version, status, coded_by,"
        " encounter->'coverages'->0->>'member_id' AS member_id FROM coding.encounter"
        " WHERE encounter_id = $1",
        eid,
    )
    assert [tuple(r) for r in row] == [(2, "coded", "auto", "ZQ998877")]
    first, second = await events_of(pipeline, ENCOUNTER_CODED, eid, 2)
    assert [
        first.payload.encounter.document_version,
        second.payload.encounter.document_version,
    ] == [1, 2]
    assert second.payload.coded_by == "auto"
    assert second.payload.encounter.coverages[0].member_id == "ZQ998877"
    assert (
        await fetchval(
            pipeline.dsn, "SELECT count(*) FROM coding.work_item WHERE encounter_id = $1", eid
        )
        == 0
    )


async def test_a_coded_encounter_re_sent_through_intake_goes_back_to_its_coder_queue(pipeline):
    site = f"qa-recode-{uuid.uuid4().hex[:4]}"
    eid = f"RC-{uuid.uuid4().hex[:10]}"
    assert (await post_to_intake(pipeline, native(site, eid, VAGUE)))["document_version"] == 1
    await wait_for(
        pipeline.dsn,
        "SELECT count(*) FROM coding.work_item WHERE encounter_id = $1 AND status = 'queued'",
        eid,
        predicate=lambda n: n == 1,
    )
    async with coder(pipeline, "coder-rc", [site]) as c:
        item = (await c.post("/work/next")).json()
        body = {
            "lease_token": item["lease_token"],
            "diagnoses": ["R69"],
            "procedures": [{"code": "99212"}],
        }
        r = await c.post(f"/work/{item['work_item_id']}/complete", json=body)
        assert r.status_code == 200, r.text
        # The provider finishes the note in the EHR, which sends the encounter again.
        again = await post_to_intake(pipeline, native(site, eid, PHARYNGITIS))
        assert again["document_version"] == 2
        await wait_for(
            pipeline.dsn,
            "SELECT status FROM coding.work_item WHERE encounter_id = $1",
            eid,
            predicate=lambda s: s == "queued",
        )
        [enc] = await fetch(
            pipeline.dsn,
            "SELECT status, document_version, final_coding FROM coding.encounter"
            " WHERE encounter_id = $1",
            eid,
        )
        assert (enc["status"], enc["document_version"], enc["final_coding"]) == (
            "review",
            2,
            None,
        )
        item = (await c.post("/work/next")).json()
        assert item["note"] == PHARYNGITIS
        body = {
            "lease_token": item["lease_token"],
            "diagnoses": ["J029"],
            "procedures": [{"code": "99213"}],
        }
        r = await c.post(f"/work/{item['work_item_id']}/complete", json=body)
        assert r.status_code == 200, r.text
        stats = (await c.get("/coders/stats")).json()
    assert [s["user_id"] for s in stats] == ["coder-rc"]  # a coder sees its own figures
    first, second = await events_of(pipeline, ENCOUNTER_CODED, eid, 2)
    assert [e.payload.diagnoses[0].code for e in (first, second)] == ["R69", "J029"]
    assert [e.payload.encounter.document_version for e in (first, second)] == [1, 2]
    assert second.payload.coded_by == "coder-rc"
