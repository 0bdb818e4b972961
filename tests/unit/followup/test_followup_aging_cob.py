"""A/R aging of an encounter billed to a primary and a secondary payer (issue 21 item 3).

The secondary claim is opened by moving what the primary left to the patient onto its payer
receivable, both sides on the secondary claim (payments' ledger; followup's ``cob_balances``):
its own patient balance is negative while the primary's still shows the patient's first share.
Aged claim by claim that was a false patient credit of what the secondary paid; netted per
patient account it is what the patient owes now, less what the patient paid (as statements).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D

from services.followup.aging_view import SELF_PAY, aging_items
from services.followup.domain.aging import CREDIT, age_balances
from services.followup.domain.statements import amount_due


def row(claim, payer, payer_balance, patient_balance, account="A1", site="s1", day=1):
    return {
        "claim_id": claim,
        "site_id": site,
        "payer_id": payer,
        "account_key": account,
        "service_date": date(2026, 11, day),
        "submitted_at": datetime(2026, 11, day + 2, tzinfo=UTC),
        "payer_balance": D(payer_balance),
        "patient_balance": D(patient_balance),
    }


AS_OF = date(2026, 12, 7)


def test_after_both_payers_the_patient_owes_the_deductible_and_no_credit_shows():
    # Medicare left 40.00 to the patient (primary claim); the supplemental plan was billed for it
    # (its claim: payer 40.00, patient -40.00), paid 15.00 and left 25.00 (patient +25.00).
    rows = [row("CP", "MCR01", "0.00", "40.00"), row("CS", "BCBS01", "0.00", "-15.00")]
    items = aging_items(rows)
    assert [(i.payer_id, i.claim_id, i.balance) for i in items] == [(SELF_PAY, "CP", D("25.00"))]
    table = age_balances(items, AS_OF)
    assert table.rows[SELF_PAY][CREDIT] == 0
    assert table.rows[SELF_PAY]["31-60"] == D("25.00")
    assert table.grand_total == D("25.00")


def test_before_the_secondary_pays_its_payer_owes_and_the_patient_nothing():
    rows = [row("CP", "MCR01", "0.00", "40.00"), row("CS", "BCBS01", "40.00", "-40.00")]
    table = age_balances(aging_items(rows), AS_OF)
    assert set(table.rows) == {"BCBS01"}
    assert table.rows["BCBS01"]["31-60"] == D("40.00") and table.totals[CREDIT] == 0


def test_a_real_credit_and_other_accounts_stay_apart():
    rows = [
        row("C1", "P1", "0.00", "-10.00", account="A1"),  # a payer paid after the patient did
        row("C2", "P2", "0.00", "30.00", account="A2"),
        row("C3", "P2", "0.00", "30.00", account="A1", site="s2"),  # same key, another site
    ]
    items = {(i.site_id, i.patient_key): i.balance for i in aging_items(rows)}
    assert items == {("s1", "A1"): D("-10.00"), ("s1", "A2"): D("30.00"), ("s2", "A1"): D("30.00")}
    table = age_balances(aging_items(rows), AS_OF)
    assert table.rows[SELF_PAY][CREDIT] == D("-10.00")
    assert table.grand_total == D("50.00")


def test_a_netted_account_ages_from_its_oldest_claim_the_patient_owes_on():
    rows = [
        row("CNEW", "P1", "0.00", "50.00", day=20),
        row("COLD", "P1", "0.00", "20.00", day=1),
        row("CSEC", "P2", "0.00", "-5.00", day=1),
    ]
    [item] = aging_items(rows)
    assert (item.claim_id, item.balance, item.submitted_date) == (
        "COLD",
        D("65.00"),
        date(2026, 11, 3),
    )


def paid(encounter_claim, amount, account="A1", site="s1", day=1):
    """A patient account's payments (less refunds) as followup keeps them, with its oldest claim."""
    return row(encounter_claim, "-", "0.00", "0.00", account, site, day) | {
        "payments_received": D(amount)
    }


def test_the_patient_row_is_net_of_the_patients_payments():
    # The payer left 90.00 to the patient, who paid 30.00 at the desk: 60.00 is still owed.
    rows = [row("C1", "P1", "0.00", "90.00")]
    [item] = aging_items(rows, [paid("C1", "30.00")])
    assert (item.payer_id, item.claim_id, item.balance) == (SELF_PAY, "C1", D("60.00"))
    table = age_balances([item], AS_OF)
    assert table.rows[SELF_PAY]["31-60"] == D("60.00") and table.totals[CREDIT] == 0


def test_paying_more_than_owed_is_a_credit_and_an_account_with_only_credit_shows():
    rows = [row("C1", "P1", "0.00", "90.00"), row("C2", "P2", "50.00", "0.00", account="A2")]
    payments = [
        paid("C1", "100.00"),
        paid("C2", "20.00", account="A2"),  # paid at the desk, before any payer left it anything
        paid("C3", "15.00", account="A3"),  # a settled visit the patient overpaid
    ]
    items = {(i.payer_id, i.patient_key): i.balance for i in aging_items(rows, payments)}
    assert items == {
        ("P2", "A2"): D("50.00"),
        (SELF_PAY, "A1"): D("-10.00"),
        (SELF_PAY, "A2"): D("-20.00"),
        (SELF_PAY, "A3"): D("-15.00"),
    }
    table = age_balances(aging_items(rows, payments), AS_OF)
    assert table.rows[SELF_PAY][CREDIT] == D("-45.00")
    assert table.row_total(SELF_PAY) == D("-45.00")


def test_the_patient_row_uses_the_statements_rule():
    # The statement's amount due for the same account (statements.amount_due) is the aging's.
    rows = [row("CP", "MCR01", "0.00", "40.00"), row("CS", "BCBS01", "0.00", "-15.00")]
    [item] = aging_items(rows, [paid("CP", "7.50")])
    assert item.balance == amount_due(D("25.00"), D("7.50")) == D("17.50")
