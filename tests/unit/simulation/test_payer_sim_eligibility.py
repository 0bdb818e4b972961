"""The payer simulator answers 270s with 271s: deterministic decisions per member, every 271
valid under pyx12 and read back by intake's 271 reader as decided."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from rcm.simulation.payer.domain.eligibility import EligibilityRules, decide
from rcm.simulation.payer.domain.read_270 import Inquiry, Person270, read_270
from rcm.simulation.payer.domain.write_271 import build_271
from rcm.simulation.samples import generate_samples
from services.intake.domain.eligibility import (
    build_270,
    match_results,
    read_271,
    requests_for_encounter,
)
from shared.x12 import X12Error
from tests.unit.eligibility.pyx12_maps import pyx12_validate

REAL = Path(__file__).resolve().parents[2] / "fixtures" / "x12" / "271"
REAL_270 = sorted(p for p in REAL.glob("*/*") if p.suffix == ".270" or "request" in p.name)
TODAY = date(2024, 3, 1)
AT = datetime(2024, 3, 1, 10, 0)
RULES = EligibilityRules(seed=7)


def inquiry(member: str | None = "W123456789", **kw) -> Inquiry:
    base = dict(
        trace_number="T-1",
        originator="9RCM000000",
        reference="R1",
        payer_id="AETNA1",
        payer_name="Aster Health Insurance Co",
        provider_npi="1234567893",
        provider_name="North Clinic",
        member_id=member,
        subscriber=Person270("DOE", "JANE", date(1985, 4, 12), "F"),
        dependent=None,
        relationship=None,
        group_number="G100",
        service_date=date(2024, 3, 5),
        service_types=("30",),
        place_of_service="11",
    )
    base.update(kw)
    return Inquiry(**base)


def answer(inquiries: list[Inquiry], rules: EligibilityRules = RULES) -> tuple[str, dict]:
    from rcm.simulation.payer.domain.read_270 import InquiryFile

    file = InquiryFile("000000005", "RCM", "PAYERSIM", tuple(inquiries))
    decisions = {q.trace_number: decide(q, rules, TODAY) for q in inquiries}
    text = build_271(
        file, decisions, interchange_control_number=9, group_control_number=9, created_at=AT
    )
    return text, decisions


def assert_valid(text: str) -> None:
    ok, errors = pyx12_validate(text)
    assert errors == []
    assert ok is True


# --------------------------------------------------------------------------- reading 270s


def test_reads_real_270s():
    assert len(REAL_270) == 4
    for path in REAL_270:
        [q] = read_270(path.read_text()).inquiries
        assert q.trace_number == "93175-012547" and q.originator == "9877281234"
        assert q.payer_id == "842610001" and q.member_id == "11122333301"
        assert q.service_date == date(2006, 5, 1) and q.service_types == ("30",)
        if "dependent" in path.name:
            assert q.dependent is not None and q.subscriber.last_name == ""
        else:
            assert q.dependent is None and q.subscriber.birth_date == date(1943, 5, 19)


def test_answers_every_real_270_with_a_valid_271():
    for path in REAL_270:
        file = read_270(path.read_text())
        decisions = {q.trace_number: decide(q, RULES, TODAY) for q in file.inquiries}
        text = build_271(
            file, decisions, interchange_control_number=3, group_control_number=3, created_at=AT
        )
        assert_valid(text)
        [r] = read_271(text).results
        assert r.trace_number == "93175-012547"
        assert r.level == ("dependent" if "dependent" in path.name else "subscriber")


def test_read_270_refuses_what_it_cannot_answer():
    text = (REAL / "linuxforhealth" / "subscriber-health-benefit-check.270").read_text()
    with pytest.raises(X12Error, match=r"segment 10 \(TRN\)|no TRN\*1 trace number"):
        read_270(text.replace("TRN*1*93175-012547*9877281234~", "REF*6P*G1~"))
    with pytest.raises(X12Error, match="transaction set is not a 270"):
        read_270(text.replace("ST*270", "ST*271"))


# --------------------------------------------------------------------------- deciding


def test_decisions_are_deterministic_per_member_and_seed():
    first = decide(inquiry(), RULES, TODAY)
    assert decide(inquiry(trace_number="T-2"), RULES, TODAY) == first
    members = [f"W{n:09d}" for n in range(200)]
    a = [decide(inquiry(m), RULES, TODAY) for m in members]
    b = [decide(inquiry(m), EligibilityRules(seed=8), TODAY) for m in members]
    assert a != b
    assert a == [decide(inquiry(m), RULES, TODAY) for m in members]


@pytest.mark.parametrize(
    ("member", "outcome", "aaa"),
    [
        ("PAYERDOWN1", "payer_down", ("42", "R")),
        ("BADID-7", "invalid_id", ("72", "C")),
        ("NOTFOUND99", "not_found", ("75", "C")),
        ("INACTIVE3", "inactive", None),
        ("OTHERPRIMARY5", "other_primary", None),
        (None, "invalid_id", ("72", "C")),
    ],
)
def test_markers_force_an_outcome(member, outcome, aaa):
    d = decide(inquiry(member), RULES, TODAY)
    assert d.outcome == outcome and d.rejection == aaa


def test_outcomes_follow_the_rates():
    counts = Counter(
        decide(inquiry(f"W{n:09d}", trace_number=f"T{n}"), RULES, TODAY).outcome
        for n in range(4000)
    )
    assert counts["active"] > 3000
    for outcome in ("payer_down", "invalid_id", "not_found"):
        assert 40 <= counts[outcome] <= 130, counts  # 2 % of 4000 = 80
    for outcome in ("inactive", "other_primary"):
        assert 100 <= counts[outcome] <= 230, counts  # 4 %


def test_payer_down_is_drawn_per_trace_so_a_retry_gets_through():
    rules = EligibilityRules(seed=7, payer_down_rate=Decimal("0.5"))
    outcomes = {decide(inquiry(trace_number=f"T-{n}"), rules, TODAY).outcome for n in range(20)}
    assert outcomes == {"payer_down", decide(inquiry(), EligibilityRules(seed=7), TODAY).outcome}


def test_cost_shares_add_up():
    for n in range(300):
        d = decide(inquiry(f"W{n:09d}"), EligibilityRules(seed=7, inactive_rate=Decimal(0)), TODAY)
        if d.rejection is not None:
            continue
        for c in (d.in_network, d.out_of_network):
            assert c is not None
            assert Decimal(0) <= c.deductible_remaining <= c.deductible
            assert c.out_of_pocket is not None and c.out_of_pocket_remaining is not None
            assert Decimal(0) <= c.out_of_pocket_remaining <= c.out_of_pocket
            assert c.deductible <= c.out_of_pocket
            assert c.deductible_remaining.as_tuple().exponent == -2


def test_medicare_and_medicaid_plans():
    medicare = decide(inquiry("1EG4TE5MK72", payer_id="MCR01"), RULES, TODAY)
    c = medicare.in_network
    assert c is not None and (c.copay, c.coinsurance, c.deductible, c.out_of_pocket) == (
        None,
        Decimal("0.2"),
        Decimal("257.00"),
        None,
    )
    assert medicare.plan_name == "MEDICARE PART B (DEMO MAC) PART B"
    medicaid = decide(inquiry("123456789012", payer_id="MCD01"), RULES, TODAY)
    assert medicaid.in_network is not None and medicaid.in_network.copay == Decimal("4.00")


def test_the_other_primary_payer_is_never_the_payer_asked_nor_medicaid():
    for n in range(50):
        d = decide(inquiry(f"OTHERPRIMARY{n}", payer_id="MCD01"), RULES, TODAY)
        assert d.other_payer is not None
        assert d.other_payer.payer_id not in ("MCD01",)
        assert d.other_payer.insurance_type in ("MB", "C1", "HM")


# --------------------------------------------------------------------------- writing 271s


def test_every_outcome_written_valid_and_read_back_as_decided():
    members = ["W1000", "PAYERDOWN1", "BADID2", "NOTFOUND3", "INACTIVE4", "OTHERPRIMARY5"]
    qs = [inquiry(m, trace_number=f"T-{i}") for i, m in enumerate(members)]
    qs.append(
        inquiry(
            "W2000",
            trace_number="T-dep",
            dependent=Person270("DOE", "JIM", date(2015, 1, 2), "M"),
            relationship="19",
            service_types=("30", "98"),
        )
    )
    qs.append(inquiry("W3000", trace_number="T-mcr", payer_id="MCR01", payer_name="Medicare"))
    text, decisions = answer(qs)
    assert_valid(text)
    results = match_results(decisions, read_271(text).results)
    assert set(results) == set(decisions)
    for trace, d in decisions.items():
        r = results[trace]
        if d.rejection is not None:
            assert r.status == "rejected"
            assert [(x.loop, x.reason, x.follow_up) for x in r.rejections] == [
                ("2100C", *d.rejection)
            ]
            continue
        assert r.status == ("inactive" if d.outcome == "inactive" else "active")
        assert (r.plan_name, r.plan_number, r.group_number) == (d.plan_name, d.plan_number, "G100")
        if d.outcome == "inactive":
            assert r.benefits[0].end == d.coverage_end
            continue
        for network, expected in ((True, d.in_network), (False, d.out_of_network)):
            got = r.cost_share(in_network=network)
            assert expected is not None
            assert (got.copay, got.coinsurance) == (expected.copay, expected.coinsurance)
            assert (got.deductible, got.deductible_remaining) == (
                expected.deductible,
                expected.deductible_remaining,
            )
            assert (got.out_of_pocket, got.out_of_pocket_remaining) == (
                expected.out_of_pocket,
                expected.out_of_pocket_remaining,
            )
        if d.outcome == "other_primary":
            assert d.other_payer is not None
            primary = r.other_primary_payer
            assert primary is not None
            assert (primary.identifier, primary.name, primary.insurance_type) == (
                d.other_payer.payer_id,
                d.other_payer.name.upper(),
                d.other_payer.insurance_type,
            )
        else:
            assert r.other_payers == ()
    assert results["T-dep"].level == "dependent"
    assert results["T-dep"].cost_share(service_type="98").copay is not None


def test_inquiries_of_several_payers_and_dependents_make_valid_transaction_sets():
    qs = []
    for n in range(12):
        q = inquiry(f"W{n:05d}", trace_number=f"T{n}", payer_id=("AETNA1", "UHC001")[n % 2])
        if n % 3 == 0:
            q = replace(q, dependent=Person270("DOE", f"KID{n}"), relationship="19")
        qs.append(q)
    text, decisions = answer(qs)
    assert_valid(text)
    assert text.count("ST*271*") == 2 + 4 - 2  # per payer, plus one per extra dependent
    assert set(match_results(decisions, read_271(text).results)) == set(decisions)


def test_sample_encounters_round_trip_through_270_and_271():
    """intake's 270 for many encounters, the simulator's 271, intake's reading of it."""
    samples = generate_samples(60, seed=3)
    requests = [
        r
        for s in samples
        for r in requests_for_encounter(
            s.encounter, trace_prefix=f"E{s.encounter.encounter_id[-7:]}"
        )
    ]
    text270 = build_270(
        requests,
        sender_id="RCMSUBMITTER",
        receiver_id="CLEARINGHOUSE",
        interchange_control_number=1,
        group_control_number=1,
        created_at=AT,
    )
    file = read_270(text270)
    # Grouped by payer (transaction sets), every request once.
    assert sorted(q.trace_number for q in file.inquiries) == sorted(
        r.trace_number for r in requests
    )
    decisions = {q.trace_number: decide(q, RULES, TODAY) for q in file.inquiries}
    text271 = build_271(
        file, decisions, interchange_control_number=2, group_control_number=2, created_at=AT
    )
    assert_valid(text271)
    results = match_results([r.trace_number for r in requests], read_271(text271).results)
    assert len(results) == len(requests)
    assert Counter(r.status for r in results.values())["active"] > len(requests) // 2
