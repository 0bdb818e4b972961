"""The payer simulator as secondary after a primary's final denial (AMT*D 0): a plan decides
the denied lines under its own benefits; a Medigap plan, after Medicare, pays nothing on them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from rcm.simulation.payer.domain import AdjudicationRules, FeeSchedule, adjudicate, read_837
from services.billing.domain.cob import (
    PriorAdjudication,
    PriorAdjustment,
    PriorLine,
    build_cob_claim,
)
from tests.unit.billing.billing_support import coverage
from tests.unit.billing.test_billing_cob import claim, write

D = Decimal
RULES = AdjudicationRules(seed=7, denial_rate=D("0"))
SECONDARY = coverage(
    payer_id="BCBS01", payer_name="Blue Lakes", sequence="secondary", filing_indicator="BL"
)


def _denied_96(c) -> PriorAdjudication:
    lines = tuple(
        PriorLine(
            ln.code, ln.modifiers, ln.charge, D("0"), (PriorAdjustment("CO", "96", ln.charge),)
        )
        for ln in c.lines
    )
    return PriorAdjudication(
        date(2024, 3, 20), c.total_charge, D("0"), "PCN96", lines=lines, status="4"
    )


def _second(primary):
    sub = read_837(write(build_cob_claim(primary, [_denied_96(primary)]))).claims[0]
    assert sub.payer_sequence == "S" and sub.is_cob and sub.prior_paid == 0
    return adjudicate(sub, RULES, FeeSchedule.from_csv(), date(2024, 4, 10))


def test_a_plan_decides_what_the_primary_denied_as_non_covered_under_its_own_benefits():
    result = _second(claim(coverages=[coverage(), SECONDARY]))
    assert result.status == "2"
    for ln in result.lines:
        assert ln.paid > 0 and ln.paid == ln.allowed <= ln.charge
        assert ln.paid + sum((a.amount for a in ln.adjustments), D("0")) == ln.charge
        assert {a.group for a in ln.adjustments} <= {"CO"}
    assert result.patient_responsibility == 0


def test_a_medigap_plan_pays_nothing_medicare_denied():
    medicare = coverage(payer_id="MCR01", payer_name="Medicare Part B", filing_indicator="MB")
    result = _second(claim(coverages=[medicare, SECONDARY]))
    assert result.paid == 0
    for ln in result.lines:
        assert [(a.group, a.reason, a.amount) for a in ln.adjustments] == [("OA", "23", ln.charge)]
