"""A/R aging's PATIENT row net of the patient's payments (issue 21 item 4), payments and followup
running as processes on the real stack: the payer's 835 leaves 90.00 to the patient; a 30.00
patient payment taken by payments lowers the aging's patient bucket by exactly 30.00 (as the
statement's amount due); paying beyond what is owed shows as credit."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from tests.integration.patient_support import patient_owes, payments_call
from tests.integration.pipeline_support import wait_for
from tests.integration.test_followup_typical_journey import running_followup

pytestmark = pytest.mark.integration
D = Decimal


@pytest.fixture(scope="module")
async def followup(settings, stack_endpoints):
    async with running_followup(settings, stack_endpoints, with_payments=True) as f:
        yield f


async def _aging(followup, site: str) -> dict:
    async with followup.client(user="ar-lead", role="supervisor", sites=(site,)) as c:
        r = await c.get("/ar/aging", params={"as_of": date.today().isoformat()})
    assert r.status_code == 200, r.text
    return r.json()


async def _pay(followup, site: str, encounter: str, amount: str, received: str) -> None:
    body = {"account": encounter, "amount": amount, "method": "cash"}
    r = await payments_call(followup, "POST", "/patient-payments", site, json=body)
    assert r.status_code == 201, r.text
    await wait_for(
        followup.dsn,
        "SELECT payments_received FROM followup.patient_account WHERE encounter_id = $1",
        encounter,
        predicate=lambda v: v == D(received),
    )


async def test_a_patient_payment_lowers_the_patient_bucket_by_exactly_its_amount(followup):
    owed = await patient_owes(followup, "aging-pay", days_ago=10)  # 90.00 the patient's
    site, encounter = owed.site, owed.encounter_id
    before = await _aging(followup, site)
    assert before["rows"] == {
        "PATIENT": {
            "0-30": "90.00",
            "31-60": "0.00",
            "61-90": "0.00",
            "91-120": "0.00",
            "120+": "0.00",
            "credit": "0.00",
            "total": "90.00",
        }
    }
    await _pay(followup, site, encounter, "30.00", "30.00")
    after = await _aging(followup, site)
    assert D(before["rows"]["PATIENT"]["0-30"]) - D(after["rows"]["PATIENT"]["0-30"]) == D("30.00")
    assert after["rows"]["PATIENT"]["total"] == after["grand_total"] == "60.00"
    # 70.00 more than the 60.00 owed: the patient has 10.00 of unapplied credit.
    await _pay(followup, site, encounter, "70.00", "100.00")
    credit = await _aging(followup, site)
    assert (credit["rows"]["PATIENT"]["0-30"], credit["rows"]["PATIENT"]["credit"]) == (
        "0.00",
        "-10.00",
    )
    assert credit["grand_total"] == "-10.00"
