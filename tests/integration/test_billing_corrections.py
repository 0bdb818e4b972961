"""Corrected claims: followup's request becomes a frequency-7 replacement billing submits, linked to the original."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from rcm.simulation.samples import generate_samples
from services.intake.domain.fhir import parse_intake
from shared.x12 import split_segments
from tests.integration.cob_support import request_correction
from tests.integration.pipeline_support import RECENT, code_and_settle, fetch, wait_for
from tests.x12_support import pyx12_validate

pytestmark = pytest.mark.integration


async def _paid_claim(pipeline) -> dict:
    """Run a few encounters through; return one claim the payer accepted (it has a payer claim number)."""
    samples = [
        s
        for s in generate_samples(20, seed=515, start_date=RECENT)
        if parse_intake(s.bundle).institutional is None
    ][:6]
    ids = await code_and_settle(pipeline, samples)
    rows = await fetch(
        pipeline.dsn,
        "SELECT * FROM billing.claim WHERE encounter_id = ANY($1) AND frequency_code = '1'"
        " AND payer_claim_control_number IS NOT NULL AND status IN ('paid', 'partially_paid', 'denied')"
        " ORDER BY claim_id",
        ids,
    )
    assert rows, "no adjudicated claim among the samples"
    return dict(rows[0])


async def test_correction_request_becomes_a_submitted_replacement_claim(pipeline):
    original = await _paid_claim(pipeline)
    await request_correction(pipeline, original, "7", reason="corrected units")
    replacement = await wait_for(
        pipeline.dsn,
        "SELECT claim_id FROM billing.claim WHERE original_claim_id = $1 AND file_name IS NOT NULL",
        original["claim_id"],
        timeout=60,
    )
    row = (
        await fetch(pipeline.dsn, "SELECT * FROM billing.claim WHERE claim_id = $1", replacement)
    )[0]
    # (Its own payer_claim_control_number changes once the payer acknowledges it: the original's
    # number travels in the 837 as REF*F8, checked below.)
    assert row["frequency_code"] == "7" and row["encounter_id"] == original["encounter_id"]
    # The 837 that carried it: CLM05-3 = 7 and REF*F8 with the payer's original claim number; valid X12.
    outbound = pipeline.settings.outbound_dir
    deadline = time.monotonic() + 30
    text = None
    while text is None and time.monotonic() < deadline:
        for p in (outbound / "processed" / row["file_name"], outbound / row["file_name"]):
            try:
                text = p.read_text()  # the payer may move it to processed/ at any moment
                break
            except FileNotFoundError:
                continue
        await asyncio.sleep(0.3)
    assert text is not None, f"{row['file_name']} never written"
    segs, seps = split_segments(text)
    i = next(i for i, s in enumerate(segs) if s[0] == "CLM" and s[1] == replacement)
    assert segs[i][5].split(seps.component)[2] == "7"
    claim_segs = segs[
        i : next(
            (j for j in range(i + 1, len(segs)) if segs[j][0] in ("CLM", "HL", "SE")), len(segs)
        )
    ]
    assert ["REF", "F8", original["payer_claim_control_number"]] in claim_segs
    ok, errors = pyx12_validate(text)
    assert ok, errors[:5]
    # The original's history says it was corrected, and points at its replacement.
    token = pipeline.token(user="biller-1", role="biller", sites=[original["site_id"]])
    async with httpx.AsyncClient(
        base_url=pipeline.billing_url, headers={"authorization": f"Bearer {token}"}
    ) as c:
        body = (await c.get(f"/claims/{original['claim_id']}")).json()
        other = await c.get(
            f"/claims/{original['claim_id']}",
            headers={"authorization": f"Bearer {pipeline.token(sites=['elsewhere'])}"},
        )
    states = [h["status"] for h in body["history"]]
    # The 835 may be read before the 277CA (different mailboxes, different services): a claim
    # already paid skips "accepted", which is no less an acceptance.
    assert states[0] == "submitted" and states[1] in ("accepted", "paid") and "corrected" in states
    corrected = next(h for h in body["history"] if h["status"] == "corrected")
    assert corrected["detail"]["replacement"] == replacement
    assert other.status_code == 403
