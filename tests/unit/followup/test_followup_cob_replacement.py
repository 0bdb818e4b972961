"""A next payer's claim replaced (7) or voided (8): followup's balance changes on the original
and on the replacement are payments' ledger entries for it, claim by claim
(``entries_for_next_payer_replacement``), not a charge and a write-off."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from services.followup.balances import Delta
from services.followup.cob_balances import replacement_deltas
from services.payments.domain.ledger import claim_balance, entries_for_next_payer_replacement


def _payments(open_payer: D, frequency: str) -> tuple[Delta, Delta]:
    back, forward = entries_for_next_payer_replacement(
        "CS1", "CS1R" if frequency == "7" else None, "BCBS01", max(open_payer, D("0.00"))
    )
    lines = [*back, *forward]
    return Delta(*claim_balance(lines, "CS1")), Delta(*claim_balance(lines, "CS1R"))


@pytest.mark.parametrize(
    ("open_payer", "frequency", "want"),
    [
        # the plan still owed 40.00: back to the patient, on to the replacement's payer
        (D("40.00"), "7", (Delta(D("-40.00"), D("40.00")), Delta(D("40.00"), D("-40.00")))),
        # a void: the patient owes it again, nothing opens
        (D("40.00"), "8", (Delta(D("-40.00"), D("40.00")), Delta(D("0.00"), D("0.00")))),
        # the plan had paid it all (or more): nothing moves
        (D("0.00"), "7", (Delta(D("0.00"), D("0.00")), Delta(D("0.00"), D("0.00")))),
        (D("-5.00"), "7", (Delta(D("0.00"), D("0.00")), Delta(D("0.00"), D("0.00")))),
    ],
)
def test_a_next_payers_replacement_moves_what_payments_moves(open_payer, frequency, want):
    got = replacement_deltas(open_payer, frequency)
    assert got == want
    assert got == _payments(open_payer, frequency)
    # a transfer: no money appears or leaves across the two claims
    assert sum(got[0]) + sum(got[1]) == 0
