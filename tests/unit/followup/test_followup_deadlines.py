from datetime import date, datetime
from decimal import Decimal

import pytest

from services.followup.domain.deadlines import (
    PayerPolicies,
    Submission,
    appeal_deadline,
    co29_recommendation,
    escalation,
    policy_for,
    timely_filing_evidence,
)
from services.followup.domain.priority import priority


def test_packaged_policies_medicare_medicaid_commercial():
    # followup's own policies: appeal windows and no-response thresholds (the filing limit is
    # billing's and travels on claim.submitted, see tests/unit/billing for its values)
    mcr = policy_for("MCR04412")
    assert (mcr.appeal_days, mcr.no_ack_days, mcr.no_payment_days) == (120, 2, 30)
    assert policy_for("MCD-OH").no_payment_days == 45
    assert policy_for("BCBS-IL").appeal_days == 180
    assert policy_for("AETNA01").appeal_days == 180
    # unknown payer: class from the filing indicator, else the default
    assert policy_for("X123", filing_indicator="MB").appeal_days == 120
    assert policy_for("X123", filing_indicator="MC").no_payment_days == 45
    default = policy_for("X123")
    assert (default.appeal_days, default.no_ack_days, default.no_payment_days) == (90, 3, 30)


def test_exact_payer_beats_glob_and_longer_glob_beats_shorter():
    policies = PayerPolicies.from_json(
        '{"default": {"appeal_days": 60, "no_ack_days": 3, "no_payment_days": 30},'
        ' "payers": [{"payer_id": "P*", "appeal_days": 100},'
        ' {"payer_id": "PA*", "appeal_days": 110},'
        ' {"payer_id": "PAX", "appeal_days": 120, "no_payment_days": 45}]}'
    )
    assert policies.for_payer("PQ").appeal_days == 100
    assert policies.for_payer("PAY").appeal_days == 110
    pax = policies.for_payer("PAX")
    assert (pax.appeal_days, pax.no_ack_days, pax.no_payment_days) == (120, 3, 45)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{}", r"default.appeal_days is required"),
        (
            '{"default": {"appeal_days": -1, "no_ack_days": 1, "no_payment_days": 1}}',
            "non-negative",
        ),
        (
            '{"default": {"appeal_days": 1, "no_ack_days": 1, "no_payment_days": 1},'
            ' "payers": [{"class": "x"}]}',
            r"payers\[0\]: payer_id",
        ),
        (
            '{"default": {"appeal_days": 1, "no_ack_days": 1, "no_payment_days": 1},'
            ' "payers": [{"payer_id": "A", "class": "x"}]}',
            "unknown class",
        ),
        # a site's old policy file with a filing limit: refused, it is billing's now
        (
            '{"default": {"appeal_days": 1, "no_ack_days": 1, "no_payment_days": 1},'
            ' "payers": [{"payer_id": "A", "timely_filing_days": 120}]}',
            r"payers\[0\].timely_filing_days: the filing limit is billing's",
        ),
    ],
)
def test_bad_policy_json_names_the_entry(text, message):
    with pytest.raises(ValueError, match=message):
        PayerPolicies.from_json(text)


def test_deadlines():
    # (the filing deadline, 2025-01-14 here with 365 days, is billing's: 2025-01-15, twelve
    # months, in tests/unit/billing/test_billing_scrubber.py)
    mcr = policy_for("MCR01")
    assert appeal_deadline(mcr, date(2024, 3, 1)) == date(2024, 6, 29)


@pytest.mark.parametrize(
    ("days_left", "level"),
    [
        (None, "normal"),
        (90, "normal"),
        (31, "normal"),
        (30, "soon"),
        (15, "soon"),
        (14, "urgent"),
        (0, "urgent"),
        (-1, "overdue"),
        (-400, "overdue"),
    ],
)
def test_escalation(days_left, level):
    assert escalation(days_left) == level


# Aetna's claim of 2024-02-01 had a 120-day limit here (2024-05-31): the deadline is billing's
# now, carried on claim.submitted, so the tests give it as such.
DEADLINE = date(2024, 5, 31)


def test_co29_late_submission_is_write_off_with_evidence():
    history = [
        Submission("CLM9", datetime(2024, 6, 20, 9, 30), "000000123", "837_000000123.x12"),
        Submission("CLM9", date(2024, 7, 1), "000000150", "837_000000150.x12"),
    ]
    finding = co29_recommendation(history, date(2024, 2, 1), DEADLINE, "AETNA01")
    assert finding.action == "write off" and not finding.timely
    assert finding.deadline == date(2024, 5, 31)
    assert finding.first_submission == date(2024, 6, 20)
    assert "2024-06-20" in finding.evidence and "000000123" in finding.evidence
    assert "20 days after" in finding.evidence and "2024-05-31" in finding.evidence


def test_co29_timely_original_is_appeal_with_proof():
    history = [
        Submission("CLM9", date(2024, 2, 5), "000000010", accepted=False),  # rejected: not counted
        Submission("CLM9", date(2024, 2, 10), "000000011", "f.x12", accepted=True),
    ]
    finding = co29_recommendation(history, date(2024, 2, 1), DEADLINE, "AETNA01")
    assert (finding.action, finding.timely, finding.first_submission) == (
        "appeal",
        True,
        date(2024, 2, 10),
    )
    assert "accepted by payer" in finding.evidence and "000000011" in finding.evidence
    assert (
        timely_filing_evidence(history, date(2024, 2, 1), DEADLINE, "AETNA01") == finding.evidence
    )


def test_co29_without_history():
    finding = co29_recommendation([], date(2024, 2, 1), DEADLINE, "AETNA01")
    assert finding.action == "write off" and "No submission on record" in finding.evidence


@pytest.mark.parametrize(
    ("amount", "days", "expected"),
    [
        ("0", None, 0),
        ("100", None, 100),
        ("-50", 10, 850),
        ("1000", None, 316),
        ("250000", None, 1000),
        ("100", 200, 100),
        ("100", 180, 100),
        ("100", 20, 900),
        ("100", 0, 1000),
        ("100", -3, 1100),
    ],
)
def test_priority_formula(amount, days, expected):
    assert priority(Decimal(amount), days) == expected


def test_priority_orders_deadline_before_size():
    assert priority(Decimal("100"), 5) > priority(Decimal("5000"), None)
    assert priority(Decimal("500"), 60) > priority(Decimal("50"), 60)
    with pytest.raises(TypeError):
        priority(100.0, 3)
