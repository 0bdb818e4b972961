"""Patient estimates (issue 21 item 2): copay, or remaining deductible plus coinsurance on the
rest, capped at the remaining out-of-pocket; self-pay and its Good Faith Estimate."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.billing.domain.chargemaster import load_sample_chargemaster
from services.billing.domain.claim import build_claim
from services.billing.domain.estimate import (
    Benefits,
    EstimateLine,
    GfePatient,
    GfeProvider,
    cents,
    estimate,
    good_faith_estimate,
)
from services.billing.estimates import benefits_of, claim_estimate
from shared.events import EligibilitySummary
from tests.unit.billing.billing_support import coverage, make_coded

D = Decimal


def lines(*prices: str, units: str = "1") -> list[EstimateLine]:
    return [EstimateLine(f"9921{i}", D(units), D(p)) for i, p in enumerate(prices)]


def test_a_copay_is_what_the_patient_owes():
    est = estimate(
        lines("125.00", "45.00"), Benefits(copay=D("25.00"), deductible_remaining=D("500"))
    )
    assert (est.basis, est.total_charge, est.patient_responsibility, est.payer_responsibility) == (
        "copay",
        D("170.00"),
        D("25.00"),
        D("145.00"),
    )
    assert est.deductible == D("0.00")  # a copay visit does not touch the deductible


def test_a_copay_never_exceeds_the_charges():
    est = estimate(lines("18.00"), Benefits(copay=D("40.00")))
    assert est.patient_responsibility == D("18.00") and est.payer_responsibility == D("0.00")


def test_remaining_deductible_then_coinsurance_on_the_rest():
    b = Benefits(coinsurance_percent=D("20"), deductible_remaining=D("300.00"))
    est = estimate(lines("600.00", "400.00"), b)
    assert est.basis == "deductible_coinsurance"
    assert (est.deductible, est.coinsurance, est.patient_responsibility) == (
        D("300.00"),
        D("140.00"),  # 20 % of 700
        D("440.00"),
    )
    assert est.payer_responsibility == D("560.00")
    assert not est.capped_by_out_of_pocket


def test_a_deductible_larger_than_the_charges_takes_them_all():
    b = Benefits(coinsurance_percent=D("20"), deductible_remaining=D("2000.00"))
    est = estimate(lines("250.00"), b)
    assert (est.deductible, est.coinsurance, est.patient_responsibility) == (
        D("250.00"),
        D("0.00"),
        D("250.00"),
    )


def test_capped_at_the_remaining_out_of_pocket():
    b = Benefits(
        coinsurance_percent=D("30"),
        deductible_remaining=D("500.00"),
        out_of_pocket_remaining=D("620.00"),
    )
    est = estimate(lines("1000.00"), b)  # 500 + 30 % of 500 = 650 > 620
    assert est.patient_responsibility == D("620.00") and est.capped_by_out_of_pocket
    assert est.payer_responsibility == D("380.00")
    copay = estimate(lines("100.00"), Benefits(copay=D("50"), out_of_pocket_remaining=D("0")))
    assert copay.patient_responsibility == D("0") and copay.capped_by_out_of_pocket


def test_coinsurance_is_rounded_once_to_the_cent_half_up():
    # 5 % of 0.10 is 0.005: half up gives 0.01 (banker's rounding would give 0.00)
    est = estimate(lines("0.10"), Benefits(coinsurance_percent=D("5")))
    assert est.coinsurance == D("0.01")
    # 15 % of 100.05 = 15.0075 -> 15.01
    assert estimate(lines("100.05"), Benefits(coinsurance_percent=D("15"))).coinsurance == D(
        "15.01"
    )
    # a line charge: unit price x units, to the cent half up
    assert EstimateLine("J1071", D("2.5"), D("0.33")).charge == D("0.83")  # 0.825
    assert cents(D("2.675")) == D("2.68")


def test_no_stated_benefit_is_no_estimate_rather_than_a_guess():
    est = estimate(lines("125.00"), Benefits(out_of_pocket_remaining=D("100")))
    assert est.basis == "unknown" and est.patient_responsibility is None
    assert est.total_charge == D("125.00")


def test_self_pay_owes_the_charges_and_unpriced_codes_are_named():
    items = [EstimateLine("99213", D(1), D("125.00")), EstimateLine("0001U", D(1), None)]
    est = estimate(items, None)
    assert (est.basis, est.patient_responsibility, est.payer_responsibility) == (
        "self_pay",
        D("125.00"),
        D("0.00"),
    )
    assert est.unpriced == ["0001U"]


@pytest.mark.parametrize(
    "benefits",
    [
        dict(copay=D("-1")),
        dict(coinsurance_percent=D("101")),
        dict(deductible_remaining=D("NaN")),
    ],
)
def test_impossible_benefits_are_refused(benefits):
    with pytest.raises(ValueError):
        Benefits(**benefits)


def test_impossible_lines_are_refused():
    with pytest.raises(ValueError, match="units"):
        estimate([EstimateLine("99213", D(0), D("1"))], None)


def test_the_good_faith_estimate_holds_what_the_rule_asks_for():
    cm = load_sample_chargemaster("north-clinic")
    items = [
        EstimateLine(code, D(units), cm.price(code), cm.lookup(code).description)
        for code, units in (("99203", "1"), ("73562", "1"), ("17003", "3"))
    ]
    est = estimate(items, None)
    doc = good_faith_estimate(
        est,
        GfeProvider("North Clinic", "1234567893", "12-3456789", "1 Main St, Springfield, IL 62701"),
        patient=GfePatient("Pat Example", date(1980, 2, 3)),
        service_date=date(2026, 12, 20),
        diagnoses=("M1711",),
        issued_on=date(2026, 12, 7),
    )
    total = cm.price("99203") + cm.price("73562") + 3 * cm.price("17003")
    assert est.total_charge == total
    for needed in (
        "GOOD FAITH ESTIMATE",
        "Pat Example",
        "1980-02-03",
        "2026-12-20",
        "North Clinic",
        "NPI: 1234567893",
        "TIN: 12-3456789",
        "1 Main St, Springfield, IL 62701",
        "99203",
        "73562",
        "17003",
        cm.lookup("73562").description,  # rcm's own label, never an AMA descriptor
        f"{total:,.2f}",
        "M1711",
        "not a bill",
        "scheduled",
        "not a contract",
        "$400 or more",
        "dispute resolution",
        "120 calendar days",
        "www.cms.gov/nosurprises",
    ):
        assert needed in doc, needed
    (line,) = [ln for ln in doc.splitlines() if ln.strip().startswith("17003")]
    assert line.split()[-3:] == ["3", f"{cm.price('17003'):,.2f}", f"{3 * cm.price('17003'):,.2f}"]


def test_a_good_faith_estimate_is_for_self_pay_only():
    est = estimate(lines("100"), Benefits(copay=D("10")))
    with pytest.raises(ValueError, match="self-pay"):
        good_faith_estimate(est, GfeProvider("X"), issued_on=date(2026, 1, 1))


# ---------------------------------------------------- from the encounter's eligibility


def _eligible(**kw) -> EligibilitySummary:
    return EligibilitySummary(status=kw.pop("status", "active"), checked_on=date(2026, 12, 1), **kw)


def test_benefits_come_from_the_primary_coverages_eligibility():
    cov = coverage(eligibility=_eligible(copay=D("30.00"), deductible_remaining=D("100.00")))
    assert benefits_of(cov) == (Benefits(copay=D("30.00"), deductible_remaining=D("100.00")), None)
    assert benefits_of(None)[0] is None  # no insurance: self-pay
    inactive = coverage(eligibility=_eligible(status="inactive"))
    assert benefits_of(inactive)[0] is None and "inactive" in benefits_of(inactive)[1]
    unchecked, note = benefits_of(coverage())
    assert unchecked == Benefits() and not unchecked.stated and "not checked" in note


def test_the_estimate_of_a_built_claim():
    cov = coverage(
        eligibility=_eligible(
            coinsurance_percent=D("20"),
            deductible_remaining=D("50.00"),
            out_of_pocket_remaining=D("1000.00"),
        )
    )
    coded = make_coded(coverages=[cov])
    claim = build_claim(
        coded, claim_id="C-EST-1", chargemaster=load_sample_chargemaster("north-clinic")
    )
    est, note = claim_estimate(claim, coded)
    assert note is None and est.total_charge == claim.total_charge
    assert [ln.code for ln in est.lines] == [ln.code for ln in claim.lines]
    rest = claim.total_charge - D("50.00")
    assert est.patient_responsibility == D("50.00") + cents(rest * D("0.20"))
    self_pay, note = claim_estimate(claim, make_coded(coverages=[]))
    assert self_pay.basis == "self_pay" and "self-pay" in note
