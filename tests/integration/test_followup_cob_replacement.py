"""Followup's balances when a secondary claim is replaced (7) and the replacement voided (8),
on the real broker and database: they stay payments' ledger balances claim by claim (the
open payer balance moves back to the patient and on to the replacement by a transfer, as
``services/payments/handlers.registration_entries`` posts it), where followup used to charge
the replacement its full charge."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from services.payments.domain.ledger import claim_balance, entry_for_cob_transfer
from services.payments.handlers import registration_entries
from tests.integration.pipeline_support import fetch
from tests.integration.test_followup_cob_balances import (
    DOS,
    _balances,
    _claim,
    _ids,
    _primary_paid,
)
from tests.integration.test_followup_typical_journey import new_site, running_followup, submitted

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def followup(settings, stack_endpoints):
    async with running_followup(settings, stack_endpoints) as f:
        yield f


def _payments_balances(entries, claims) -> list[str]:
    """Per-claim balances of payments' journal lines, as _balances reads followup's."""
    lines = [ln for e in entries for ln in e]
    return [
        "{}={}/{}".format(c, *(f"{v:.2f}" for v in claim_balance(lines, c))) for c in sorted(claims)
    ]


async def test_a_replaced_then_voided_secondary_keeps_payments_balances(followup):
    site = new_site("cobr")
    encounter, primary, secondary = _ids()
    replacement, void = f"{secondary}R", f"{secondary}V"
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
    await _balances(followup, [secondary], [f"{secondary}=40.00/-40.00"])

    corrected = submitted(
        site,
        replacement,
        charge="210.00",
        dos=DOS,
        payer_id="BCBS01",
        encounter_id=encounter,
        frequency="7",
        original=secondary,
    )
    await followup.publish(corrected)
    # payments: the transfer that opened the secondary, then its replacement's two transfers
    ledger = [entry_for_cob_transfer(secondary, "BCBS01", D("40.00"))]
    ledger += [
        e.lines
        for e in registration_entries([corrected.payload], {secondary: D("40.00")}, {}, {secondary})
    ]
    want = _payments_balances(ledger, [secondary, replacement])
    assert want == [f"{secondary}=0.00/0.00", f"{replacement}=40.00/-40.00"]  # not 210.00
    await _balances(followup, [secondary, replacement], want)
    await followup.publish(corrected)  # redelivered: nothing moves twice

    voided = submitted(
        site,
        void,
        charge="210.00",
        dos=DOS,
        payer_id="BCBS01",
        encounter_id=encounter,
        frequency="8",
        original=replacement,
    )
    await followup.publish(voided)
    ledger += [
        e.lines
        for e in registration_entries(
            [voided.payload], {replacement: D("40.00")}, {}, {replacement}
        )
    ]
    want = _payments_balances(ledger, [secondary, replacement, void])
    assert want == [f"{secondary}=0.00/0.00", f"{replacement}=0.00/0.00", f"{void}=0.00/0.00"]
    await _balances(followup, [secondary, replacement, void], want)
    rows = await fetch(
        followup.dsn,
        "SELECT sum(payer_balance) AS payer, sum(patient_balance) AS patient FROM followup.claim"
        " WHERE encounter_id = $1",
        encounter,
    )
    # the void gives the plan's 40.00 back to the patient: what the primary left
    assert (rows[0]["payer"], rows[0]["patient"]) == (D("0.00"), D("40.00"))
