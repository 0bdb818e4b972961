"""Refund states, payment plans and patient responsibility pending a next payer (issue 21 item 4)."""

from datetime import date, timedelta
from decimal import Decimal as D

import pytest

from services.payments.domain.ledger import CASH_CLEARING
from services.payments.domain.patient_ar import (
    ACTIVE,
    COMPLETED,
    DEFAULTED,
    ClaimState,
    Plan,
    TransitionRefused,
    pending_next_payer,
    plan_status,
    refund_entry,
    refund_transition,
    validate_plan,
    validate_refund,
)
from services.payments.domain.patient_payments import PATIENT_CREDIT, PaymentError


def test_a_refund_is_approved_by_someone_else_then_issued_and_retries_change_nothing():
    assert refund_transition("requested", "approved", "ann", "sue") is True
    assert refund_transition("approved", "approved", "ann", "sue") is False
    assert refund_transition("approved", "issued", "ann", "ann") is True
    assert refund_transition("issued", "issued", "ann", "bob") is False
    with pytest.raises(TransitionRefused) as own:
        refund_transition("requested", "approved", "ann", "ann")
    assert own.value.status == 403
    with pytest.raises(TransitionRefused) as skip:
        refund_transition("requested", "issued", "ann", "sue")
    assert skip.value.status == 409
    with pytest.raises(TransitionRefused) as back:
        refund_transition("issued", "approved", "ann", "sue")
    assert back.value.status == 409


def test_a_refund_pays_credit_back_out_in_one_balanced_entry_without_a_claim():
    lines = refund_entry(D("12.50"))
    assert sum(ln.amount for ln in lines) == 0
    assert {(ln.account, ln.amount, ln.claim_id) for ln in lines} == {
        (PATIENT_CREDIT, D("12.50"), None),
        (CASH_CLEARING, D("-12.50"), None),
    }


@pytest.mark.parametrize(
    ("amount", "method", "ref", "field"),
    [
        (D("10.01"), "check", None, "amount"),  # more than the credit
        (D("0"), "check", None, "amount"),
        (D("5.00"), "wire", None, "method"),
        (D("5.00"), "card", "4111-1111-1111-1111", "reference"),
    ],
)
def test_refund_requests_name_the_field_at_fault(amount, method, ref, field):
    with pytest.raises(PaymentError) as e:
        validate_refund(amount, method, ref, D("10.00"))
    assert e.value.field == field and "4111" not in str(e.value)


def test_plan_schedule_last_instalment_is_the_rest():
    plan = Plan(D("100.00"), D("30.00"), "monthly", date(2026, 1, 10))
    assert plan.instalments == 4
    assert plan.due_dates()[-1] == date(2026, 1, 10) + timedelta(days=90)
    assert plan.due_by(date(2026, 1, 9)) == 0
    assert plan.due_by(date(2026, 2, 9)) == D("60.00")
    assert plan.due_by(date(2027, 1, 1)) == D("100.00")
    assert plan.next_due(D("30.00")) == date(2026, 2, 9)
    assert plan.next_due(D("100.00")) is None


def test_a_plan_defaults_only_past_the_grace_period_and_completes_when_paid():
    plan = Plan(D("90.00"), D("30.00"), "weekly", date(2026, 3, 1), grace_days=10)
    assert plan_status(plan, D("0"), date(2026, 3, 11)) == ACTIVE  # due, but within grace
    assert plan_status(plan, D("0"), date(2026, 3, 12)) == DEFAULTED
    assert plan_status(plan, D("30.00"), date(2026, 3, 12)) == ACTIVE
    assert plan_status(plan, D("30.00"), date(2026, 3, 19)) == DEFAULTED  # second missed
    assert plan_status(plan, D("90.00"), date(2026, 3, 12)) == COMPLETED


@pytest.mark.parametrize(
    ("kw", "balance", "field"),
    [
        ({"period": "yearly"}, D("50"), "period"),
        ({"instalment": D("0")}, D("50"), "instalment_amount"),
        ({"instalment": D("60.00")}, D("50"), "instalment_amount"),
        ({}, D("0"), "account"),
        ({"grace_days": 90}, D("50"), "grace_days"),
    ],
)
def test_plan_requests_name_the_field_at_fault(kw, balance, field):
    base = dict(total=balance, instalment=D("20.00"), period="monthly", first_due=date(2026, 1, 1))
    with pytest.raises(PaymentError) as e:
        validate_plan(Plan(**(base | kw)), balance)
    assert e.value.field == field


def _claim(cid, payer, *posted):
    return ClaimState(cid, payer, frozenset(posted))


def test_patient_responsibility_waits_while_a_next_payer_has_not_adjudicated():
    primary_only = [_claim("C1", "MCR", "MCR")]
    assert not pending_next_payer(primary_only, set())
    # billing billed the secondary: its claim registered, no 835 from it yet
    assert pending_next_payer(primary_only + [_claim("C2", "SUPP")], set())
    assert not pending_next_payer(primary_only + [_claim("C2", "SUPP", "SUPP")], set())
    # the primary forwarded the claim (crossover): wait for another payer's payment
    assert pending_next_payer(primary_only, {"MCR"})
    assert not pending_next_payer([_claim("C1", "MCR", "MCR", "SUPP")], {"MCR"})
    # nothing adjudicated yet: nothing is the patient's to wait for
    assert not pending_next_payer([_claim("C1", "MCR")], set())
