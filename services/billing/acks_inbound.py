"""999 and 277CA files from the inbound mailbox -> claim.accepted / claim.rejected."""

from __future__ import annotations

import json
import logging

import asyncpg

from services.billing import repository as repo
from services.billing.cob_flow import DECIDED
from services.billing.domain.acks import Ack277CA, BatchAck, parse_277ca_file, parse_999
from shared.events import ClaimAccepted, ClaimAckPayload, ClaimRejected, Reason
from shared.logs import log
from shared.mailbox import classify
from shared.messaging import Emitter
from shared.telemetry import tracer
from shared.x12 import prepare

_log = logging.getLogger(__name__)


async def apply_ack(conn: asyncpg.Connection, text: str, file_name: str, emitter: Emitter) -> None:
    """Apply one acknowledgement file. Raises X12Error for a malformed file (nothing applied)."""
    kind = classify(text).kind
    with tracer().start_as_current_span(
        f"x12 parse {kind}", attributes={"rcm.file_name": file_name}
    ):
        if kind == "999":
            acks = parse_999(text)
            _warn(file_name, kind, prepare(text).warnings)
            await _apply_999(conn, acks, file_name, emitter)
        else:
            ack = parse_277ca_file(text)
            _warn(file_name, kind, ack.warnings)
            await _apply_277ca(conn, ack, file_name, emitter)


def _warn(file_name: str, kind: str, notes) -> None:
    # Tokenizer notes name no element value (no PHI): a bare ST..SE or a wrapped ISA.
    for note in notes:
        log(
            _log,
            logging.WARNING,
            "acknowledgement read with a repair",
            file=file_name,
            kind=kind,
            note=note,
        )


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


async def _apply_277ca(conn, ack: Ack277CA, file_name: str, emitter: Emitter) -> None:
    accepted, rejected = {}, {}
    for a in ack.claims:
        if a.rejected:
            rejected[a.claim_id] = [
                Reason(code=f"{s.category}:{s.code or ''}", message=s.message) for s in a.statuses
            ]
        elif a.accepted:
            accepted[a.claim_id] = a
    # A batch refused above the claims lists none of them: every claim of the 837 it answers
    # is rejected with the batch's reasons (a claim also listed by itself keeps its own too).
    for batch in ack.batches:
        reasons = [
            Reason(code=f"{s.category}:{s.code or ''}", message=f"{s.level} level: {s.message}")
            for s in batch.statuses
        ]
        for cid in await _batch_claims(conn, batch):
            accepted.pop(cid, None)
            rejected.setdefault(cid, [])
            rejected[cid] += [r for r in reasons if r not in rejected[cid]]
    await _emit(conn, accepted, rejected, "277CA", file_name, emitter)


async def _batch_claims(conn: asyncpg.Connection, batch: BatchAck) -> list[str]:
    """The claims of the 837 transaction a batch-level rejection answers.

    Our BHT03 is ``<GS06>-<ST02>`` (``x12_837``); the 277CA's receiver loop echoes it in
    TRN02. A provider-level rejection keeps the claims of that billing provider (NPI, or the
    tax id without its dash). An unknown reference names no claim of ours: nothing applies.
    """
    gcn, _, st02 = (batch.batch_reference or "").rpartition("-")
    if not gcn or not st02:
        return []
    sub = await repo.file_by_group(conn, gcn)
    if sub is None:
        return []
    claim_ids = json.loads(sub["transactions"]).get(st02, [])
    if batch.level != "provider" or not batch.provider_id or not claim_ids:
        return claim_ids
    rows = await conn.fetch(
        f"SELECT claim_id FROM {repo.SCHEMA}.claim WHERE claim_id = ANY($1::text[])"
        " AND $2 IN (coded->'encounter'->'billing_provider'->>'npi',"
        " replace(coded->'encounter'->'billing_provider'->>'tax_id', '-', ''))",
        claim_ids,
        batch.provider_id,
    )
    return [r["claim_id"] for r in rows]


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
    changes, pccns, work, late = [], [], [], []
    for cid, ack in accepted.items():
        c = claims.get(cid)
        if c is not None and c["status"] in DECIDED:
            # the payer's 835 was posted first (files are read as they come): the claim keeps
            # its status, and its history still shows the acknowledgement, for the timeline
            late.append(
                repo.StatusChange(
                    cid, "accepted", {"source": source, "file_name": file_name, "late": True}
                )
            )
            continue
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
    await repo.add_history(conn, late)
    await repo.open_work_items(conn, work)
    await repo.set_payer_claim_numbers(conn, pccns)
