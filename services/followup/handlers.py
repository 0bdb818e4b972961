"""Message handlers of the followup service: claim lifecycle projection, outcomes, denial work items."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import asyncpg

from services.followup import repository as repo
from services.followup.domain.deadlines import (
    appeal_deadline,
    days_left,
    filing_deadline,
    policy_for,
)
from services.followup.domain.denials import denial_actions_for_remittance
from services.followup.domain.priority import priority
from shared.consumer import Handler
from shared.events import (
    ClaimAccepted,
    ClaimHeld,
    ClaimRejected,
    ClaimSubmitted,
    RemittanceReceived,
)
from shared.messaging import Emitter, Inbound
from shared.service import Runtime

CONTRACTUAL_CARCS = frozenset({"45", "253", "59", "94", "131"})


def remittance_outcome(p) -> str:
    if p.status_code == "4" or (p.paid == 0 and p.patient_responsibility == 0):
        return "denied"
    denied_part = sum((a.amount for a in p.adjustments if a.group != "PR" and a.reason not in CONTRACTUAL_CARCS), Decimal(0))
    return "partially_paid" if denied_part > 0 else "paid"


def make_handler(rt: Runtime) -> Handler:
    async def handle(conn: asyncpg.Connection, items: list[Inbound], emitter: Emitter) -> None:
        """Apply claim lifecycle events in a fixed order within the batch (submission before its outcomes)."""
        by_type: dict[type, list[Inbound]] = {}
        for i in items:
            by_type.setdefault(type(i.event), []).append(i)
        await on_submitted(conn, by_type.get(ClaimSubmitted, []))
        await on_held(conn, by_type.get(ClaimHeld, []))
        await on_acks(conn, by_type.get(ClaimAccepted, []), by_type.get(ClaimRejected, []))
        await on_remittances(conn, by_type.get(RemittanceReceived, []))

    return handle


async def on_submitted(conn, items: list[Inbound]) -> None:
    rows = []
    for i in items:
        e = i.event
        p = e.payload
        rows.append((p.claim_id, e.encounter_id, e.site_id, p.payer_id, p.payer_name, p.frequency_code,
                     p.original_claim_id, p.total_charge, p.service_date, p.submitted_at, p.interchange_control_number,
                     p.payer_claim_control_number, p.guarantor.model_dump_json() if p.guarantor else None,
                     repo.dumps([ln.model_dump(mode="json") for ln in p.lines])))  # fmt: skip
    await repo.upsert_submitted(conn, rows)


async def on_held(conn, items: list[Inbound]) -> None:
    if not items:
        return
    today = datetime.now(UTC).date()
    await repo.ensure_claims(conn, [(i.event.payload.claim_id, i.event.encounter_id, i.event.site_id, "held") for i in items])
    await repo.set_state(conn, [(i.event.payload.claim_id, "held") for i in items])
    await repo.set_outcomes(conn, [(i.event.encounter_id, i.event.site_id, i.event.payload.claim_id, "held") for i in items])
    work = []
    for i in items:
        p = i.event.payload
        deadline = filing_deadline(policy_for(p.payer_id or ""), p.service_date)
        reasons = "; ".join(r.message for r in p.reasons)[:500]
        work.append((f"held:{p.claim_id}", p.claim_id, i.event.encounter_id, i.event.site_id, p.payer_id,
                     "missing/invalid information", "correct and resubmit", f"Claim held by scrubber: {reasons}",
                     None, None, "[]", p.total_charge, deadline, priority(p.total_charge, days_left(deadline, today))))  # fmt: skip
    await repo.open_work_items(conn, work)


async def on_acks(conn, accepted: list[Inbound], rejected: list[Inbound]) -> None:
    rows = [(i.event.payload.claim_id, i.event.encounter_id, i.event.site_id, "submitted") for i in accepted + rejected]
    await repo.ensure_claims(conn, rows)
    await repo.set_state(conn, [(i.event.payload.claim_id, "accepted") for i in accepted], only_from=("submitted",))
    if not rejected:
        return
    today = datetime.now(UTC).date()
    await repo.set_state(conn, [(i.event.payload.claim_id, "rejected") for i in rejected])
    await repo.set_outcomes(conn, [(i.event.encounter_id, i.event.site_id, i.event.payload.claim_id, "rejected")
                                   for i in rejected])  # fmt: skip
    claims = await repo.claim_sites(conn, [i.event.payload.claim_id for i in rejected])
    work = []
    for i in rejected:
        p = i.event.payload
        c = claims.get(p.claim_id)
        amount = c["total_charge"] if c else Decimal(0)
        deadline = filing_deadline(policy_for(c["payer_id"] or ""), c["service_date"]) if c and c["service_date"] else None
        reasons = "; ".join(r.message for r in p.reasons)[:500] or "rejected"
        work.append((f"rejected:{p.claim_id}:{p.source}", p.claim_id, i.event.encounter_id, i.event.site_id,
                     c["payer_id"] if c else None, "missing/invalid information", "correct and resubmit",
                     f"Rejected ({p.source}): {reasons}", None, None, "[]", amount, deadline,
                     priority(amount, days_left(deadline, today) if deadline else None)))  # fmt: skip
    await repo.open_work_items(conn, work)


async def on_remittances(conn, items: list[Inbound]) -> None:
    if not items:
        return
    today = datetime.now(UTC).date()
    await repo.ensure_claims(conn, [(i.event.payload.claim_id, i.event.encounter_id, i.event.site_id, "submitted") for i in items])
    new = await repo.record_remittances(conn, [
        (p.remittance_id, p.claim_id, p.status_code, p.paid, p.patient_responsibility,
         repo.dumps([a.model_dump(mode="json") for a in p.adjustments]), repo.dumps(p.remarks))
        for p in (i.event.payload for i in items)
    ])  # fmt: skip
    amounts, outcomes, work = [], [], []
    for i in items:
        p = i.event.payload
        if p.remittance_id not in new:
            continue
        contractual = sum((a.amount for a in p.adjustments if a.group == "CO" and a.reason in CONTRACTUAL_CARCS), Decimal(0))
        other = sum((a.amount for a in p.adjustments if a.group != "PR"), Decimal(0)) - contractual
        state = "accepted" if p.is_reversal else remittance_outcome(p)
        amounts.append((p.claim_id, p.paid, contractual, other, p.patient_responsibility, state,
                        p.payer_claim_control_number))  # fmt: skip
        if not p.is_reversal:
            outcomes.append((i.event.encounter_id, i.event.site_id, p.claim_id, state))
        policy = policy_for(p.payer_id)
        for c in denial_actions_for_remittance(p.adjustments, p.remarks, p.status_code, p.payer_id):
            deadline = appeal_deadline(policy, p.payment_date or today)
            amount = c.amount or Decimal(0)
            work.append((f"denial:{p.remittance_id}:{c.group}-{c.carc}", p.claim_id, i.event.encounter_id,
                         i.event.site_id, p.payer_id, c.category, c.action, c.label, c.group, c.carc,
                         repo.dumps(list(c.rarc)), amount, deadline, priority(amount, days_left(deadline, today))))  # fmt: skip
    await repo.apply_amounts(conn, amounts)
    await repo.set_outcomes(conn, outcomes)
    await repo.open_work_items(conn, work)
