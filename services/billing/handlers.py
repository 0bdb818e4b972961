"""Message handlers of the billing service.

encounter.coded -> price + scrub -> held (work item, claim.held) or batched into
837 files per claim type (any mix of payers) -> claim.submitted (``submission``).
Corrections from followup become frequency 7/8 claims linked to the original.
Remittances move the claim state machine on (paid / partially paid / denied).
"""

from __future__ import annotations

from functools import partial

import asyncpg

from services.billing import repository as repo
from services.billing.cob_flow import after_remittances, correct_next_payer_claim
from services.billing.context import BillingContext
from services.billing.domain.claim import build_claim
from services.billing.estimates import record_estimates, record_remittances
from services.billing.release import split_coded
from services.billing.submission import Candidate, bill
from shared.claim_ids import claim_id_for
from shared.consumer import Handler
from shared.events import (
    CorrectionRequested,
    EncounterCoded,
    EncounterCodedPayload,
    RemittanceReceived,
    RemittanceReceivedPayload,
)
from shared.messaging import Emitter, Inbound
from shared.service import Runtime

# The claim state each remittance outcome (decided by payments) leaves a claim in; a
# reversal reopens it for the corrected payment.
CLAIM_STATUS_AFTER = {
    "paid": "paid",
    "partially_paid": "partially_paid",
    "denied": "denied",
    "reversed": "accepted",
}


def remittance_status(p: RemittanceReceivedPayload) -> str:
    """Claim state after a remittance (raises ValueError for an event without an outcome)."""
    return CLAIM_STATUS_AFTER[p.decided_outcome()]


def make_handler(rt: Runtime[BillingContext]) -> Handler:
    """Billing's batch handler, bound to the service's context."""
    return partial(handle, ctx=rt.context)


async def handle(
    conn: asyncpg.Connection, items: list[Inbound], emitter: Emitter, *, ctx: BillingContext
) -> None:
    """Apply one batch in the caller's transaction: new claims, then corrections, then remittances."""
    coded = [i for i in items if isinstance(i.event, EncounterCoded)]
    corrections = [i for i in items if isinstance(i.event, CorrectionRequested)]
    remits = [i for i in items if isinstance(i.event, RemittanceReceived)]
    if coded:
        await on_coded(conn, coded, emitter, ctx)
    if corrections:
        await on_corrections(conn, corrections, emitter, ctx)
    if remits:
        await on_remittances(conn, remits)
        await after_remittances(conn, remits, emitter, ctx)


async def on_coded(
    conn: asyncpg.Connection, items: list[Inbound], emitter: Emitter, ctx: BillingContext
) -> None:
    """Create one original claim per coded encounter and route it to hold or submission; a
    newer document version of an encounter already billed rebuilds its claim (``release``)."""
    candidates = []
    for item in await split_coded(conn, items, emitter, ctx):
        payload: EncounterCodedPayload = item.event.payload
        enc = payload.encounter
        claim = build_claim(
            payload,
            claim_id=claim_id_for(enc.encounter_id),
            chargemaster=await ctx.chargemaster(conn, enc.site_id),
        )
        candidates.append(Candidate(claim, payload, item))
    await bill(conn, candidates, emitter, ctx)
    await record_estimates(conn, [(c.claim, c.coded) for c in candidates])


async def on_corrections(
    conn: asyncpg.Connection, items: list[Inbound], emitter: Emitter, ctx: BillingContext
) -> None:
    """Replacement (7) or void (8) claims carrying the payer's claim control number.

    Raises ``LookupError`` for a correction of a claim billing never made (dead-lettered).
    """
    candidates = []
    for item in items:
        req = item.event.payload
        originals = await repo.get_claims(conn, [req.claim_id])
        original = originals.get(req.claim_id)
        if original is None:
            raise LookupError(f"correction for unknown claim {req.claim_id}")
        payload = EncounterCodedPayload.model_validate_json(original["coded"])
        if req.diagnoses is not None or req.procedures is not None:
            payload = payload.model_copy(
                update={
                    "diagnoses": req.diagnoses or payload.diagnoses,
                    "procedures": req.procedures or payload.procedures,
                }
            )
        if original["cob_sequence"] != "primary" and original["primary_claim_id"]:
            # A later payer's claim is rebuilt from the prior payers' decisions, to its payer.
            why = {"reason": req.reason, "by": req.requested_by}
            await correct_next_payer_claim(
                conn, item, original, payload, req.frequency_code, why, emitter, ctx
            )
            continue
        n = await repo.corrections_of(conn, req.claim_id)
        claim = build_claim(
            payload,
            claim_id=claim_id_for(original["encounter_id"], req.frequency_code, req.claim_id, n),
            chargemaster=await ctx.chargemaster(conn, original["site_id"]),
            frequency_code=req.frequency_code,
            original_claim_id=req.claim_id,
            payer_claim_control_number=original["payer_claim_control_number"],
        )
        candidates.append(Candidate(claim, payload, item))
        await repo.set_status(
            conn,
            [
                repo.StatusChange(
                    req.claim_id,
                    "corrected" if req.frequency_code == "7" else "voided",
                    {"reason": req.reason, "by": req.requested_by, "replacement": claim.claim_id},
                )
            ],
        )
    await bill(conn, candidates, emitter, ctx)


async def on_remittances(conn: asyncpg.Connection, items: list[Inbound]) -> None:
    """Move each remitted claim to the state its outcome (decided by payments) leaves it in."""
    changes = []
    for item in items:
        p = item.event.payload
        detail = {
            "remittance_id": p.remittance_id,
            "paid": str(p.paid),
            "status_code": p.status_code,
        }
        changes.append(
            repo.RemittanceChange(
                p.claim_id, remittance_status(p), detail, p.payer_claim_control_number
            )
        )
    await repo.apply_remittances(conn, changes)
    await record_remittances(conn, [(i.event.encounter_id, i.event.payload) for i in items])
