"""What intake does with an eligibility answer (pure: no I/O).

``judge`` turns one 271 result (or none: the payer never answered) into the next step:
answered (active, inactive or unknown coverage), retry later with backoff (AAA 42 payer
unable to respond, AAA 80 or no 271), rejected with a registration or review work item
(AAA 72, 73, 75, ...: the same request would get the same answer), or given up once the
attempts are spent. ``summarize`` is the PHI-free summary billing and estimates read;
``attach`` puts the summaries on an encounter's coverages.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Literal

from shared.events import Coverage, EligibilitySummary, Encounter

from .codes import REJECT_REASONS
from .model import EligibilityResult

State = Literal["answered", "retry", "rejected", "gave_up"]
WorkKind = Literal["registration", "review"]
# A check in one of these states has had its final word until it is no longer fresh.
SETTLED = frozenset({"answered", "rejected", "gave_up"})
NO_RESPONSE = "80"  # AAA03 "no response received": what a 270 with no 271 counts as
HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base: timedelta
    cap: timedelta
    max_attempts: int

    def backoff(self, attempt: int) -> timedelta:
        """The wait after the ``attempt``-th 270 went unanswered: base, 2 x base, 4 x base, ...
        up to ``cap``."""
        return min(self.base * (2 ** max(attempt - 1, 0)), self.cap)


@dataclass(frozen=True, slots=True)
class Judgement:
    state: State
    outcome: str  # active, inactive, unknown, rejected, no_response
    summary: EligibilitySummary
    reason_code: str | None = None  # AAA03
    reason: str | None = None  # AAA03 described
    work_item: WorkKind | None = None
    retry_in: timedelta | None = None


def coverage_key(site_id: str, patient_id: str | None, cov: Coverage, service_date: date) -> str:
    """The identity of a coverage on a date of service, for reusing a fresh result: a hash
    (the inputs are PHI), so a corrected member id or another date asks again."""
    basis = "|".join(
        (
            site_id,
            patient_id or "",
            cov.payer_id,
            cov.member_id or "",
            cov.relationship,
            service_date.isoformat(),
        )
    )
    return hashlib.sha256(basis.encode()).hexdigest()[:32]


def unverified() -> EligibilitySummary:
    return EligibilitySummary(status="unverified")


def summarize(result: EligibilityResult, checked_on: date) -> EligibilitySummary:
    """The summary of an answered check: status, plan, group, the primary payer another
    2120 loop names, and the in-network individual amounts an estimate needs."""
    status = {"active": "active", "inactive": "inactive"}.get(result.status, "unverified")
    share = result.cost_share(in_network=True)
    prp = result.other_primary_payer
    percent = None if share.coinsurance is None else (share.coinsurance * HUNDRED).normalize()
    if percent is not None and percent == percent.to_integral_value():
        percent = percent.quantize(Decimal(1))  # 20, not 2E+1
    return EligibilitySummary(
        status=status,  # type: ignore[arg-type]
        checked_on=checked_on,
        plan=result.plan_name or result.plan_number,
        group=result.group_number,
        other_primary_payer=prp.name if prp else None,
        other_primary_payer_id=prp.identifier if prp else None,
        copay=share.copay,
        coinsurance_percent=percent,
        deductible_remaining=share.deductible_remaining,
        out_of_pocket_remaining=share.out_of_pocket_remaining,
    )


def judge(
    result: EligibilityResult | None, attempt: int, policy: RetryPolicy, checked_on: date
) -> Judgement:
    """The next step for a check whose ``attempt``-th 270 got ``result`` (None: no 271)."""
    if result is None or (result.status == "rejected" and result.actions() == ("retry",)):
        code = NO_RESPONSE
        if result is not None:
            code = next(r.reason for r in result.rejections if r.action == "retry")
        reason = REJECT_REASONS.get(code, ("", ""))[0]
        if attempt >= policy.max_attempts:
            return Judgement(
                "gave_up",
                "no_response" if result is None else "rejected",
                unverified(),
                code,
                f"{reason}; no answer after {attempt} attempts",
                "review",
            )
        return Judgement(
            "retry",
            "no_response" if result is None else "rejected",
            unverified(),
            code,
            reason,
            retry_in=policy.backoff(attempt),
        )
    if result.status == "rejected":
        first = (result.actions() or ("review",))[0]
        chosen = next((r for r in result.rejections if r.action == first), None)
        kind: WorkKind = "registration" if first == "registration" else "review"
        code = chosen.reason if chosen else "--"
        reason = chosen.description if chosen else "rejected without a reason code"
        return Judgement("rejected", "rejected", unverified(), code, reason, kind)
    return Judgement("answered", result.status, summarize(result, checked_on))


def work_item_message(kind: WorkKind, reason_code: str, reason: str, payer: str, seq: str) -> str:
    """What the work item says: the coverage, the payer and the problem, never a value."""
    what = (
        "correct the patient's or subscriber's insurance details, then check again"
        if kind == "registration"
        else "review the request with the payer, then check again"
    )
    return f"{payer} ({seq} coverage) answered AAA {reason_code} '{reason}': {what}"[:500]


def attach(enc: Encounter, summaries: Mapping[str, EligibilitySummary | None]) -> Encounter:
    """``enc`` with each coverage's summary (by sequence); coverages not named keep theirs."""
    coverages = [
        c.model_copy(update={"eligibility": summaries[c.sequence]})
        if c.sequence in summaries
        else c
        for c in enc.coverages
    ]
    return enc.model_copy(update={"coverages": coverages})


# --------------------------------------------------------------------------- scheduled visits

# Appointment statuses (FHIR R4) of a visit that is going to happen: the ones worth a 270.
SCHEDULED = frozenset({"booked", "arrived", "checked-in"})
CHECKED_IN = frozenset({"arrived", "checked-in"})
IN_FLIGHT = frozenset({"sent", "retry"})  # a 270 out, or its retry due: its answer is coming


def is_fresh(
    state: str | None, answered_at: datetime | None, now: datetime, fresh_for: timedelta
) -> bool:
    """A check whose answer may be reused: settled by the payer (answered, or rejected for
    good) less than ``fresh_for`` ago. Given-up checks never are: the payer never answered."""
    if state is None or state not in SETTLED or state == "gave_up" or answered_at is None:
        return False
    return now - answered_at < fresh_for


def needs_asking(
    state: str | None, answered_at: datetime | None, now: datetime, fresh_for: timedelta
) -> bool:
    """Whether a coverage whose newest check is (``state``, ``answered_at``) needs a 270 now:
    not when its answer is fresh, nor while one is on its way (sent, or a retry due)."""
    if state in IN_FLIGHT:
        return False
    return not is_fresh(state, answered_at, now, fresh_for)


def in_batch_window(service_date: date, today: date, days: int) -> bool:
    """A visit the batch pass asks about: from today up to ``days`` days ahead (0: the batch
    is off). A visit in the past is for the encounter, not the batch."""
    return days > 0 and 0 <= (service_date - today).days <= days


def checks_in(previous: str | None, status: str) -> bool:
    """An appointment update that checks the patient in (booked, or new, to arrived or
    checked-in); arrived to checked-in is the same visit checking in, not a second time."""
    return status in CHECKED_IN and previous not in CHECKED_IN
