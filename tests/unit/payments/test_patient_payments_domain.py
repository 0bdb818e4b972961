"""Patient payment requests and their journal entries (issue 21 item 4)."""

from datetime import date
from decimal import Decimal as D

import pytest

from services.payments.domain.patient_payments import (
    PATIENT_CREDIT,
    Allocation,
    PatientPayment,
    PaymentError,
    credit_application,
    fingerprint,
    looks_like_pan,
    payment_entry,
    validate,
)


def _pay(**kw) -> PatientPayment:
    base = dict(account="ENC-1", amount=D("50.00"), method="cash", received_date=date(2026, 1, 5))
    return PatientPayment(**(base | kw))


def test_card_numbers_are_recognised_by_luhn_and_refused_naming_the_field():
    assert looks_like_pan("4111 1111 1111 1111") and looks_like_pan("x5500-0000-0000-0004")
    assert not looks_like_pan("4111111111111112") and not looks_like_pan("ch_3PqXyZ12")
    with pytest.raises(PaymentError) as e:
        validate(_pay(method="card", processor_reference="4111111111111111"))
    assert e.value.field == "processor_reference" and "4111" not in str(e.value)


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"amount": D("0")}, "amount"),
        ({"amount": D("-1.00")}, "amount"),
        ({"amount": D("1.001")}, "amount"),
        ({"method": "bitcoin"}, "method"),
        ({"method": "check"}, "check_number"),
        ({"method": "card"}, "processor_reference"),
        ({"allocations": (Allocation("C1", D("60.00")),)}, "allocations"),
        ({"allocations": (Allocation("C1", D("0")),)}, "allocations[0].amount"),
    ],
)
def test_bad_requests_name_their_field(kw, field):
    with pytest.raises(PaymentError) as e:
        validate(_pay(**kw))
    assert e.value.field == field


def test_entries_balance_and_the_rest_is_credit():
    p = _pay(allocations=(Allocation("C1", D("30.00")), Allocation("C2", D("5.00"))))
    validate(p)
    lines = payment_entry(p)
    assert sum(ln.amount for ln in lines) == 0
    assert [(ln.account, ln.amount) for ln in lines if ln.account == PATIENT_CREDIT] == [
        (PATIENT_CREDIT, D("-15.00"))
    ]
    assert sum(ln.amount for ln in credit_application("C1", D("15.00"))) == 0


def test_fingerprint_ignores_key_order_only():
    assert fingerprint({"a": 1, "b": "2"}) == fingerprint({"b": "2", "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})
