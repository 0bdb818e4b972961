"""An encounter posted over HTTP ends as a posted remittance and follow-up state in Postgres."""

from __future__ import annotations

import asyncio
import json
import time

import asyncpg
import httpx
import pytest

from rcm import queries
from rcm.simulation.samples import generate_samples
from services.intake.domain.fhir import parse_intake
from tests.integration.pipeline_support import RECENT, fetch, fetchval, wait_for

pytestmark = pytest.mark.integration


async def _code_if_review(pipeline, encounter_id: str, expected: dict) -> None:
    """If the engine routed the encounter to review, a coder completes it over the API."""
    status = await wait_for(
        pipeline.dsn, "SELECT status FROM coding.encounter WHERE encounter_id = $1", encounter_id
    )
    if status != "review":
        return
    from rcm.cli.demo import review

    headers = {"authorization": f"Bearer {pipeline.token()}"}
    async with httpx.AsyncClient(
        base_url=pipeline.coding_url, headers=headers, timeout=30
    ) as client:
        for _ in range(50):
            r = await client.post("/work/next")
            assert r.status_code == 200, r.text
            item = r.json()
            body = review(item, expected if item["encounter_id"] == encounter_id else None)
            r = await client.post(f"/work/{item['work_item_id']}/complete", json=body)
            if r.status_code == 422:
                body["overrides"] = [
                    {"code": e["code"], "reason": "test coder override"}
                    for e in r.json()["detail"]["edits"]
                ]
                r = await client.post(f"/work/{item['work_item_id']}/complete", json=body)
            assert r.status_code == 200, r.text
            if item["encounter_id"] == encounter_id:
                return


async def _outcome_disagreements(dsn: str, encounter_ids: list[str], timeout: float = 60) -> list:
    """Claims on which billing and followup disagree about the remittance outcome, polled until
    none (each consumes remittance.received on its own, so one may be a moment behind)."""
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout
        while True:
            rows = await queries.remittance_outcome_disagreements(conn, encounter_ids)
            if not rows or time.monotonic() > deadline:
                return [dict(r) for r in rows]
            await asyncio.sleep(0.3)
    finally:
        await conn.close()


async def test_encounters_over_http_end_posted_and_followed_up(pipeline):
    samples = [
        s
        for s in generate_samples(40, seed=101, start_date=RECENT)
        if parse_intake(s.bundle).institutional is None
    ][:6]
    encounters = [parse_intake(s.bundle) for s in samples]
    async with httpx.AsyncClient(
        base_url=pipeline.intake_url, headers=pipeline.intake_headers, timeout=30
    ) as client:
        for sample, enc in zip(samples, encounters, strict=True):
            r = await client.post("/encounters", json=sample.bundle)
            assert r.status_code == 202, r.text
            assert r.json()["encounter_id"] == enc.encounter_id
        again = await client.post("/encounters", json=samples[0].bundle)
        assert again.status_code == 200 and again.json()["status"] == "duplicate"
    for sample, enc in zip(samples, encounters, strict=True):
        await _code_if_review(pipeline, enc.encounter_id, sample.expected)

    outcomes = {}
    for enc in encounters:
        outcomes[enc.encounter_id] = await wait_for(
            pipeline.dsn,
            "SELECT outcome FROM followup.encounter_outcome WHERE encounter_id = $1",
            enc.encounter_id,
            timeout=90,
        )
    assert "paid" in outcomes.values(), outcomes
    for encounter_id, outcome in outcomes.items():
        claim = (
            await fetch(
                pipeline.dsn, "SELECT * FROM billing.claim WHERE encounter_id = $1", encounter_id
            )
        )[0]
        assert claim["frequency_code"] == "1"
        if outcome in ("held", "rejected"):
            # Nothing was paid; a biller has a work item saying why.
            assert claim["status"] == outcome
            n = await fetchval(
                pipeline.dsn,
                "SELECT count(*) FROM followup.work_item WHERE claim_id = $1",
                claim["claim_id"],
            )
            assert n == 1
            continue
        assert claim["file_name"].startswith("837P_")
        # Payments posted the remittance to the ledger once; cash equals the paid amount.
        await wait_for(
            pipeline.dsn,
            "SELECT count(*) FROM payments.claim_payment WHERE claim_id = $1 AND state = 'posted'",
            claim["claim_id"],
            predicate=lambda n: n == 1,
        )
        paid = await fetchval(
            pipeline.dsn,
            "SELECT paid FROM payments.claim_payment WHERE claim_id = $1",
            claim["claim_id"],
        )
        cash = await fetchval(
            pipeline.dsn,
            "SELECT coalesce(sum(amount), 0) FROM payments.journal_line"
            " WHERE claim_id = $1 AND account = 'cash_clearing'",
            claim["claim_id"],
        )
        assert cash == paid
        # Followup's projection carries the same amounts and the claim's state.
        fu = (
            await fetch(
                pipeline.dsn, "SELECT * FROM followup.claim WHERE claim_id = $1", claim["claim_id"]
            )
        )[0]
        assert fu["paid"] == paid and fu["total_charge"] == claim["total_charge"]
        assert fu["state"] == outcome
        if outcome == "denied":
            n = await fetchval(
                pipeline.dsn,
                "SELECT count(*) FROM followup.work_item WHERE claim_id = $1",
                claim["claim_id"],
            )
            assert n >= 1
    # Payments decides each remittance's outcome and carries it in remittance.received:
    # billing's claim status and followup's claim state agree on it for every claim.
    assert await _outcome_disagreements(pipeline.dsn, list(outcomes)) == []
    unbalanced = await fetchval(
        pipeline.dsn,
        "SELECT count(*) FROM (SELECT entry_id FROM payments.journal_line"
        " GROUP BY entry_id HAVING sum(amount) <> 0) x",
    )
    assert unbalanced == 0
    # Coding keeps the document once: the stored coded result carries the codes, not the encounter again.
    rows = await fetch(
        pipeline.dsn,
        "SELECT encounter->>'encounter_id' AS doc, final_coding FROM coding.encounter"
        " WHERE encounter_id = ANY($1)",
        [e.encounter_id for e in encounters],
    )
    assert len(rows) == len(encounters)
    for row in rows:
        final = json.loads(row["final_coding"])
        assert row["doc"] and final["diagnoses"] and "encounter" not in final
    # Written-once rows stay inline; rows updated in place leave room for HOT updates (migrations).
    options = dict(
        await fetch(
            pipeline.dsn,
            "SELECT c.oid::regclass::text, array_to_string(c.reloptions, ',')"
            " FROM pg_class c WHERE c.oid = ANY(ARRAY['coding.encounter', 'billing.claim',"
            " 'followup.claim']::regclass[])",
        )
    )
    assert options == {
        "coding.encounter": "toast_tuple_target=8160",
        "billing.claim": "fillfactor=70",
        "followup.claim": "fillfactor=70",
    }
    outboxes = await fetch(
        pipeline.dsn,
        "SELECT n.nspname, array_to_string(c.reloptions, ',') AS o FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = 'outbox'",
    )
    assert {r["nspname"] for r in outboxes} >= {"coding", "billing", "payments", "followup"}
    assert all(r["o"] == "toast_tuple_target=8160" for r in outboxes), outboxes
    storage = await fetchval(
        pipeline.dsn,
        "SELECT attstorage FROM pg_attribute"
        " WHERE attrelid = 'billing.claim'::regclass AND attname = 'coded'",
    )
    assert storage == b"e"  # out of line, uncompressed ("char" comes back as bytes)
