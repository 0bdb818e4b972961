"""Registering a replacement (frequency 7) or void (8) of a next payer's claim (issue 21 item 3).

A secondary's claim was opened by a COB transfer, not a charge; a replacement of it follows the
same rule: no new charge, nothing taken off gross charges; what that payer still owed on the
original goes back to the patient there and on to the replacement's payer receivable. A
primary's replacement keeps its rule (the original's open balance off, the replacement charged).
The ledger entries are what ``handlers.registration_entries`` posts.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal as D

from services.payments.domain.ledger import (
    GROSS_CHARGES,
    PATIENT_RECEIVABLE,
    PAYER_RECEIVABLE,
    assert_balanced,
    claim_balance,
    entry_for_claim_charge,
    entry_for_claim_payment,
    entry_for_cob_transfer,
)
from services.payments.domain.remittance import Adjustment, ClaimPayment
from services.payments.handlers import registration_entries
from shared.events import ClaimSubmittedPayload

PRIMARY, SECONDARY, CORRECTED = "CPRIMARY", "CSECOND", "CSECOND7"
CHARGE = D("200.00")


def submitted(claim_id: str, payer: str, frequency: str = "1", original: str | None = None):
    return ClaimSubmittedPayload(
        claim_id=claim_id,
        payer_id=payer,
        payer_name=payer,
        frequency_code=frequency,
        original_claim_id=original,
        total_charge=CHARGE,
        service_date=date(2026, 11, 2),
        submitted_at=datetime(2026, 12, 1, tzinfo=UTC),
        interchange_control_number="000000001",
        file_name="837.txt",
        lines=[],
    )


def primary_paid() -> list[list]:
    """Medicare charged 200, paid 110, left 40 to the patient; 40 moved to the secondary."""
    cp = ClaimPayment(PRIMARY, "1", CHARGE, D("110.00"), None, "MB")
    cp.adjustments = [
        Adjustment("CO", "45", D("50.00"), None, "claim"),
        Adjustment("PR", "2", D("40.00"), None, "claim"),
    ]
    return [
        entry_for_claim_charge(PRIMARY, "MCR01", CHARGE),
        entry_for_claim_payment(cp, PRIMARY, "MCR01"),
        entry_for_cob_transfer(SECONDARY, "BCBS01", D("40.00")),
    ]


def lines_of(ledger) -> list:
    return [ln for e in ledger for ln in e]


def test_a_secondarys_replacement_is_a_transfer_not_a_second_charge():
    ledger = primary_paid()
    entries = registration_entries(
        [submitted(CORRECTED, "BCBS01", "7", SECONDARY)],
        open_payer={SECONDARY: D("40.00")},
        next_payer={},
        next_payer_originals={SECONDARY},
    )
    assert [(e.kind, e.source, e.claim_id) for e in entries] == [
        ("transfer", f"replaced:{SECONDARY}:{CORRECTED}", SECONDARY),
        ("transfer", f"cob-transfer:{CORRECTED}", CORRECTED),
    ]
    assert [(ln.account, ln.amount, ln.claim_id) for e in entries for ln in e.lines] == [
        (PAYER_RECEIVABLE, D("-40.00"), SECONDARY),
        (PATIENT_RECEIVABLE, D("40.00"), SECONDARY),
        (PAYER_RECEIVABLE, D("40.00"), CORRECTED),
        (PATIENT_RECEIVABLE, D("-40.00"), CORRECTED),
    ]
    for e in entries:
        assert_balanced(e.lines)
    ledger += [e.lines for e in entries]
    every = lines_of(ledger)
    # Charged once, on the primary claim; nothing taken off gross charges.
    assert sum(ln.amount for ln in every if ln.account == GROSS_CHARGES) == -CHARGE
    # The secondary's receivable is now on the corrected claim; the patient owes nothing yet.
    assert claim_balance(every, SECONDARY)[0] == 0
    assert claim_balance(every, CORRECTED) == (D("40.00"), D("-40.00"))
    assert sum(claim_balance(every, c)[1] for c in (PRIMARY, SECONDARY, CORRECTED)) == 0
    per_claim: dict[str, D] = defaultdict(lambda: D("0.00"))
    for ln in every:
        per_claim[ln.claim_id] += ln.amount
    assert set(per_claim.values()) == {D("0.00")}  # every claim's own lines sum to zero


def test_the_corrected_secondarys_835_then_settles_its_payer_receivable():
    ledger = primary_paid()
    ledger += [
        e.lines
        for e in registration_entries(
            [submitted(CORRECTED, "BCBS01", "7", SECONDARY)],
            {SECONDARY: D("40.00")},
            {},
            {SECONDARY},
        )
    ]
    cp = ClaimPayment(CORRECTED, "2", CHARGE, D("30.00"), None, "12")
    cp.adjustments = [
        Adjustment("OA", "23", D("160.00"), None, "claim"),
        Adjustment("PR", "1", D("10.00"), None, "claim"),
    ]
    ledger.append(entry_for_claim_payment(cp, CORRECTED, "BCBS01", next_payer=True))
    every = lines_of(ledger)
    owed = [claim_balance(every, c) for c in (PRIMARY, SECONDARY, CORRECTED)]
    assert sum(b[0] for b in owed) == 0  # no payer owes anything
    assert sum(b[1] for b in owed) == D("10.00")  # the patient owes the secondary's PR only


def test_a_void_of_a_secondarys_claim_gives_its_balance_back_to_the_patient():
    entries = registration_entries(
        [submitted("CSECOND8", "BCBS01", "8", SECONDARY)],
        {SECONDARY: D("40.00")},
        {},
        {SECONDARY},
    )
    ledger = primary_paid() + [e.lines for e in entries if e.lines]
    every = lines_of(ledger)
    assert claim_balance(every, SECONDARY) == (D("0.00"), D("0.00"))
    assert sum(claim_balance(every, c)[1] for c in (PRIMARY, SECONDARY)) == D("40.00")
    assert sum(ln.amount for ln in every if ln.account == GROSS_CHARGES) == -CHARGE
    assert [e for e in entries if e.lines and e.claim_id == "CSECOND8"] == []


def test_a_primarys_replacement_keeps_its_rule():
    entries = registration_entries(
        [submitted("CPRIMARY7", "MCR01", "7", PRIMARY)],
        {PRIMARY: CHARGE},
        {},
        set(),
    )
    assert [(e.kind, e.claim_id) for e in entries] == [
        ("replaced", PRIMARY),
        ("charge", "CPRIMARY7"),
    ]
    assert [(ln.account, ln.amount) for ln in entries[0].lines] == [
        (GROSS_CHARGES, CHARGE),
        (PAYER_RECEIVABLE, -CHARGE),
    ]
