"""Message handlers of the billing service.

encounter.coded -> price + scrub -> held (work item, claim.held) or batched into
837 files per claim type (any mix of payers) -> claim.submitted. Corrections from followup
become frequency 7/8 claims linked to the original. Remittances move the claim
state machine on (paid / partially paid / denied).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from datetime import UTC, datetime

import asyncpg

from services.billing import repository as repo
from services.billing.context import BillingContext
from services.billing.domain.claim import Claim, build_claim
from services.billing.domain.scrubber import scrub
from services.billing.domain.x12_837 import build_837, unwritable_reason
from shared import icd10cm
from shared.consumer import Handler
from shared.events import (
    ClaimHeld,
    ClaimHeldPayload,
    ClaimSubmitted,
    ClaimSubmittedPayload,
    CorrectionRequested,
    EncounterCoded,
    EncounterCodedPayload,
    Reason,
    RemittanceReceived,
)
from shared.mailbox import add_outbound
from shared.messaging import Emitter, Inbound
from shared.service import Runtime
from shared.telemetry import tracer


def claim_id_for(
    encounter_id: str, frequency_code: str = "1", original: str | None = None, n: int = 0
) -> str:
    """Stable patient control number: the same encounter always gets the same claim id."""
    basis = encounter_id if frequency_code == "1" else f"{original}:{frequency_code}:{n}"
    return "C" + hashlib.sha256(basis.encode()).hexdigest()[:15].upper()


# The claim state each remittance outcome (decided by payments) leaves a claim in; a
# reversal reopens it for the corrected payment.
CLAIM_STATUS_AFTER = {
    "paid": "paid",
    "partially_paid": "partially_paid",
    "denied": "denied",
    "reversed": "accepted",
}


def remittance_status(p) -> str:
    """Claim state after a remittance (raises ValueError for an event without an outcome)."""
    return CLAIM_STATUS_AFTER[p.decided_outcome()]


def make_handler(rt: Runtime) -> Handler:
    ctx: BillingContext = rt.context

    async def handle(conn: asyncpg.Connection, items: list[Inbound], emitter: Emitter) -> None:
        coded = [i for i in items if isinstance(i.event, EncounterCoded)]
        corrections = [i for i in items if isinstance(i.event, CorrectionRequested)]
        remits = [i for i in items if isinstance(i.event, RemittanceReceived)]
        if coded:
            await on_coded(conn, coded, emitter)
        if corrections:
            await on_corrections(conn, corrections, emitter)
        if remits:
            await on_remittances(conn, remits)

    async def on_coded(conn, items: list[Inbound], emitter: Emitter) -> None:
        """Create one original claim per coded encounter and route it to hold or submission."""
        candidates = []
        for item in items:
            payload: EncounterCodedPayload = item.event.payload
            enc = payload.encounter
            claim = build_claim(
                payload,
                claim_id=claim_id_for(enc.encounter_id),
                chargemaster=await ctx.chargemaster(conn, enc.site_id),
            )
            candidates.append((claim, payload, item))
        await bill(conn, candidates, emitter)

    async def on_corrections(conn, items: list[Inbound], emitter: Emitter) -> None:
        """Replacement (7) or void (8) claims carrying the payer's claim control number."""
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
            n = await repo.corrections_of(conn, req.claim_id)
            claim = build_claim(
                payload,
                claim_id=claim_id_for(
                    original["encounter_id"], req.frequency_code, req.claim_id, n
                ),
                chargemaster=await ctx.chargemaster(conn, original["site_id"]),
                frequency_code=req.frequency_code,
                original_claim_id=req.claim_id,
                payer_claim_control_number=original["payer_claim_control_number"],
            )
            candidates.append((claim, payload, item))
            await repo.set_status(
                conn,
                [
                    (
                        req.claim_id,
                        "corrected" if req.frequency_code == "7" else "voided",
                        {
                            "reason": req.reason,
                            "by": req.requested_by,
                            "replacement": claim.claim_id,
                        },
                    )
                ],
            )
        await bill(conn, candidates, emitter)

    async def bill(
        conn, candidates: list[tuple[Claim, EncounterCodedPayload, Inbound]], emitter: Emitter
    ) -> None:
        today = datetime.now(UTC).date()
        rows = [
            (
                c.claim_id,
                c.encounter_id,
                c.site_id,
                c.payer.payer_id if c.payer else None,
                c.claim_type,
                c.frequency_code,
                c.original_claim_id,
                c.payer_claim_control_number,
                c.total_charge,
                c.service_date,
                p.model_dump_json(),
                i.traceparent,
            )
            for c, p, i in candidates
        ]
        new = await repo.insert_claims(conn, rows)
        held, clean = [], []
        for claim, _, item in candidates:
            if claim.claim_id not in new:
                continue  # this encounter already has its claim
            findings = scrub(
                claim,
                is_billable=icd10cm.is_billable_on,
                payer_rules=ctx.payer_rules,
                ncci=ctx.ncci,
                as_of=today,
            )
            (held if findings else clean).append((claim, item, findings))
        await hold(conn, held, emitter)
        await submit(conn, clean, emitter)

    async def hold(conn, held, emitter: Emitter) -> None:
        if not held:
            return
        await repo.set_status(
            conn,
            [(c.claim_id, "held", {"reasons": [r.model_dump() for r in f]}) for c, _, f in held],
        )
        await repo.open_work_items(
            conn,
            [
                (c.claim_id, c.site_id, "scrub_hold", json.dumps([r.model_dump() for r in f]))
                for c, _, f in held
            ],
        )
        for c, item, findings in held:
            emitter.emit(
                ClaimHeld(
                    site_id=c.site_id,
                    encounter_id=c.encounter_id,
                    payload=ClaimHeldPayload(
                        claim_id=c.claim_id,
                        payer_id=c.payer.payer_id if c.payer else None,
                        total_charge=c.total_charge,
                        service_date=c.service_date,
                        reasons=findings,
                    ),
                ),
                cause=item,
            )

    async def submit(conn, clean, emitter: Emitter) -> None:
        # One 837 per claim type (837P and 837I follow different guides), whatever the payers:
        # the clearinghouse splits a submission by payer (each claim names its payer in
        # 2010BB). A file per payer multiplied files, acknowledgements and mailbox passes.
        groups: dict[str, list] = defaultdict(list)
        for entry in clean:
            groups[entry[0].claim_type].append(entry)
        now = datetime.now(UTC)
        for claim_type, entries in groups.items():
            for start in range(0, len(entries), ctx.max_claims_per_file):
                chunk = entries[start : start + ctx.max_claims_per_file]
                ok, bad = _buildable(chunk)
                await hold(conn, bad, emitter)
                if ok:
                    await _write_file(conn, claim_type, ok, now, emitter)

    def _buildable(chunk):
        """Claims an 837 can be written for; the rest are held with the writer's reason."""
        ok, bad = [], []
        for entry in chunk:
            reason = unwritable_reason(entry[0])
            if reason is None:
                ok.append(entry)
            else:
                bad.append((entry[0], entry[1], [Reason(code="X12_BUILD", message=reason[:300])]))
        return ok, bad

    async def _write_file(conn, claim_type: str, entries, now: datetime, emitter: Emitter) -> None:
        icn, gcn = await repo.next_control_numbers(conn)
        with tracer().start_as_current_span(
            "x12 build 837",
            attributes={"rcm.claims": len(entries), "rcm.interchange_control_number": icn},
        ):
            batch = build_837(
                [c for c, _, _ in entries],
                interchange_control_number=icn,
                group_control_number=gcn,
                created_at=now,
                sender_id=ctx.sender_id,
                receiver_id=ctx.receiver_id,
                submitter_name=ctx.submitter_name,
                usage=ctx.usage,
            )
        kind = "P" if claim_type == "professional" else "I"
        payers = {c.payer.payer_id for c, _, _ in entries}
        payer_id = (
            payers.pop() if len(payers) == 1 else None
        )  # recorded when the file has one payer
        file_name = (
            f"837{kind}_{_safe(payer_id)}_{icn:09d}.x12" if payer_id else f"837{kind}_{icn:09d}.x12"
        )
        await add_outbound(conn, repo.S, ctx.outbound_dir, file_name, batch.text)
        spans = {
            st: [[s.claim_id, s.first_segment, s.last_segment] for s in ss]
            for st, ss in batch.spans.items()
        }
        await repo.record_file(
            conn,
            file_name=file_name,
            icn=icn,
            gcn=gcn,
            claim_type=claim_type,
            payer_id=payer_id,
            transactions=batch.transactions,
            spans=spans,
        )
        st_of = {cid: st for st, ids in batch.transactions.items() for cid in ids}
        await repo.mark_submitted(
            conn, [(c.claim_id, f"{icn:09d}", file_name, st_of[c.claim_id]) for c, _, _ in entries]
        )
        await repo.set_status(
            conn,
            [
                (
                    c.claim_id,
                    "submitted",
                    {"file_name": file_name, "interchange_control_number": f"{icn:09d}"},
                )
                for c, _, _ in entries
            ],
        )
        for c, item, _ in entries:
            guarantor = c.subscriber if c.relationship == "child" and c.subscriber else c.patient
            emitter.emit(
                ClaimSubmitted(
                    site_id=c.site_id,
                    encounter_id=c.encounter_id,
                    payload=ClaimSubmittedPayload(
                        claim_id=c.claim_id,
                        payer_id=c.payer.payer_id,
                        payer_name=c.payer.payer_name,
                        filing_indicator=c.filing_indicator,
                        claim_type=c.claim_type,
                        frequency_code=c.frequency_code,
                        original_claim_id=c.original_claim_id,
                        payer_claim_control_number=c.payer_claim_control_number,
                        total_charge=c.total_charge,
                        service_date=c.service_date,
                        submitted_at=now,
                        interchange_control_number=f"{icn:09d}",
                        file_name=file_name,
                        lines=c.event_lines(),
                        guarantor=guarantor,
                    ),
                ),
                cause=item,
            )

    async def on_remittances(conn, items: list[Inbound]) -> None:
        changes = []
        for item in items:
            p = item.event.payload
            detail = {
                "remittance_id": p.remittance_id,
                "paid": str(p.paid),
                "status_code": p.status_code,
            }
            changes.append((p.claim_id, remittance_status(p), detail, p.payer_claim_control_number))
        await repo.apply_remittances(conn, changes)

    return handle


def _safe(s: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in s)[:20]
