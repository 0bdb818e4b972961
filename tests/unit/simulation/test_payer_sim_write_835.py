"""835 output: valid under pyx12, balanced, and carrying what payments will read."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from payer_sim_support import (
    INSTITUTIONAL_SAMPLES,
    RCM_837I,
    RCM_837P,
    make_claim,
    pyx12_check,
    segments,
)

from rcm.simulation.payer.domain import (
    AdjudicationRules,
    FeeSchedule,
    PayeeInfo,
    PayerInfo,
    ProviderAdjustment,
    Remittance,
    SubmittedLine,
    adjudicate,
    build_835,
    build_era_file,
    read_837,
)
from shared.events import Address
from shared.x12 import amount

D = Decimal
FEES = FeeSchedule.from_csv()
AS_OF = date(2025, 3, 20)
PAYER = PayerInfo(
    "ACME01",
    "ACME HEALTH PLAN",
    Address(line1="1 PAYER PLAZA", city="HARTFORD", state="CT", postal_code="06101"),
)
PAYEE = PayeeInfo("SOUTH URGENT CARE", "1245319599", "37-1234567")


def render(adjudications, **kwargs) -> str:
    args = dict(
        payer=PAYER,
        payee=PAYEE,
        trace_number="EFT0001",
        payment_date=date(2025, 3, 24),
        interchange_control_number=901,
        group_control_number=901,
        created_at=datetime(2025, 3, 21, 8, 15),
    )
    args.update(kwargs)
    return build_835(adjudications, **args)


def bpr_balances(text: str) -> tuple[Decimal, Decimal]:
    segs = segments(text)
    bpr = next(s for s in segs if s[0] == "BPR")
    clp_total = sum((D(s[4]) for s in segs if s[0] == "CLP"), D(0))
    plb_total = D(0)
    for s in (s for s in segs if s[0] == "PLB"):
        plb_total += sum((D(a) for a in s[4::2]), D(0))
    return D(bpr[2]), clp_total - plb_total


def rcm_adjudications(seed: int = 5, **rules):
    sub = read_837(RCM_837P.read_text())
    return [adjudicate(c, AdjudicationRules(seed=seed, **rules), FEES, AS_OF) for c in sub.claims]


def test_rcm_claims_render_a_valid_balanced_835():
    adjs = rcm_adjudications(deductible_rate=D(0), denial_rate=D(0))
    text = render(adjs)
    ok, report = pyx12_check(text)
    assert ok, report
    segs = segments(text)
    ids = [s[0] for s in segs]
    assert ids[:3] == ["ISA", "GS", "ST"] and segs[2] == ["ST", "835", "0001"]
    bpr, expected = bpr_balances(text)
    assert bpr == expected == sum((a.paid for a in adjs), D(0)) > 0
    assert segs[3][:7] == ["BPR", "I", amount(bpr), "C", "ACH", "CCP", "01"]
    assert segs[3][-1] == "20250324"
    assert ["TRN", "1", "EFT0001", "1990000001"] in segs
    assert ["DTM", "405", "20250321"] in segs
    assert ["N1", "PE", "SOUTH URGENT CARE", "XX", "1245319599"] in segs
    assert ["REF", "TJ", "371234567"] in segs
    assert any(s[:2] == ["PER", "BL"] for s in segs)
    clps = [s for s in segs if s[0] == "CLP"]
    assert [c[1] for c in clps] == ["ENC1001-1", "ENC1002-2"]
    assert [c[9] for c in clps] == ["1", "7"]  # frequency echoed
    assert clps[1][6] == "12"  # BL filing indicator reported as PPO in CLP06
    assert clps[0][7] == adjs[0].payer_claim_control_number
    svcs = [s for s in segs if s[0] == "SVC"]
    assert svcs[0][1] == "HC:99213:25" and svcs[1][1] == "HC:73610:RT"
    assert ["REF", "6R", "ENC1001-1-1"] in segs
    b6 = [s for s in segs if s[:2] == ["AMT", "B6"]]
    assert [s[2] for s in b6] == [amount(ln.allowed) for a in adjs for ln in a.lines]
    # dependent patient: QC has no id, the subscriber NM1*IL carries the member id
    assert ["NM1", "QC", "1", "ROE", "MARY"] in segs
    assert ["NM1", "IL", "1", "ROE", "RICHARD", "", "", "", "MI", "BCX900112233"] in segs


def test_line_cas_matches_the_adjudication():
    (adj, _) = rcm_adjudications(deductible_rate=D(0), denial_rate=D(0))
    segs = segments(render([adj]))
    first_svc = next(i for i, s in enumerate(segs) if s[0] == "SVC")
    cas = []
    for s in segs[first_svc + 1 :]:
        if s[0] == "SVC":
            break
        if s[0] == "CAS":
            cas.append(s)
    expected = {}
    for a in adj.lines[0].adjustments:
        expected.setdefault(a.group, []).append((a.reason, a.amount))
    assert [s[1] for s in cas] == list(expected)
    for s in cas:
        assert [(s[i], D(s[i + 1])) for i in range(2, len(s), 3)] == expected[s[1]]


def test_denied_claim_has_status_4_remarks_and_full_charge_cas():
    rules = AdjudicationRules(seed=7, denial_rate=D(1))
    adj = next(
        a
        for i in range(200)
        if (a := adjudicate(make_claim(f"N{i}", npi="1245319599"), rules, FEES, AS_OF)).denial
        == "CO-16"
    )
    text = render([adj])
    assert pyx12_check(text)[0]
    segs = segments(text)
    clp = next(s for s in segs if s[0] == "CLP")
    assert clp[2:5] == ["4", "125", "0"]
    assert ["MOA", "", "", "MA130"] in segs
    assert ["CAS", "CO", "16", "125"] in segs
    assert any(s[:2] == ["LQ", "HE"] for s in segs)
    # nothing paid: BPR01 H, method NON
    assert next(s for s in segs if s[0] == "BPR")[:5] == ["BPR", "H", "0", "C", "NON"]


def test_cheque_payment_and_provider_adjustments():
    adjs = rcm_adjudications(deductible_rate=D(0), denial_rate=D(0))
    plb = [
        ProviderAdjustment("L6", "ENC1001-1", D("-1.37")),  # interest: adds to the payment
        ProviderAdjustment("WO", "90000000000042", D("20.00")),  # recoupment: takes back
    ]
    text = render(adjs, method="CHK", provider_adjustments=plb)
    ok, report = pyx12_check(text)
    assert ok, report
    segs = segments(text)
    bpr = next(s for s in segs if s[0] == "BPR")
    assert bpr[1] == "I" and bpr[4] == "CHK"
    paid = sum((a.paid for a in adjs), D(0))
    assert D(bpr[2]) == paid + D("1.37") - D("20.00")
    assert bpr_balances(text)[0] == bpr_balances(text)[1]
    assert [
        "PLB",
        "1245319599",
        "20251231",
        "L6:ENC1001-1",
        "-1.37",
        "WO:90000000000042",
        "20",
    ] in segs


def test_void_renders_as_zero_pay_reversal():
    adj = adjudicate(make_claim("V1", frequency_code="8"), AdjudicationRules(seed=1), FEES, AS_OF)
    text = render([adj])
    assert pyx12_check(text)[0]
    segs = segments(text)
    assert next(s for s in segs if s[0] == "CLP")[1:5] == ["V1", "22", "125", "0"]
    assert ["CAS", "OA", "A1", "125"] in segs


def test_institutional_claims_carry_statement_dates_and_revenue_codes():
    sub = read_837(RCM_837I.read_text())
    adj = adjudicate(sub.claims[0], AdjudicationRules(seed=2, denial_rate=D(0)), FEES, AS_OF)
    payee = PayeeInfo("EAST HOSPITAL", "1760483390", "371112222")
    text = render([adj], payee=payee)
    ok, report = pyx12_check(text)
    assert ok, report
    segs = segments(text)
    assert ["DTM", "232", "20250305"] in segs and ["DTM", "233", "20250305"] in segs
    svc = next(s for s in segs if s[0] == "SVC")
    assert svc[1] == "HC:99284" and svc[4] == "0450"
    assert next(s for s in segs if s[0] == "CLP")[6] == "MA"


@pytest.mark.parametrize("path", INSTITUTIONAL_SAMPLES, ids=lambda p: p.name)
def test_835_for_real_world_claims_is_valid(path):
    sub = read_837(path.read_text())
    first = sub.claims[0]
    adjs = [
        adjudicate(c, AdjudicationRules(seed=3, timely_filing_days=None), FEES, AS_OF)
        for c in sub.claims
    ]
    payee = PayeeInfo(
        first.billing_provider_name, first.billing_provider_npi, first.billing_provider_tax_id
    )
    text = render(adjs, payee=payee)
    ok, report = pyx12_check(text)
    assert ok, report
    assert bpr_balances(text)[0] == bpr_balances(text)[1]


def test_more_than_six_reasons_split_the_cas_segment():
    from rcm.simulation.payer.domain.model import AdjudicatedLine, Adjudication, Adjustment

    claim = make_claim("CAS7", lines=[("99213", "70.00")])
    adjustments = tuple(Adjustment("CO", str(r), D("10.00")) for r in (45, 97, 16, 50, 96, 18, 197))
    adj = Adjudication(
        claim,
        "4",
        "90000000000001",
        AS_OF,
        (AdjudicatedLine(claim.lines[0], D(0), D(0), adjustments),),
    )
    text = render([adj])
    cas = [s for s in segments(text) if s[0] == "CAS"]
    assert [len(s[2:]) for s in cas] == [17, 2]  # 6 triplets (last qty dropped), then 1
    assert pyx12_check(text)[0]


def test_refuses_negative_net_payment_and_foreign_claims():
    adjs = rcm_adjudications(deductible_rate=D(0), denial_rate=D(0))
    with pytest.raises(ValueError, match="negative"):
        render(adjs, provider_adjustments=[ProviderAdjustment("WO", "X", D("100000"))])
    with pytest.raises(ValueError, match="ENC1001-1"):
        render(adjs, payee=PayeeInfo("OTHER", "1003000126", "1"))
    with pytest.raises(ValueError, match="at least one"):
        render([])


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    charges=st.lists(st.decimals(min_value=0, max_value=3000, places=2), min_size=1, max_size=6),
    days=st.integers(0, 400),
)
def test_random_remittances_are_valid_and_balanced(seed, charges, days):
    codes = ["99214", "36415", "73610", "J3301", "96372", "99999"]
    base = make_claim(f"H{seed}", service_date=AS_OF - timedelta(days=days))
    lines = tuple(
        SubmittedLine(i + 1, codes[i % len(codes)], (), c, D(1), base.service_date)
        for i, c in enumerate(charges)
    )
    claim = replace(base, lines=lines, total_charge=sum(charges, D("0.00")))
    adj = adjudicate(claim, AdjudicationRules(seed=seed), FEES, AS_OF)
    text = render([adj])
    ok, report = pyx12_check(text)
    assert ok, report
    bpr, expected = bpr_balances(text)
    assert bpr == expected == adj.paid


def test_an_era_file_carries_a_valid_balanced_payment_per_payer_that_payments_reads():
    from services.payments.domain.era import parse_835

    adjs = rcm_adjudications(deductible_rate=D(0), denial_rate=D(0))
    other = PayerInfo("BCBS01", "BLUE PLAN", PAYER.address)
    text = build_era_file(
        [
            Remittance(adjs[:1], PAYER, PAYEE, "EFT0001", date(2025, 3, 24)),
            Remittance(adjs[1:], other, PAYEE, "EFT0002", date(2025, 3, 24), method="CHK"),
        ],
        sender_id="CLEARINGHOUSE",
        receiver_id="RCMSUBMITTER",
        interchange_control_number=902,
        group_control_number=902,
        created_at=datetime(2025, 3, 21, 8, 15),
    )
    ok, report = pyx12_check(text)
    assert ok, report
    segs = segments(text)
    assert [s[2] for s in segs if s[0] == "ST"] == ["0001", "0002"]
    assert next(s for s in segs if s[0] == "GE")[1] == "2"
    assert segs[0][6].strip() == "CLEARINGHOUSE" and segs[0][8].strip() == "RCMSUBMITTER"
    era = parse_835(text)
    assert [
        (t.payer.payer_id, t.payment.trace_number, t.payment.method) for t in era.transactions
    ] == [("ACME01", "EFT0001", "ACH"), ("BCBS01", "EFT0002", "CHK")]
    for tx, paid in zip(era.transactions, (adjs[:1], adjs[1:]), strict=True):
        assert (
            tx.payment.amount
            == sum((a.paid for a in paid), D(0))
            == sum((c.paid for c in tx.claims), D(0))
        )
        assert [c.patient_control_number for c in tx.claims] == [a.claim_id for a in paid]


def test_an_era_file_refuses_a_payment_to_the_wrong_payee_and_an_empty_file():
    adjs = rcm_adjudications(deductible_rate=D(0), denial_rate=D(0))
    other_payee = PayeeInfo("ELSEWHERE CLINIC", "1234567893", "99-0000000")
    args = dict(
        sender_id="CH",
        receiver_id="SUB",
        interchange_control_number=9,
        group_control_number=9,
        created_at=datetime(2025, 3, 21, 8, 15),
    )
    with pytest.raises(ValueError, match="another provider"):
        build_era_file(
            [
                Remittance(adjs, PAYER, PAYEE, "T1", date(2025, 3, 24)),
                Remittance(adjs, PAYER, other_payee, "T2", date(2025, 3, 24)),
            ],
            **args,
        )
    with pytest.raises(ValueError, match="at least one remittance"):
        build_era_file([], **args)
