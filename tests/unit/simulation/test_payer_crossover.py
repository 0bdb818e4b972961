"""The payer simulator's Medicare-to-Medicaid crossover: Medicare's 835 says it forwarded the
claim (CLP02 19, MA18, NM1*TT naming Medicaid), Medicaid's own 835 pays the same claim as
secondary from Medicare's patient share, and a share of forwarded claims never get that 835."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

from rcm.simulation.payer.domain import AdjudicationRules, FeeSchedule, adjudicate, read_837
from rcm.simulation.payer.domain.adjudicate import crossover
from rcm.simulation.payer.domain.model import OtherPayer
from rcm.simulation.payer.domain.write_835 import PayeeInfo, PayerInfo, build_835
from services.payments.domain.era import parse_835
from shared.events import Address
from shared.x12 import split_segments
from tests.unit.billing.billing_support import coverage
from tests.unit.billing.test_billing_cob import MEDICAID, claim, write
from tests.x12_support import pyx12_validate

D = Decimal
ON = date(2024, 4, 10)
FEES = FeeSchedule.from_csv()
MEDICARE = coverage(
    payer_id="MCR01",
    payer_name="Medicare Part B",
    member_id="1EG4TE5MK73",
    group_number=None,
    filing_indicator="MB",
)
BLUE_SUPPLEMENT = coverage(
    payer_id="BCBS01",
    payer_name="Blue Lakes",
    member_id="XLB778899",
    sequence="secondary",
    filing_indicator="BL",
)
NEVER_LOST = AdjudicationRules(seed=7, denial_rate=D("0"), crossover_lost_rate=D("0"))


def _submitted(coverages):
    return read_837(write(claim(coverages=coverages))).claims[0]


def test_the_837_names_the_other_payers():
    sub = _submitted([MEDICARE, MEDICAID])
    assert [(o.sequence, o.payer_id, o.filing_indicator) for o in sub.other_payers] == [
        ("S", "MCD01", "MC")
    ]


def test_medicare_forwards_to_medicaid_and_medicaid_pays_the_patient_share():
    sub = _submitted([MEDICARE, MEDICAID])
    primary = adjudicate(sub, NEVER_LOST, FEES, ON)
    assert primary.status == "19" and "MA18" in primary.remarks
    assert primary.crossover_to is not None and primary.crossover_to.payer_id == "MCD01"
    second = crossover(primary, NEVER_LOST, FEES, ON)
    assert second is not None
    assert second.claim_id == primary.claim_id  # the same claim, forwarded
    assert second.claim.payer_id == "MCD01" and second.status == "2"
    # Medicaid pays at most the patient's share (lesser of it and its own allowed amount less
    # Medicare's payment) and, payer of last resort, writes off the rest (CO-45).
    assert 0 <= second.paid <= primary.patient_responsibility
    assert second.patient_responsibility == 0
    assert (
        sum((a.amount for a in second.all_adjustments() if a.group == "CO"), D("0"))
        == primary.patient_responsibility - second.paid
    )
    for ln in second.lines:
        assert ln.paid + sum((a.amount for a in ln.adjustments), D("0")) == ln.charge
    # Both payments in one 835 file: NM1*TT on Medicare's claim, valid X12, payments reads it.
    payee = PayeeInfo(sub.billing_provider_name, sub.billing_provider_npi or "", "123456789")
    addr = Address(line1="1 Payer Way", city="Columbus", state="OH", postal_code="43215")
    texts = [
        build_835(
            [a],
            payer=PayerInfo(a.claim.payer_id, a.claim.payer_name, addr),
            payee=payee,
            trace_number=f"T{n}",
            payment_date=ON,
            interchange_control_number=n,
            group_control_number=n,
            created_at=datetime(2024, 4, 10, 9, tzinfo=UTC),
        )
        for n, a in enumerate((primary, second), start=1)
    ]
    segs = split_segments(texts[0])[0]
    tt = [s for s in segs if s[:2] == ["NM1", "TT"]]
    assert len(tt) == 1 and tt[0][8:10] == ["PI", "MCD01"]
    for text in texts:
        ok, errors = pyx12_validate(text)
        assert ok, errors[:5]
    era = parse_835(texts[0])
    cp = era.transactions[0].claims[0]
    assert cp.status_code == "19" and cp.crossover_carrier is not None


def test_no_crossover_for_a_supplemental_plan_or_a_commercial_primary():
    sub = _submitted([MEDICARE, BLUE_SUPPLEMENT])
    decided = adjudicate(sub, NEVER_LOST, FEES, ON)
    assert decided.status == "1" and decided.crossover_to is None
    assert crossover(decided, NEVER_LOST, FEES, ON) is None
    commercial = adjudicate(_submitted([coverage(), MEDICAID]), NEVER_LOST, FEES, ON)
    assert commercial.status == "1" and commercial.crossover_to is None


def test_some_forwarded_claims_never_get_the_second_835():
    subs = [replace(_submitted([MEDICARE, MEDICAID]), claim_id=f"C{n:015X}") for n in range(200)]
    rules = AdjudicationRules(seed=7, denial_rate=D("0"), crossover_lost_rate=D("0.10"))
    forwarded = [adjudicate(s, rules, FEES, ON) for s in subs]
    assert all(a.status == "19" for a in forwarded)
    answered = [crossover(a, rules, FEES, ON) for a in forwarded]
    lost = sum(1 for a in answered if a is None)
    assert 5 <= lost <= 40  # about 10 %, fixed by the seed
    assert answered == [crossover(a, rules, FEES, ON) for a in forwarded]  # deterministic


def test_a_medigap_plan_pays_the_coinsurance_and_leaves_the_part_b_deductible():
    sub = _submitted([MEDICARE, BLUE_SUPPLEMENT])
    rules = AdjudicationRules(seed=7, denial_rate=D("0"), deductible_rate=D("1"))
    primary = adjudicate(sub, rules, FEES, ON)

    def share(a, reason=None):
        return sum(
            (x.amount for x in a.adjustments if x.group == "PR" and reason in (None, x.reason)),
            D("0"),
        )

    deductible = sum((share(a, "1") for a in primary.lines), D("0"))
    assert deductible > 0  # Medicare applied its Part B deductible
    medigap = replace(
        sub,
        payer_id="BCBS01",
        payer_name="BLUE LAKES",
        payer_sequence="S",
        filing_indicator="BL",
        other_payers=(OtherPayer("P", "MCR01", "MEDICARE PART B", "MB"),),
        lines=tuple(
            replace(ln, prior_paid=a.paid, prior_patient=share(a), prior_deductible=share(a, "1"))
            for ln, a in zip(sub.lines, primary.lines, strict=True)
        ),
    )
    second = adjudicate(medigap, rules, FEES, ON)
    assert second.status == "2"
    assert second.paid == primary.patient_responsibility - deductible  # the coinsurance
    assert sum((share(a, "1") for a in second.lines), D("0")) == deductible  # the patient's
    for ln in second.lines:
        assert ln.paid + sum((a.amount for a in ln.adjustments), D("0")) == ln.charge
    # Second to a commercial plan the same payer is no supplement: it pays the deductible too.
    plain = replace(medigap, other_payers=(OtherPayer("P", "AETNA1", "ASTER", "CI"),))
    assert adjudicate(plain, rules, FEES, ON).paid > second.paid
