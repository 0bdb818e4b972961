"""Whether a prior payer's denial may go on to the next payer (``cob.denial_hold``): final
benefit decisions go on (the next claim carries AMT*D 0, valid under pyx12); correctable
denials and "another payer is primary" hold the next claim, with a reason naming the CARCs."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.billing.domain.cob import (
    CORRECTABLE_CARCS,
    COVERAGE_ORDER_CARCS,
    FINAL_CARCS,
    PriorAdjudication,
    PriorAdjustment,
    PriorLine,
    build_cob_claim,
    denial_hold,
)
from tests.unit.billing.test_billing_cob import assert_valid, claim, loops_2320, segs, write

D = Decimal


def denied(*cas: tuple[str, str], level: str = "line") -> PriorAdjudication:
    """The primary's denial of ``claim()``: every line (or the claim) adjusted in full by the
    given group/CARC pairs, the first taking the charge, the others 0."""
    c = claim()

    def adjustments(amount: Decimal) -> tuple[PriorAdjustment, ...]:
        return tuple(
            PriorAdjustment(g, r, amount if i == 0 else D("0")) for i, (g, r) in enumerate(cas)
        )

    if level == "claim":
        return PriorAdjudication(
            date(2024, 3, 20),
            c.total_charge,
            D("0"),
            "PCN-D",
            adjustments=adjustments(c.total_charge),
            status="4",
        )
    lines = tuple(
        PriorLine(ln.code, ln.modifiers, ln.charge, D("0"), adjustments(ln.charge))
        for ln in c.lines
    )
    return PriorAdjudication(
        date(2024, 3, 20), c.total_charge, D("0"), "PCN-D", lines=lines, status="4"
    )


@pytest.mark.parametrize(
    "group,carc",
    [
        ("CO", "96"),  # non-covered charge
        ("PR", "96"),
        ("PR", "204"),  # not covered under the patient's benefit plan
        ("CO", "119"),  # benefit maximum reached
        ("PR", "35"),  # lifetime benefit maximum
        ("CO", "50"),  # not medically necessary under the payer's policy
        ("PR", "49"),  # routine/preventive, not covered
        ("PR", "1"),  # all to the deductible
        ("PR", "B1"),  # any CARC the payer leaves to the patient is a benefit decision
    ],
)
def test_a_final_denial_goes_on_to_the_next_payer_with_amt_d_zero(group, carc):
    prior = denied((group, carc))
    assert denial_hold(prior) is None
    text = write(build_cob_claim(claim(), [prior]))
    assert_valid(text)
    first = loops_2320(segs(text))[0]
    assert ["AMT", "D", "0"] in first


@pytest.mark.parametrize(
    "group,carc",
    [
        ("CO", "16"),  # missing/invalid information
        ("CO", "4"),  # modifier inconsistent with the procedure
        ("CO", "11"),  # diagnosis inconsistent with the procedure
        ("CO", "97"),  # bundled into another service
        ("CO", "18"),  # exact duplicate
        ("CO", "29"),  # timely filing limit expired
        ("CO", "197"),  # no authorization
        ("PR", "16"),  # correctable whatever the group
    ],
)
def test_a_correctable_denial_holds_the_next_payer(group, carc):
    for level in ("line", "claim"):
        found = denial_hold(denied((group, carc), level=level))
        assert found is not None
        assert found.code == "COB_PRIOR_DENIAL_CORRECTABLE"
        assert f"primary payer denied with {group}-{carc}:" in found.message
        assert "correct and resubmit" in found.message


@pytest.mark.parametrize("group,carc", [("CO", "109"), ("OA", "109"), ("CO", "22"), ("CO", "27")])
def test_another_payer_primary_holds_with_the_coverage_order(group, carc):
    found = denial_hold(denied((group, carc)), "secondary payer")
    assert found is not None and found.code == "COB_COVERAGE_ORDER"
    assert found.message.startswith(f"secondary payer denied with {group}-{carc}:")
    assert "coverage order" in found.message


def test_the_strongest_reason_wins_and_every_carc_is_named():
    # A line bundled (correctable) beside a claim sent to the wrong payer: coverage order.
    found = denial_hold(denied(("CO", "97"), ("CO", "109"), ("CO", "45")))
    assert found is not None and found.code == "COB_COVERAGE_ORDER"
    assert "CO-109" in found.message and "CO-97" not in found.message
    found = denial_hold(denied(("CO", "96"), ("CO", "16")))
    assert found is not None and found.code == "COB_PRIOR_DENIAL_CORRECTABLE"
    assert "CO-16" in found.message and "CO-96" not in found.message


def test_a_provider_liable_carc_of_no_known_class_is_reviewed_first():
    found = denial_hold(denied(("CO", "A1")))
    assert found is not None and found.code == "COB_PRIOR_DENIAL_REVIEW"
    assert "CO-A1" in found.message
    found = denial_hold(denied(("OA", "133")))  # disposition pending review
    assert found is not None and found.code == "COB_PRIOR_DENIAL_REVIEW"


def test_the_classes_do_not_overlap():
    assert not COVERAGE_ORDER_CARCS & CORRECTABLE_CARCS
    assert not (COVERAGE_ORDER_CARCS | CORRECTABLE_CARCS) & FINAL_CARCS
