"""Queries to providers on the real stack (issue 20 item 5): draft, send, answer, re-code,
release; cancel and escalation; each step an event, an audit record, and in the figures."""

from __future__ import annotations

import json
import uuid

import pytest

from services.coding.escalation import escalate_once
from shared import db, icd10cm
from shared.service import Runtime
from shared.topics import ENCOUNTER_CODED, PROVIDER_QUERY
from tests.integration.pipeline_support import fetch, fetchval, wait_for
from tests.integration.test_coding_support import (
    NPI,
    client,
    coder,
    events_of,
    native,
    post_to_intake,
)

pytestmark = pytest.mark.integration

ANKLE = (
    "Subjective: twisted ankle playing soccer yesterday, swelling and pain on walking.\n"
    "Objective: swelling over the lateral ankle, able to bear weight.\n"
    "Assessment: Ankle sprain.\nPlan: RICE, ibuprofen, follow up in two weeks."
)
LATERALITY = {
    "reason": "laterality",
    "question": "The assessment does not state the side of the injury. Based on the indicators "
    "quoted from the note, please clarify the laterality.",
    "indicators": [
        {"quote": "Assessment: Ankle sprain"},
        {"quote": "swelling over the lateral ankle"},
    ],
    "options": ["Right", "Left", "Bilateral"],
}


async def _queued(pipeline, site: str, note: str = ANKLE) -> str:
    eid = f"QY-{uuid.uuid4().hex[:10]}"
    await post_to_intake(pipeline, native(site, eid, note))
    await wait_for(
        pipeline.dsn,
        "SELECT count(*) FROM coding.work_item WHERE encounter_id = $1 AND status = 'queued'",
        eid,
        predicate=lambda n: n == 1,
    )
    return eid


async def test_draft_send_answer_recode_release(pipeline):
    site = f"qa-query-{uuid.uuid4().hex[:4]}"
    eid = await _queued(pipeline, site)
    async with (
        coder(pipeline, "coder-q", [site]) as c,
        coder(pipeline, "lead-q", [site], role="supervisor") as lead,
        client(pipeline, pipeline.coding_url, "ehr-feed", "integration", [site]) as ehr,
        client(pipeline, pipeline.coding_url, "ehr-other", "integration", ["elsewhere"]) as other,
    ):
        item = (await c.post("/work/next")).json()
        wid = item["work_item_id"]
        # Wording that leads, names money and offers one answer is refused, rule by rule,
        # without the draft's words coming back.
        bad = {
            "question": "Please document a left ankle sprain to support the payment.",
            "indicators": [{"quote": "Assessment: Ankle sprain"}],
            "options": ["Zqx left ankle sprain"],
        }
        r = await c.post(f"/work/{wid}/queries", json=bad)
        assert r.status_code == 422, r.text
        problems = r.json()["detail"]["problems"]
        assert {p["field"] for p in problems} == {"question", "options"}
        assert any("'payment'" in p["message"] for p in problems)
        assert "zqx" not in r.text.lower()
        # Text Postgres cannot store is refused naming the field, not a 500.
        for field, value in (("question", "Side?\u0000 Please clarify."), ("reason", "\ud800")):
            body = json.dumps({**LATERALITY, field: value})  # ASCII: \u escapes as sent
            r = await c.post(
                f"/work/{wid}/queries",
                content=body,
                headers={"content-type": "application/json"},
            )
            assert r.status_code == 422 and r.json()["detail"][0]["field"] == f"body.{field}"
        r = await c.post(
            f"/work/{wid}/queries", json={**LATERALITY, "indicators": [{"quote": "right knee"}]}
        )
        assert r.status_code == 422 and r.json()["detail"]["problems"][0]["field"] == (
            "indicators[0]"
        )
        # A compliant draft: "other" and "clinically undetermined" are added, the provider is
        # the encounter's rendering provider, the quotes are spans of the note.
        r = await c.post(f"/work/{wid}/queries", json=LATERALITY)
        assert r.status_code == 201, r.text
        q = r.json()
        qid = q["query_id"]
        assert q["status"] == "draft" and q["provider_npi"] == NPI
        assert q["options"] == [
            "Right",
            "Left",
            "Bilateral",
            "Other (please specify)",
            "Clinically undetermined",
        ]
        for ind in q["indicators"]:
            assert ANKLE[ind["start"] : ind["end"]] == ind["text"]
        r = await c.post(f"/queries/{qid}/send")
        assert r.status_code == 200 and r.json()["status"] == "sent", r.text
        # Waiting for the provider: out of the queue, and not to be finalised.
        body = {
            "lease_token": item["lease_token"],
            "diagnoses": ["S93409A"],
            "procedures": [{"code": "99213"}],
        }
        r = await c.post(f"/work/{wid}/complete", json=body)
        assert r.status_code == 409 and f"query {qid}" in r.json()["detail"], r.text
        assert (await c.post("/work/next")).status_code == 204
        assert (await c.get("/work/depth")).json()[site] == {"queued": 0, "leased": 0, "waiting": 1}
        # The EHR integration delivers it; another site's integration sees and answers nothing.
        delivered = (await ehr.get("/queries", params={"status": "sent"})).json()
        assert [d["query_id"] for d in delivered] == [qid]
        assert (await other.get("/queries", params={"status": "sent"})).json() == []
        r = await other.post(f"/queries/{qid}/answer", json={"answer": "Left"})
        assert r.status_code == 403
        assert (await c.post(f"/queries/{qid}/answer", json={"answer": "Left"})).status_code == 403
        r = await ehr.post(f"/queries/{qid}/answer", json={"answer": "Left foot"})
        assert r.status_code == 422 and r.json()["detail"]["problems"][0]["field"] == "answer"
        r = await ehr.post(
            f"/queries/{qid}/answer",
            json={"answer": "Left", "text": "Left ankle, lateral ligaments.", "answered_by": NPI},
        )
        assert r.status_code == 200, r.text
        answered = r.json()
        assert answered["status"] == "answered" and answered["answered_by"] == NPI
        assert answered["addendum"].startswith(f"Addendum (provider query {qid}, ")
        assert (
            await ehr.post(f"/queries/{qid}/answer", json={"answer": "Left"})
        ).status_code == 409
        # Coded again on the amended note and back in the queue.
        item = (await c.post("/work/next")).json()
        assert item["work_item_id"] == wid and item["note"].endswith(answered["addendum"])
        assert item["note"].startswith(ANKLE)
        codes = [d["code"] for d in item["suggestions"]["diagnoses"]]
        assert any(
            c.startswith("S934") and "left" in (icd10cm.description(c) or "") for c in codes
        ), codes
        left = next(c for c in codes if c.startswith("S934"))
        body = {
            "lease_token": item["lease_token"],
            "diagnoses": [left],
            "procedures": [{"code": "99213"}],
        }
        r = await c.post(f"/work/{wid}/complete", json=body)
        assert r.status_code == 200, r.text
        mine = (await c.get("/queries", params={"encounter_id": eid})).json()
        assert {m["query_id"]: m["status"] for m in mine}[qid] == "closed"
        assert all(
            m["status"] == "cancelled" and "completed" in m["cancel_reason"]
            for m in mine
            if m["origin"] == "engine"
        )
        stats = (await lead.get("/queries/stats")).json()["providers"]
        assert (await c.get("/queries/stats")).status_code == 403  # leads and operations
    [row] = stats
    assert (row["provider_npi"], row["sent"], row["answered"], row["open"], row["answer_rate"]) == (
        NPI,
        1,
        1,
        0,
        1.0,
    )
    assert row["avg_turnaround_hours"] is not None and row["avg_turnaround_hours"] >= 0
    # Released: the encounter reaches billing with the clarified code and the addendum.
    coded = (await events_of(pipeline, ENCOUNTER_CODED, eid, 1))[0]
    assert [d.code for d in coded.payload.diagnoses] == [left]
    assert answered["addendum"] in (coded.payload.encounter.note or "")
    await wait_for(
        pipeline.dsn,
        "SELECT count(*) FROM billing.claim WHERE encounter_id = $1",
        eid,
        predicate=lambda n: n == 1,
    )
    # Carried as events, in order, in the encounter's trace.
    sent, got = await events_of(pipeline, PROVIDER_QUERY, eid, 2)
    assert (sent.payload.status, got.payload.status) == ("sent", "answered")
    assert sent.payload.query_id == str(qid) and got.payload.answer == "Left"
    assert [i.text for i in sent.payload.indicators] == [
        "Assessment: Ankle sprain",
        "swelling over the lateral ankle",
    ]
    # Every step on the audit chain, with who did it.
    steps = await fetch(
        pipeline.dsn,
        "SELECT actor, action, resource_ids FROM coding.audit_record"
        " WHERE resource_type = 'provider_query' AND $1 = ANY(resource_ids) ORDER BY seq",
        str(qid),
    )
    seen = [(s["actor"], s["action"], list(s["resource_ids"])[2:]) for s in steps]
    assert ("coder-q", "create", []) in seen
    assert ("coder-q", "update", ["action=send"]) in seen
    assert ("ehr-feed", "read", []) in seen
    assert ("ehr-feed", "update", ["action=answer"]) in seen


async def test_cancel_and_escalation(pipeline):
    site = f"qa-qesc-{uuid.uuid4().hex[:4]}"
    eid = await _queued(pipeline, site)
    pool = await db.create_pool(pipeline.dsn, max_size=2)

    class Relay:  # the pipeline's coding relay publishes what this writes to the outbox
        def notify(self) -> None:
            pass

    settings = pipeline.settings.model_copy(update={"service_name": "coding"})
    rt = Runtime(settings=settings, pool=pool, relay=Relay(), stop=None)  # type: ignore[arg-type]
    try:
        async with (
            coder(pipeline, "coder-e", [site]) as c,
            coder(pipeline, "lead-e", [site], role="supervisor") as lead,
        ):
            item = (await c.post("/work/next")).json()
            wid = item["work_item_id"]
            qid = (await c.post(f"/work/{wid}/queries", json=LATERALITY)).json()["query_id"]
            assert (await c.post(f"/queries/{qid}/send")).status_code == 200
            # Unanswered past the limit: escalated by the periodic pass, still open.
            await fetchval(
                pipeline.dsn,
                "UPDATE coding.provider_query SET sent_at = now() - interval '4 days'"
                " WHERE query_id = $1 RETURNING 1",
                qid,
            )
            assert await escalate_once(rt, after_hours=72) >= 1
            q = (await c.get(f"/queries/{qid}")).json()
            assert q["status"] == "escalated" and q["escalated_at"]
            body = {
                "lease_token": item["lease_token"],
                "diagnoses": ["S93409A"],
                "procedures": [{"code": "99213"}],
            }
            r = await c.post(f"/work/{wid}/complete", json=body)
            assert r.status_code == 409 and "escalated" in r.json()["detail"]
            # Withdrawn (the coder learned the side another way): back in the queue.
            assert (await c.post(f"/queries/{qid}/cancel", json={"reason": "x"})).status_code == 422
            r = await c.post(f"/queries/{qid}/cancel", json={"reason": "documented in the EHR"})
            assert r.status_code == 200 and r.json()["status"] == "cancelled"
            assert (await c.post(f"/queries/{qid}/send")).status_code == 409
            item = (await c.post("/work/next")).json()
            assert item["work_item_id"] == wid
            body["lease_token"] = item["lease_token"]
            assert (await c.post(f"/work/{wid}/complete", json=body)).status_code == 200
            stats = (await lead.get("/queries/stats")).json()["providers"]
        [row] = stats
        assert (row["sent"], row["escalated"], row["cancelled"], row["answer_rate"]) == (
            1,
            1,
            1,
            None,
        )
        steps = await events_of(pipeline, PROVIDER_QUERY, eid, 3)
        assert [s.payload.status for s in steps] == ["sent", "escalated", "cancelled"]
        assert steps[2].payload.cancel_reason == "documented in the EHR"
        job = await fetch(
            pipeline.dsn,
            "SELECT actor, role FROM coding.audit_record WHERE action = 'job'"
            " AND resource_type = 'provider_query' AND $1 = ANY(resource_ids)",
            str(qid),
        )
        assert [tuple(j) for j in job] == [("service:coding", "service")]
    finally:
        await pool.close()
