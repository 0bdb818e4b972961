"""Coordination of benefits on the real stack: the primary's 835 posts, billing writes the
secondary 837 from it, the simulator adjudicates that, and payments posts both payers."""

from __future__ import annotations

import asyncio
import time

import pytest

from rcm.simulation.samples import generate_samples
from services.intake.domain.fhir import parse_intake
from shared.x12 import split_segments
from tests.integration.pipeline_support import RECENT, code_and_settle, fetch, wait_for
from tests.x12_support import pyx12_validate

pytestmark = pytest.mark.integration


async def _read_file(outbound, name: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for p in (outbound / "processed" / name, outbound / name):
            try:
                return p.read_text()
            except FileNotFoundError:
                continue
        await asyncio.sleep(0.3)
    raise AssertionError(f"{name} never written")


async def test_primary_835_builds_and_bills_the_secondary(pipeline):
    samples = [
        s
        for s in generate_samples(80, seed=2121, start_date=RECENT)
        if len(parse_intake(s.bundle).coverages) >= 2
    ][:4]
    assert samples, "no sample with a secondary coverage"
    ids = await code_and_settle(pipeline, samples)
    # Each encounter whose primary claim was adjudicated (not a crossover) gets a secondary claim.
    await wait_for(
        pipeline.dsn,
        "SELECT count(*) FROM billing.claim WHERE encounter_id = ANY($1) AND cob_sequence = 'secondary'"
        " AND status IN ('paid', 'partially_paid', 'denied')",
        ids,
        predicate=lambda n: n >= 1,
        timeout=120,
    )
    sec = dict(
        (
            await fetch(
                pipeline.dsn,
                "SELECT * FROM billing.claim WHERE encounter_id = ANY($1) AND cob_sequence = 'secondary'"
                " AND status IN ('paid', 'partially_paid', 'denied') ORDER BY claim_id",
                ids,
            )
        )[0]
    )
    primary = dict(
        (
            await fetch(
                pipeline.dsn,
                "SELECT * FROM billing.claim WHERE claim_id = $1",
                sec["primary_claim_id"],
            )
        )[0]
    )
    assert primary["cob_sequence"] == "primary" and primary["payer_id"] != sec["payer_id"]
    pccn = (
        await fetch(
            pipeline.dsn,
            "SELECT payer_claim_control_number FROM payments.claim_payment WHERE claim_id = $1"
            " AND state = 'posted' ORDER BY created_at LIMIT 1",
            primary["claim_id"],
        )
    )[0]["payer_claim_control_number"]
    # The secondary 837: SBR*S, 2320 AMT*D, 2330B REF*F8 = the primary's claim number; valid X12.
    text = await _read_file(pipeline.settings.outbound_dir, sec["file_name"])
    segs, _ = split_segments(text)
    i = next(i for i, s in enumerate(segs) if s[0] == "CLM" and s[1] == sec["claim_id"])
    end = next((j for j in range(i + 1, len(segs)) if segs[j][0] in ("CLM", "HL", "SE")), len(segs))
    claim_segs = segs[i:end]
    sbr = [s for s in segs[:i] if s[0] == "SBR"][-1]
    assert sbr[1] == "S"
    assert any(s[0] == "AMT" and s[1] == "D" for s in claim_segs)
    assert ["REF", "F8", pccn] in claim_segs
    ok, errors = pyx12_validate(text)
    assert ok, errors[:5]
    # Payments posted both payers' payments for the encounter.
    payers = await fetch(
        pipeline.dsn,
        "SELECT DISTINCT claim_id, payer_id FROM payments.claim_payment WHERE claim_id = ANY($1)"
        " AND state = 'posted'",
        [primary["claim_id"], sec["claim_id"]],
    )
    assert {r["claim_id"] for r in payers} == {primary["claim_id"], sec["claim_id"]}
    # One secondary per encounter, whatever was redelivered.
    dup = await fetch(
        pipeline.dsn,
        "SELECT encounter_id, count(*) AS n FROM billing.claim WHERE encounter_id = ANY($1)"
        " AND cob_sequence = 'secondary' GROUP BY encounter_id HAVING count(*) > 1",
        ids,
    )
    assert dup == []
