"""Followup's balances move as payments' ledger posts; statement lines and aging items from rows.

No broker or database. A remittance's balance changes are decided once, by payments, and
carried on remittance.received (followup adds them to its projection as they come): they
are checked here against payments' own (pure) ledger functions.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.followup.aging_view import SELF_PAY, aging_items
from services.followup.balances import writeoff_split
from services.followup.parties import account_key, guarantor_lines
from services.followup.statements_run import statement_line
from services.payments.domain.ledger import (
    PATIENT_RECEIVABLE,
    PAYER_RECEIVABLE,
    entry_for_claim_payment,
)
from services.payments.domain.remittance import Adjustment as LedgerAdjustment
from services.payments.domain.remittance import ClaimPayment
from services.payments.posting import Posting, received_event
from shared.events import Address, Person

money = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("5000"), places=2)
adjustment = st.tuples(
    st.sampled_from(["CO", "PR", "OA", "PI", "CR"]),
    st.sampled_from(["45", "50", "2", "23", "96"]),
    money,
)


def _claim_payment(status: str, paid: Decimal, adjs) -> ClaimPayment:
    return ClaimPayment(
        "C1",
        status,
        Decimal("0"),
        paid,
        None,
        "CI",
        adjustments=[LedgerAdjustment(g, r, a, None, "claim") for g, r, a in adjs],
    )


def _carried(status: str, paid: Decimal, adjs) -> tuple[Decimal, Decimal]:
    """The balance changes remittance.received carries for this claim payment."""
    posting = Posting(
        "P1:T1:1", "C1", _claim_payment(status, paid, adjs), "P1", 1, None, None, None, None
    )
    return received_event(posting, "s1", "E1").payload.decided_balance_changes()


def _ledger_delta(status: str, paid: Decimal, adjs) -> tuple[Decimal, Decimal]:
    lines = entry_for_claim_payment(_claim_payment(status, paid, adjs), "C1", "P1")
    payer = sum((ln.amount for ln in lines if ln.account == PAYER_RECEIVABLE), Decimal(0))
    patient = sum((ln.amount for ln in lines if ln.account == PATIENT_RECEIVABLE), Decimal(0))
    return payer, patient


@given(
    status=st.sampled_from(["1", "2", "3", "4", "19", "20", "21", "23", "25"]),
    paid=money,
    adjs=st.lists(adjustment, max_size=5),
)
def test_carried_changes_move_balances_as_payments_ledger_posts(status, paid, adjs):
    assert _carried(status, paid, adjs) == _ledger_delta(status, paid, adjs)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (
            "1",
            (Decimal("-150.00"), Decimal("40.00")),
        ),  # primary: whole charge settled, PR to the patient
        (
            "4",
            (Decimal("-140.00"), Decimal("40.00")),
        ),  # denied: paid and PR move, CO-45 stays open for followup
        (
            "2",
            (Decimal("0.00"), Decimal("-110.00")),
        ),  # secondary: paid + its CO reduce what the patient owes
    ],
)
def test_carried_changes_hand_computed(status, expected):
    adjs = [("CO", "45", Decimal("10.00")), ("PR", "2", Decimal("40.00"))]
    assert _carried(status, Decimal("100.00"), adjs) == expected


def test_writeoff_takes_payer_balance_first():
    assert tuple(writeoff_split(Decimal("50.00"), Decimal("30.00"))) == (
        Decimal("30.00"),
        Decimal("20.00"),
    )
    assert tuple(writeoff_split(Decimal("10.00"), Decimal("-5.00"))) == (
        Decimal("0.00"),
        Decimal("10.00"),
    )


def test_account_key_is_opaque_and_stable():
    k = account_key("site-1", "MRN-12345", "E1")
    assert k == account_key("site-1", "MRN-12345", "E2") and "12345" not in k and len(k) == 13
    assert k != account_key("site-2", "MRN-12345", "E1")


def test_statement_line_balances_and_guarantor_address():
    row = {
        "claim_id": "C9",
        "service_date": date(2025, 3, 1),
        "total_charge": Decimal("150.00"),
        "paid": Decimal("100.00"),
        "patient_balance": Decimal("40.00"),
        "lines": '[{"code": "99213"}, {"code": "29540"}]',
    }
    line = statement_line(row)
    assert (line.code, line.adjustments, line.patient_due) == (
        "99213",
        Decimal("10.00"),
        Decimal("40.00"),
    )
    assert "1 more service" in line.description
    g = Person(
        first_name="Ann",
        last_name="Lee",
        birth_date=date(1990, 1, 1),
        address=Address(
            line1="1 Elm", line2="Apt 2", city="Dayton", state="OH", postal_code="45402"
        ),
    )
    assert guarantor_lines(g.model_dump_json()) == (
        "Ann Lee",
        ("1 Elm", "Apt 2", "Dayton, OH 45402"),
    )
    assert guarantor_lines(g.model_copy(update={"address": None}).model_dump_json()) is None


def test_aging_items_split_payer_and_patient_balances():
    row = {
        "claim_id": "C1",
        "site_id": "s",
        "payer_id": "P1",
        "account_key": "A1",
        "service_date": date(2025, 1, 1),
        "submitted_at": datetime(2025, 1, 3, tzinfo=UTC),
        "payer_balance": Decimal("0.00"),
        "patient_balance": Decimal("25.00"),
    }
    [item] = aging_items([row])
    assert (item.payer_id, item.balance, item.submitted_date) == (
        SELF_PAY,
        Decimal("25.00"),
        date(2025, 1, 3),
    )
