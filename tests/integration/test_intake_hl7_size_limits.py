"""The note and encounter size limits of POST /encounters hold for HL7 v2 too (issue 18, item
5), on a real intake process with its MLLP listener: a message whose note is above
RCM_INTAKE_MAX_NOTE_BYTES is answered AR naming the limit and is not stored, while the same
connection and another one go on; a visit whose assembled encounter is above
RCM_INTAKE_MAX_ENCOUNTER_BYTES is not emitted (nothing reaches the outbox), the message that
completed it answered AE naming the limit; POST /hl7 answers the same."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from services.intake.mllp import MllpClient, read_ack
from tests.integration.pipeline_support import fetchval
from tests.integration.test_intake_mllp_support import (
    PHI,
    new_run,
    start_intake,
    stored,
    versions,
    visit,
)
from tests.unit.intake_service.test_intake_hl7_limits import MARKER, big_note

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def intake(pipeline):
    proc = await start_intake(
        pipeline,
        31,
        RCM_INTAKE_MAX_NOTE_BYTES="4096",
        RCM_INTAKE_MAX_ENCOUNTER_BYTES="4096",
        RCM_INTAKE_MLLP_MAX_FRAME_BYTES="65536",
    )
    yield proc
    proc.stop(pipeline)


async def test_a_note_above_the_limit_is_refused_ar_and_the_listener_goes_on(pipeline, intake):
    run, other = new_run(), new_run()
    adt, mdm, _ = visit(run)
    other_adt = visit(other)[0]
    async with (
        MllpClient("127.0.0.1", intake.mllp_port) as client,
        MllpClient("127.0.0.1", intake.mllp_port) as second,
    ):
        assert read_ack(await client.send(adt)).code == "AA"
        # The oversized note and another sender's message at the same time.
        too_big_raw, beside = await asyncio.gather(
            client.send(big_note(mdm, 6000)), second.send(other_adt)
        )
        after = read_ack(await client.send(mdm))  # the same connection is still served
    too_big = read_ack(too_big_raw)
    assert (too_big.code, too_big.control_id) == ("AR", f"MDM-V{run}")
    assert any("RCM_INTAKE_MAX_NOTE_BYTES" in e and "at most 4096" in e for e in too_big.errors), (
        too_big.errors
    )
    assert MARKER not in too_big_raw and not any(p in too_big_raw for p in PHI)
    assert read_ack(beside).code == "AA" and after.code == "AA"
    # The refused message was not stored (only the note under the limit, sent after it).
    assert await stored(pipeline.dsn, f"MDM-V{run}") == 1
    stored_note = await fetchval(
        pipeline.dsn,
        "SELECT position($1::bytea IN message) FROM intake.hl7_message WHERE control_id = $2",
        MARKER,
        f"MDM-V{run}",
    )
    assert stored_note == 0
    rejected = await fetchval(
        pipeline.dsn,
        "SELECT ack_code FROM intake.hl7_rejection WHERE control_id = $1",
        f"MDM-V{run}",
    )
    assert rejected == "AR"


async def test_a_visit_whose_encounter_is_above_the_limit_is_not_emitted(pipeline, intake):
    run = new_run()
    # The note (about 3.4 KB) fits the note limit; the encounter built from it does not fit
    # 4096 bytes as JSON. Readiness: note + charges, so the DFT completes the visit.
    adt, mdm, dft = visit(run)
    async with MllpClient("127.0.0.1", intake.mllp_port) as client:
        answers = [read_ack(await client.send(m)) for m in (adt, big_note(mdm, 3000), dft)]
    assert [a.code for a in answers[:2]] == ["AA", "AA"]
    assert (answers[2].code, answers[2].control_id) == ("AE", f"DFT-V{run}")
    [why] = answers[2].errors
    assert "RCM_INTAKE_MAX_ENCOUNTER_BYTES" in why and "at most 4096" in why
    assert await versions(pipeline.dsn, f"V{run}") == 0  # no version: nothing emitted
    # Sent again, it is answered the same (stored with its answer), and still not emitted.
    async with MllpClient("127.0.0.1", intake.mllp_port) as client:
        again = read_ack(await client.send(dft))
    assert (again.code, again.errors) == ("AE", [why])
    assert await versions(pipeline.dsn, f"V{run}") == 0


async def test_post_hl7_answers_the_same_limits(pipeline, intake):
    run = new_run()
    adt, mdm, dft = visit(run)
    token = pipeline.token(user="ehr-northgate", role="integration", sites=["north-clinic"])
    headers = {"authorization": f"Bearer {token}", "content-type": "x-application/hl7-v2+er7"}
    body = b"\r".join([adt, big_note(mdm, 6000), dft])
    async with httpx.AsyncClient(base_url=intake.url, timeout=60) as client:
        r = await client.post("/hl7", content=body, headers=headers)
    assert r.status_code == 200, r.text[:500]
    assert r.text.count("MSA|AA|") == 2 and r.text.count(f"MSA|AR|MDM-V{run}") == 1
    assert "RCM_INTAKE_MAX_NOTE_BYTES" in r.text
    assert MARKER.decode() not in r.text and not any(p.decode() in r.text for p in PHI)
    assert await stored(pipeline.dsn, f"MDM-V{run}") == 0
    assert await versions(pipeline.dsn, f"V{run}") == 0  # no note: the visit is not ready
