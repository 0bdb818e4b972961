"""Message handlers of the followup service: claim lifecycle projection, outcomes, denial work items."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import asyncpg

from services.followup import repository as repo
from services.followup.balances import ZERO, remittance_delta
from services.followup.domain.deadlines import (
    PayerPolicies,
    Submission,
    appeal_deadline,
    co29_recommendation,
    days_left,
    escalation,
    filing_deadline,
    policy_for,
)
from services.followup.domain.denials import denial_actions_for_remittance
from services.followup.domain.priority import priority
from services.followup.parties import account_key, party_row
from shared.consumer import Handler
from shared.events import (
    ClaimAccepted,
    ClaimHeld,
    ClaimRejected,
    ClaimSubmitted,
    EncounterCoded,
    RemittanceReceived,
)
from shared.messaging import Emitter, Inbound
from shared.service import Runtime

TIMELY_FILING = "29"
UNKNOWN_CLAIM = (
    "unknown-claim:"  # source key prefix of items for remittances of claims never seen submitted
)


# The claim state each remittance outcome (decided by payments) leaves a claim in.
STATE_AFTER = {
    "paid": "paid",
    "partially_paid": "partially_paid",
    "denied": "denied",
    "reversed": "accepted",
}


def remittance_outcome(p) -> str:
    """Followup's claim state after a remittance (raises ValueError without an outcome)."""
    return STATE_AFTER[p.decided_outcome()]


def make_handler(rt: Runtime) -> Handler:
    policies: PayerPolicies | None = rt.context.policies

    async def handle(conn: asyncpg.Connection, items: list[Inbound], emitter: Emitter) -> None:
        """Apply claim lifecycle events in a fixed order within the batch (submission before its outcomes)."""
        by_type: dict[type, list[Inbound]] = {}
        for i in items:
            by_type.setdefault(type(i.event), []).append(i)
        await on_coded(conn, by_type.get(EncounterCoded, []))
        await on_submitted(conn, by_type.get(ClaimSubmitted, []))
        await on_held(conn, by_type.get(ClaimHeld, []), policies)
        await on_acks(
            conn, by_type.get(ClaimAccepted, []), by_type.get(ClaimRejected, []), policies
        )
        await on_remittances(conn, by_type.get(RemittanceReceived, []), policies)

    return handle


def _work(
    key,
    claim_id,
    encounter_id,
    site_id,
    payer_id,
    category,
    action,
    label,
    group,
    carc,
    rarc_json,
    amount,
    deadline,
    today,
    recommendation=None,
    evidence=None,
) -> tuple:
    left = days_left(deadline, today) if deadline else None
    return (
        key,
        claim_id,
        encounter_id,
        site_id,
        payer_id,
        category,
        action,
        label,
        group,
        carc,
        rarc_json,
        amount,
        deadline,
        priority(amount, left),
        escalation(left),
        recommendation,
        evidence,
    )


async def on_coded(conn, items: list[Inbound]) -> None:
    """Keep who the encounter is about (for 276 inquiries and statements); PHI stays in this table."""
    await repo.upsert_parties(conn, [party_row(i.event.payload.encounter) for i in items])


async def on_submitted(conn, items: list[Inbound]) -> None:
    rows, replaced = [], []
    for i in items:
        e = i.event
        p = e.payload
        g = p.guarantor
        opening = ZERO if p.frequency_code == "8" else p.total_charge
        rows.append(
            (
                p.claim_id,
                e.encounter_id,
                e.site_id,
                p.payer_id,
                p.payer_name,
                p.frequency_code,
                p.original_claim_id,
                p.total_charge,
                p.service_date,
                p.submitted_at,
                p.interchange_control_number,
                p.payer_claim_control_number,
                g.model_dump_json() if g else None,
                repo.dumps([ln.model_dump(mode="json") for ln in p.lines]),
                p.filing_indicator,
                p.claim_type,
                p.file_name,
                account_key(e.site_id, g.patient_id if g else None, e.encounter_id),
                opening,
            )
        )
        if p.original_claim_id and p.frequency_code in ("7", "8"):
            replaced.append(p.original_claim_id)
    await repo.upsert_submitted(conn, rows)
    await repo.mark_replaced(conn, replaced)
    await repo.resolve_by_source(
        conn,
        [f"{UNKNOWN_CLAIM}{i.event.payload.claim_id}" for i in items],
        "claim submission arrived",
    )


async def on_held(conn, items: list[Inbound], policies: PayerPolicies | None = None) -> None:
    if not items:
        return
    today = datetime.now(UTC).date()
    await repo.ensure_claims(
        conn,
        [(i.event.payload.claim_id, i.event.encounter_id, i.event.site_id, "held") for i in items],
    )
    await repo.set_state(conn, [(i.event.payload.claim_id, "held") for i in items])
    await repo.set_outcomes(
        conn,
        [(i.event.encounter_id, i.event.site_id, i.event.payload.claim_id, "held") for i in items],
    )
    work = []
    for i in items:
        p = i.event.payload
        deadline = filing_deadline(policy_for(p.payer_id or "", None, policies), p.service_date)
        reasons = "; ".join(r.message for r in p.reasons)[:500]
        work.append(
            _work(
                f"held:{p.claim_id}",
                p.claim_id,
                i.event.encounter_id,
                i.event.site_id,
                p.payer_id,
                "missing/invalid information",
                "correct and resubmit",
                f"Claim held by scrubber: {reasons}",
                None,
                None,
                "[]",
                p.total_charge,
                deadline,
                today,
            )
        )
    await repo.open_work_items(conn, work)


async def on_acks(
    conn, accepted: list[Inbound], rejected: list[Inbound], policies: PayerPolicies | None = None
) -> None:
    rows = [
        (i.event.payload.claim_id, i.event.encounter_id, i.event.site_id, "submitted")
        for i in accepted + rejected
    ]
    await repo.ensure_claims(conn, rows)
    await repo.set_state(
        conn, [(i.event.payload.claim_id, "accepted") for i in accepted], only_from=("submitted",)
    )
    await repo.set_acknowledged(conn, [i.event.payload.claim_id for i in accepted])
    await repo.record_status(
        conn,
        [
            (
                a.claim_id,
                a.source,
                a.status_category,
                None,
                outcome,
                None,
                a.payer_claim_control_number,
                a.file_name,
            )
            for outcome, group in (("accepted", accepted), ("rejected", rejected))
            for a in (i.event.payload for i in group)
        ],
    )
    if not rejected:
        return
    today = datetime.now(UTC).date()
    await repo.set_state(conn, [(i.event.payload.claim_id, "rejected") for i in rejected])
    await repo.set_outcomes(
        conn,
        [
            (i.event.encounter_id, i.event.site_id, i.event.payload.claim_id, "rejected")
            for i in rejected
        ],
    )
    claims = await repo.claim_sites(conn, [i.event.payload.claim_id for i in rejected])
    work = []
    for i in rejected:
        p = i.event.payload
        c = claims.get(p.claim_id)
        amount = c["total_charge"] if c else Decimal(0)
        deadline = None
        if c and c["service_date"]:
            deadline = filing_deadline(
                policy_for(c["payer_id"] or "", c["filing_indicator"], policies), c["service_date"]
            )
        reasons = "; ".join(r.message for r in p.reasons)[:500] or "rejected"
        work.append(
            _work(
                f"rejected:{p.claim_id}:{p.source}",
                p.claim_id,
                i.event.encounter_id,
                i.event.site_id,
                c["payer_id"] if c else None,
                "missing/invalid information",
                "correct and resubmit",
                f"Rejected ({p.source}): {reasons}",
                None,
                None,
                "[]",
                amount,
                deadline,
                today,
            )
        )
    await repo.open_work_items(conn, work)


async def on_remittances(conn, items: list[Inbound], policies: PayerPolicies | None = None) -> None:
    """Post remittance amounts to the projection and open one work item per actionable denial reason.

    A remittance for a claim whose submission followup has not seen opens an
    ``unclassified`` item; it resolves itself if the submission turns up (events of
    different topics may arrive out of order).
    """
    if not items:
        return
    today = datetime.now(UTC).date()
    known = await repo.submitted_ids(conn, [i.event.payload.claim_id for i in items])
    await repo.ensure_claims(
        conn,
        [
            (i.event.payload.claim_id, i.event.encounter_id, i.event.site_id, "submitted")
            for i in items
        ],
    )
    new = await repo.record_remittances(
        conn,
        [
            (
                p.remittance_id,
                p.claim_id,
                p.status_code,
                p.paid,
                p.patient_responsibility,
                repo.dumps([a.model_dump(mode="json") for a in p.adjustments]),
                repo.dumps(p.remarks),
            )
            for p in (i.event.payload for i in items)
        ],
    )
    amounts, outcomes, work = [], [], []
    for i in items:
        p = i.event.payload
        if p.remittance_id not in new:
            continue
        contractual = p.contractual_adjustment or Decimal(0)
        other = sum((a.amount for a in p.adjustments if a.group != "PR"), Decimal(0)) - contractual
        state = remittance_outcome(p)
        delta = remittance_delta(p.status_code, p.paid, p.adjustments)
        amounts.append(
            (
                p.claim_id,
                p.paid,
                contractual,
                other,
                p.patient_responsibility,
                state,
                p.payer_claim_control_number,
                delta.payer,
                delta.patient,
            )
        )
        if not p.is_reversal:
            outcomes.append((i.event.encounter_id, i.event.site_id, p.claim_id, state))
        if p.claim_id not in known:
            work.append(
                _work(
                    f"{UNKNOWN_CLAIM}{p.claim_id}",
                    p.claim_id,
                    i.event.encounter_id,
                    i.event.site_id,
                    p.payer_id,
                    "unclassified",
                    "review",
                    "Remittance for a claim with no submission on record",
                    None,
                    None,
                    "[]",
                    p.charge - p.paid,
                    None,
                    today,
                )
            )
        policy = policy_for(p.payer_id, None, policies)
        for c in denial_actions_for_remittance(p.adjustments, p.remarks, p.status_code, p.payer_id):
            deadline = appeal_deadline(policy, p.payment_date or today)
            amount = c.amount or Decimal(0)
            recommendation = evidence = None
            action = c.action
            if c.carc == TIMELY_FILING and c.group != "PR":
                finding = await _co29(conn, p.claim_id, p.payer_id, policies)
                if finding is not None:
                    action = recommendation = finding.action
                    evidence = finding.evidence
            work.append(
                _work(
                    f"denial:{p.remittance_id}:{c.group}-{c.carc}",
                    p.claim_id,
                    i.event.encounter_id,
                    i.event.site_id,
                    p.payer_id,
                    c.category,
                    action,
                    c.label,
                    c.group,
                    c.carc,
                    repo.dumps(list(c.rarc)),
                    amount,
                    deadline,
                    today,
                    recommendation,
                    evidence,
                )
            )
    await repo.apply_amounts(conn, amounts)
    await repo.set_outcomes(conn, outcomes)
    await repo.open_work_items(conn, work)


async def _co29(conn, claim_id: str, payer_id: str, policies: PayerPolicies | None):
    """Write-off (or appeal) recommendation for a CO-29 denial, with the submission evidence; None without a DOS."""
    claim = await repo.get_claim(conn, claim_id)
    if claim is None or claim["service_date"] is None:
        return None
    history = [
        Submission(
            r["claim_id"],
            r["submitted_at"],
            r["interchange_control_number"],
            r["file_name"],
            True if r["acknowledged_at"] else (False if r["state"] == "rejected" else None),
        )
        for r in await repo.submission_history(conn, claim_id)
    ]
    policy = policy_for(payer_id or claim["payer_id"] or "", claim["filing_indicator"], policies)
    return co29_recommendation(history, claim["service_date"], policy)
