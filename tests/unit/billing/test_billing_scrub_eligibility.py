"""Billing's eligibility rule: a claim is held when intake's 271 says the billed coverage was
inactive on the date of service, or names another payer primary (issue 21 item 1)."""

from dataclasses import replace
from datetime import date
from decimal import Decimal

from services.billing.domain.chargemaster import load_sample_chargemaster
from services.billing.domain.claim import build_claim
from services.billing.domain.scrubber import scrub
from shared.events import EligibilitySummary
from tests.unit.billing.billing_support import coverage, make_coded

CM = load_sample_chargemaster("north-clinic")
KNOWN = {"S93401A": True, "W010XXA": True}


def findings(*coverages):
    coded = make_coded(coverages=list(coverages))
    claim = build_claim(coded, claim_id="C-1", chargemaster=CM)
    return [
        (r.code, r.field, r.message) for r in scrub(claim, is_billable=lambda c, d: KNOWN.get(c))
    ]


def summary(status="active", **kw):
    return EligibilitySummary(status=status, checked_on=date(2024, 3, 4), **kw)


def test_active_unverified_or_unchecked_coverage_goes_out():
    active = summary(copay=Decimal("25.00"), coinsurance_percent=Decimal(20))
    assert findings(coverage(eligibility=active)) == []
    assert findings(coverage(eligibility=EligibilitySummary(status="unverified"))) == []
    assert findings(coverage()) == []


def test_inactive_coverage_is_held_with_an_actionable_reason():
    [(code, field, message)] = findings(coverage(eligibility=summary("inactive")))
    assert (code, field) == ("COVERAGE_INACTIVE", "payer.eligibility.status")
    assert "not active on the date of service" in message
    assert "checked 2024-03-04" in message
    assert "W123456789" not in message  # the member id never appears


def test_another_primary_payer_named_by_the_271_holds_the_claim():
    named = summary(other_primary_payer="Sample Medicare", other_primary_payer_id="MEDICARE-B")
    [(code, field, message)] = findings(coverage(eligibility=named))
    assert (code, field) == ("OTHER_PAYER_PRIMARY", "payer.eligibility.other_primary_payer")
    assert "Sample Medicare" in message and "bill that payer first" in message


def test_a_primary_named_by_a_secondary_s_271_that_is_the_primary_on_file_is_no_finding():
    # The billed coverage is the secondary (a COB claim): its 271 naming the primary on file
    # agrees with the order; naming a third payer does not.
    primary = coverage(payer_id="MEDICARE-B", payer_name="Sample Medicare")
    agrees = summary(other_primary_payer="MEDICARE", other_primary_payer_id="medicare-b")
    coded = make_coded(coverages=[primary, coverage(sequence="secondary", eligibility=agrees)])
    claim = build_claim(coded, claim_id="C-2", chargemaster=CM)
    secondary_claim = replace(claim, payer=coded.encounter.coverages[1], other_coverages=(primary,))
    assert "OTHER_PAYER_PRIMARY" not in [
        r.code for r in scrub(secondary_claim, is_billable=lambda c, d: KNOWN.get(c))
    ]
    other = summary(other_primary_payer="Another Plan", other_primary_payer_id="ANOTHER")
    third = replace(
        claim, payer=coverage(sequence="secondary", eligibility=other), other_coverages=(primary,)
    )
    assert [r.code for r in scrub(third, is_billable=lambda c, d: KNOWN.get(c))] == [
        "OTHER_PAYER_PRIMARY"
    ]


def test_an_other_coverage_s_result_does_not_hold_the_primary_claim():
    # The secondary coverage's answer matters to its own (COB) claim, not the primary's.
    assert (
        findings(coverage(), coverage(sequence="secondary", eligibility=summary("inactive"))) == []
    )
