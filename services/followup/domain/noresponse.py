"""Claims the payer has not answered: no 277CA after N days, no 835 after M days.

Each becomes a work item (and a line of the next 276 status inquiry) with the
claim's filing deadline attached (billing's, carried on claim.submitted): a claim
the payer never received must be resubmitted before that deadline.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

from .deadlines import Escalation, PayerPolicies, days_left, escalation, policy_for
from .priority import priority

REINQUIRY_DAYS = 14  # wait this long for a 277 before asking about the same claim again


@dataclass(frozen=True, slots=True)
class ClaimTrack:
    """What followup knows about one submitted claim (from billing/payments events)."""

    claim_id: str
    payer_id: str
    service_date: date
    submitted_on: date
    total_charge: Decimal
    filing_indicator: str | None = None
    acknowledged_on: date | None = None  # 277CA accepted
    remitted_on: date | None = None  # 835 claim payment received
    last_inquiry_on: date | None = None  # last 276 sent
    filing_deadline: date | None = None  # billing's; None for claims projected before it


@dataclass(frozen=True, slots=True)
class NoResponse:
    claim_id: str
    payer_id: str
    reason: Literal["no_277ca", "no_835"]
    days_waiting: int
    threshold_days: int
    filing_deadline: date | None
    days_to_filing_deadline: int | None
    escalation: Escalation
    priority: int


def find_no_response(
    claims: Iterable[ClaimTrack],
    as_of: date,
    policies: PayerPolicies | None = None,
    reinquiry_days: int = REINQUIRY_DAYS,
) -> list[NoResponse]:
    """Claims overdue for an acknowledgment or a remittance, highest priority first.

    A claim with an 835 is answered. Without a 277CA after the payer's
    ``no_ack_days`` it is ``no_277ca`` (the payer may never have received it);
    otherwise without an 835 after ``no_payment_days`` it is ``no_835``. Claims
    asked about (276) within ``reinquiry_days`` are skipped.
    """
    out = []
    for c in claims:
        if c.remitted_on is not None:
            continue
        if c.last_inquiry_on and (as_of - c.last_inquiry_on).days < reinquiry_days:
            continue
        policy = policy_for(c.payer_id, c.filing_indicator, policies)
        waiting = (as_of - c.submitted_on).days
        if c.acknowledged_on is None and waiting >= policy.no_ack_days:
            reason, threshold = "no_277ca", policy.no_ack_days
        elif waiting >= policy.no_payment_days:
            reason, threshold = "no_835", policy.no_payment_days
        else:
            continue
        deadline = c.filing_deadline
        left = days_left(deadline, as_of) if deadline else None
        out.append(
            NoResponse(
                c.claim_id,
                c.payer_id,
                reason,
                waiting,
                threshold,
                deadline,
                left,
                escalation(left),
                priority(c.total_charge, left),
            )
        )
    out.sort(key=lambda n: (-n.priority, n.claim_id))
    return out
