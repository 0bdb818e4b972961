"""Issue 21, end to end on the real stack: a Medicare patient with a Medigap plan.

The encounter goes in as the EHR sends it (FHIR, Medicare Part B primary with filing indicator
MB, a Blue plan as the supplemental secondary) to an intake that checks eligibility at intake
(a 270 per coverage, the simulator's 271s: both active, carried on the encounter to billing),
is coded, billed to Medicare (837P), paid by
Medicare (835); billing then bills the supplemental plan from Medicare's 835 (837P with SBR*S,
2320 AMT*D, 2330B REF*F8 = Medicare's claim number), the plan pays (835, CLP02 2); what is
left is the patient's: the statement run bills it, the patient pays it at the desk, and the
encounter ends owing nothing, the ledger summing to zero and each step on the claims' timelines.

A crossover case too: Medicare forwards a dual-eligible patient's claim to Medicaid, nothing is
billed to Medicaid, and Medicaid's 835 on the same claim ends it.
"""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest

from services.billing.domain.cob_remit import cob_claim_id
from services.workbench.domain import timeline
from shared.x12 import amount, split_segments
from tests.integration.cob_support import (
    MEDICAID,
    MEDICARE,
    SUPPLEMENT,
    claim_segments,
    medicare_encounters,
    primary_claim_id,
    read_outbound,
    send_and_code,
)
from tests.integration.pipeline_support import (
    CHECKING_AT_INTAKE,
    another_instance,
    fetch,
    fetchval,
    wait_for,
)
from tests.unit.billing.test_billing_cob import loops_2320
from tests.x12_support import pyx12_validate

pytestmark = pytest.mark.e2e

D = Decimal
ZERO = D("0.00")
ANSWERED = ("paid", "partially_paid", "denied")


@pytest.fixture(scope="module")
def checking_intake(pipeline):
    """An intake instance that checks eligibility at intake, beside the session's (which asks
    only on demand), as a second instance of the service would run."""
    with another_instance(pipeline, "intake", 8, CHECKING_AT_INTAKE) as url:
        yield url


def _clean(f: dict) -> bool:
    return not f["ack_rejected"] and not f["denied"]


def _url(pipeline, service: str) -> str:
    return f"http://127.0.0.1:{pipeline.supervisor.by_name(service)[0].http_port}"


def _client(pipeline, service: str, role: str = "biller") -> httpx.AsyncClient:
    token = pipeline.token(f"e2e-{role}", role)
    return httpx.AsyncClient(
        base_url=_url(pipeline, service),
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )


async def _claim_837(pipeline, claim_id: str) -> tuple[str, list[str], list[list[str]]]:
    name = await fetchval(
        pipeline.dsn, "SELECT file_name FROM billing.claim WHERE claim_id = $1", claim_id
    )
    text = await read_outbound(pipeline.settings.outbound_dir, name)
    sbr, segs = claim_segments(split_segments(text)[0], claim_id)
    return text, sbr, segs


async def _balances(pipeline, claim_ids: list[str]) -> dict[str, dict]:
    async with _client(pipeline, "payments") as payments:
        out = {}
        for c in claim_ids:
            got = await payments.get(f"/claims/{c}/balance")
            assert got.status_code == 200, got.text
            out[c] = got.json()
        return out


async def test_medicare_and_a_supplemental_plan_then_the_patient_pays_the_rest(
    pipeline, checking_intake
):
    dsn = pipeline.dsn
    # Medicare applies the Part B deductible, which the Medigap plan (like Plan G) leaves to
    # the patient: that is what the statement asks for.
    sample = medicare_encounters(
        21501, [MEDICARE, SUPPLEMENT], "medigap", want=lambda f: _clean(f) and f["deductible"]
    )[0]
    encounter = sample.encounter.encounter_id
    await send_and_code(pipeline, [sample], checking_intake)
    primary = primary_claim_id(sample)
    secondary = cob_claim_id(primary, "secondary")

    # 0. Eligibility at intake: a 270 per coverage, both found active by the payers' 271s, the
    #    results on the encounter billing billed from.
    async with httpx.AsyncClient(
        base_url=checking_intake,
        headers={"authorization": f"Bearer {pipeline.token('e2e-biller', 'biller')}"},
        timeout=30,
    ) as intake:
        got = await intake.get(f"/encounters/{encounter}/eligibility")
        assert got.status_code == 200, got.text
    checks = {c["coverage"]: c for c in got.json()["coverages"]}
    assert {k: (c["payer_id"], c["state"], c["outcome"]) for k, c in checks.items()} == {
        "primary": ("MCR01", "answered", "active"),
        "secondary": ("BCBS01", "answered", "active"),
    }
    coded = json.loads(
        await fetchval(dsn, "SELECT coded FROM billing.claim WHERE claim_id = $1", primary)
    )
    assert [
        (c["sequence"], (c.get("eligibility") or {}).get("status"))
        for c in coded["encounter"]["coverages"]
    ] == [("primary", "active"), ("secondary", "active")]

    # 1. The primary claim: billed to Medicare (SBR*P, SBR09 MB), the Medigap plan riding along
    #    in its 2320/2330B loop.
    await wait_for(
        dsn,
        "SELECT status FROM billing.claim WHERE claim_id = $1",
        primary,
        predicate=lambda s: s in ANSWERED,
        timeout=120,
    )
    text, sbr, segs = await _claim_837(pipeline, primary)
    assert (sbr[1], sbr[9]) == ("P", "MB")
    (other,) = loops_2320(segs)
    assert other[0][1] == "S" and [x for x in other if x[:2] == ["NM1", "PR"]][0][9] == "BCBS01"

    # 2. Medicare's 835 posted on it.
    medicare = (
        await fetch(
            dsn,
            "SELECT payer_id, status_code, paid, patient_responsibility,"
            " payer_claim_control_number FROM payments.claim_payment"
            " WHERE claim_id = $1 AND state = 'posted'",
            primary,
        )
    )[0]
    assert (medicare["payer_id"], medicare["status_code"]) == ("MCR01", "1")
    assert medicare["patient_responsibility"] > 0  # Part B leaves coinsurance to the patient

    # 3. The secondary claim, built from Medicare's 835 and billed to the plan.
    await wait_for(
        dsn,
        "SELECT status FROM billing.claim WHERE claim_id = $1",
        secondary,
        predicate=lambda s: s in ANSWERED,
        timeout=120,
    )
    text, sbr, segs = await _claim_837(pipeline, secondary)
    assert (sbr[1], sbr[9]) == ("S", "BL")
    (prior,) = loops_2320(segs)
    assert prior[0][1] == "P" and prior[0][9] == "MB"
    assert ["AMT", "D", amount(medicare["paid"])] in prior
    assert ["REF", "F8", medicare["payer_claim_control_number"]] in prior
    ok, errors = pyx12_validate(text)
    assert ok, errors[:5]

    # 4. The plan's 835: it pays what Medicare left to the patient but the Part B deductible.
    plan = (
        await fetch(
            dsn,
            "SELECT payer_id, status_code, paid, patient_responsibility FROM payments.claim_payment"
            " WHERE claim_id = $1 AND state = 'posted'",
            secondary,
        )
    )[0]
    assert (plan["payer_id"], plan["status_code"]) == ("BCBS01", "2")
    # (nothing when Medicare's deductible took all it allowed)
    assert ZERO <= plan["paid"] <= medicare["patient_responsibility"]
    remaining = medicare["patient_responsibility"] - plan["paid"]
    assert remaining == plan["patient_responsibility"] > 0  # the Part B deductible

    # 5. The patient's statement for what remains, once the last payer has paid.
    await wait_for(
        dsn,
        "SELECT count(*) FROM followup.encounter_adjudication WHERE encounter_id = $1",
        encounter,
        predicate=lambda n: n == 2,
        timeout=60,
    )
    async with _client(pipeline, "followup", "supervisor") as followup:
        run = await followup.post("/statements/run")
        assert run.status_code == 200, run.text
    mine = await fetch(
        dsn,
        "SELECT statement_id, amount_due, claim_ids FROM followup.statement"
        " WHERE $1 = ANY(claim_ids)",
        primary,
    )
    assert len(mine) == 1, run.json()
    assert mine[0]["statement_id"] in {st["statement_id"] for st in run.json()["issued"]}
    assert set(mine[0]["claim_ids"]) <= {primary, secondary}
    amount_due = mine[0]["amount_due"]
    assert amount_due == remaining

    # 6. The patient pays it at the front desk (card, through the outside processor).
    async with _client(pipeline, "payments") as payments:
        paid = await payments.post(
            "/patient-payments",
            json={
                "account": encounter,
                "amount": str(remaining),
                "method": "card",
                "processor_reference": "ch_e2e_medigap_1",
                "allocations": [{"claim_id": primary, "amount": str(remaining)}],
            },
            headers={"Idempotency-Key": f"e2e-{encounter}"},
        )
        assert paid.status_code == 201, paid.text

    # 7. Nobody owes anything: not the payers, not the patient; the visit was charged once
    #    (the plan's claim is opened by a transfer of what Medicare left, not a second charge);
    #    the ledger sums to zero, and so do each claim's lines.
    balances = await _balances(pipeline, [primary, secondary])
    assert sum(D(b["patient_balance"]) for b in balances.values()) == ZERO, balances
    assert sum(D(b["payer_balance"]) for b in balances.values()) == ZERO, balances
    assert sum(D(b["billed"]) for b in balances.values()) == D(balances[primary]["total_charge"])
    assert await fetchval(dsn, "SELECT coalesce(sum(amount), 0) FROM payments.journal_line") == 0
    per_claim = await fetch(
        dsn,
        "SELECT claim_id, sum(amount) AS s FROM payments.journal_line WHERE claim_id = ANY($1)"
        " GROUP BY 1",
        [primary, secondary],
    )
    assert {r["claim_id"]: r["s"] for r in per_claim} == {primary: 0, secondary: 0}

    # 8. Each step on the timelines: billing's history of both claims, payments' remittances,
    #    followup's status history, as the workbench's claim page puts them together. The
    #    acknowledgements reach billing through its own mailbox poll, which may still be
    #    behind the 835 that payments has posted: wait for both claims' acceptance.
    await wait_for(
        dsn,
        "SELECT count(DISTINCT claim_id) FROM billing.claim_history"
        " WHERE claim_id = ANY($1) AND status = 'accepted'",
        [primary, secondary],
        predicate=lambda n: n == 2,
        timeout=60,
    )
    async with (
        _client(pipeline, "billing") as billing,
        _client(pipeline, "followup") as followup,
        _client(pipeline, "payments") as payments,
    ):
        steps = {}
        for claim in (primary, secondary):
            b = (await billing.get(f"/claims/{claim}")).json()
            f = (await followup.get(f"/claims/{claim}")).json()
            r = (await payments.get(f"/claims/{claim}/remittances")).json()
            steps[claim] = [e.title for e in timeline.build(b, f, {})] + [
                f"835 {x['status_code']}" for x in r["remittances"]
            ]
    assert {"837 sent", "accepted (999/277CA)", "secondary_billed", "835 1"} <= set(
        steps[primary]
    ), steps[primary]
    assert {"837 sent", "accepted (999/277CA)", "835 2"} <= set(steps[secondary]), steps[secondary]
    assert any(t.startswith(("paid", "partially paid")) for t in steps[secondary])


async def test_medicare_crossover_to_medicaid_bills_nothing_and_ends_at_zero(pipeline):
    dsn = pipeline.dsn
    sample = medicare_encounters(
        21502,
        [MEDICARE, MEDICAID],
        "medimedi",
        want=lambda f: _clean(f) and not f["crossover_lost"],
    )[0]
    encounter = sample.encounter.encounter_id
    await send_and_code(pipeline, [sample])
    primary = primary_claim_id(sample)
    await wait_for(
        dsn,
        "SELECT status FROM billing.crossover_wait WHERE primary_claim_id = $1",
        primary,
        predicate=lambda s: s == "received",
        timeout=120,
    )
    posted = await fetch(
        dsn,
        "SELECT payer_id, status_code, paid, patient_responsibility FROM payments.claim_payment"
        " WHERE claim_id = $1 AND state = 'posted' ORDER BY created_at",
        primary,
    )
    assert [(p["payer_id"], p["status_code"]) for p in posted] == [("MCR01", "19"), ("MCD01", "2")]
    assert posted[1]["patient_responsibility"] == 0  # Medicaid bills the patient nothing
    assert (
        await fetchval(
            dsn,
            "SELECT count(*) FROM billing.claim WHERE encounter_id = $1",
            encounter,
        )
        == 1
    )
    (balance,) = (await _balances(pipeline, [primary])).values()
    assert D(balance["patient_balance"]) == ZERO and D(balance["payer_balance"]) == ZERO, balance
    assert (
        await fetchval(
            dsn, "SELECT sum(amount) FROM payments.journal_line WHERE claim_id = $1", primary
        )
        == 0
    )
    async with _client(pipeline, "billing") as billing:
        history = [h["status"] for h in (await billing.get(f"/claims/{primary}")).json()["history"]]
    assert "crossover" in history and "crossover_received" in history
