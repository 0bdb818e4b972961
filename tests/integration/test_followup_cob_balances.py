"""Followup's balances of an encounter billed to a primary and then a secondary payer (issue 21
item 3), on the real broker and database: the secondary claim is opened by the transfer of
what the primary left to the patient (as payments' ledger posts it), not by its charge, also
when the primary's remittance reaches followup after the secondary claim (two topics)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest

from services.payments.domain.ledger import claim_balance, entry_for_claim_payment
from services.payments.domain.remittance import Adjustment, ClaimPayment
from tests.integration.pipeline_support import fetch, wait_for
from tests.integration.test_followup_typical_journey import (
    new_site,
    remitted,
    running_followup,
    submitted,
)

pytestmark = pytest.mark.integration

DOS = date.today() - timedelta(days=20)


@pytest.fixture(scope="module")
async def followup(settings, stack_endpoints):
    async with running_followup(settings, stack_endpoints) as f:
        yield f


def _ids() -> tuple[str, str, str]:
    n = uuid.uuid4().hex[:12].upper()
    return f"E-COB-{n}", f"CP{n}", f"CS{n}"


def _primary_paid(site, encounter, claim):
    # Medicare: 200.00 billed, pays 110.00, CO-45 50.00, leaves 40.00 to the patient.
    return remitted(
        site,
        claim,
        charge="200.00",
        paid="110.00",
        pr="40.00",
        adjustments=[("CO", "45", "50.00"), ("PR", "1", "25.00"), ("PR", "2", "15.00")],
        payer_id="MCR01",
        encounter_id=encounter,
    )


def _secondary_paid(site, encounter, claim):
    """The plan pays 15.00 of the 40.00 and leaves the 25.00 deductible; its balance changes as
    payments posts them on a next payer's claim."""
    event = remitted(
        site,
        claim,
        status="2",
        charge="200.00",
        paid="15.00",
        pr="25.00",
        adjustments=[("OA", "23", "160.00"), ("PR", "1", "25.00")],
        payer_id="BCBS01",
        encounter_id=encounter,
    )
    cp = ClaimPayment(claim, "2", D("200.00"), D("15.00"), D("25.00"), "CI")
    cp.adjustments = [
        Adjustment("OA", "23", D("160.00"), None, "claim"),
        Adjustment("PR", "1", D("25.00"), None, "claim"),
    ]
    payer, patient = claim_balance(
        entry_for_claim_payment(cp, claim, "BCBS01", next_payer=True), claim
    )
    assert (payer, patient) == (D("-40.00"), D("25.00"))
    payload = event.payload.model_copy(
        update={"payer_balance_change": payer, "patient_balance_change": patient}
    )
    return event.model_copy(update={"payload": payload})


async def _balances(f, claims, want):
    got = await wait_for(
        f.dsn,
        "SELECT array_agg(claim_id || '=' || payer_balance || '/' || patient_balance"
        " ORDER BY claim_id) FROM followup.claim WHERE claim_id = ANY($1)",
        claims,
        predicate=lambda v: v == want,
        timeout=30,
    )
    assert got == want


async def _claim(f, claim):
    await wait_for(
        f.dsn,
        "SELECT count(*) FROM followup.claim WHERE claim_id = $1 AND submitted_at IS NOT NULL",
        claim,
    )


async def test_the_secondary_claim_opens_with_what_the_primary_left_to_the_patient(followup):
    site = new_site("cob")
    encounter, primary, secondary = _ids()
    await followup.publish(
        submitted(site, primary, charge="200.00", dos=DOS, payer_id="MCR01", encounter_id=encounter)
    )
    await _claim(followup, primary)
    await followup.publish(_primary_paid(site, encounter, primary))
    await _balances(followup, [primary], [f"{primary}=0.00/40.00"])
    await followup.publish(
        submitted(
            site, secondary, charge="200.00", dos=DOS, payer_id="BCBS01", encounter_id=encounter
        )
    )
    # billed to the plan for 40.00 (not its 200.00 charge), which the patient no longer owes
    await _balances(
        followup, [primary, secondary], [f"{primary}=0.00/40.00", f"{secondary}=40.00/-40.00"]
    )
    await followup.publish(_secondary_paid(site, encounter, secondary))
    await _balances(
        followup, [primary, secondary], [f"{primary}=0.00/40.00", f"{secondary}=0.00/-15.00"]
    )


async def test_a_primary_remittance_arriving_after_the_secondary_claim_is_moved_to_it(followup):
    site = new_site("cob")
    encounter, primary, secondary = _ids()
    await followup.publish(
        submitted(site, primary, charge="200.00", dos=DOS, payer_id="MCR01", encounter_id=encounter)
    )
    await _claim(followup, primary)
    late = _primary_paid(site, encounter, primary)  # payments posted it before billing billed on
    await followup.publish(
        submitted(
            site,
            secondary,
            charge="200.00",
            dos=DOS,
            payer_id="BCBS01",
            encounter_id=encounter,
            submitted_at=datetime.now(UTC),
        )
    )
    await _balances(
        followup, [primary, secondary], [f"{primary}=200.00/0.00", f"{secondary}=0.00/0.00"]
    )
    await followup.publish(late)
    await _balances(
        followup, [primary, secondary], [f"{primary}=0.00/40.00", f"{secondary}=40.00/-40.00"]
    )
    await followup.publish(late)  # redelivered: nothing moves twice
    await followup.publish(_secondary_paid(site, encounter, secondary))
    await _balances(
        followup, [primary, secondary], [f"{primary}=0.00/40.00", f"{secondary}=0.00/-15.00"]
    )
    rows = await fetch(
        followup.dsn,
        "SELECT sum(payer_balance) AS payer, sum(patient_balance) AS patient FROM followup.claim"
        " WHERE encounter_id = $1",
        encounter,
    )
    assert (rows[0]["payer"], rows[0]["patient"]) == (D("0.00"), D("25.00"))
