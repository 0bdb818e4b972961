"""The MLLP listener's edges, on the real stack with real intake processes: the ACK comes only
after the message is committed (the process SIGKILLed between commit and ACK, and right after
a send: the sender's retry is applied once, the visit state survives the restart); malformed
messages get AE/AR naming segment and field while the connection stays usable; many
concurrent connections; frame size, idle and connection limits; allowed senders; TLS."""

from __future__ import annotations

import asyncio
import json
import ssl

import pytest

from services.intake.mllp import MllpClient, MllpError, read_ack
from tests.integration.pipeline_support import fetch, fetchval, wait_for
from tests.integration.test_intake_mllp_support import (
    PHI,
    certificates,
    new_run,
    poll,
    start_intake,
    stored,
    versions,
    visit,
)

pytestmark = pytest.mark.integration

ACK_DELAY = 4.0  # seconds the kill test's intake holds each ACK after the commit


@pytest.fixture(scope="module")
async def intake(pipeline):
    proc = await start_intake(
        pipeline,
        22,
        RCM_INTAKE_MLLP_IDLE_TIMEOUT_SECONDS="3",
        RCM_INTAKE_MLLP_MAX_FRAME_BYTES="65536",
        RCM_INTAKE_MLLP_MAX_CONNECTIONS="100",
    )
    yield proc
    proc.stop(pipeline)


# --------------------------------------------------------------------------- ACK after commit


async def test_killed_between_commit_and_ack_the_retry_is_applied_once(pipeline):
    intake = await start_intake(
        pipeline,
        23,
        RCM_INTAKE_MLLP_ACK_DELAY_SECONDS=str(ACK_DELAY),
        RCM_INTAKE_HL7_SENDERS="NORTHGATE=north-clinic",
    )
    try:
        await _kill_and_retry(pipeline, intake)
    finally:
        intake.stop(pipeline)


async def _kill_and_retry(pipeline, intake):
    dsn, run = pipeline.dsn, new_run()
    eid = f"V{run}"
    adt, mdm, dft = visit(run)
    async with MllpClient("127.0.0.1", intake.mllp_port) as client:
        assert read_ack(await client.send(adt)).code == "AA"
        assert read_ack(await client.send(mdm)).code == "AA"
        # the DFT releases the visit: committed (with the encounter's outbox row), then killed
        # while the ACK is held back
        await client.write(dft)
        assert await poll(lambda: stored(dsn, f"DFT-V{run}"), timeout=ACK_DELAY - 0.5)
        assert await versions(dsn, eid) == 1
        intake.process.kill()
        with pytest.raises(MllpError):
            await client.read_ack()
    await intake.restart()
    # the sender sends again: acknowledged, not applied again
    async with MllpClient("127.0.0.1", intake.mllp_port) as client:
        again = read_ack(await client.send(dft))
    assert (again.code, again.control_id) == ("AA", f"DFT-V{run}")
    assert await stored(dsn, f"DFT-V{run}") == 1
    assert await versions(dsn, eid) == 1
    # one encounter.documented (one version, one event id), and coding received it
    event = await fetchval(
        dsn, "SELECT event_id FROM intake.encounter_document WHERE encounter_id = $1", eid
    )
    await wait_for(dsn, "SELECT count(*) FROM coding.inbox WHERE event_id = $1", event)
    # killed right after a send, before the ACK could be read (committed or not): the retry
    # leaves the message stored once, and the visit state rebuilt after the restart gives the
    # new version the patient, coverages and charges of the earlier messages
    later = mdm.replace(b"MDM-V", b"MDM2-V").replace(b"return in 2 weeks", b"return in 10 days")
    async with MllpClient("127.0.0.1", intake.mllp_port) as client:
        await client.write(later)
        intake.process.kill()
        with pytest.raises(MllpError):
            await client.read_ack()
    await intake.restart()
    async with MllpClient("127.0.0.1", intake.mllp_port) as client:
        assert read_ack(await client.send(later)).code == "AA"
    assert await stored(dsn, f"MDM2-V{run}") == 1
    rows = await fetch(
        dsn,
        "SELECT version, document FROM intake.encounter_document WHERE encounter_id = $1"
        " ORDER BY version",
        eid,
    )
    assert [r["version"] for r in rows] == [1, 2]
    doc = json.loads(rows[1]["document"])
    assert doc["patient"]["last_name"] == "Quinlan" and len(doc["coverages"]) == 2
    assert {p["code"] for p in doc["procedures"]} == {"99213", "73610"}
    assert doc["note"].endswith("return in 10 days.")
    assert (
        await fetchval(
            dsn,
            "SELECT message_count FROM intake.hl7_visit WHERE visit_key = $1",
            f"north-clinic|PV1-19|{eid}",
        )
        == 4
    )
    # senders: an unknown facility, or a site the sender may not send for, is refused (AR)
    async with MllpClient("127.0.0.1", intake.mllp_port) as client:
        unknown = read_ack(await client.send(adt.replace(b"|NORTHGATE^", b"|ELSEWHERE^", 1)))
        assert (unknown.code, unknown.errors) == ("AR", ["MSH-4: not an allowed sender"])


# --------------------------------------------------------------------------- malformed input


async def test_malformed_messages_get_ae_or_ar_naming_the_field_and_the_connection_goes_on(
    pipeline, intake
):
    run = new_run()
    adt, mdm, _ = visit(run)
    no_pv1 = b"\r".join(s for s in adt.split(b"\r") if not s.startswith(b"PV1"))
    bad_version = adt.replace(b"|P|2.5.1|", b"|P|3.0|").replace(b"ADT-V", b"ADTX-V")
    bad_birth = adt.replace(b"|19800314|F|", b"|1980-13-45|F|").replace(b"ADT-V", b"ADTB-V")
    no_header = b"PID|1||MRN10001^^^NORTHGATE^MR||Quinlan^Harriet\r"
    async with MllpClient("127.0.0.1", intake.mllp_port) as client:
        answers = []
        for message in (no_header, no_pv1, bad_version, bad_birth, mdm):
            raw = await client.send(message)
            assert not any(p in raw for p in PHI)
            answers.append(read_ack(raw))
    assert [a.code for a in answers] == ["AR", "AE", "AR", "AA", "AA"]
    assert answers[0].control_id == "" and answers[0].errors[0].startswith("line 1")
    assert answers[1].errors == ["PV1: required segment missing from ADT^A04"]
    assert answers[2].errors[0].startswith("MSH-12") and "2.1 to 2.9" in answers[2].errors[0]
    # a field that cannot be used is a warning: the message is taken, the ACK names the field
    assert any(e.startswith("PID-7") and e.endswith("(warning)") for e in answers[3].errors)
    assert await stored(pipeline.dsn, f"ADT-V{run}") == 0  # the one without PV1
    assert await stored(pipeline.dsn, f"ADTB-V{run}") == 1
    assert await stored(pipeline.dsn, f"MDM-V{run}") == 1
    rejected = await fetch(
        pipeline.dsn,
        "SELECT ack_code, errors FROM intake.hl7_rejection WHERE control_id = $1",
        f"ADT-V{run}",
    )
    assert [(r["ack_code"], json.loads(r["errors"])[0]["path"]) for r in rejected] == [
        ("AE", "PV1")
    ]


async def test_an_oversized_frame_is_refused_and_the_connection_goes_on(pipeline, intake):
    run = new_run()
    adt, mdm, _ = visit(run)
    huge = adt + b"\rNTE|1||" + b"x" * 100_000
    async with MllpClient("127.0.0.1", intake.mllp_port) as client:
        too_big = read_ack(await client.send(huge))
        fine = read_ack(await client.send(mdm))
    assert (too_big.code, too_big.control_id) == ("AR", f"ADT-V{run}")
    assert too_big.errors == ["message: the message is larger than 65536 bytes"]
    assert fine.code == "AA"


async def test_idle_connections_are_closed_and_the_connection_limit_holds(intake):
    reader, writer = await asyncio.open_connection("127.0.0.1", intake.mllp_port)
    assert await asyncio.wait_for(reader.read(10), 10) == b""  # closed after 3 s idle
    writer.close()
    opened = [await asyncio.open_connection("127.0.0.1", intake.mllp_port) for _ in range(100)]
    try:
        await asyncio.sleep(0.3)
        r, w = await asyncio.open_connection("127.0.0.1", intake.mllp_port)
        assert await asyncio.wait_for(r.read(10), 2) == b""  # the 101st is closed at once
        w.close()
    finally:
        for _, w in opened:
            w.close()


# --------------------------------------------------------------------------- concurrency


async def test_many_concurrent_connections_each_message_stored_once(pipeline, intake):
    run = new_run()
    connections, per_connection = 60, 5

    async def sender(c: int) -> list[str]:
        codes = []
        async with MllpClient("127.0.0.1", intake.mllp_port) as client:
            for m in range(per_connection):
                adt = visit(f"{run}-{c}-{m}", names=("adt_a04",))[0]
                codes.append(read_ack(await client.send(adt)).code)
            # the first connection's first message again, from every connection at once
            shared = visit(f"{run}-0-0", names=("adt_a04",))[0]
            codes.append(read_ack(await client.send(shared)).code)
        return codes

    results = await asyncio.gather(*(sender(c) for c in range(connections)))
    assert all(code == "AA" for codes in results for code in codes)
    rows = await fetch(
        pipeline.dsn,
        "SELECT count(*) AS n, count(DISTINCT visit_key) AS visits, max(visit_seq) AS seq"
        " FROM intake.hl7_message WHERE control_id LIKE $1",
        f"ADT-V{run}-%",
    )
    assert (rows[0]["n"], rows[0]["visits"], rows[0]["seq"]) == (
        connections * per_connection,
        connections * per_connection,
        1,
    )


# --------------------------------------------------------------------------- TLS


async def test_tls_with_client_certificates(pipeline, tmp_path):
    certs = certificates(tmp_path)
    intake = await start_intake(
        pipeline,
        24,
        RCM_INTAKE_MLLP_TLS_CERT=str(certs["cert"]),
        RCM_INTAKE_MLLP_TLS_KEY=str(certs["key"]),
        RCM_INTAKE_MLLP_TLS_CLIENT_CA=str(certs["ca"]),
    )
    try:
        adt = visit(new_run(), names=("adt_a04",))[0]
        tls = ssl.create_default_context(cafile=certs["ca"])
        tls.load_cert_chain(certs["client_cert"], certs["client_key"])
        async with MllpClient("127.0.0.1", intake.mllp_port, tls=tls) as client:
            assert read_ack(await client.send(adt)).code == "AA"
        # no client certificate, or no TLS at all: no ACK
        anonymous = ssl.create_default_context(cafile=certs["ca"])
        with pytest.raises(MllpError):
            async with MllpClient("127.0.0.1", intake.mllp_port, tls=anonymous) as client:
                await client.send(adt)
        with pytest.raises(MllpError):
            async with MllpClient("127.0.0.1", intake.mllp_port, timeout=5) as client:
                await client.send(adt)
    finally:
        intake.stop(pipeline)
