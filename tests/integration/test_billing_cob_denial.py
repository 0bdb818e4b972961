"""Coordination of benefits when the primary denies or decides again, on the real stack.

A primary's final denial (CO-96 non-covered) goes on to the secondary with AMT*D 0; a
correctable one (CO-16) holds the secondary until the biller corrects the primary, whose
replacement's 835 then releases it; "another payer is primary" (CO-109) holds it with the
coverage order. A primary corrected after the secondary paid re-bills the secondary as a
replacement (frequency 7, REF*F8 = the secondary payer's claim number); a primary voided after
the secondary was billed opens a work item on the secondary. Every 837 is valid under pyx12.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from rcm.simulation.payer.domain.model import AdjudicatedLine, Adjudication, Adjustment
from rcm.simulation.samples import encounter_to_bundle, generate_samples
from services.billing.domain.cob_remit import cob_claim_id
from shared.claim_ids import claim_id_for
from shared.x12 import amount, split_segments
from tests.integration.cob_support import (
    MEDICARE,
    PAID,
    SUPPLEMENT,
    claim_row,
    claim_segments,
    fate,
    medicare_encounters,
    primary_claim_id,
    read_outbound,
    replace_paid_secondary,
    request_correction,
    send_and_code,
)
from tests.integration.pipeline_support import RECENT, fetch, fetchval, wait_for
from tests.integration.test_billing_cob_flow import _drop_835, _history, _rejected_primary
from tests.unit.billing.test_billing_cob import loops_2320
from tests.x12_support import pyx12_validate

pytestmark = pytest.mark.integration

ZERO = Decimal("0.00")


def _denial(sub, group: str, carc: str) -> Adjudication:
    """The primary's denial of every line of ``sub`` with ``group``-``carc``."""
    lines = tuple(
        AdjudicatedLine(ln, ZERO, ZERO, (Adjustment(group, carc, ln.charge),)) for ln in sub.lines
    )
    return Adjudication(sub, "4", f"DEN{carc}{sub.claim_id[-6:]}", sub.service_date, lines)


async def _sent_837(pipeline, claim_id: str) -> tuple[str, list, list]:
    """The 837 a claim went out in (valid under pyx12), its SBR and its 2300 loop."""
    name = await wait_for(
        pipeline.dsn,
        "SELECT file_name FROM billing.claim WHERE claim_id = $1",
        claim_id,
        predicate=lambda n: n is not None,
        timeout=90,
    )
    text = await read_outbound(pipeline.settings.outbound_dir, name)
    ok, errors = pyx12_validate(text)
    assert ok, errors[:5]
    sbr, clm = claim_segments(split_segments(text)[0], claim_id)
    return text, sbr, clm


async def _work_reasons(dsn: str, claim_id: str, kind: str) -> list[tuple[str, str]]:
    rows = await fetch(
        dsn,
        "SELECT status, reasons::text AS r FROM billing.work_item WHERE claim_id = $1 AND kind = $2",
        claim_id,
        kind,
    )
    return [(r["status"], r["r"]) for r in rows]


async def test_a_final_denial_bills_the_secondary_a_correctable_one_holds_it(pipeline):
    dsn = pipeline.dsn
    final = await _rejected_primary(pipeline, 21501, "den96")
    fixable = await _rejected_primary(pipeline, 21502, "den16")
    order = await _rejected_primary(pipeline, 21503, "den109")
    for (_, _, sub), (group, carc) in zip(
        (final, fixable, order), (("CO", "96"), ("CO", "16"), ("CO", "109")), strict=True
    ):
        _drop_835(pipeline, sub, _denial(sub, group, carc), "MCR01", "Medicare Part B (Demo MAC)")

    # CO-96, non-covered: a final decision; the Medigap plan is billed with AMT*D 0.
    sec = cob_claim_id(final[1], "secondary")
    _, sbr, clm = await _sent_837(pipeline, sec)
    assert sbr[1] == "S"
    (prior,) = loops_2320(clm)
    assert ["AMT", "D", "0"] in prior
    assert any(x[:3] == ["CAS", "CO", "96"] for x in clm)  # 2430 CAS of the primary's denial
    assert "secondary_billed" in await _history(dsn, final[1])

    # CO-16 and CO-109: the secondary's claim is built and held, never sent, with the reason.
    for (_, cid, _), code, carc in (
        (fixable, "COB_PRIOR_DENIAL_CORRECTABLE", "CO-16"),
        (order, "COB_COVERAGE_ORDER", "CO-109"),
    ):
        held = cob_claim_id(cid, "secondary")
        await wait_for(
            dsn,
            "SELECT status FROM billing.claim WHERE claim_id = $1",
            held,
            predicate=lambda s: s == "held",
            timeout=60,
        )
        assert (await claim_row(dsn, held))["file_name"] is None
        (work,) = await _work_reasons(dsn, held, "scrub_hold")
        assert work[0] == "open" and code in work[1] and carc in work[1]
        assert "secondary_held" in await _history(dsn, cid)
        await wait_for(  # claim.held: on the billers' work list in followup
            dsn,
            "SELECT count(*) FROM followup.work_item WHERE claim_id = $1",
            held,
            predicate=lambda n: n == 1,
            timeout=60,
        )

    # The biller corrects the CO-16 claim; the payer pays the replacement, and its 835
    # releases the held secondary, now built from the replacement's decision.
    _, cid, _ = fixable
    await request_correction(pipeline, await claim_row(dsn, cid), "7")
    replacement = await wait_for(
        dsn,
        "SELECT claim_id FROM billing.claim WHERE original_claim_id = $1 AND frequency_code = '7'",
        cid,
        predicate=lambda r: r is not None,
        timeout=60,
    )
    held = cob_claim_id(cid, "secondary")
    await wait_for(
        dsn,
        "SELECT status FROM billing.claim WHERE claim_id = $1",
        held,
        predicate=lambda s: s in PAID,
        timeout=180,
    )
    pccn = await fetchval(
        dsn,
        "SELECT payer_claim_control_number FROM billing.claim WHERE claim_id = $1",
        replacement,
    )
    _, sbr, clm = await _sent_837(pipeline, held)
    (prior,) = loops_2320(clm)
    assert ["REF", "F8", pccn] in prior  # the replacement's decision, not the denial's
    paid = await fetchval(
        dsn,
        "SELECT paid FROM payments.claim_payment WHERE claim_id = $1 AND state = 'posted'",
        replacement,
    )
    assert ["AMT", "D", amount(paid)] in prior
    assert not any(x[:3] == ["CAS", "CO", "16"] for x in clm)  # the denial no longer stands
    assert [s for s, _ in await _work_reasons(dsn, held, "scrub_hold")] == ["resolved"]
    history = await _history(dsn, cid)
    assert history.index("secondary_held") < history.index("primary_readjudicated")
    assert history.index("primary_readjudicated") < history.index("secondary_billed")


async def test_a_corrected_primary_replaces_the_paid_secondary_and_a_void_opens_work(pipeline):
    dsn = pipeline.dsn
    fixed, voided = medicare_encounters(
        21601,
        [MEDICARE, SUPPLEMENT],
        "follow",
        want=lambda f: not f["ack_rejected"] and not f["denied"],
        n=2,
    )
    await send_and_code(pipeline, [fixed, voided])
    sec = {
        s.encounter.encounter_id: cob_claim_id(primary_claim_id(s), "secondary")
        for s in (fixed, voided)
    }
    await wait_for(
        dsn,
        "SELECT count(*) FROM billing.claim WHERE claim_id = ANY($1) AND status = ANY($2)",
        list(sec.values()),
        list(PAID),
        predicate=lambda n: n == 2,
        timeout=180,
    )

    # The primary is corrected after the secondary paid: its replacement's 835 re-bills the
    # secondary as a replacement of its own claim, with the secondary payer's claim number.
    cid = primary_claim_id(fixed)
    first_secondary = await claim_row(dsn, sec[fixed.encounter.encounter_id])
    assert first_secondary["payer_claim_control_number"]
    _, _, again = await replace_paid_secondary(pipeline, fixed)
    _, sbr, clm = await _sent_837(pipeline, again)
    clm05 = next(x for x in clm if x[0] == "CLM")[5]
    assert clm05.split(":")[2] == "7" and sbr[1] == "S"
    # 2300 REF*F8 (before the 2320 loops): the secondary payer's number for its own claim.
    head = clm[: next(i for i, x in enumerate(clm) if x[0] == "SBR")]
    assert ["REF", "F8", first_secondary["payer_claim_control_number"]] in head
    (prior,) = loops_2320(clm)
    primary_replacement = await fetchval(
        dsn,
        "SELECT payer_claim_control_number FROM billing.claim WHERE original_claim_id = $1",
        cid,
    )
    assert ["REF", "F8", primary_replacement] in prior
    assert (await claim_row(dsn, sec[fixed.encounter.encounter_id]))["status"] == "corrected"
    history = await _history(dsn, cid)
    assert "primary_readjudicated" in history and "secondary_replaced" in history

    # The other primary is voided after its secondary was billed: the payer's reversal opens a
    # work item on the secondary's claim.
    vid = primary_claim_id(voided)
    await request_correction(pipeline, await claim_row(dsn, vid), "8")
    await wait_for(
        dsn,
        "SELECT count(*) FROM billing.work_item WHERE claim_id = $1 AND kind = 'prior_payer_reversed'",
        sec[voided.encounter.encounter_id],
        predicate=lambda n: n == 1,
        timeout=180,
    )
    (work,) = await _work_reasons(dsn, sec[voided.encounter.encounter_id], "prior_payer_reversed")
    assert work[0] == "open" and "COB_PRIOR_PAYER_REVERSED" in work[1] and "BCBS01" in work[1]
    assert "prior_payer_reversed" in await _history(dsn, sec[voided.encounter.encounter_id])
    assert "primary_reversed" in await _history(dsn, vid)


def _with_rejected_secondary(seed: int, tag: str):
    """A Medicare + Medigap encounter whose primary claim (and its first replacement) the
    simulator pays, and whose secondary claim it rejects at the 277CA: a secondary sent but
    never decided."""
    # The clinics: the session's intake token covers them (not every demo site).
    clinics = ("north-clinic", "south-urgent-care")
    for s in generate_samples(999, seed=seed, sites=clinics, start_date=RECENT):
        enc = s.encounter
        if enc.coverages[0].payer_id != "MCR01" or enc.institutional is not None:
            continue
        enc = enc.model_copy(
            update={
                "encounter_id": f"{enc.encounter_id}-{tag}",
                "coverages": [MEDICARE, SUPPLEMENT],
            }
        )
        sample = replace(s, encounter=enc, bundle=encounter_to_bundle(enc))
        pid = primary_claim_id(sample)
        corrected = claim_id_for(enc.encounter_id, "7", pid, 0)
        if (
            not fate(pid)["ack_rejected"]
            and not fate(pid)["denied"]
            and not fate(corrected)["ack_rejected"]
            and fate(cob_claim_id(pid, "secondary"))["ack_rejected"]
        ):
            return sample
    raise AssertionError(f"no fitting encounter for seed {seed}")


async def test_a_corrected_primary_holds_the_replacement_of_an_undecided_secondary(pipeline):
    dsn = pipeline.dsn
    sample = _with_rejected_secondary(21701, "undecided")
    await send_and_code(pipeline, [sample])
    cid = primary_claim_id(sample)
    sec = cob_claim_id(cid, "secondary")
    await wait_for(
        dsn,
        "SELECT status FROM billing.claim WHERE claim_id = $1",
        sec,
        predicate=lambda s: s == "rejected",
        timeout=180,
    )
    await request_correction(pipeline, await claim_row(dsn, cid), "7")
    held = await wait_for(
        dsn,
        "SELECT claim_id FROM billing.claim WHERE original_claim_id = $1 AND frequency_code = '7'",
        sec,
        predicate=lambda r: r is not None,
        timeout=180,
    )
    await wait_for(
        dsn,
        "SELECT status FROM billing.claim WHERE claim_id = $1",
        held,
        predicate=lambda s: s == "held",
        timeout=30,
    )
    row = await claim_row(dsn, held)
    assert row["file_name"] is None and row["cob_sequence"] == "secondary"
    (work,) = await _work_reasons(dsn, held, "scrub_hold")
    assert work[0] == "open" and "COB_NEXT_PAYER_NOT_DECIDED" in work[1] and sec in work[1]
    assert (await claim_row(dsn, sec))["status"] == "rejected"  # still the payer's to answer
    history = await _history(dsn, cid)
    assert "secondary_held" in history[history.index("primary_readjudicated") :]


async def test_a_billers_correction_of_a_secondary_goes_to_the_secondary_payer(pipeline):
    # Followup asks billing to correct the secondary's own claim (a biller fixed its data):
    # the replacement bills the secondary payer again from the primary's stored decision,
    # never the primary payer, and keeps its place in the coordination of benefits.
    dsn = pipeline.dsn
    (s,) = medicare_encounters(
        21623,
        [MEDICARE, SUPPLEMENT],
        "corrsec",
        want=lambda f: not f["ack_rejected"] and not f["denied"],
        n=1,
    )
    await send_and_code(pipeline, [s])
    primary = primary_claim_id(s)
    secondary_id = cob_claim_id(primary, "secondary")
    await wait_for(
        dsn,
        "SELECT status FROM billing.claim WHERE claim_id = $1",
        secondary_id,
        predicate=lambda st: st in PAID,
        timeout=180,
    )
    secondary = await claim_row(dsn, secondary_id)
    assert secondary["payer_claim_control_number"]
    await request_correction(pipeline, secondary, "7")
    again = await wait_for(
        dsn,
        "SELECT claim_id FROM billing.claim WHERE original_claim_id = $1 AND frequency_code = '7'",
        secondary_id,
        predicate=lambda r: r is not None,
        timeout=180,
    )
    row = await claim_row(dsn, again)
    assert (row["cob_sequence"], row["primary_claim_id"]) == ("secondary", primary)
    assert row["payer_id"] == secondary["payer_id"] != (await claim_row(dsn, primary))["payer_id"]
    _, sbr, clm = await _sent_837(pipeline, again)
    assert sbr[1] == "S"
    assert next(x for x in clm if x[0] == "CLM")[5].split(":")[2] == "7"
    head = clm[: next(i for i, x in enumerate(clm) if x[0] == "SBR")]
    assert ["REF", "F8", secondary["payer_claim_control_number"]] in head
    (prior,) = loops_2320(clm)  # the primary's decision rides along, as on the first secondary
    assert any(x[0] == "AMT" and x[1] == "D" for x in prior)
    corrected = await claim_row(dsn, secondary_id)
    assert corrected["status"] == "corrected"
    # The primary claim is untouched: no second primary claim was built.
    assert (
        await fetchval(
            dsn,
            "SELECT count(*) FROM billing.claim WHERE encounter_id = $1 AND cob_sequence = 'primary'",
            s.encounter.encounter_id,
        )
        == 1
    )
