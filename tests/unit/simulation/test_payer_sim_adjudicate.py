"""Adjudication: pricing, cost sharing, denials, determinism and balance invariants."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from payer_sim_support import RCM_837P, make_claim

from rcm.simulation.payer.domain import (
    AdjudicationRules,
    FeeSchedule,
    SubmittedClaim,
    SubmittedLine,
    acknowledge,
    adjudicate,
    payer_claim_control_number,
    read_837,
)
from rcm.simulation.payer.domain.fees import fee_multiplier

FEES = FeeSchedule.from_csv()
AS_OF = date(2025, 3, 20)
# No denials, no deductible: pricing and cost sharing only.
PLAIN = AdjudicationRules(seed=1, denial_rate=Decimal(0), deductible_rate=Decimal(0))
D = Decimal


def balanced(adj) -> None:
    """The invariant every remittance must satisfy, per line and per claim."""
    for line in adj.lines:
        assert line.charge - line.paid == sum((a.amount for a in line.adjustments), D(0))
        assert 0 <= line.paid <= line.allowed <= line.charge
        assert all(a.amount.as_tuple().exponent >= -2 for a in line.adjustments)
    assert adj.charge - adj.paid == sum((a.amount for a in adj.all_adjustments()), D(0))
    assert adj.patient_responsibility == sum(
        (a.amount for a in adj.all_adjustments() if a.group == "PR"), D(0)
    )


def test_bundled_fee_schedule_has_the_common_codes():
    required = (
        [str(c) for c in range(99202, 99206)]
        + [str(c) for c in range(99211, 99216)]
        + [str(c) for c in range(99281, 99286)]
        + "80048 80053 85025 83036 81002 81025 87880 87804 87635 80061 84443 87086 36415 93000"
        " 71046 73610 73630 73030 72100 20610 96372 90471 90686 90715 90732 J1885 J3301"
        " J0696 G0008 G0009 12001 12002 11102 17110 10060 29540 29515 69210 99406 94640"
        " 99051 84484 71045 96374".split()
    )
    assert [c for c in required if c not in FEES] == []
    assert FEES.fee("73610", ("26",)).allowed == D("9.31")  # professional component row
    assert FEES.fee("73610", ("RT",)).allowed == D("32.07")  # global row


def test_fee_schedule_rejects_a_bad_row(tmp_path):
    path = tmp_path / "fees.csv"
    path.write_text("code,modifier,allowed,kind\n99213,,ninety,em_office\n")
    with pytest.raises(ValueError, match="row 2"):
        FeeSchedule.from_csv(path)


def test_medicare_office_visit_pays_80_percent_of_the_fee():
    adj = adjudicate(make_claim(lines=[("99213", "125.00")]), PLAIN, FEES, AS_OF)
    (line,) = adj.lines
    assert adj.status == "1" and line.allowed == D("90.00")
    assert [(a.group, a.reason, a.amount) for a in line.adjustments] == [
        ("CO", "45", D("35.00")),
        ("PR", "2", D("18.00")),
    ]
    assert line.paid == D("72.00") and adj.patient_responsibility == D("18.00")


def test_commercial_copay_then_coinsurance_and_medicaid_rate():
    claim = make_claim(lines=[("99213", "200.00"), ("85025", "28.00")], filing_indicator="CI")
    adj = adjudicate(claim, PLAIN, FEES, AS_OF)
    mult = fee_multiplier("commercial", "PAYER1")
    assert D("1.20") <= mult <= D("1.40")
    visit, lab = adj.lines
    assert visit.allowed == (D("90.00") * mult).quantize(D("0.01"))
    assert [a.reason for a in visit.adjustments if a.group == "PR"] == ["3"]  # copay only
    assert [a.reason for a in lab.adjustments if a.group == "PR"] == ["2"]  # coinsurance
    medicaid = adjudicate(replace(claim, filing_indicator="MC"), PLAIN, FEES, AS_OF)
    assert medicaid.lines[0].allowed == D("72.00")  # 0.8 x 90
    assert (
        medicaid.lines[1].adjustments == (medicaid.lines[1].adjustments[0],)
        and medicaid.lines[1].paid == medicaid.lines[1].allowed
    )  # no coinsurance on Medicaid


def test_unknown_code_is_a_percentage_of_charge_and_vaccines_have_no_cost_share():
    adj = adjudicate(
        make_claim(lines=[("99999", "100.00"), ("90686", "42.00")]), PLAIN, FEES, AS_OF
    )
    unknown, vaccine = adj.lines
    assert unknown.allowed == D("60.00")
    assert vaccine.paid == vaccine.allowed == D("21.02")


def test_deductible_applies_before_coinsurance():
    rules = AdjudicationRules(seed=1, denial_rate=D(0), deductible_rate=D(1))
    adj = adjudicate(
        make_claim(lines=[("99214", "185.00"), ("93000", "65.00")]), rules, FEES, AS_OF
    )
    reasons = [(a.group, a.reason) for ln in adj.lines for a in ln.adjustments]
    assert ("PR", "1") in reasons
    assert sum((a.amount for a in adj.all_adjustments() if a.reason == "1"), D(0)) <= D("240.00")
    balanced(adj)


def test_same_seed_and_claim_give_the_same_result_and_other_seeds_differ():
    claim = make_claim("ENC-42", lines=[("99214", "185.00"), ("36415", "12.00")])
    rules = AdjudicationRules(seed=2024)
    first = adjudicate(claim, rules, FEES, AS_OF)
    assert adjudicate(claim, AdjudicationRules(seed=2024), FEES, AS_OF) == first
    assert first.payer_claim_control_number == payer_claim_control_number(2024, "ENC-42")
    others = {
        adjudicate(claim, AdjudicationRules(seed=s), FEES, AS_OF).payer_claim_control_number
        for s in range(20)
    }
    assert len(others) == 20
    assert len(first.payer_claim_control_number) == 14


def test_denial_rate_over_2000_claims_is_near_the_configured_rate():
    rules = AdjudicationRules(seed=7)
    claims = [
        make_claim(f"CLM{i:05d}", lines=[("99213", "125.00"), ("81002", "12.00")])
        for i in range(2000)
    ]
    results = [adjudicate(c, rules, FEES, AS_OF) for c in claims]
    rate = sum(r.denied for r in results) / len(results)
    assert 0.12 <= rate <= 0.18
    reasons = {r.denial for r in results if r.denied}
    assert {
        "CO-16",
        "CO-50",
        "CO-97",
        "CO-197",
        "CO-27",
        "CO-29",
        "CO-18",
        "CO-96",
        "PR-204",
    } <= reasons
    for r in results:
        balanced(r)
        if r.status == "4":
            assert r.paid == 0
            for line in r.lines:
                assert [a.amount for a in line.adjustments] == [line.charge]


def test_denied_lines_carry_the_full_charge_and_remarks():
    rules = AdjudicationRules(seed=7, denial_rate=D(1))
    seen = {}
    for i in range(300):
        adj = adjudicate(make_claim(f"X{i}", lines=[("99213", "125.00")]), rules, FEES, AS_OF)
        seen.setdefault(adj.denial, adj)
    co16 = seen["CO-16"]
    assert co16.status == "4" and co16.remarks == ("MA130",)
    assert co16.lines[0].adjustments[0].amount == D("125.00")
    assert co16.lines[0].remarks[0] in {"N290", "M51"}
    pr204 = seen["PR-204"]
    assert pr204.lines[0].adjustments[0].group == "PR" and pr204.patient_responsibility == D(
        "125.00"
    )
    assert seen["CO-96"].lines[0].remarks == ("N130",)


def test_bundling_denies_only_the_cheapest_line():
    rules = AdjudicationRules(seed=7, denial_rate=D(1), deductible_rate=D(0))
    for i in range(400):
        claim = make_claim(f"B{i}", lines=[("99213", "125.00"), ("36415", "12.00")])
        adj = adjudicate(claim, rules, FEES, AS_OF)
        if adj.denial == "CO-97":
            break
    else:
        pytest.fail("no CO-97 in 400 denials")
    visit, draw = adj.lines
    assert adj.status == "1" and visit.paid > 0
    assert draw.paid == 0 and [(a.group, a.reason) for a in draw.adjustments] == [("CO", "97")]
    assert draw.remarks == ("M15",)


def test_authorized_claims_are_never_denied_for_missing_authorization():
    rules = AdjudicationRules(seed=3, denial_rate=D(1))
    claims = [replace(make_claim(f"A{i}"), prior_authorization="AUTH1") for i in range(300)]
    assert all(adjudicate(c, rules, FEES, AS_OF).denial != "CO-197" for c in claims)


def test_timely_filing_limit():
    old = make_claim("OLD", service_date=AS_OF - timedelta(days=400))
    adj = adjudicate(old, PLAIN, FEES, AS_OF)
    assert (adj.status, adj.denial) == ("4", "CO-29")
    lenient = AdjudicationRules(seed=1, denial_rate=D(0), timely_filing_days=None)
    assert adjudicate(old, lenient, FEES, AS_OF).status == "1"


def test_replacement_claims_are_always_paid_and_voids_pay_nothing():
    rules = AdjudicationRules(seed=11, denial_rate=D(1), deductible_rate=D(0))
    for i in range(50):
        adj = adjudicate(make_claim(f"R{i}", frequency_code="7"), rules, FEES, AS_OF)
        assert not adj.denied and adj.paid > 0
    void = adjudicate(make_claim("V1", frequency_code="8"), rules, FEES, AS_OF)
    assert void.status == "22" and void.paid == 0
    assert [(a.group, a.reason, a.amount) for a in void.all_adjustments()] == [
        ("OA", "A1", D("125.00"))
    ]
    balanced(void)


def test_secondary_claims_report_status_2():
    adj = adjudicate(make_claim(sequence="S"), PLAIN, FEES, AS_OF)
    assert adj.status == "2"


def test_out_of_balance_claim_still_balances_with_a_claim_level_adjustment():
    claim = make_claim(lines=[("99213", "125.00")], total=D("130.00"))
    adj = adjudicate(claim, PLAIN, FEES, AS_OF)
    assert [(a.group, a.reason, a.amount) for a in adj.adjustments] == [("CO", "16", D("5.00"))]
    assert "M79" in adj.remarks
    balanced(adj)


def test_rules_reject_rates_outside_zero_to_one():
    with pytest.raises(ValueError, match="denial_rate"):
        AdjudicationRules(seed=1, denial_rate=D("1.5"))


def test_adjudicates_the_rcm_837p():
    sub = read_837(RCM_837P.read_text())
    for claim in sub.claims:
        adj = adjudicate(claim, AdjudicationRules(seed=5), FEES, AS_OF)
        balanced(adj)
    replacement = adjudicate(
        sub.claims[1], AdjudicationRules(seed=5, denial_rate=D(1)), FEES, AS_OF
    )
    assert not replacement.denied


# --------------------------------------------------------------------------- property


CODES = [
    "99213",
    "99214",
    "99284",
    "36415",
    "85025",
    "73610",
    "90686",
    "J3301",
    "A0425",
    "99999",
    "0",
]
money = st.decimals(min_value=0, max_value=5000, places=2, allow_nan=False, allow_infinity=False)
lines = st.lists(
    st.tuples(
        st.sampled_from(CODES),
        money,
        st.decimals(min_value=1, max_value=60, places=0),
        st.sampled_from([(), ("26",), ("TC",), ("25", "59")]),
    ),
    min_size=1,
    max_size=8,
)


@st.composite
def claims(draw) -> SubmittedClaim:
    items = draw(lines)
    base = make_claim(
        draw(st.text(alphabet="ABCDEFGHJK0123456789-", min_size=1, max_size=20)),
        filing_indicator=draw(st.sampled_from(["MB", "MA", "MC", "CI", "BL", "HM", ""])),
        frequency_code=draw(st.sampled_from(["1", "1", "7", "8"])),
        sequence=draw(st.sampled_from(["P", "S", "T"])),
        service_date=AS_OF - timedelta(days=draw(st.integers(0, 500))),
    )
    submitted = tuple(
        SubmittedLine(i, code, mods, charge, units, base.service_date)
        for i, (code, charge, units, mods) in enumerate(items, start=1)
    )
    total = sum((ln.charge for ln in submitted), D("0.00"))
    if draw(st.booleans()):
        total += draw(st.decimals(min_value=-5, max_value=5, places=2))
    return replace(base, lines=submitted, total_charge=total)


@settings(max_examples=300, deadline=None)
@given(claim=claims(), seed=st.integers(0, 2**32), rate=st.sampled_from([D(0), D("0.15"), D(1)]))
def test_every_adjudication_balances(claim, seed, rate):
    rules = AdjudicationRules(seed=seed, denial_rate=rate, deductible_rate=D("0.5"))
    adj = adjudicate(claim, rules, FEES, AS_OF)
    balanced(adj)
    assert adj == adjudicate(claim, rules, FEES, AS_OF)
    assert adj.status in {"1", "2", "3", "4", "22"}
    if claim.frequency_code == "7":
        assert not adj.denied


# --------------------------------------------------------------------------- 277CA decision


def test_front_door_always_rejects_bad_data():
    missing_member = acknowledge(make_claim(member_id=None))
    assert (missing_member.accepted, missing_member.category, missing_member.status_code) == (
        False,
        "A6",
        "164",
    )
    bad_npi = acknowledge(make_claim(npi="1245319598"))
    assert (bad_npi.category, bad_npi.status_code, bad_npi.entity_code) == ("A7", "562", "85")
    unbalanced = acknowledge(make_claim(total=D("1.00")))
    assert (unbalanced.category, unbalanced.status_code) == ("A7", "400")
    assert "DOE" not in bad_npi.message and "M123" not in missing_member.message


def test_front_door_rejects_a_small_deterministic_share():
    rules = AdjudicationRules(seed=9)
    decisions = [acknowledge(make_claim(f"F{i}"), rules) for i in range(2000)]
    rejected = [d for d in decisions if not d.accepted]
    assert 0.01 <= len(rejected) / 2000 <= 0.035
    assert {(d.category, d.status_code) for d in rejected} <= {
        ("A7", "33"),
        ("A7", "562"),
        ("A7", "164"),
    }
    assert decisions == [acknowledge(make_claim(f"F{i}"), rules) for i in range(2000)]
    accepted = next(d for d in decisions if d.accepted)
    assert (accepted.category, accepted.status_code) == ("A2", "20")
    i = decisions.index(accepted)
    assert (
        accepted.payer_claim_control_number
        == adjudicate(make_claim(f"F{i}"), rules, FEES, AS_OF).payer_claim_control_number
    )
