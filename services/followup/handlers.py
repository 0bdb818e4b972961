"""Message handlers of the followup service: claim lifecycle projection, outcomes, denial work items."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from functools import partial

import asyncpg

from services.followup import cob_balances, patient_accounts
from services.followup import repository as repo
from services.followup.balances import ZERO
from services.followup.context import FollowupContext
from services.followup.domain.deadlines import (
    PayerPolicies,
    Submission,
    appeal_deadline,
    co29_recommendation,
    days_left,
    escalation,
    policy_for,
)
from services.followup.domain.denials import denial_actions_for_remittance
from services.followup.domain.missing_info import (
    FILL_ACTION,
    MISSING_INFORMATION,
    missing_fields,
    timely_filing_label,
)
from services.followup.domain.missing_info import label as missing_label
from services.followup.domain.priority import priority
from services.followup.parties import account_key, party_row
from shared import clock
from shared.claim_ids import claim_id_for
from shared.consumer import Handler
from shared.events import (
    ClaimAccepted,
    ClaimHeld,
    ClaimRejected,
    ClaimSubmitted,
    EncounterCoded,
    RemittanceHeld,
    RemittanceReceived,
    RemittanceReceivedPayload,
)
from shared.messaging import Emitter, Inbound
from shared.service import Runtime

TIMELY_FILING = "29"
TIMELY_FILING_HOLD = "timely filing"  # a late claim's hold: the category CO-29 gets
# Source key prefix of items for remittances of claims never seen submitted.
UNKNOWN_CLAIM = "unknown-claim:"


# The claim state each remittance outcome (decided by payments) leaves a claim in.
STATE_AFTER = {
    "paid": "paid",
    "partially_paid": "partially_paid",
    "denied": "denied",
    "reversed": "accepted",
}


def remittance_outcome(p: RemittanceReceivedPayload) -> str:
    """Followup's claim state after a remittance (raises ValueError without an outcome)."""
    return STATE_AFTER[p.decided_outcome()]


def make_handler(rt: Runtime[FollowupContext]) -> Handler:
    """Followup's batch handler, bound to the payer policies in force."""
    return partial(handle, policies=rt.context.policies)


async def handle(
    conn: asyncpg.Connection,
    items: list[Inbound],
    emitter: Emitter,
    *,
    policies: PayerPolicies | None = None,
) -> None:
    """Apply claim lifecycle events in a fixed order within the batch (submission before its outcomes)."""
    by_type: dict[type, list[Inbound]] = {}
    for i in items:
        by_type.setdefault(type(i.event), []).append(i)
    await on_coded(conn, by_type.get(EncounterCoded, []))
    fresh = await cob_balances.first_submissions(conn, by_type.get(ClaimSubmitted, []))
    replacing = await cob_balances.first_replacements(conn, by_type.get(ClaimSubmitted, []))
    await on_submitted(conn, by_type.get(ClaimSubmitted, []))
    await on_held(conn, by_type.get(ClaimHeld, []))
    await on_acks(conn, by_type.get(ClaimAccepted, []), by_type.get(ClaimRejected, []))
    late = await cob_balances.new_remittances(conn, by_type.get(RemittanceReceived, []))
    await on_remittances(conn, by_type.get(RemittanceReceived, []), policies)
    await cob_balances.follow_late_remittances(conn, late, fresh)
    await cob_balances.open_next_payer_claims(conn, fresh)  # a next payer's claim: a transfer
    await cob_balances.replace_next_payer_claims(conn, replacing)  # its replacement: too
    await on_remittances_held(conn, by_type.get(RemittanceHeld, []))
    await patient_accounts.apply(conn, by_type)  # what statements need (issue 21 item 4)


def work_item(
    *,
    source_key: str,
    claim_id: str,
    encounter_id: str,
    site_id: str,
    payer_id: str | None,
    category: str,
    action: str,
    label: str,
    amount: Decimal,
    deadline: date | None,
    today: date,
    group_code: str | None = None,
    carc: str | None = None,
    rarc: str = "[]",
    recommendation: str | None = None,
    evidence: str | None = None,
) -> repo.WorkItemRow:
    """A work item whose priority and escalation follow from its amount and days to ``deadline``."""
    left = days_left(deadline, today) if deadline else None
    return repo.WorkItemRow(
        source_key=source_key,
        claim_id=claim_id,
        encounter_id=encounter_id,
        site_id=site_id,
        payer_id=payer_id,
        category=category,
        action=action,
        label=label,
        group_code=group_code,
        carc=carc,
        rarc=rarc,
        amount=amount,
        deadline_date=deadline,
        priority=priority(amount, left),
        escalation=escalation(left),
        recommendation=recommendation,
        evidence=evidence,
    )


async def on_coded(conn: asyncpg.Connection, items: list[Inbound]) -> None:
    """Keep who the encounter is about (for 276 inquiries and statements); PHI stays in this table."""
    await repo.upsert_parties(conn, [party_row(i.event.payload.encounter) for i in items])
    await _redocumented_after_submission(conn, items)


async def _redocumented_after_submission(conn: asyncpg.Connection, items: list[Inbound]) -> None:
    """Newer documentation of an encounter whose claim already went out: billing never sends
    it again as an original, so a biller decides (a corrected claim, or nothing)."""
    newer = {
        claim_id_for(i.event.encounter_id): i
        for i in items
        if i.event.payload.encounter.document_version > 1
    }
    if not newer:
        return
    today = clock.today()
    work = []
    for claim_id, c in (await repo.claim_sites(conn, list(newer))).items():
        if c["state"] == "held" or c["submitted_at"] is None:
            continue  # billing rebuilds a claim not yet sent
        i = newer[claim_id]
        version = i.event.payload.encounter.document_version
        work.append(
            work_item(
                source_key=f"redocumented:{claim_id}:{version}",
                claim_id=claim_id,
                encounter_id=i.event.encounter_id,
                site_id=i.event.site_id,
                payer_id=c["payer_id"],
                category="corrected documentation after submission",
                action="review: correct the claim or close",
                label=f"Documentation version {version} arrived after the claim was submitted",
                amount=c["total_charge"],
                deadline=c["filing_deadline"],
                today=today,
            )
        )
    await repo.open_work_items(conn, work)


async def on_submitted(conn: asyncpg.Connection, items: list[Inbound]) -> None:
    """Project submitted claims with billing's filing deadline (an event without it raises
    ``ValueError``: DLQ); a replacement or void retires its original; unknown-claim items resolve."""
    # A held claim released (its data arrived): its hold items resolve themselves.
    known = await repo.claim_sites(conn, [i.event.payload.claim_id for i in items])
    rows, replaced = [], []
    for i in items:
        e = i.event
        p = e.payload
        g = p.guarantor
        rows.append(
            repo.SubmittedClaimRow(
                claim_id=p.claim_id,
                encounter_id=e.encounter_id,
                site_id=e.site_id,
                payer_id=p.payer_id,
                payer_name=p.payer_name,
                frequency_code=p.frequency_code,
                original_claim_id=p.original_claim_id,
                total_charge=p.total_charge,
                service_date=p.service_date,
                submitted_at=p.submitted_at,
                interchange_control_number=p.interchange_control_number,
                payer_claim_control_number=p.payer_claim_control_number,
                guarantor=g.model_dump_json() if g else None,
                lines=repo.dumps([ln.model_dump(mode="json") for ln in p.lines]),
                filing_indicator=p.filing_indicator,
                claim_type=p.claim_type,
                file_name=p.file_name,
                account_key=account_key(e.site_id, g.patient_id if g else None, e.encounter_id),
                payer_balance=ZERO if p.frequency_code == "8" else p.total_charge,
                filing_deadline=p.decided_filing_deadline(),
            )
        )
        if p.original_claim_id and p.frequency_code in ("7", "8"):
            replaced.append(p.original_claim_id)
    await repo.upsert_submitted(conn, rows)
    await repo.mark_replaced(conn, replaced, await cob_balances.next_payer_claims(conn, replaced))
    await repo.resolve_by_source(
        conn,
        [f"{UNKNOWN_CLAIM}{i.event.payload.claim_id}" for i in items],
        "claim submission arrived",
    )
    released = []
    for claim_id, c in known.items():
        if c["state"] == "held":
            holds = [w for w in await repo.work_items_of(conn, claim_id) if _is_hold(w)]
            released += _held_keys(claim_id, len(holds))
    await repo.resolve_by_source(conn, released, "claim released and submitted")


def _is_hold(w) -> bool:
    """A hold's item (``on_held``); a claim has items of these kinds only before it is sent."""
    return (
        w["category"] in (MISSING_INFORMATION, TIMELY_FILING_HOLD)
        or w["action"] == "correct and resubmit"
    )


def _held_keys(claim_id: str, n: int) -> list[str]:
    """Source keys of a claim's first ``n`` hold items (``held:C``, ``held:C:2``...)."""
    return [f"held:{claim_id}"] + [f"held:{claim_id}:{k}" for k in range(2, n + 1)] if n else []


async def on_held(conn: asyncpg.Connection, items: list[Inbound]) -> None:
    """A claim the scrubber held: its state, its encounter's outcome, a correction work item due
    by the filing deadline billing carried (an event without it raises ``ValueError``: DLQ)."""
    if not items:
        return
    today = clock.today()
    await repo.ensure_claims(
        conn,
        [
            repo.ClaimStub(i.event.payload.claim_id, i.event.encounter_id, i.event.site_id, "held")
            for i in items
        ],
    )
    await repo.set_state(conn, [(i.event.payload.claim_id, "held") for i in items])
    await repo.set_outcomes(
        conn,
        [
            repo.Outcome(i.event.encounter_id, i.event.site_id, i.event.payload.claim_id, "held")
            for i in items
        ],
    )
    work, superseded = [], []
    for i in items:
        p = i.event.payload
        fields = missing_fields(p.reasons)
        # A claim held again (the data that arrived still misses something) gets a new item
        # listing what is still missing; the earlier one is resolved.
        earlier = [w for w in await repo.work_items_of(conn, p.claim_id) if _is_hold(w)]
        superseded += _held_keys(p.claim_id, len(earlier))
        source_key = f"held:{p.claim_id}" + (f":{len(earlier) + 1}" if earlier else "")
        if fields:
            category, action, text = MISSING_INFORMATION, FILL_ACTION, missing_label(fields)
        elif (late := timely_filing_label(p.reasons)) is not None:
            # Every field is there but the visit is past the payer's filing limit: what a
            # biller does is a timely-filing write-off (or sending it with proof), not a fix.
            category, action, text = TIMELY_FILING_HOLD, "write off", late
        else:
            reasons = "; ".join(r.message for r in p.reasons)[:500]
            category, action = "missing/invalid information", "correct and resubmit"
            text = f"Claim held by scrubber: {reasons}"
        work.append(
            work_item(
                source_key=source_key,
                claim_id=p.claim_id,
                encounter_id=i.event.encounter_id,
                site_id=i.event.site_id,
                payer_id=p.payer_id,
                category=category,
                action=action,
                label=text,
                amount=p.total_charge,
                deadline=p.decided_filing_deadline(),  # billing's: it owns the filing limit
                today=today,
                evidence=json.dumps({"missing_fields": fields}) if fields else None,
            )
        )
    await repo.resolve_by_source(conn, superseded, "held again with what is still missing")
    await repo.open_work_items(conn, work)


async def on_remittances_held(conn: asyncpg.Connection, items: list[Inbound]) -> None:
    """Claim payments payments held for review (outside plausible bounds) become biller work
    items, one per held remittance, with payments' reason (amounts and ids only) as the text."""
    if not items:
        return
    today = clock.today()
    work = []
    for i in items:
        p = i.event.payload
        work.append(
            work_item(
                source_key=f"remit-held:{p.remittance_id}",
                claim_id=p.claim_id,
                encounter_id=i.event.encounter_id,
                site_id=i.event.site_id,
                payer_id=p.payer_id,
                category="payment review",
                action="review held payment",
                label=f"Payment held by posting: {p.reason}"[:500],
                amount=p.charge,
                deadline=None,
                today=today,
            )
        )
    await repo.open_work_items(conn, work)


async def on_acks(
    conn: asyncpg.Connection, accepted: list[Inbound], rejected: list[Inbound]
) -> None:
    """999/277CA answers into the status history; a rejection also opens a correction work item
    due by the claim's filing deadline (billing's)."""
    rows = [
        repo.ClaimStub(i.event.payload.claim_id, i.event.encounter_id, i.event.site_id, "submitted")
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
            repo.StatusRow(
                claim_id=a.claim_id,
                source=a.source,
                status_category=a.status_category,
                status_code=None,
                outcome=outcome,
                effective_date=None,
                payer_claim_control_number=a.payer_claim_control_number,
                file_name=a.file_name,
            )
            for outcome, group in (("accepted", accepted), ("rejected", rejected))
            for a in (i.event.payload for i in group)
        ],
    )
    if not rejected:
        return
    today = clock.today()
    await repo.set_state(conn, [(i.event.payload.claim_id, "rejected") for i in rejected])
    await repo.set_outcomes(
        conn,
        [
            repo.Outcome(
                i.event.encounter_id, i.event.site_id, i.event.payload.claim_id, "rejected"
            )
            for i in rejected
        ],
    )
    claims = await repo.claim_sites(conn, [i.event.payload.claim_id for i in rejected])
    work = []
    for i in rejected:
        p = i.event.payload
        c = claims.get(p.claim_id)
        amount = c["total_charge"] if c else Decimal(0)
        deadline = c["filing_deadline"] if c else None
        reasons = "; ".join(r.message for r in p.reasons)[:500] or "rejected"
        work.append(
            work_item(
                source_key=f"rejected:{p.claim_id}:{p.source}",
                claim_id=p.claim_id,
                encounter_id=i.event.encounter_id,
                site_id=i.event.site_id,
                payer_id=c["payer_id"] if c else None,
                category="missing/invalid information",
                action="correct and resubmit",
                label=f"Rejected ({p.source}): {reasons}",
                amount=amount,
                deadline=deadline,
                today=today,
            )
        )
    await repo.open_work_items(conn, work)


async def on_remittances(
    conn: asyncpg.Connection, items: list[Inbound], policies: PayerPolicies | None = None
) -> None:
    """Post remittance amounts to the projection and open one work item per actionable denial reason.

    The outcome, the balance changes and which adjustments are beyond the contract are
    payments' (carried on the event): an event without them raises ``ValueError`` and is
    dead-lettered rather than guessed at.

    A remittance for a claim whose submission followup has not seen opens an
    ``unclassified`` item; it resolves itself if the submission turns up (events of
    different topics may arrive out of order).
    """
    if not items:
        return
    today = clock.today()
    known = await repo.submitted_ids(conn, [i.event.payload.claim_id for i in items])
    await repo.ensure_claims(
        conn,
        [
            repo.ClaimStub(
                i.event.payload.claim_id, i.event.encounter_id, i.event.site_id, "submitted"
            )
            for i in items
        ],
    )
    new = await repo.record_remittances(
        conn,
        [
            repo.RemittanceRow(
                remittance_id=p.remittance_id,
                claim_id=p.claim_id,
                status_code=p.status_code,
                paid=p.paid,
                patient_responsibility=p.patient_responsibility,
                adjustments=repo.dumps([a.model_dump(mode="json") for a in p.adjustments]),
                remarks=repo.dumps(p.remarks),
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
        payer_delta, patient_delta = p.decided_balance_changes()  # as payments' ledger moved them
        amounts.append(
            repo.Amounts(
                claim_id=p.claim_id,
                paid=p.paid,
                contractual=contractual,
                other=other,
                patient_responsibility=p.patient_responsibility,
                state=state,
                payer_claim_control_number=p.payer_claim_control_number,
                payer_delta=payer_delta,
                patient_delta=patient_delta,
            )
        )
        if not p.is_reversal:
            outcomes.append(repo.Outcome(i.event.encounter_id, i.event.site_id, p.claim_id, state))
        if p.claim_id not in known:
            work.append(
                work_item(
                    source_key=f"{UNKNOWN_CLAIM}{p.claim_id}",
                    claim_id=p.claim_id,
                    encounter_id=i.event.encounter_id,
                    site_id=i.event.site_id,
                    payer_id=p.payer_id,
                    category="unclassified",
                    action="review",
                    label="Remittance for a claim with no submission on record",
                    amount=p.charge - p.paid,
                    deadline=None,
                    today=today,
                )
            )
        policy = policy_for(p.payer_id, None, policies)
        worked = denial_actions_for_remittance(
            p.decided_adjustments(), p.remarks, p.decided_outcome(), p.payer_id
        )
        for c in worked:
            deadline = appeal_deadline(policy, p.payment_date or today)
            amount = c.amount or Decimal(0)
            recommendation = evidence = None
            action = c.action
            if c.carc == TIMELY_FILING and c.group != "PR":
                finding = await _co29(conn, p.claim_id, p.payer_id)
                if finding is not None:
                    action = recommendation = finding.action
                    evidence = finding.evidence
            work.append(
                work_item(
                    source_key=f"denial:{p.remittance_id}:{c.group}-{c.carc}",
                    claim_id=p.claim_id,
                    encounter_id=i.event.encounter_id,
                    site_id=i.event.site_id,
                    payer_id=p.payer_id,
                    category=c.category,
                    action=action,
                    label=c.label,
                    group_code=c.group,
                    carc=c.carc,
                    rarc=repo.dumps(list(c.rarc)),
                    amount=amount,
                    deadline=deadline,
                    today=today,
                    recommendation=recommendation,
                    evidence=evidence,
                )
            )
    await repo.apply_amounts(conn, amounts)
    await repo.set_outcomes(conn, outcomes)
    await repo.open_work_items(conn, work)


async def _co29(conn: asyncpg.Connection, claim_id: str, payer_id: str):
    """Write-off (or appeal) recommendation for a CO-29 denial, with the submission evidence,
    against billing's filing deadline; None for a claim without one (or without a DOS)."""
    claim = await repo.get_claim(conn, claim_id)
    if claim is None or claim["service_date"] is None or claim["filing_deadline"] is None:
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
    return co29_recommendation(
        history, claim["service_date"], claim["filing_deadline"], payer_id or claim["payer_id"]
    )
