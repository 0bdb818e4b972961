"""999 and 277CA files from the inbound mailbox -> claim.accepted / claim.rejected."""

from __future__ import annotations

import json

import asyncpg

from services.billing import repository as repo
from services.billing.domain.acks import parse_277ca, parse_999
from shared.events import ClaimAccepted, ClaimAckPayload, ClaimRejected, Reason
from shared.mailbox import classify
from shared.messaging import Emitter
from shared.telemetry import tracer


async def apply_ack(conn: asyncpg.Connection, text: str, file_name: str, emitter: Emitter) -> None:
    """Apply one acknowledgement file. Raises X12Error for a malformed file (nothing applied)."""
    kind = classify(text).kind
    with tracer().start_as_current_span(
        f"x12 parse {kind}", attributes={"rcm.file_name": file_name}
    ):
        if kind == "999":
            await _apply_999(conn, parse_999(text), file_name, emitter)
        else:
            await _apply_277ca(conn, parse_277ca(text), file_name, emitter)


async def _apply_999(conn, acks, file_name: str, emitter: Emitter) -> None:
    """A rejected 837 transaction rejects its claims; IK3/IK4 errors are traced to the claim they fall in."""
    rejected: dict[str, list[Reason]] = {}
    for ack in acks:
        if ack.accepted:
            continue
        sub = await repo.file_by_group(conn, ack.group_control_number)
        if sub is None:
            continue  # an acknowledgement of a file we did not send: nothing to do
        transactions = json.loads(sub["transactions"])
        spans = json.loads(sub["spans"]).get(ack.st_control_number, [])
        claim_ids = transactions.get(ack.st_control_number, [])
        located: dict[str, list[Reason]] = {cid: [] for cid in claim_ids}
        general = [Reason(code=f"999-{ack.status}", message=ack.message)]
        for err in ack.errors:
            reason = Reason(
                code=err.code,
                message=err.message,
                field=f"{err.segment_id or ''}@{err.segment_position or ''}",
            )
            owner = next(
                (
                    cid
                    for cid, first, last in spans
                    if err.segment_position and first <= err.segment_position <= last
                ),
                None,
            )
            if owner:
                located[owner].append(reason)
            else:
                general.append(reason)
        for cid in claim_ids:
            rejected[cid] = general + located[cid]
    await _emit(conn, {}, rejected, "999", file_name, emitter)


async def _apply_277ca(conn, claim_acks, file_name: str, emitter: Emitter) -> None:
    accepted, rejected = {}, {}
    for a in claim_acks:
        if a.rejected:
            rejected[a.claim_id] = [
                Reason(code=f"{s.category}:{s.code or ''}", message=s.message) for s in a.statuses
            ]
        elif a.accepted:
            accepted[a.claim_id] = a
    await _emit(conn, accepted, rejected, "277CA", file_name, emitter)


async def _emit(
    conn,
    accepted: dict,
    rejected: dict[str, list[Reason]],
    source: str,
    file_name: str,
    emitter: Emitter,
) -> None:
    claims = await repo.lock_claims(conn, list(accepted) + list(rejected))
    # Only claims still awaiting an acknowledgement move on; a repeated ack changes nothing,
    # nor does one that comes after the claim's remittance (its status is read under the lock).
    open_states = ("submitted", "accepted") if source == "999" else ("submitted",)
    changes, pccns, work = [], [], []
    for cid, ack in accepted.items():
        c = claims.get(cid)
        if c is None or c["status"] not in open_states:
            continue
        changes.append(
            repo.StatusChange(cid, "accepted", {"source": source, "file_name": file_name})
        )
        if ack.payer_claim_control_number:
            pccns.append((cid, ack.payer_claim_control_number))
        emitter.emit(
            ClaimAccepted(
                site_id=c["site_id"],
                encounter_id=c["encounter_id"],
                payload=ClaimAckPayload(
                    claim_id=cid,
                    source=source,
                    payer_claim_control_number=ack.payer_claim_control_number,
                    status_category=ack.status_category,
                    file_name=file_name,
                ),
            ),
            traceparent=c["traceparent"],
        )
    for cid, reasons in rejected.items():
        c = claims.get(cid)
        if c is None or c["status"] not in open_states:
            continue
        changes.append(
            repo.StatusChange(
                cid, "rejected", {"source": source, "reasons": [r.model_dump() for r in reasons]}
            )
        )
        work.append(
            repo.WorkItemRow(
                cid, c["site_id"], "rejection", json.dumps([r.model_dump() for r in reasons])
            )
        )
        emitter.emit(
            ClaimRejected(
                site_id=c["site_id"],
                encounter_id=c["encounter_id"],
                payload=ClaimAckPayload(
                    claim_id=cid, source=source, reasons=reasons, file_name=file_name
                ),
            ),
            traceparent=c["traceparent"],
        )
    await repo.set_status(conn, changes)
    await repo.open_work_items(conn, work)
    await repo.set_payer_claim_numbers(conn, pccns)
