"""The remittance side of coordination of benefits: a posted payer decision stored and read back
as a prior adjudication, crossover signs, the next coverage, and the next claim's id."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.billing.domain.cob import PriorAdjustment
from services.billing.domain.cob_remit import (
    adjudication_record,
    cob_claim_id,
    is_crossover,
    next_coverage,
    prior_adjudication,
)
from shared.claim_ids import claim_id_for, is_claim_id
from shared.events import Adjustment, Coverage, RemittanceLine, RemittanceReceivedPayload

D = Decimal


def payload(**kw) -> RemittanceReceivedPayload:
    base = dict(
        remittance_id="MCR01:T1:1",
        claim_id="C0123456789ABCDE",
        patient_control_number="C0123456789ABCDE",
        payer_id="MCR01",
        status_code="1",
        charge=D("200"),
        paid=D("120"),
        patient_responsibility=D("30"),
        payer_claim_control_number="92000000000001",
        # claim level first (CO-16 10.00), then the lines' own
        adjustments=[
            Adjustment(group="CO", reason="16", amount=D("10")),
            Adjustment(group="CO", reason="45", amount=D("40")),
            Adjustment(group="PR", reason="2", amount=D("30")),
        ],
        service_lines=[
            RemittanceLine(
                code="99213",
                modifiers=["25"],
                charge=D("200"),
                paid=D("130"),
                units=D("1"),
                adjustments=[
                    Adjustment(group="CO", reason="45", amount=D("40")),
                    Adjustment(group="PR", reason="2", amount=D("30")),
                ],
            )
        ],
        payment_date=date(2026, 11, 30),
        outcome="partially_paid",
    )
    base.update(kw)
    return RemittanceReceivedPayload(**base)


def test_a_payer_decision_is_stored_with_cents_and_read_back():
    record = adjudication_record(payload(), date(2026, 12, 1))
    assert record["charge"] == "200.00" and record["paid"] == "120.00"
    assert record["date"] == "2026-11-30"  # the 835's payment date, not the day it was read
    assert record["adjustments"] == [
        {"group": "CO", "reason": "16", "amount": "10.00", "quantity": None}
    ]
    assert record["lines"][0]["charge"] == "200.00"
    prior = prior_adjudication(record)
    assert prior.charge == D("200.00") and prior.paid == D("120.00")
    assert prior.payer_claim_control_number == "92000000000001"
    assert prior.adjustments == (PriorAdjustment("CO", "16", D("10.00")),)
    (line,) = prior.lines
    assert (line.code, line.modifiers, line.paid) == ("99213", ("25",), D("130.00"))
    assert prior.patient_responsibility == D("30.00")
    assert prior.adjudication_date == date(2026, 11, 30)


def test_without_a_payment_date_the_day_it_was_read_is_the_adjudication_date():
    record = adjudication_record(payload(payment_date=None), date(2026, 12, 1))
    assert record["date"] == "2026-12-01"


@pytest.mark.parametrize(
    ("status", "remarks", "crossed"),
    [
        ("19", [], True),
        ("20", [], True),
        ("1", ["MA18"], True),
        ("1", ["n89"], True),
        ("1", ["N130"], False),
        ("2", [], False),
        ("4", [], False),
    ],
)
def test_crossover_signs(status, remarks, crossed):
    assert is_crossover(payload(status_code=status, remarks=remarks)) is crossed


def test_an_835_naming_the_crossover_carrier_is_a_crossover():
    assert is_crossover(payload(crossover_carrier="BUCKEYE STATE MEDICAID"))
    assert not is_crossover(payload(crossover_carrier=None))


def test_the_next_coverage_in_cob_order():
    primary = Coverage(payer_id="MCR01", payer_name="Medicare", filing_indicator="MB")
    tertiary = Coverage(payer_id="UHC001", payer_name="Unity", sequence="tertiary")
    secondary = Coverage(payer_id="BCBS01", payer_name="Blue", sequence="secondary")
    assert next_coverage([primary, tertiary, secondary], "primary") == secondary
    assert next_coverage([primary, tertiary, secondary], "secondary") == tertiary
    assert next_coverage([primary, tertiary], "primary") == tertiary  # no secondary on file
    assert next_coverage([primary, secondary, tertiary], "tertiary") is None


def test_the_next_claims_id_is_a_claim_id_fixed_by_the_primary_and_the_sequence():
    primary = claim_id_for("ENC-1")
    secondary = cob_claim_id(primary, "secondary")
    assert is_claim_id(secondary)  # payments recognises it in an 835's CLP01
    assert secondary == cob_claim_id(primary, "secondary")
    assert len({primary, secondary, cob_claim_id(primary, "tertiary")}) == 3
    assert secondary != cob_claim_id(claim_id_for("ENC-2"), "secondary")
