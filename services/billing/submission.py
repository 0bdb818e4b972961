"""New claims of a batch: scrubbed, then held or written into 837 files (one per claim type).

Runs in the consuming batch's transaction: claims, history, work items, the queued 837
file (``shared.mailbox.add_outbound``) and the claim.held / claim.submitted events
(outbox) commit together.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, date, datetime
from typing import NamedTuple

import asyncpg

from services.billing import repository as repo
from services.billing.context import BillingContext
from services.billing.domain.claim import Claim
from services.billing.domain.scrubber import scrub
from services.billing.domain.x12_837 import build_837, unwritable_reason
from shared import clock, icd10cm
from shared.events import (
    ClaimHeld,
    ClaimHeldPayload,
    ClaimSubmitted,
    ClaimSubmittedPayload,
    EncounterCodedPayload,
    Reason,
)
from shared.mailbox import add_outbound
from shared.messaging import Emitter, Inbound
from shared.telemetry import tracer


class Candidate(NamedTuple):
    """A claim built from a coded encounter (or a correction), with the event that caused it."""

    claim: Claim
    coded: EncounterCodedPayload
    item: Inbound


class Routed(NamedTuple):
    """A new claim on its way to a hold (with the findings) or to an 837 (no findings)."""

    claim: Claim
    item: Inbound | None  # the event that caused it; None for a biller's change over HTTP
    findings: list[Reason]


async def bill(
    conn: asyncpg.Connection, candidates: list[Candidate], emitter: Emitter, ctx: BillingContext
) -> None:
    """Insert the claims; scrub the new ones and hold or submit each (a claim seen before is left)."""
    new = await repo.insert_claims(
        conn,
        [claim_row(c, coded, item.traceparent) for c, coded, item in candidates],
    )
    # A claim seen before (this encounter already has its claim) is left.
    await scrub_and_route(
        conn, [(c.claim, c.item) for c in candidates if c.claim.claim_id in new], emitter, ctx
    )


def claim_row(claim: Claim, coded: EncounterCodedPayload, traceparent: str | None) -> repo.ClaimRow:
    """A built claim as its row (billed first, or rebuilt from newer data)."""
    return repo.ClaimRow(
        claim_id=claim.claim_id,
        encounter_id=claim.encounter_id,
        site_id=claim.site_id,
        payer_id=(claim.payer.payer_id or None) if claim.payer else None,
        claim_type=claim.claim_type,
        frequency_code=claim.frequency_code,
        original_claim_id=claim.original_claim_id,
        payer_claim_control_number=claim.payer_claim_control_number,
        total_charge=claim.total_charge,
        service_date=claim.service_date,
        coded=coded.model_dump_json(),
        traceparent=traceparent,
    )


async def scrub_and_route(
    conn: asyncpg.Connection,
    claims: list[tuple[Claim, Inbound | None]],
    emitter: Emitter,
    ctx: BillingContext,
) -> None:
    """Scrub each claim, then hold it (findings) or write it into an 837 (clean)."""
    today = clock.today()
    held, clean = [], []
    for claim, item in claims:
        findings = scrub(
            claim,
            is_billable=icd10cm.billable_on,
            payer_rules=ctx.payer_rules,
            ncci=ctx.ncci,
            as_of=today,
        )
        (held if findings else clean).append(Routed(claim, item, findings))
    await hold(conn, held, emitter, ctx)
    await submit(conn, clean, emitter, ctx)


async def hold(
    conn: asyncpg.Connection, held: list[Routed], emitter: Emitter, ctx: BillingContext
) -> None:
    """Hold claims for a biller: status, work item and claim.held with the findings and the
    filing deadline."""
    if not held:
        return
    await repo.set_status(
        conn,
        [
            repo.StatusChange(c.claim_id, "held", {"reasons": [r.model_dump() for r in f]})
            for c, _, f in held
        ],
    )
    await repo.open_work_items(
        conn,
        [
            repo.WorkItemRow(
                c.claim_id, c.site_id, "scrub_hold", json.dumps([r.model_dump() for r in f])
            )
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
                    payer_id=(c.payer.payer_id or None) if c.payer else None,
                    total_charge=c.total_charge,
                    service_date=c.service_date,
                    reasons=findings,
                    filing_deadline=filing_deadline(c, ctx),
                ),
            ),
            cause=item,
        )


async def submit(
    conn: asyncpg.Connection, clean: list[Routed], emitter: Emitter, ctx: BillingContext
) -> None:
    """Write clean claims into 837 files of at most ``ctx.max_claims_per_file`` claims."""
    # One 837 per claim type (837P and 837I follow different guides), whatever the payers:
    # the clearinghouse splits a submission by payer (each claim names its payer in
    # 2010BB). A file per payer multiplied files, acknowledgements and mailbox passes.
    groups: dict[str, list[Routed]] = defaultdict(list)
    for entry in clean:
        groups[entry.claim.claim_type].append(entry)
    now = datetime.now(UTC)
    for claim_type, entries in groups.items():
        for start in range(0, len(entries), ctx.max_claims_per_file):
            chunk = entries[start : start + ctx.max_claims_per_file]
            ok, bad = _buildable(chunk)
            await hold(conn, bad, emitter, ctx)
            if ok:
                await _write_file(conn, claim_type, ok, now, emitter, ctx)


def _buildable(chunk: list[Routed]) -> tuple[list[Routed], list[Routed]]:
    """Claims an 837 can be written for; the rest are held with the writer's reason."""
    ok, bad = [], []
    for entry in chunk:
        reason = unwritable_reason(entry.claim)
        if reason is None:
            ok.append(entry)
        else:
            bad.append(
                Routed(entry.claim, entry.item, [Reason(code="X12_BUILD", message=reason[:300])])
            )
    return ok, bad


async def _write_file(
    conn: asyncpg.Connection,
    claim_type: str,
    entries: list[Routed],
    now: datetime,
    emitter: Emitter,
    ctx: BillingContext,
) -> None:
    icn, gcn = await repo.next_control_numbers(conn)
    with tracer().start_as_current_span(
        "x12 build 837",
        attributes={"rcm.claims": len(entries), "rcm.interchange_control_number": icn},
    ):
        batch = build_837(
            [e.claim for e in entries],
            interchange_control_number=icn,
            group_control_number=gcn,
            created_at=now,
            sender_id=ctx.sender_id,
            receiver_id=ctx.receiver_id,
            submitter_name=ctx.submitter_name,
            usage=ctx.usage,
        )
    kind = "P" if claim_type == "professional" else "I"
    payers = {e.claim.payer.payer_id for e in entries}
    payer_id = payers.pop() if len(payers) == 1 else None  # recorded when the file has one payer
    file_name = (
        f"837{kind}_{_safe(payer_id)}_{icn:09d}.x12" if payer_id else f"837{kind}_{icn:09d}.x12"
    )
    await add_outbound(conn, repo.SCHEMA, ctx.outbound_dir, file_name, batch.text)
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
        conn,
        [
            repo.SubmittedClaim(e.claim.claim_id, f"{icn:09d}", file_name, st_of[e.claim.claim_id])
            for e in entries
        ],
    )
    await repo.set_status(
        conn,
        [
            repo.StatusChange(
                e.claim.claim_id,
                "submitted",
                {"file_name": file_name, "interchange_control_number": f"{icn:09d}"},
            )
            for e in entries
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
                    filing_deadline=filing_deadline(c, ctx),
                ),
            ),
            cause=item,
        )


def filing_deadline(c: Claim, ctx: BillingContext) -> date:
    """The last day the payer accepts the claim, from billing's payer rules (the one source:
    followup reads it from claim.submitted / claim.held)."""
    payer_id = c.payer.payer_id if c.payer else None
    return ctx.payer_rules.filing_deadline(payer_id, c.filing_indicator, c.service_date)


def _safe(s: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in s)[:20]
