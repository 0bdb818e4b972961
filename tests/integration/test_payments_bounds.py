"""Payments outside plausible bounds are held for review, not posted (issue 18 item 6).

The probe found a -500.00 payment on an original claim and a 9,999,999.99 payment against
a 100.00 claim posted. Both arrive here in one 835 in the inbound mailbox, beside a normal
payment: the normal one posts, the other two are held with their reasons and the ledger
keeps only the claims' charges. Payments runs in-process (``payments_support``); followup
runs beside it and turns each held payment (``remittance.held``) into a biller work item.
"""

from __future__ import annotations

import pytest

from tests.integration import payments_support as harness
from tests.integration.payments_support import Clp, D, era_835, new_id, submitted
from tests.integration.test_followup_typical_journey import items_of, running_followup

payments = harness.payments
ledger_invariant = harness.ledger_invariant
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ledger_invariant")]


@pytest.fixture(scope="module")
async def followup(settings, stack_endpoints):
    async with running_followup(settings, stack_endpoints) as f:
        yield f


async def _held_item(followup, claim_id: str, remittance_id: str):
    (item,) = await items_of(followup, claim_id)
    assert item["source_key"] == f"remit-held:{remittance_id}"
    assert (item["category"], item["action"], item["status"]) == (
        "payment review",
        "review held payment",
        "open",
    )
    assert item["site_id"] == "SITE-PAY" and item["encounter_id"] == f"ENC-{claim_id}"
    return item


async def _entries(payments, claim_id: str) -> list[str]:
    rows = await payments.pool.fetch(
        "SELECT kind FROM payments.journal_entry WHERE claim_id = $1 ORDER BY entry_id", claim_id
    )
    return [r["kind"] for r in rows]


async def test_negative_and_huge_payments_are_held_and_the_normal_one_posts(payments, followup):
    payer, trace = new_id("PY"), new_id("TRN")
    good, negative, huge = new_id("CL"), new_id("CL"), new_id("CL")
    await payments.register(
        submitted(good, D("150.00"), payer_id=payer),
        submitted(negative, D("100.00"), payer_id=payer),
        submitted(huge, D("100.00"), payer_id=payer),
    )
    # Each balances (charge - paid = adjustments): only their bounds are wrong.
    claims = [
        Clp(
            good,
            D("150.00"),
            D("80.00"),
            pr=D("20.00"),
            cas=[("CO", "45", D("50.00")), ("PR", "1", D("20.00"))],
        ),
        Clp(negative, D("100.00"), D("-500.00"), cas=[("CO", "45", D("600.00"))]),
        Clp(huge, D("100.00"), D("9999999.99"), cas=[("CO", "45", D("-9999899.99"))]),
    ]
    assert await payments.drop(era_835(claims, payer_id=payer, trace=trace)) == "processed"

    assert [r["state"] for r in await payments.payments_of(good)] == ["posted"]
    assert await _entries(payments, good) == ["charge", "payment"]
    (neg,) = await payments.payments_of(negative)
    (big,) = await payments.payments_of(huge)
    assert neg["state"] == big["state"] == "held"
    assert f"claim {negative}: paid -500 is negative on an original claim" in neg["reason"]
    assert f"claim {huge}: paid 9999999.99 exceeds billed charge 100.00" in big["reason"]
    # No ledger entries but the charges: the balances are as billed.
    for claim in (negative, huge):
        assert await _entries(payments, claim) == ["charge"]
        assert await payments.balance(claim) == (D("100.00"), D("0.00"))
    held = {
        r["patient_control_number"]: r["reason"]
        for r in await payments.get("/remittances/held")
        if r["patient_control_number"] in (negative, huge)
    }
    assert held == {negative: neg["reason"], huge: big["reason"]}
    await payments.wait_events([f"{payer}:{trace}:1"])
    assert f"{payer}:{trace}:2" not in payments.events
    assert f"{payer}:{trace}:3" not in payments.events
    # Each held payment is a biller's work item in followup, its text the hold's reason.
    for claim, row, k in ((negative, neg, 2), (huge, big, 3)):
        item = await _held_item(followup, claim, f"{payer}:{trace}:{k}")
        assert row["reason"] in item["label"] and item["amount"] == D("100.00")


async def test_a_reversal_may_be_negative_and_a_waiting_payment_is_checked_when_its_claim_arrives(
    payments, followup
):
    payer, trace, later = new_id("PY"), new_id("TRN"), new_id("CL")
    # The claim is not known yet: the payment waits unmatched, then is held on matching.
    huge = Clp(later, D("100.00"), D("5000.00"), cas=[("CO", "45", D("-4900.00"))])
    assert await payments.drop(era_835([huge], payer_id=payer, trace=trace)) == "processed"
    assert [r["state"] for r in await payments.payments_of(later)] == ["unmatched"]
    await payments.register(submitted(later, D("100.00"), payer_id=payer))
    (row,) = await payments.payments_of(later)
    assert row["state"] == "held" and "paid 5000 exceeds billed charge 100.00" in row["reason"]
    assert await _entries(payments, later) == ["charge"]
    item = await _held_item(followup, later, f"{payer}:{trace}:1")
    assert "paid 5000 exceeds billed charge 100.00" in item["label"]
