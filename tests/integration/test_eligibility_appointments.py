"""Eligibility before the visit (issue 21 item 1, docs/eligibility.md "Scheduled visits"), on the
real stack: a FHIR Appointment in through ``POST /appointments``, the batch pass sending its 270
to the payer simulator through the clearinghouse mailbox, the 271 stored, and the encounter
documented later carrying that answer without a second 270; a check-in asking again when the
answer has gone stale, and not when it is fresh.

An intake instance with RCM_INTAKE_ELIGIBILITY_MODE=intake and BATCH_DAYS=3 runs beside the
session's, as a second instance of the service would."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from rcm.simulation.payer.app import PayerSimRules
from rcm.simulation.payer.domain.draw import draw
from rcm.simulation.payer.domain.eligibility import EligibilityRules
from rcm.simulation.samples import generate_samples
from services.intake.domain.fhir import parse_intake
from tests.integration.pipeline_support import (
    CHECKING_AT_INTAKE,
    another_instance,
    fetch,
    fetchval,
    wait_for,
)
from tests.integration.test_pipeline_typical_journey import _code_if_review
from tests.unit.eligibility.appointment_support import appointment_bundle, with_status
from tests.unit.eligibility.pyx12_maps import pyx12_validate

pytestmark = pytest.mark.integration

STATE = (
    "SELECT state FROM intake.eligibility_check WHERE encounter_id = $1"
    " ORDER BY created_at DESC LIMIT 1"
)


@pytest.fixture(scope="module")
def batch_intake(pipeline):
    """An intake instance that checks at intake and in a batch 3 days ahead."""
    env = {
        **CHECKING_AT_INTAKE,
        "RCM_INTAKE_ELIGIBILITY_BATCH_DAYS": "3",
        "RCM_INTAKE_ELIGIBILITY_FRESH_HOURS": "24",
    }
    with another_instance(pipeline, "intake", 8, env) as url:
        yield url


def _active_member() -> str:
    """A member id the simulated payer answers active (its draw past every other outcome)."""
    r = EligibilityRules(seed=PayerSimRules().seed)
    others = (
        r.invalid_id_rate + r.not_found_rate + r.inactive_rate + r.other_primary_rate
    )  # the order _outcome draws them in; payer-down is drawn per trace (then retried)
    while True:
        member = "APT" + uuid.uuid4().hex[:9].upper()
        if draw(r.seed, member, "eligibility") >= others:
            return member


def _scheduled(n: int) -> tuple[dict, object]:
    """A sample office visit of today, its member id one the payer answers active: the
    bundle (the EHR's, with the Encounter) and its sample."""
    today = datetime.now(UTC).date().isoformat()
    samples = generate_samples(30, seed=311 + n, start_date=datetime.now(UTC).date())
    sample = next(s for s in samples if parse_intake(s.bundle).institutional is None)
    bundle = json.loads(json.dumps(sample.bundle))
    member = _active_member()
    for e in bundle["entry"]:
        r = e["resource"]
        if r["resourceType"] == "Coverage":
            r["subscriberId"] = member
        if r["resourceType"] == "Encounter":
            r["period"] = {"start": today}
            r["identifier"] = [
                {"system": "urn:rcm:encounter", "value": f"AP-{uuid.uuid4().hex[:10].upper()}"}
            ]
    return bundle, sample


def cov_member(bundle: dict) -> str:
    return next(
        e["resource"]["subscriberId"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Coverage"
    )


async def _post_appointment(url: str, pipeline, bundle: dict) -> dict:
    async with httpx.AsyncClient(base_url=url, headers=pipeline.intake_headers, timeout=30) as c:
        r = await c.post("/appointments", json=bundle)
    assert r.status_code == 202, r.text
    [one] = r.json()["appointments"]
    assert one["status"] == "accepted", one
    return one


async def _settled(pipeline, filed: str) -> str:
    return await wait_for(
        pipeline.dsn, STATE, filed, predicate=lambda v: v in ("answered", "rejected"), timeout=90
    )


async def test_batch_check_before_the_visit_is_reused_by_the_documented_encounter(
    pipeline, batch_intake
):
    bundle, sample = _scheduled(1)
    appt_id = f"APPT-{uuid.uuid4().hex[:10]}"
    appt = appointment_bundle(bundle, appt_id, datetime.now(UTC).strftime("%Y-%m-%dT09:30:00Z"))
    one = await _post_appointment(batch_intake, pipeline, appt)
    assert one["checks"] == []  # booked: the batch asks, not the request
    filed = f"Appointment/{appt_id}"
    assert await _settled(pipeline, filed) == "answered"
    checks = await fetch(
        pipeline.dsn,
        "SELECT trace_number, coverage_key, requested_by, outcome, file_name, answer_file"
        " FROM intake.eligibility_check WHERE encounter_id = $1 ORDER BY created_at",
        filed,
    )
    # The batch's 270 (resent only if the payer was down: a retry keeps the coverage's key).
    assert [c["requested_by"] for c in checks] == ["batch"] + ["retry"] * (len(checks) - 1)
    check = checks[-1]
    assert check["outcome"] == "active"
    s = pipeline.settings
    for path in (
        s.outbound_dir / "processed" / check["file_name"],
        s.inbound_dir / "processed" / check["answer_file"],
    ):
        for _ in range(150):
            if path.exists():
                break
            await asyncio.sleep(0.2)
        text = path.read_text()
        assert check["trace_number"] in text  # TRN*1 of the 270, TRN*2 of the 271
        ok, errors = pyx12_validate(text)
        assert errors == [] and ok is True, path.name

    # Registration staff see it, for their site only.
    enc = parse_intake(bundle)
    assert [c.member_id for c in enc.coverages] == [cov_member(bundle)]
    biller = {"authorization": f"Bearer {pipeline.token('reg-1', 'biller', [enc.site_id])}"}
    other = {"authorization": f"Bearer {pipeline.token('reg-2', 'biller', ['no-such-site'])}"}
    async with httpx.AsyncClient(base_url=batch_intake, timeout=30) as c:
        r = await c.get(f"/appointments/{appt_id}/eligibility", headers=biller)
        assert r.status_code == 200, r.text
        [cov] = r.json()["coverages"]
        assert (cov["coverage"], cov["state"]) == ("primary", "answered")
        assert cov["trace_number"] == check["trace_number"] and cov["fresh"] is True
        assert cov["eligibility"]["status"] == "active"
        assert r.json()["batch_checked_at"]
        r = await c.get(f"/appointments/{appt_id}/eligibility", headers=other)
        assert r.status_code == 403
        assert enc.patient.last_name not in r.text
    audited = await fetchval(
        pipeline.dsn,
        "SELECT count(*) FROM intake.audit_record WHERE actor = 'reg-1'"
        " AND resource_type = 'eligibility_check' AND resource_ids::text LIKE $1",
        f"%{check['trace_number']}%",
    )
    assert audited >= 1

    # Checked in the same day: the batch's answer is fresh, nothing is asked.
    one = await _post_appointment(batch_intake, pipeline, with_status(appt, "arrived"))
    assert one["checks"] == [] and one["appointment_status"] == "arrived"

    # The visit happens; the encounter is documented: the fresh answer rides on its event.
    async with httpx.AsyncClient(
        base_url=batch_intake, headers=pipeline.intake_headers, timeout=30
    ) as c:
        r = await c.post("/encounters", json=bundle)
    assert r.status_code == 202, r.text
    await _code_if_review(pipeline, enc.encounter_id, sample.expected)
    raw = await wait_for(
        pipeline.dsn,
        "SELECT encounter->'coverages'->0->'eligibility' FROM coding.encounter"
        " WHERE encounter_id = $1",
        enc.encounter_id,
        timeout=120,
    )
    found = json.loads(raw)
    assert found["status"] == "active" and found["checked_on"]
    # Exactly one 270 for that coverage: the batch's (a payer-down retry would resend it).
    rows = await fetch(
        pipeline.dsn,
        "SELECT encounter_id, requested_by FROM intake.eligibility_check WHERE coverage_key = $1",
        check["coverage_key"],
    )
    assert [r["requested_by"] for r in rows if r["requested_by"] != "retry"] == ["batch"]
    assert {r["encounter_id"] for r in rows} == {filed}


async def test_check_in_asks_again_when_the_answer_is_stale(pipeline, batch_intake):
    bundle, _ = _scheduled(2)
    appt_id = f"APPT-{uuid.uuid4().hex[:10]}"
    appt = appointment_bundle(bundle, appt_id, datetime.now(UTC).strftime("%Y-%m-%dT14:00:00Z"))
    await _post_appointment(batch_intake, pipeline, appt)
    filed = f"Appointment/{appt_id}"
    assert await _settled(pipeline, filed) == "answered"

    # Checked in days after the batch asked (its answer now older than FRESH_HOURS).
    await fetchval(
        pipeline.dsn,
        "UPDATE intake.eligibility_check SET answered_at = answered_at - interval '2 days',"
        " created_at = created_at - interval '2 days' WHERE encounter_id = $1",
        filed,
    )
    one = await _post_appointment(batch_intake, pipeline, with_status(appt, "checked-in"))
    [asked] = one["checks"]
    assert asked["coverage"] == "primary"
    await wait_for(
        pipeline.dsn,
        "SELECT state FROM intake.eligibility_check WHERE trace_number = $1",
        asked["trace_number"],
        predicate=lambda v: v in ("answered", "rejected"),
        timeout=90,
    )
    rows = await fetch(
        pipeline.dsn,
        "SELECT requested_by, state FROM intake.eligibility_check WHERE encounter_id = $1"
        " AND requested_by <> 'retry' ORDER BY created_at",
        filed,
    )
    assert [r["requested_by"] for r in rows] == ["batch", "check_in"]
    async with httpx.AsyncClient(
        base_url=batch_intake, headers=pipeline.intake_headers, timeout=30
    ) as c:
        r = await c.get(f"/appointments/{appt_id}/eligibility")
    [cov] = r.json()["coverages"]
    assert cov["requested_by"] in ("check_in", "retry") and cov["state"] == "answered"
    assert r.json()["checked_in_at"]


async def test_appointments_refused_by_path_and_site(pipeline, batch_intake):
    bundle, _ = _scheduled(3)
    appt_id = f"APPT-{uuid.uuid4().hex[:10]}"
    appt = appointment_bundle(bundle, appt_id, datetime.now(UTC).strftime("%Y-%m-%dT08:00:00Z"))
    at = next(
        i for i, e in enumerate(appt["entry"]) if e["resource"]["resourceType"] == "Appointment"
    )
    site = parse_intake(bundle).site_id
    other = {"authorization": f"Bearer {pipeline.token('feed-b', 'integration', ['elsewhere'])}"}
    undated = json.loads(json.dumps(appt))
    del undated["entry"][at]["resource"]["start"]
    async with httpx.AsyncClient(base_url=batch_intake, timeout=30) as c:
        r = await c.post("/appointments", json=appt, headers=other)
        assert r.status_code == 403 and f"entry[{at}].resource" in r.text
        assert (
            await fetchval(
                pipeline.dsn,
                "SELECT count(*) FROM intake.appointment WHERE appointment_id = $1",
                appt_id,
            )
            == 0
        )  # nothing stored
        r = await c.post("/appointments", json=undated, headers=pipeline.intake_headers)
        assert r.status_code == 422
        assert r.json()["detail"] == [
            {
                "path": f"entry[{at}].resource.start",
                "message": "required: the date and time of the visit",
            }
        ]
        # NDJSON, as a bulk export gives it (references by Type/id), is read too.
        ids = {
            e["fullUrl"]: f"{e['resource']['resourceType']}/{appt_id}-{i}"
            for i, e in enumerate(appt["entry"])
        }
        text = "\n".join(
            json.dumps({**e["resource"], "id": ids[e["fullUrl"]].split("/")[1]})
            for e in appt["entry"]
        )
        for urn, ref in ids.items():
            text = text.replace(f'"{urn}"', f'"{ref}"')
        r = await c.post(
            "/appointments",
            content=text.encode(),
            headers={**pipeline.intake_headers, "content-type": "application/fhir+ndjson"},
        )
        assert r.status_code == 202, r.text
        [one] = r.json()["appointments"]
        assert one["appointment_id"] == f"{appt_id}-{at}" and one["status"] == "accepted"
    stored = await fetchval(
        pipeline.dsn,
        "SELECT site_id FROM intake.appointment WHERE appointment_id = $1",
        f"{appt_id}-{at}",
    )
    assert stored == site
