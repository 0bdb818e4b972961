"""One table of contractual CARCs: the outcome, the ledger and the decision carried on each
adjustment of remittance.received all follow it (followup reads the carried decision)."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from services.payments.domain import parse_835
from services.payments.domain.carcs import CONTRACTUAL_CARCS, is_beyond_contract, is_contractual
from services.payments.domain.ledger import (
    CASH_CLEARING,
    CONTRACTUAL_ADJUSTMENT,
    OTHER_ADJUSTMENT,
    PATIENT_RECEIVABLE,
    PAYER_RECEIVABLE,
    adjustment_account,
    entry_for_claim_payment,
)
from services.payments.domain.outcome import contractual_amount, remittance_outcome
from services.payments.domain.remittance import Adjustment, ClaimPayment
from services.payments.posting import Posting, received_event
from shared.claim_ids import claim_id_for, is_claim_id

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "x12" / "835"
SAMPLES = sorted(FIXTURES.rglob("*.835")) + sorted(FIXTURES.rglob("*.txt"))


def payment(status, charge, paid, adjustments, pr=None):
    cp = ClaimPayment("CLM1", status, D(charge), D(paid), D(pr) if pr else None, "12")
    cp.adjustments = [Adjustment(g, r, D(a), None, "claim") for g, r, a in adjustments]
    return cp


def as_dict(lines):
    return {ln.account: ln.amount for ln in lines}


def _sample_payments():
    for path in SAMPLES:
        try:
            era = parse_835(path.read_text())
        except ValueError:
            continue  # the deliberately broken samples
        for n, cp in enumerate(era.claims):
            yield f"{path.name}:{n}", cp


@pytest.mark.parametrize(("name", "cp"), list(_sample_payments()), ids=lambda v: str(v)[:40])
def test_outcome_ledger_and_event_follow_the_one_table(name, cp):
    posting = Posting(name, cp.patient_control_number, cp, "P1", 1, None, None, None, None)
    p = received_event(posting, "s1", "e1").payload
    entry = entry_for_claim_payment(cp, cp.patient_control_number, "P1")
    posted_contractual = sum(
        (ln.amount for ln in entry if ln.account == CONTRACTUAL_ADJUSTMENT), D(0)
    )
    # every adjustment carries the table's decision, claim and line level alike
    for a in p.adjustments + [a for sl in p.service_lines for a in sl.adjustments]:
        assert a.beyond_contract is is_beyond_contract(a.group, a.reason)
    beyond = sum((a.amount for a in p.adjustments if a.beyond_contract), D(0))
    if p.outcome in ("paid", "partially_paid"):
        assert (p.outcome == "partially_paid") == (beyond > 0)
    if cp.status_code in ("1", "19", "22") and p.outcome != "denied":
        # what the event calls contractual is what the ledger posted to contractual_adjustment
        assert p.contractual_adjustment == posted_contractual


def test_the_samples_cover_contractual_beyond_and_prior_payer_adjustments():
    seen = {(a.group, a.reason) for _, cp in _sample_payments() for a in _all(cp)}
    assert {("CO", "45"), ("CO", "253"), ("CO", "A2"), ("CO", "42")} <= seen  # contractual
    assert ("CO", "50") in seen and ("OA", "23") in seen and ("OA", "94") in seen


def _all(cp):
    yield from cp.adjustments
    for sl in cp.service_lines:
        yield from sl.adjustments


def test_a_line_denial_on_a_paid_claim_is_not_the_contract():
    # CO-50 (not medically necessary) on one line: the provider may not bill the patient for it
    # (group CO), but it is a denial to appeal, not the contract: other_adjustment, and the
    # remittance is partially paid.
    cp = payment("1", "200", "100", [("CO", "45", "40"), ("CO", "50", "60")])
    assert as_dict(entry_for_claim_payment(cp, "C1", "P1")) == {
        CASH_CLEARING: D("100.00"),
        CONTRACTUAL_ADJUSTMENT: D("40.00"),
        OTHER_ADJUSTMENT: D("60.00"),
        PAYER_RECEIVABLE: D("-200.00"),
    }
    assert contractual_amount(cp.adjustments) == D("40")
    assert remittance_outcome("1", D(100), D(0), cp.adjustments, False) == "partially_paid"
    assert [is_beyond_contract(a.group, a.reason) for a in cp.adjustments] == [False, True]


@pytest.mark.parametrize(
    ("group", "reason", "account", "contractual", "beyond"),
    [
        ("CO", "45", CONTRACTUAL_ADJUSTMENT, True, False),
        ("CO", "24", CONTRACTUAL_ADJUSTMENT, True, False),  # capitation
        ("CO", "253", CONTRACTUAL_ADJUSTMENT, True, False),  # sequestration
        ("CO", "A2", CONTRACTUAL_ADJUSTMENT, True, False),  # retired "contractual adjustment"
        ("CO", "97", OTHER_ADJUSTMENT, False, True),  # bundled: a denial, not the contract
        ("CO", "29", OTHER_ADJUSTMENT, False, True),  # timely filing
        # no contract behind OA/PI: not the contractual account, yet nothing beyond the agreement
        ("PI", "45", OTHER_ADJUSTMENT, False, False),
        ("OA", "94", OTHER_ADJUSTMENT, False, False),
        ("OA", "23", OTHER_ADJUSTMENT, False, False),  # the prior payer's adjudication
        ("OA", "18", OTHER_ADJUSTMENT, False, True),
        ("PR", "1", PATIENT_RECEIVABLE, False, False),
        ("PR", "50", PATIENT_RECEIVABLE, False, False),
    ],
)
def test_account_and_decision_per_adjustment(group, reason, account, contractual, beyond):
    assert adjustment_account(group, reason) == account
    assert is_contractual(group, reason) is contractual
    assert is_beyond_contract(group, reason) is beyond
    assert contractual == (group == "CO" and reason in CONTRACTUAL_CARCS)


def test_a_secondary_that_paid_its_share_is_paid():
    # Sample claim 0001000052: the secondary pays after the primary; its OA-23 is the primary's
    # adjudication, not a reduction by this payer (the ledger does not post it either).
    era = parse_835((FIXTURES / "linuxforhealth" / "secondary-payment.835").read_text())
    cp = era.transactions[0].claims[0]
    assert {(a.group, a.reason) for a in _all(cp)} == {("OA", "23")}
    pr = cp.patient_responsibility or D(0)
    assert remittance_outcome(cp.status_code, cp.paid, pr, list(_all(cp)), False) == "paid"


def test_payments_recognises_every_claim_id_billing_makes():
    original = claim_id_for("ENC-1")
    replacement = claim_id_for("ENC-1", "7", original, 0)
    assert original == claim_id_for("ENC-1") != replacement
    assert is_claim_id(original) and is_claim_id(replacement)
    assert not is_claim_id("CLM1001") and not is_claim_id(original.lower())
