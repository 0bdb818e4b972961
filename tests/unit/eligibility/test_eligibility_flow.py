"""Intake's eligibility flow decisions (services/intake/domain/eligibility/flow.py) on 271s the
payer simulator writes for 270s intake writes, each file valid under pyx12's 270/271 5010 maps."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from rcm.simulation.payer.domain.eligibility import EligibilityRules, decide
from rcm.simulation.payer.domain.read_270 import read_270
from rcm.simulation.payer.domain.write_271 import build_271
from services.intake import eligibility_flow as flow
from services.intake.domain.eligibility import read_271
from services.intake.domain.eligibility.flow import (
    RetryPolicy,
    attach,
    coverage_key,
    judge,
    work_item_message,
)
from services.intake.settings import EligibilitySettings
from shared.events import EligibilitySummary
from tests.unit.billing.billing_support import coverage, make_coded
from tests.unit.eligibility.pyx12_maps import pyx12_validate

AT = datetime(2024, 3, 4, 9, 30, tzinfo=UTC)
POLICY = RetryPolicy(timedelta(seconds=60), timedelta(minutes=10), max_attempts=3)
CFG = flow.Config(EligibilitySettings(mode="intake"), Path("/nonexistent"))
RULES = EligibilityRules(seed=7)


def encounter(member: str = "W123456789", **cov):
    return make_coded(coverages=[coverage(member_id=member, **cov)]).encounter


def round_trip(*members: str, earlier: int = 0):
    """270 (intake's writer, as the flow renders it) -> simulator -> 271 -> intake's reader.
    Returns the results by member, the simulator's decisions and both files."""
    asks, bad = [], []
    for n, m in enumerate(members):
        a, b = flow.asks_for(encounter(m), CFG, None, "intake")
        asks += [flow.Ask(x.request, x.key, f"E{n}", x.site_id, x.sequence) for x in a]
        bad += b
    assert bad == []
    requests = [replace(a.request, trace_number=f"RCM{n:010d}-1") for n, a in enumerate(asks)]
    text270 = flow._render(CFG, requests, 17, AT)
    inquiries = read_270(text270)
    decisions = {q.trace_number: decide(q, RULES, AT.date(), earlier) for q in inquiries.inquiries}
    text271 = build_271(
        inquiries, decisions, interchange_control_number=5, group_control_number=5, created_at=AT
    )
    results = read_271(text271).results
    by_trace = {r.trace_number: r for r in results}
    out = {m: by_trace[r.trace_number] for m, r in zip(members, requests, strict=True)}
    dec = {m: decisions[r.trace_number] for m, r in zip(members, requests, strict=True)}
    return out, dec, text270, text271


def valid(text: str) -> None:
    ok, errors = pyx12_validate(text)
    assert errors == [] and ok is True


def test_the_flow_s_270_and_the_simulator_s_271_are_valid_5010():
    _, _, text270, text271 = round_trip("W123456789", "INACTIVE1", "BADID2", "PAYERDOWN3")
    assert "DTP*291*D8*20240305~" in text270  # the date of service
    assert "EQ*30~" in text270
    valid(text270)
    valid(text271)


def test_active_coverage_is_answered_with_the_amounts_an_estimate_needs():
    results, decisions, _, _ = round_trip("W123456789")
    j = judge(results["W123456789"], 1, POLICY, AT.date())
    share = decisions["W123456789"].in_network
    assert (j.state, j.outcome, j.work_item) == ("answered", "active", None)
    s = j.summary
    assert s.status == "active" and s.checked_on == date(2024, 3, 4)
    assert s.plan and s.plan.endswith("PPO")
    assert s.group == "GRP100"
    assert s.copay == share.copay
    assert s.coinsurance_percent == share.coinsurance * 100
    assert s.deductible_remaining == share.deductible_remaining
    assert s.out_of_pocket_remaining == share.out_of_pocket_remaining
    assert isinstance(s.copay, Decimal) and s.other_primary_payer is None


def test_inactive_and_other_primary_are_answers_billing_acts_on():
    results, decisions, _, _ = round_trip("INACTIVE1", "OTHERPRIMARY2")
    inactive = judge(results["INACTIVE1"], 1, POLICY, AT.date())
    assert (inactive.state, inactive.summary.status) == ("answered", "inactive")
    other = judge(results["OTHERPRIMARY2"], 1, POLICY, AT.date())
    named = decisions["OTHERPRIMARY2"].other_payer
    assert other.summary.status == "active"
    assert other.summary.other_primary_payer == named.name.upper()
    assert other.summary.other_primary_payer_id == named.payer_id


def test_payer_down_is_retried_with_backoff_then_given_up():
    results, _, _, _ = round_trip("PAYERDOWN1")
    r = results["PAYERDOWN1"]
    first = judge(r, 1, POLICY, AT.date())
    assert (first.state, first.reason_code, first.work_item) == ("retry", "42", None)
    assert first.retry_in == timedelta(seconds=60)
    assert judge(r, 2, POLICY, AT.date()).retry_in == timedelta(seconds=120)
    assert first.summary == EligibilitySummary(status="unverified")
    last = judge(r, 3, POLICY, AT.date())
    assert (last.state, last.work_item) == ("gave_up", "review")
    assert "3 attempts" in last.reason


def test_no_271_at_all_counts_as_no_response():
    j = judge(None, 1, POLICY, AT.date())
    assert (j.state, j.outcome, j.reason_code) == ("retry", "no_response", "80")


def test_backoff_doubles_up_to_its_cap():
    assert [POLICY.backoff(n).total_seconds() for n in range(1, 6)] == [60, 120, 240, 480, 600]


@pytest.mark.parametrize(("member", "code"), [("BADID1", "72"), ("NOTFOUND2", "75")])
def test_member_id_rejections_open_registration_work_without_phi(member, code):
    results, _, _, _ = round_trip(member)
    j = judge(results[member], 1, POLICY, AT.date())
    assert (j.state, j.reason_code, j.work_item) == ("rejected", code, "registration")
    message = work_item_message(j.work_item, j.reason_code, j.reason, "Aster Health", "primary")
    assert f"AAA {code}" in message and "correct the patient's" in message
    assert member not in message and "Jane" not in message and "Doe" not in message


def test_a_payer_down_once_answers_the_retry():
    results, _, _, _ = round_trip("DOWNONCE1")
    assert judge(results["DOWNONCE1"], 1, POLICY, AT.date()).state == "retry"
    results, _, _, _ = round_trip("DOWNONCE1", earlier=1)
    assert judge(results["DOWNONCE1"], 2, POLICY, AT.date()).summary.status == "active"


def test_attach_sets_each_coverage_s_summary_and_none_leaves_the_json_as_before():
    enc = make_coded(
        coverages=[coverage(), coverage(sequence="secondary", payer_id="MEDICAID")]
    ).encounter
    before = enc.model_dump_json()
    assert "eligibility" not in before
    assert attach(enc, {"primary": None}).model_dump_json() == before
    active = EligibilitySummary(status="active", copay=Decimal("20.00"))
    out = attach(enc, {"secondary": active})
    assert [c.eligibility for c in out.coverages] == [None, active]


def test_coverage_key_tells_a_corrected_member_id_or_another_date_apart():
    enc = encounter()
    cov = enc.coverages[0]
    key = coverage_key(enc.site_id, "MRN1", cov, enc.service_date)
    assert key == coverage_key(enc.site_id, "MRN1", cov, enc.service_date)
    assert key != coverage_key(enc.site_id, "MRN1", cov, enc.service_date + timedelta(days=1))
    fixed = cov.model_copy(update={"member_id": "W999"})
    assert key != coverage_key(enc.site_id, "MRN1", fixed, enc.service_date)
    assert "W123456789" not in key and len(key) == 32


def test_a_stored_request_is_asked_again_as_it_was():
    [a], _ = flow.asks_for(encounter(), CFG, None, "intake")
    again = flow.request_from_json(a.request.trace_number, flow.request_json(a.request))
    assert again == a.request


def test_a_coverage_no_270_can_carry_is_named_without_values():
    enc = make_coded(
        coverages=[coverage(member_id=None)],
        patient=encounter().patient.model_copy(update={"birth_date": None}),
    ).encounter
    asks, bad = flow.asks_for(enc, CFG, None, "intake")
    assert asks == []
    [(seq, why)] = bad
    assert seq == "primary" and "member_id" in why and "Jane" not in why


def test_the_270s_sender_is_not_billing_s():
    # Each numbers its interchanges on its own: under one sender id a 270 and an 837 would
    # share ISA13 numbers, and the clearinghouse refuses the second (seen on the real stack).
    from services.billing.settings import ClaimSettings

    assert EligibilitySettings().sender_id != ClaimSettings().sender_id
    assert f"ISA*00*          *00*          *ZZ*{EligibilitySettings().sender_id:<15}" in (
        flow._render(CFG, [flow.asks_for(encounter(), CFG, None, "intake")[0][0].request], 3, AT)
    )


def test_an_event_from_before_validates_and_one_with_a_result_round_trips():
    from shared.events import EncounterDocumented

    enc = encounter()
    old = EncounterDocumented(site_id=enc.site_id, encounter_id=enc.encounter_id, payload=enc)
    raw = old.to_json()
    assert b"eligibility" not in raw
    assert EncounterDocumented.model_validate_json(raw).payload.coverages[0].eligibility is None
    summary = EligibilitySummary(
        status="active",
        checked_on=date(2024, 3, 4),
        copay=Decimal("25.00"),
        coinsurance_percent=Decimal(20),
        deductible_remaining=Decimal("123.45"),
        out_of_pocket_remaining=Decimal("4000.00"),
    )
    new = old.model_copy(update={"payload": attach(enc, {"primary": summary})})
    back = EncounterDocumented.model_validate_json(new.to_json())
    assert back.payload.coverages[0].eligibility == summary
    assert b'"deductible_remaining":"123.45"' in new.to_json()


def test_an_encounter_whose_billing_provider_has_no_npi_asks_nothing():
    # Billing holds that claim for the missing NPI; no registration item is opened for it.
    from shared.events import Organization

    enc = make_coded(billing_provider=Organization(name="North Clinic")).encounter
    asks, bad = flow.asks_for(enc, CFG, None, "intake")
    assert asks == [] and [s for s, _ in bad] == ["encounter"]
    assert "billing_provider.npi" in bad[0][1]
