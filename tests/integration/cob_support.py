"""Coordination of benefits on the running pipeline: encounters with chosen coverages, and
what the payer simulator will decide about their claims (no tests in this module).

Encounters are the sample generator's Medicare patients (65+, codes billed to Medicare) with
their coverages replaced, renamed so no other test shares them. The simulator's decisions are
deterministic hashes of its seed and the claim id (``rcm.simulation.payer.domain.draw``), and
a primary claim's id derives from its encounter id (``shared.claim_ids``): a test can pick
encounters whose claim is not rejected at the 277CA and not denied, and whose crossover 835
comes (or never comes), instead of hoping for them.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import httpx

from rcm.simulation.payer.app import PayerSimRules
from rcm.simulation.payer.domain.adjudicate import AdjudicationRules
from rcm.simulation.payer.domain.draw import draw
from rcm.simulation.samples import Sample, encounter_to_bundle, generate_samples
from services.billing.domain.cob_remit import cob_claim_id
from shared.claim_ids import claim_id_for
from shared.events import CorrectionRequested, CorrectionRequestedPayload, Coverage
from shared.kafka import start_producer
from tests.integration.pipeline_support import RECENT, fetch, simulated_coders, wait_for

SIM = PayerSimRules()  # the simulator runs with its defaults in the test pipeline
RULES = AdjudicationRules(
    seed=SIM.seed, denial_rate=SIM.denial_rate, ack_reject_rate=SIM.ack_reject_rate
)

MEDICARE = Coverage(
    payer_id="MCR01",
    payer_name="Medicare Part B (Demo MAC)",
    member_id="1EG4TE5MK73",
    filing_indicator="MB",
)
MEDICAID = Coverage(
    payer_id="MCD01",
    payer_name="Buckeye State Medicaid (demo)",
    member_id="004455667701",  # one the simulator's 271 finds active
    filing_indicator="MC",
    sequence="secondary",
)
SUPPLEMENT = Coverage(  # a Medigap plan: billed by the provider, no crossover
    payer_id="BCBS01",
    payer_name="Blue Lakes Cross Shield (demo)",
    member_id="XLB778899001",
    group_number="G20417",
    filing_indicator="BL",
    sequence="secondary",
)
TERTIARY = Coverage(
    payer_id="UHC001",
    payer_name="Unity Health Care Plan",
    member_id="U00412377",
    group_number="G55120",
    filing_indicator="CI",
    sequence="tertiary",
)


def fate(claim_id: str) -> dict[str, bool]:
    """What the simulator will do with a primary claim (the draws its code makes)."""
    return {
        "ack_rejected": draw(RULES.seed, claim_id, "ack") < RULES.ack_reject_rate,
        "denied": draw(RULES.seed, claim_id, "denial") < RULES.denial_rate,
        # the payer applies an unmet deductible (Medicare's Part B deductible)
        "deductible": draw(RULES.seed, claim_id, "deductible") < RULES.deductible_rate,
        "crossover_lost": draw(RULES.seed, claim_id, "crossover-lost") < RULES.crossover_lost_rate,
    }


def primary_claim_id(sample: Sample) -> str:
    return claim_id_for(sample.encounter.encounter_id)


def medicare_encounters(
    seed: int,
    coverages: list[Coverage],
    tag: str,
    *,
    want=lambda f: not f["ack_rejected"],
    n: int = 1,
) -> list[Sample]:
    """``n`` Medicare encounters billed on an 837P, with ``coverages``, ids ending in
    ``tag``, whose primary claim's simulator ``fate`` satisfies ``want`` (by default: not
    rejected at the 277CA)."""
    out = []
    for s in generate_samples(999, seed=seed, start_date=RECENT):
        enc = s.encounter
        if enc.coverages[0].payer_id != "MCR01" or enc.institutional is not None:
            continue
        enc = enc.model_copy(
            update={"encounter_id": f"{enc.encounter_id}-{tag}", "coverages": coverages}
        )
        sample = replace(s, encounter=enc, bundle=encounter_to_bundle(enc))
        pid = primary_claim_id(sample)
        if not want(fate(pid)) or any(
            fate(cob_claim_id(pid, seq))["ack_rejected"] for seq in ("secondary", "tertiary")
        ):
            continue  # the later payers' claims must pass the simulator's front door too
        out.append(sample)
        if len(out) == n:
            return out
    raise AssertionError(f"fewer than {n} fitting encounters for seed {seed}")


async def send_and_code(
    pipeline, samples: list[Sample], intake_url: str | None = None
) -> list[str]:
    """Post the encounters as the EHR feed (to the session's intake, or ``intake_url``), let
    the simulated coders review what needs it, and return the encounter ids once billing has
    made each one's primary claim."""
    ids = [s.encounter.encounter_id for s in samples]
    expected = {s.encounter.encounter_id: s.expected for s in samples}
    async with simulated_coders(pipeline, expected, {s.encounter.site_id for s in samples}):
        async with httpx.AsyncClient(
            base_url=intake_url or pipeline.intake_url, headers=pipeline.intake_headers, timeout=30
        ) as client:
            for s in samples:
                got = await client.post("/encounters", json=s.bundle)
                assert got.status_code in (200, 202), got.text
        await wait_for(
            pipeline.dsn,
            "SELECT count(*) FROM billing.claim WHERE encounter_id = ANY($1)"
            " AND cob_sequence = 'primary'",
            ids,
            predicate=lambda n: n == len(ids),
            timeout=120,
        )
    return ids


async def read_outbound(outbound: Path, name: str, timeout: float = 30) -> str:
    """An 837 billing wrote, from the outbound mailbox (or its processed/ once the simulator
    took it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in (outbound / "processed" / name, outbound / name):
            try:
                return p.read_text()
            except FileNotFoundError:
                continue
        await asyncio.sleep(0.3)
    raise AssertionError(f"{name} never written")


def claim_segments(segs: list[list[str]], claim_id: str) -> tuple[list[str], list[list[str]]]:
    """(the SBR of the subscriber loop the claim is in, the claim's segments CLM..next CLM/HL/SE)."""
    i = next(i for i, s in enumerate(segs) if s[0] == "CLM" and s[1] == claim_id)
    end = next((j for j in range(i + 1, len(segs)) if segs[j][0] in ("CLM", "HL", "SE")), len(segs))
    sbr = [s for s in segs[:i] if s[0] == "SBR"][-1]
    return sbr, segs[i:end]


ZERO = Decimal("0.00")


# A secondary's states once its payer has decided.
PAID = ("paid", "partially_paid", "denied")


async def claim_row(dsn: str, claim_id: str) -> dict:
    rows = await fetch(dsn, "SELECT * FROM billing.claim WHERE claim_id = $1", claim_id)
    assert rows, claim_id
    return dict(rows[0])


async def request_correction(
    pipeline, claim: dict, frequency: str, reason: str | None = None
) -> None:
    """A biller's correction (7) or void (8) of ``claim``, as followup publishes it."""
    event = CorrectionRequested(
        site_id=claim["site_id"],
        encounter_id=claim["encounter_id"],
        payload=CorrectionRequestedPayload(
            claim_id=claim["claim_id"],
            frequency_code=frequency,
            reason=reason
            or ("corrected rendering provider" if frequency == "7" else "billed in error"),
            requested_by="biller-1",
        ),
    )
    producer = await start_producer(pipeline.endpoints["kafka"])
    try:
        await producer.send_and_wait(event.topic, event.to_json(), key=event.key())
    finally:
        await producer.stop()


async def replace_paid_secondary(pipeline, sample: Sample) -> tuple[str, str, str]:
    """Once the encounter's secondary is decided, a biller corrects its primary (7): the
    primary's new 835 re-bills the secondary as a replacement. (primary, secondary,
    replacement) claim ids, once the replacement exists."""
    primary = primary_claim_id(sample)
    secondary = cob_claim_id(primary, "secondary")
    await wait_for(
        pipeline.dsn,
        "SELECT status FROM billing.claim WHERE claim_id = $1",
        secondary,
        predicate=lambda st: st in PAID,
        timeout=180,
    )
    await request_correction(pipeline, await claim_row(pipeline.dsn, primary), "7")
    replacement = await wait_for(
        pipeline.dsn,
        "SELECT claim_id FROM billing.claim WHERE original_claim_id = $1 AND frequency_code = '7'",
        secondary,
        predicate=lambda r: r is not None,
        timeout=180,
    )
    return primary, secondary, replacement
