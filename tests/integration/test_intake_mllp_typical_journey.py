"""HL7 v2 over MLLP into the running pipeline: a visit's ADT^A04, MDM^T02 and DFT^P03 sent
over a socket become one coded encounter and a claim; the real-world messages of
tests/fixtures/realworld/hl7v2 are each acknowledged as docs/hl7v2-intake.md says; `rcm
submit FILE.hl7` and `POST /hl7` do the same as the listener."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import httpx
import pytest

from rcm.cli.demo import load_sample_registries
from rcm.cli.intake_cmds import hl7_messages
from services.intake.domain.hl7v2 import parse_message
from services.intake.mllp import MllpClient, read_ack
from tests.conftest import FIXTURES, ROOT
from tests.integration.pipeline_support import RECENT, fetch, fetchval, wait_for
from tests.integration.test_intake_mllp_support import (
    PHI,
    new_run,
    start_intake,
    stored,
    versions,
    visit,
)

pytestmark = pytest.mark.integration

REAL = FIXTURES / "realworld" / "hl7v2"
# docs/hl7v2-intake.md, "The real messages": refused ones, with their ACK code and field.
REFUSED = {
    "cdc-trusted-intermediary/msh_present_but_missing_msh-9.hl7": ("AR", "MSH-9"),
    "cdc-trusted-intermediary/005_MN_ADT_A01.hl7": ("AE", "PV1-19"),
    "ms-fhir-converter/MDM-T02-03.hl7": ("AE", "PV1-19"),
}


@pytest.fixture(scope="module")
async def intake(pipeline):
    await load_sample_registries(pipeline.dsn)  # north-clinic, its providers, the payers
    proc = await start_intake(pipeline, 21)
    yield proc
    proc.stop(pipeline)


async def test_a_visit_over_mllp_becomes_one_coded_encounter_and_a_claim(pipeline, intake):
    run = new_run()
    eid = f"V{run}"
    async with MllpClient("127.0.0.1", intake.mllp_port) as client:
        acks = [await client.send(m) for m in visit(run)]
    read = [read_ack(a) for a in acks]
    assert [(a.code, a.control_id) for a in read] == [
        ("AA", f"ADT-V{run}"),
        ("AA", f"MDM-V{run}"),
        ("AA", f"DFT-V{run}"),
    ]
    assert not any(p in a for a in acks for p in PHI)
    # stored in the visit's order, one version emitted once note and charges were there
    rows = await fetch(
        pipeline.dsn,
        "SELECT control_id, visit_seq, status, message_type FROM intake.hl7_message"
        " WHERE visit_key = $1 ORDER BY visit_seq",
        f"north-clinic|PV1-19|{eid}",
    )
    assert [(r["visit_seq"], r["status"], r["message_type"]) for r in rows] == [
        (1, "waiting", "ADT^A04"),
        (2, "waiting", "MDM^T02"),
        (3, "ready", "DFT^P03"),
    ]
    assert await versions(pipeline.dsn, eid) == 1
    doc = json.loads(
        await fetchval(
            pipeline.dsn,
            "SELECT document FROM intake.encounter_document WHERE encounter_id = $1",
            eid,
        )
    )
    assert doc["site_id"] == "north-clinic" and doc["billing_provider"]["npi"]
    assert [c["member_id"] for c in doc["coverages"]] == ["W123456789", "BLX998877"]
    assert {p["code"] for p in doc["procedures"]} == {"99213", "73610"}
    # coded automatically from the note, then billed
    route = await wait_for(
        pipeline.dsn,
        "SELECT route || '/' || status FROM coding.encounter WHERE encounter_id = $1",
        eid,
        timeout=90,
    )
    assert route == "auto/coded"
    coded = json.loads(
        await fetchval(
            pipeline.dsn, "SELECT final_coding FROM coding.encounter WHERE encounter_id = $1", eid
        )
    )
    assert "S93401A" in json.dumps(coded)
    claim = await wait_for(
        pipeline.dsn,
        "SELECT claim_id FROM billing.claim WHERE encounter_id = $1 AND frequency_code = '1'",
        eid,
        timeout=90,
    )
    charge = await fetchval(
        pipeline.dsn, "SELECT total_charge FROM billing.claim WHERE claim_id = $1", claim
    )
    assert charge > 0
    file_name = await wait_for(
        pipeline.dsn, "SELECT file_name FROM billing.claim WHERE claim_id = $1", claim, timeout=90
    )
    sent = [p for p in pipeline.settings.outbound_dir.rglob(file_name) if p.is_file()]
    assert sent, f"{file_name} not in the outbound mailbox"
    text = sent[0].read_text()
    assert f"CLM*{claim}*" in text and "SV1*HC:73610:RT*" in text


async def test_every_real_world_message_is_acknowledged_as_documented(pipeline, intake):
    sent, first, reused = {}, {}, []
    async with MllpClient("127.0.0.1", intake.mllp_port) as client:
        for path in sorted(REAL.rglob("*.hl7")):
            name = str(path.relative_to(REAL))
            sent[name] = []
            for m in hl7_messages(str(path)):
                ack = read_ack(await client.send(m))
                sent[name].append(ack)
                if name in REFUSED:
                    continue
                key = _key(m)
                if key in first:  # the converters' samples reuse control ids
                    reused.append((first[key] != m, ack))
                first.setdefault(key, m)
    assert len(sent) == 34
    for name, acks in sent.items():
        assert acks, name
        if name in REFUSED:
            code, field = REFUSED[name]
            assert [a.code for a in acks] == [code], name
            assert acks[0].errors[0].startswith(field), (name, acks[0].errors)
        else:
            assert {a.code for a in acks} == {"AA"}, (name, [a.errors for a in acks])
    # kept once per sending facility and MSH-10; another message under a key already used is
    # acknowledged with a warning naming MSH-10 and not applied
    kept = await fetchval(
        pipeline.dsn,
        "SELECT count(*) FROM intake.hl7_message m"
        " JOIN unnest($1::text[], $2::text[]) AS u(f, c) ON m.facility = u.f AND m.control_id = u.c",
        [k[0] for k in first],
        [k[1] for k in first],
    )
    assert kept == len(first) and reused
    for other, ack in reused:
        warned = any(e.startswith("MSH-10: a different message") for e in ack.errors)
        assert warned == other, ack


def _key(message: bytes) -> tuple[str, str]:
    meta = parse_message(message).meta
    return meta.facility, meta.control_id


async def test_rcm_submit_sends_a_file_over_mllp_and_to_post_hl7(pipeline, intake, tmp_path):
    run = new_run()
    batch = tmp_path / "visit.hl7"
    batch.write_bytes(b"\n".join(m.replace(b"\r", b"\n") for m in visit(run)))  # LF file
    env = {**os.environ, "RCM_TOKEN_SECRET": pipeline.settings.auth.token_secret}

    def submit(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "rcm.cli.main", "submit", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=120,
        )

    r = submit(str(batch), "--mllp", f"127.0.0.1:{intake.mllp_port}")
    assert r.returncode == 0, r.stderr
    assert "submitted 3 HL7 v2 message(s): 3 AA" in r.stdout
    assert f"message 3 (MSH-10 DFT-V{run}): AA" in r.stdout
    # the same file again over HTTP: acknowledged again, applied once
    r = submit(str(batch), "--url", intake.url)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(": AA") == 3
    assert await versions(pipeline.dsn, f"V{run}") == 1
    assert await stored(pipeline.dsn, f"DFT-V{run}") == 1
    # a refused message: exit 2, the field named on stderr
    bad = tmp_path / "bad.hl7"
    no_visit = visit(run)[0].replace(f"|V{run}|".encode(), b"||").replace(b"ADT-V", b"ADX-V")
    no_visit = no_visit.replace(f"ACCT-V{run}".encode(), b"")  # PID-18
    bad.write_bytes(no_visit.replace(RECENT.strftime("|%Y%m%d0900").encode(), b"|"))  # PV1-44
    r = submit(str(bad), "--mllp", f"127.0.0.1:{intake.mllp_port}")
    assert r.returncode == 2 and "PV1-19" in r.stderr and "AE" in r.stdout


async def test_post_hl7_answers_acks_with_the_listener_semantics(pipeline, intake):
    run = new_run()
    body = b"".join(visit(run))
    token = pipeline.token(user="ehr-northgate", role="integration", sites=["north-clinic"])
    headers = {"authorization": f"Bearer {token}", "content-type": "x-application/hl7-v2+er7"}
    async with httpx.AsyncClient(base_url=intake.url, timeout=60) as client:
        assert (await client.post("/hl7", content=body)).status_code == 401
        coder = pipeline.token(user="coder", role="coder", sites=["north-clinic"])
        r = await client.post("/hl7", content=body, headers={"authorization": f"Bearer {coder}"})
        assert r.status_code == 403
        other = pipeline.token(user="ehr-east", role="integration", sites=["east-hospital"])
        r = await client.post("/hl7", content=body, headers={"authorization": f"Bearer {other}"})
        assert r.status_code == 403 and await stored(pipeline.dsn, f"ADT-V{run}") == 0
        r = await client.post("/hl7", content=b"not hl7", headers=headers)
        assert r.status_code == 422 and r.json()["detail"][0]["path"] == "line 1"
        first, again = await asyncio.gather(
            client.post("/hl7", content=body, headers=headers),
            client.post("/hl7", content=body, headers=headers),
        )
    for r in (first, again):
        assert r.status_code == 200 and r.headers["content-type"].startswith(
            "x-application/hl7-v2+er7"
        )
        assert r.text.count("MSA|AA|") == 3 and not any(p.decode() in r.text for p in PHI)
    assert await versions(pipeline.dsn, f"V{run}") == 1
    source = await fetchval(
        pipeline.dsn,
        "SELECT source FROM intake.encounter_document WHERE encounter_id = $1",
        f"V{run}",
    )
    assert source == "http"
