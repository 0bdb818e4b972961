"""A new work item's priority and escalation follow from its amount and the days to its deadline."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from services.followup.domain.priority import priority
from services.followup.handlers import work_item

TODAY = date(2026, 3, 2)


def _item(amount: str, deadline: date | None):
    return work_item(
        source_key="denial:R1:CO-50",
        claim_id="C1",
        encounter_id="E1",
        site_id="s1",
        payer_id="AETNA1",
        category="medical necessity",
        action="appeal",
        label="Not medically necessary",
        amount=Decimal(amount),
        deadline=deadline,
        today=TODAY,
        group_code="CO",
        carc="50",
    )


def test_a_near_deadline_is_urgent_and_ranks_above_a_far_one():
    near = _item("400.00", TODAY + timedelta(days=10))
    far = _item("400.00", TODAY + timedelta(days=120))
    assert (near.deadline_date, near.escalation) == (TODAY + timedelta(days=10), "urgent")
    assert near.priority == priority(Decimal("400.00"), 10) > far.priority
    assert (far.escalation, far.recommendation, far.evidence) == ("normal", None, None)


def test_without_a_deadline_only_the_amount_counts():
    row = _item("100.00", None)
    assert (row.deadline_date, row.escalation, row.priority) == (None, "normal", 100)
    assert (row.group_code, row.carc, row.rarc) == ("CO", "50", "[]")


def test_a_passed_deadline_is_overdue():
    assert _item("10.00", TODAY - timedelta(days=1)).escalation == "overdue"


def test_a_remittance_without_payments_balance_changes_is_refused_not_rederived():
    """Followup has no posting rules of its own: an event without the ledger's changes is a
    permanent error (dead-lettered), like one without an outcome."""
    import pytest

    from shared.events import RemittanceReceivedPayload

    payload = RemittanceReceivedPayload(
        remittance_id="P1:T1:1",
        claim_id="C1",
        patient_control_number="C1",
        payer_id="P1",
        status_code="1",
        charge=Decimal("100.00"),
        paid=Decimal("80.00"),
        patient_responsibility=Decimal("20.00"),
        outcome="paid",
        payer_balance_change=Decimal("-100.00"),
        patient_balance_change=Decimal("20.00"),
    )
    assert payload.decided_balance_changes() == (Decimal("-100.00"), Decimal("20.00"))
    with pytest.raises(ValueError, match="balance_change"):
        payload.model_copy(update={"patient_balance_change": None}).decided_balance_changes()


def test_a_remittance_without_payments_contract_decision_is_refused_not_reclassified():
    """Which adjustments are beyond the contract is payments' call (its CARC table): followup
    dead-letters an event whose adjustments lack it rather than judging them with its own list."""
    import pytest

    from shared.events import Adjustment, RemittanceReceivedPayload

    decided = Adjustment(group="CO", reason="50", amount=Decimal("20.00"), beyond_contract=True)
    payload = RemittanceReceivedPayload(
        remittance_id="P1:T1:1",
        claim_id="C1",
        patient_control_number="C1",
        payer_id="P1",
        status_code="1",
        charge=Decimal("100.00"),
        paid=Decimal("80.00"),
        patient_responsibility=Decimal("0.00"),
        adjustments=[decided],
        outcome="partially_paid",
    )
    assert payload.decided_adjustments() == [decided]
    undecided = decided.model_copy(update={"beyond_contract": None})
    with pytest.raises(ValueError, match="beyond_contract"):
        payload.model_copy(update={"adjustments": [decided, undecided]}).decided_adjustments()
