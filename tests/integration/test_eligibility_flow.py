"""Eligibility in the running pipeline (issue 21 item 1), on the real stack: an encounter in,
a 270 to the payer simulator through the clearinghouse mailbox, its 271 back, the result on
encounter.documented, and billing holding the claim of an inactive coverage; an AAA 42 retried
until the payer answers; an AAA 72 opening a registration work item; an on-demand check.

An intake instance with RCM_INTAKE_ELIGIBILITY_MODE=intake runs beside the session's (which
keeps the default, on demand), as a second instance of a service would: both read the 271s,
either may send a retry, under the policy stored with the check."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest

from rcm.simulation.samples import generate_samples
from services.intake.domain.fhir import parse_intake
from tests.integration.pipeline_support import (
    CHECKING_AT_INTAKE,
    RECENT,
    another_instance,
    fetch,
    fetchval,
    wait_for,
)
from tests.integration.test_pipeline_typical_journey import _code_if_review
from tests.unit.eligibility.pyx12_maps import pyx12_validate

pytestmark = pytest.mark.integration

CHECKS = "SELECT count(*) FROM intake.eligibility_check WHERE encounter_id = $1 AND state = $2"


@pytest.fixture(scope="module")
def checking_intake(pipeline):
    """An intake instance that checks eligibility at intake (retries after 1 s, doubling)."""
    env = {**CHECKING_AT_INTAKE, "RCM_INTAKE_ELIGIBILITY_MAX_ATTEMPTS": "4"}
    with another_instance(pipeline, "intake", 7, env) as url:
        yield url


def _sample(n: int):
    """An office visit of a sample patient with one coverage (primary)."""
    samples = generate_samples(30, seed=211 + n, start_date=RECENT)
    return next(s for s in samples if parse_intake(s.bundle).institutional is None)


def _encounter(sample, member_id: str):
    enc = parse_intake(sample.bundle)
    primary = enc.coverages[0].model_copy(update={"member_id": member_id, "sequence": "primary"})
    return enc.model_copy(
        update={"encounter_id": f"EL-{uuid.uuid4().hex[:10].upper()}", "coverages": [primary]}
    )


async def _post(url: str, pipeline, enc) -> None:
    async with httpx.AsyncClient(base_url=url, headers=pipeline.intake_headers, timeout=30) as c:
        r = await c.post("/encounters", json=enc.model_dump(mode="json"))
    assert r.status_code == 202, r.text


async def _documented_eligibility(pipeline, encounter_id: str) -> dict:
    """The eligibility the encounter.documented event carried, as coding received it."""
    raw = await wait_for(
        pipeline.dsn,
        "SELECT encounter->'coverages'->0->'eligibility' FROM coding.encounter"
        " WHERE encounter_id = $1",
        encounter_id,
        timeout=120,
    )
    return json.loads(raw)


async def _files_valid(pipeline, encounter_id: str) -> None:
    """Every 270 sent and 271 read for the encounter, as the mailboxes archived them, is valid
    005010X279A1 under pyx12."""
    rows = await fetch(
        pipeline.dsn,
        "SELECT file_name, answer_file FROM intake.eligibility_check WHERE encounter_id = $1",
        encounter_id,
    )
    assert rows
    s = pipeline.settings
    for r in rows:
        files = [s.outbound_dir / "processed" / r["file_name"]]
        if r["answer_file"]:
            files.append(s.inbound_dir / "processed" / r["answer_file"])
        for path in files:
            text = await _archived(path)
            ok, errors = pyx12_validate(text)
            assert errors == [] and ok is True, path.name


async def _archived(path, timeout: float = 30):
    for _ in range(int(timeout / 0.2)):
        if path.exists():
            return path.read_text()
        await asyncio.sleep(0.2)
    raise AssertionError(f"{path.name} never archived")


async def _claim_reasons(pipeline, encounter_id: str) -> tuple[str, list[str]]:
    status = await wait_for(
        pipeline.dsn,
        "SELECT status FROM billing.claim WHERE encounter_id = $1",
        encounter_id,
        predicate=lambda v: v not in (None, "created"),  # held stays held; others move on
        timeout=120,
    )
    rows = await fetch(
        pipeline.dsn,
        "SELECT r->>'code' AS code FROM billing.work_item w JOIN billing.claim c USING (claim_id),"
        " jsonb_array_elements(w.reasons) r WHERE c.encounter_id = $1",
        encounter_id,
    )
    return status, [r["code"] for r in rows]


async def test_inactive_coverage_found_at_intake_holds_the_claim(pipeline, checking_intake):
    sample = _sample(1)
    enc = _encounter(sample, "INACTIVE7001")
    await _post(checking_intake, pipeline, enc)
    await _code_if_review(pipeline, enc.encounter_id, sample.expected)
    found = await _documented_eligibility(pipeline, enc.encounter_id)
    assert found["status"] == "inactive"
    assert found["checked_on"] and found["plan"]
    status, reasons = await _claim_reasons(pipeline, enc.encounter_id)
    assert status == "held" and "COVERAGE_INACTIVE" in reasons
    row = (
        await fetch(
            pipeline.dsn,
            "SELECT state, outcome, attempt FROM intake.eligibility_check WHERE encounter_id = $1",
            enc.encounter_id,
        )
    )[0]
    assert dict(row) == {"state": "answered", "outcome": "inactive", "attempt": 1}
    await _files_valid(pipeline, enc.encounter_id)


async def test_payer_unable_to_respond_is_retried_until_it_answers(pipeline, checking_intake):
    sample = _sample(2)
    enc = _encounter(sample, "DOWNONCE7002")
    await _post(checking_intake, pipeline, enc)
    await _code_if_review(pipeline, enc.encounter_id, sample.expected)
    found = await _documented_eligibility(pipeline, enc.encounter_id)
    # The event waited for the retry's answer: active, with the amounts an estimate reads.
    assert found["status"] == "active"
    assert found["coinsurance_percent"] is not None
    rows = await fetch(
        pipeline.dsn,
        "SELECT attempt, state, outcome, reason_code, requested_by FROM intake.eligibility_check"
        " WHERE encounter_id = $1 ORDER BY attempt",
        enc.encounter_id,
    )
    assert [tuple(r) for r in rows] == [
        (1, "retried", "rejected", "42", "intake"),
        (2, "answered", "active", None, "retry"),
    ]
    status, reasons = await _claim_reasons(pipeline, enc.encounter_id)
    assert "COVERAGE_INACTIVE" not in reasons and "OTHER_PAYER_PRIMARY" not in reasons
    await _files_valid(pipeline, enc.encounter_id)


async def test_invalid_member_id_opens_a_registration_work_item(pipeline, checking_intake):
    sample = _sample(3)
    enc = _encounter(sample, "BADID7003")
    await _post(checking_intake, pipeline, enc)
    await wait_for(pipeline.dsn, CHECKS, enc.encounter_id, "rejected", timeout=60)
    await _code_if_review(pipeline, enc.encounter_id, sample.expected)
    # Settled (the payer would answer the same again): the event goes out, unverified.
    assert (await _documented_eligibility(pipeline, enc.encounter_id))["status"] == "unverified"

    biller = {"authorization": f"Bearer {pipeline.token('reg-1', 'biller', [enc.site_id])}"}
    other = {"authorization": f"Bearer {pipeline.token('reg-2', 'biller', ['no-such-site'])}"}
    async with httpx.AsyncClient(base_url=pipeline.intake_url, timeout=30) as c:
        r = await c.get("/eligibility/work-items", headers=biller)
        assert r.status_code == 200, r.text
        [item] = [i for i in r.json()["items"] if i["encounter_id"] == enc.encounter_id]
        assert (item["kind"], item["reason_code"], item["coverage"]) == (
            "registration",
            "72",
            "primary",
        )
        assert "BADID7003" not in item["message"] and enc.patient.last_name not in item["message"]
        r = await c.get("/eligibility/work-items", headers=other)
        assert enc.encounter_id not in r.text
        r = await c.get(f"/encounters/{enc.encounter_id}/eligibility", headers=biller)
        assert r.status_code == 200, r.text
        [cov] = r.json()["coverages"]
        assert (cov["state"], cov["reason_code"]) == ("rejected", "72")
        assert "BADID7003" not in r.text
        r = await c.get(f"/encounters/{enc.encounter_id}/eligibility", headers=other)
        assert r.status_code == 403 and enc.encounter_id not in r.text
        coder = {"authorization": f"Bearer {pipeline.token('c', 'coder', [enc.site_id])}"}
        r = await c.get("/eligibility/work-items", headers=coder)
        assert r.status_code == 403
    audited = await fetchval(
        pipeline.dsn,
        "SELECT count(*) FROM intake.audit_record WHERE actor = 'reg-1'"
        " AND resource_type IN ('eligibility_check', 'eligibility_work_item')",
    )
    assert audited >= 2


async def test_an_on_demand_check_answers_and_is_reused(pipeline, checking_intake):
    sample = _sample(4)
    enc = _encounter(sample, "W7004000001")
    await _post(pipeline.intake_url, pipeline, enc)  # the session's intake: checks on demand
    biller = {"authorization": f"Bearer {pipeline.token('bill-1', 'biller', [enc.site_id])}"}
    other = {"authorization": f"Bearer {pipeline.token('bill-2', 'biller', ['no-such-site'])}"}
    async with httpx.AsyncClient(base_url=pipeline.intake_url, timeout=30) as c:
        r = await c.post("/eligibility/checks", json={"encounter_id": "NO-SUCH"}, headers=biller)
        assert r.status_code == 404
        r = await c.post("/eligibility/checks", json={"encounter": 1}, headers=biller)
        assert r.status_code == 422 and "encounter_id" in r.text
        body = {"encounter_id": enc.encounter_id}
        r = await c.post("/eligibility/checks", json=body, headers=other)
        assert r.status_code == 403
        r = await c.post("/eligibility/checks", json=body, headers=biller)
        assert r.status_code == 202, r.text
        [check] = r.json()["checks"]
        assert check["sequence"] == "primary"
        await wait_for(pipeline.dsn, CHECKS, enc.encounter_id, "answered", timeout=60)
        r = await c.get(f"/encounters/{enc.encounter_id}/eligibility", headers=biller)
        [cov] = r.json()["coverages"]
    assert cov["state"] == "answered" and cov["eligibility"]["status"] in ("active", "inactive")
    assert cov["trace_number"] == check["trace_number"]
    await _files_valid(pipeline, enc.encounter_id)

    # A new version, even to the instance that checks at intake: the fresh answer is reused
    # (no second 270) and goes out on the event at once.
    await _post(checking_intake, pipeline, enc.model_copy(update={"prior_authorization": "PA1"}))
    raw = await wait_for(
        pipeline.dsn,
        "SELECT encounter->'coverages'->0->'eligibility' FROM coding.encounter"
        " WHERE encounter_id = $1 AND (encounter->>'document_version')::int = 2",
        enc.encounter_id,
        timeout=120,
    )
    assert json.loads(raw) == cov["eligibility"]
    sent = await fetchval(
        pipeline.dsn,
        "SELECT count(*) FROM intake.eligibility_check WHERE encounter_id = $1",
        enc.encounter_id,
    )
    assert sent == 1


async def test_a_payer_down_past_the_wait_goes_out_unverified_and_retries_until_given_up(
    pipeline, checking_intake
):
    sample = _sample(5)
    enc = _encounter(sample, "PAYERDOWN7005")
    await _post(checking_intake, pipeline, enc)
    down = "SELECT count(*) FROM intake.eligibility_check WHERE encounter_id = $1 AND reason_code = '42'"
    await wait_for(pipeline.dsn, down, enc.encounter_id, timeout=60)
    # The wait is over while retries are pending (brought forward here rather than waited out).
    released = await fetchval(
        pipeline.dsn,
        "WITH u AS (UPDATE intake.eligibility_hold SET release_at = now() WHERE encounter_id = $1"
        " AND NOT EXISTS (SELECT FROM intake.eligibility_check WHERE encounter_id = $1"
        " AND state = 'gave_up') RETURNING 1) SELECT count(*) FROM u",
        enc.encounter_id,
    )
    assert released == 1
    await _code_if_review(pipeline, enc.encounter_id, sample.expected)
    found = await _documented_eligibility(pipeline, enc.encounter_id)
    assert found["status"] == "unverified" and found["checked_on"] is None
    # The retries went on after the event: 4 attempts (1, 2, 4 s apart), then a review item.
    await wait_for(pipeline.dsn, CHECKS, enc.encounter_id, "gave_up", timeout=90)
    rows = await fetch(
        pipeline.dsn,
        "SELECT attempt, state FROM intake.eligibility_check WHERE encounter_id = $1"
        " ORDER BY attempt",
        enc.encounter_id,
    )
    assert [tuple(r) for r in rows] == [
        (1, "retried"),
        (2, "retried"),
        (3, "retried"),
        (4, "gave_up"),
    ]
    item = await fetch(
        pipeline.dsn,
        "SELECT kind, reason_code, message FROM intake.eligibility_work_item"
        " WHERE encounter_id = $1",
        enc.encounter_id,
    )
    assert [(r["kind"], r["reason_code"]) for r in item] == [("review", "42")]
    assert "4 attempts" in item[0]["message"] and "PAYERDOWN7005" not in item[0]["message"]
    status, reasons = await _claim_reasons(pipeline, enc.encounter_id)
    assert "COVERAGE_INACTIVE" not in reasons  # unverified coverage is billed as before
    await _files_valid(pipeline, enc.encounter_id)
