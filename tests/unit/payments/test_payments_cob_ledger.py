"""Ledger entries of one encounter billed to three payers in turn (issue 21 item 3).

The gross charge is recognised once (the primary claim); each next payer's claim is opened by a
transfer of what the prior payers left to the patient (not a second charge); each payer's 835
settles that payer's receivable; the last payer's patient responsibility is the patient's, who
pays it. Every entry balances, every claim's lines sum to zero, and at the end every
receivable of the encounter is zero.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal as D

import pytest

from services.payments.domain.ledger import (
    CASH_CLEARING,
    CONTRACTUAL_ADJUSTMENT,
    GROSS_CHARGES,
    OTHER_ADJUSTMENT,
    PATIENT_RECEIVABLE,
    PAYER_RECEIVABLE,
    JournalLine,
    assert_balanced,
    claim_balance,
    entry_for_claim_charge,
    entry_for_claim_payment,
    entry_for_cob_transfer,
)
from services.payments.domain.patient_payments import (
    PatientPayment,
    credit_application,
    payment_entry,
)
from services.payments.domain.remittance import Adjustment, ClaimPayment

PRIMARY, SECONDARY, TERTIARY = "CPRIMARY", "CSECOND", "CTHIRD"
CHARGE = D("200.00")


def remit(pcn: str, status: str, paid: str, adjustments, charge: D = CHARGE) -> ClaimPayment:
    cp = ClaimPayment(pcn, status, charge, D(paid), None, "12")
    cp.adjustments = [Adjustment(g, r, D(a), None, "claim") for g, r, a in adjustments]
    return cp


def payer_left_to_patient(ledger: list[list[JournalLine]], claims: list[str]) -> D:
    """What the prior claims hold as patient responsibility (the amount the next payer is billed)."""
    return sum(
        (
            ln.amount
            for e in ledger
            for ln in e
            if ln.account == PATIENT_RECEIVABLE and ln.claim_id in claims
        ),
        D("0.00"),
    )


def balances(ledger: list[list[JournalLine]]) -> dict[str, D]:
    out: dict[str, D] = defaultdict(lambda: D("0.00"))
    for e in ledger:
        for ln in e:
            out[ln.account] += ln.amount
    return out


def three_payers() -> list[list[JournalLine]]:
    """Medicare primary, a supplemental secondary, Medicaid tertiary, the patient's 5.00 last."""
    ledger: list[list[JournalLine]] = []
    ledger.append(entry_for_claim_charge(PRIMARY, "MCR01", CHARGE))
    # Medicare: allowed 150, pays 110, 40 coinsurance and deductible left to the patient.
    ledger.append(
        entry_for_claim_payment(
            remit(
                PRIMARY,
                "1",
                "110.00",
                [("CO", "45", "50.00"), ("PR", "1", "25.00"), ("PR", "2", "15.00")],
            ),
            PRIMARY,
            "MCR01",
        )
    )
    # The supplemental plan is billed for the 40.00 the patient was left.
    ledger.append(
        entry_for_cob_transfer(SECONDARY, "BCBS01", payer_left_to_patient(ledger, [PRIMARY]))
    )
    # It pays the coinsurance; the deductible stays the patient's. OA 23 = Medicare's part.
    ledger.append(
        entry_for_claim_payment(
            remit(SECONDARY, "2", "15.00", [("OA", "23", "160.00"), ("PR", "1", "25.00")]),
            SECONDARY,
            "BCBS01",
            next_payer=True,
        )
    )
    # Medicaid, the payer of last resort, is billed for the 25.00 still left.
    ledger.append(
        entry_for_cob_transfer(
            TERTIARY, "MCD01", payer_left_to_patient(ledger, [PRIMARY, SECONDARY])
        )
    )
    ledger.append(
        entry_for_claim_payment(
            remit(
                TERTIARY,
                "3",
                "12.00",
                [("OA", "23", "175.00"), ("CO", "45", "8.00"), ("PR", "3", "5.00")],
            ),
            TERTIARY,
            "MCD01",
            next_payer=True,
        )
    )
    return ledger


def test_each_next_payer_is_billed_by_a_transfer_not_a_second_charge():
    ledger = three_payers()
    transfers = [
        e
        for e in ledger
        if {ln.account for ln in e} == {PAYER_RECEIVABLE, PATIENT_RECEIVABLE} and len(e) == 2
    ]
    assert [
        (e[0].claim_id, e[0].account, e[0].amount, e[1].account, e[1].amount) for e in transfers
    ] == [
        (SECONDARY, PAYER_RECEIVABLE, D("40.00"), PATIENT_RECEIVABLE, D("-40.00")),
        (TERTIARY, PAYER_RECEIVABLE, D("25.00"), PATIENT_RECEIVABLE, D("-25.00")),
    ]
    assert balances(ledger)[GROSS_CHARGES] == -CHARGE  # recognised once


def test_the_next_payers_835_settles_its_own_receivable():
    ledger = three_payers()
    secondary = dict((ln.account, ln.amount) for ln in ledger[3])
    assert secondary == {
        CASH_CLEARING: D("15.00"),
        PATIENT_RECEIVABLE: D("25.00"),  # its PR: back with the patient
        PAYER_RECEIVABLE: D("-40.00"),  # OA 23 not posted: Medicare's part was never here
    }
    tertiary = dict((ln.account, ln.amount) for ln in ledger[5])
    assert tertiary == {
        CASH_CLEARING: D("12.00"),
        CONTRACTUAL_ADJUSTMENT: D("8.00"),
        PATIENT_RECEIVABLE: D("5.00"),
        PAYER_RECEIVABLE: D("-25.00"),
    }
    for claim in (PRIMARY, SECONDARY, TERTIARY):
        assert claim_balance([ln for e in ledger for ln in e], claim)[0] == 0, claim


def test_every_entry_balances_and_every_receivable_ends_at_zero():
    ledger = three_payers()
    for e in ledger:
        assert_balanced(e)
    # The patient owes what the last payer left (5.00) and pays it at the desk.
    owed = sum(
        claim_balance([ln for e in ledger for ln in e], c)[1]
        for c in (PRIMARY, SECONDARY, TERTIARY)
    )
    assert owed == D("5.00")
    pay = payment_entry(
        PatientPayment(
            account="ENC-1", amount=D("5.00"), method="cash", received_date=date(2026, 12, 7)
        )
    )
    applied = credit_application(TERTIARY, D("5.00"))
    for e in (pay, applied):
        assert sum(ln.amount for ln in e) == 0
    ledger += [pay, applied]
    totals = balances(ledger)
    assert totals[PAYER_RECEIVABLE] == totals[PATIENT_RECEIVABLE] == 0
    assert totals["patient_credit"] == 0
    assert sum(totals.values()) == 0
    assert totals[CASH_CLEARING] == D("142.00")  # 110 + 15 + 12 from payers, 5 from the patient
    assert totals[CONTRACTUAL_ADJUSTMENT] == D("58.00") and totals[OTHER_ADJUSTMENT] == 0
    # Every claim's own lines sum to zero (no entry spans two claims).
    per_claim: dict[str | None, D] = defaultdict(lambda: D("0.00"))
    for e in ledger:
        for ln in e:
            per_claim[ln.claim_id] += ln.amount
    assert {c: s for c, s in per_claim.items() if c is not None} == {
        PRIMARY: 0,
        SECONDARY: 0,
        TERTIARY: 0,
    }


def test_a_secondary_answering_on_the_primary_claim_still_settles_the_patient_share():
    # A crossover: no claim was billed to the secondary, so no transfer; its payment on the
    # primary claim settles the patient receivable the primary left (the rule unchanged).
    ledger = [
        entry_for_claim_charge(PRIMARY, "MCR01", CHARGE),
        entry_for_claim_payment(
            remit(PRIMARY, "19", "150.00", [("CO", "45", "10.00"), ("PR", "2", "40.00")]),
            PRIMARY,
            "MCR01",
        ),
        entry_for_claim_payment(
            remit(PRIMARY, "2", "40.00", [("OA", "23", "160.00")]), PRIMARY, "MCD01"
        ),
    ]
    assert claim_balance([ln for e in ledger for ln in e], PRIMARY) == (D("0.00"), D("0.00"))


@pytest.mark.parametrize("next_payer", [True, False])
def test_a_reversal_of_a_next_payers_payment_restores_its_receivable(next_payer):
    cp = remit(SECONDARY, "2", "15.00", [("OA", "23", "160.00"), ("PR", "1", "25.00")])
    posted = entry_for_claim_payment(cp, SECONDARY, "BCBS01", next_payer=next_payer)
    back = remit(
        SECONDARY, "22", "-15.00", [("OA", "23", "-160.00"), ("PR", "1", "-25.00")], -CHARGE
    )
    undone = entry_for_claim_payment(
        back, SECONDARY, "BCBS01", original=posted, next_payer=next_payer
    )
    assert claim_balance(posted + undone, SECONDARY) == (D("0.00"), D("0.00"))
