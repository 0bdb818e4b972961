"""The payer simulator adjudicates a secondary claim billing wrote (2320 AMT*D, 2430 SVD/CAS)
from what the primary left to the patient."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from rcm.simulation.payer.domain import AdjudicationRules, FeeSchedule, adjudicate, read_837
from services.billing.domain.cob import build_cob_claim
from tests.unit.billing.billing_support import coverage, make_coded
from tests.unit.billing.test_billing_cob import MEDICAID, claim, primary_paid, write

D = Decimal
RULES = AdjudicationRules(seed=7, denial_rate=D("1"))  # every primary-style claim would deny


def test_secondary_reads_prior_payer_and_pays_the_patient_share():
    primary = claim(
        coverages=[
            coverage(),
            coverage(
                payer_id="BCBS01",
                payer_name="Blue Lakes",
                sequence="secondary",
                filing_indicator="BL",
            ),
        ]
    )
    prior = primary_paid(primary)
    sub = read_837(write(build_cob_claim(primary, [prior]))).claims[0]
    assert sub.payer_sequence == "S"
    assert sub.prior_paid == prior.paid
    assert [ln.prior_patient for ln in sub.lines] == [
        sum((a.amount for a in pl.adjustments if a.group == "PR"), D("0.00")) for pl in prior.lines
    ]
    result = adjudicate(sub, RULES, FeeSchedule.from_csv(), date(2024, 4, 10))
    assert result.status == "2" and result.denial is None
    for ln in result.lines:  # balances, and pays no more than the patient owed
        assert ln.paid + sum((a.amount for a in ln.adjustments), D("0")) == ln.charge
        assert ln.paid <= ln.line.prior_patient
    assert result.paid > 0
    assert result.patient_responsibility == prior.patient_responsibility - result.paid


def test_medicaid_secondary_writes_off_what_it_does_not_pay():
    primary = claim(coded=make_coded(coverages=[coverage(), MEDICAID]))
    sub = read_837(write(build_cob_claim(primary, [primary_paid(primary)]))).claims[0]
    result = adjudicate(sub, RULES, FeeSchedule.from_csv(), date(2024, 4, 10))
    assert result.patient_responsibility == 0


def test_a_primary_claim_is_adjudicated_as_before():
    primary = claim(coverages=[coverage()])
    sub = read_837(write(primary)).claims[0]
    assert not sub.is_cob and sub.prior_paid is None
    assert all(ln.prior_patient is None for ln in sub.lines)
