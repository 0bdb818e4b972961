"""What a biller can do with a leased work item, in the caller's transaction.

Each action checks the item and claim state, changes followup's tables, queues
the events it implies on the emitter (outbox) and audits itself. Problems a
caller can fix raise ``ActionError`` with an HTTP status: 409 for a state
conflict (lease lost, already resolved), 422 for a request that cannot be
honoured (write-off above the open balance, appeal past its deadline).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

import asyncpg
from pydantic import BaseModel, Field, ValidationError

from services.followup import repository as repo
from services.followup.balances import open_balance, writeoff_split
from shared import clock, icd10cm
from shared.events import (
    CodedDiagnosis,
    CodedProcedure,
    CorrectionRequested,
    CorrectionRequestedPayload,
    WriteOffRequested,
    WriteOffRequestedPayload,
)
from shared.logs import describe_error
from shared.messaging import Emitter

Action = Literal[
    "correct", "void", "appeal", "appeal_outcome", "write_off", "transfer_to_patient", "resolve"
]
CENT = Decimal("0.01")


class ReplacementProcedure(BaseModel):
    code: str = Field(min_length=4, max_length=7)
    modifiers: list[str] = Field(default_factory=list, max_length=4)
    units: Decimal = Decimal(1)
    diagnosis_pointers: list[int] = Field(default_factory=lambda: [1], min_length=1, max_length=4)


class ActionRequest(BaseModel):
    lease_token: uuid.UUID | None = (
        None  # required except for appeal_outcome on an item waiting for the decision
    )
    action: Action
    reason: str | None = Field(default=None, max_length=500)
    amount: Decimal | None = Field(default=None, gt=0, max_digits=12, decimal_places=2)
    # correct: replacement codes (None keeps the original claim's coding)
    diagnoses: list[str] | None = Field(default=None, min_length=1, max_length=12)
    procedures: list[ReplacementProcedure] | None = Field(default=None, min_length=1, max_length=50)
    # appeal_outcome
    outcome: Literal["overturned", "partial", "upheld"] | None = None
    amount_recovered: Decimal | None = Field(default=None, ge=0, max_digits=12, decimal_places=2)


class ActionError(Exception):
    def __init__(self, status_code: int, detail):
        super().__init__(str(detail))
        self.status_code = status_code
        self.detail = detail


@dataclass
class Ctx:
    conn: asyncpg.Connection
    item: asyncpg.Record
    claim: asyncpg.Record | None
    user_id: str
    emitter: Emitter
    ledger_balance: (
        Decimal | None
    )  # payments' open balance when configured, else None (use the projection)
    today: object


async def perform(
    conn: asyncpg.Connection,
    item: asyncpg.Record,
    body: ActionRequest,
    user_id: str,
    emitter: Emitter,
    ledger_balance: Decimal | None = None,
) -> dict:
    """Apply ``body.action`` to ``item`` (locked FOR UPDATE by the caller); return what the API reports."""
    _check_state(item, body, user_id)
    claim = await repo.get_claim(conn, item["claim_id"], for_update=True)
    ctx = Ctx(conn, item, claim, user_id, emitter, ledger_balance, clock.today())
    result = await _HANDLERS[body.action](ctx, body)
    detail = {"reason": body.reason, **{k: v for k, v in result.items() if k != "status"}}
    await repo.audit(
        conn, work_item_id=item["work_item_id"], user_id=user_id, action=body.action, detail=detail
    )
    return {
        "work_item_id": item["work_item_id"],
        "claim_id": item["claim_id"],
        "action": body.action,
        **result,
    }


def _check_state(item, body: ActionRequest, user_id: str) -> None:
    wid = item["work_item_id"]
    if item["status"] == "resolved":
        raise ActionError(409, f"work item {wid} is already resolved")
    if body.action == "appeal_outcome":
        if item["status"] != "waiting":
            raise ActionError(409, f"work item {wid} has no appeal waiting for a decision")
        return
    expired = item["lease_expires_at"] is None or item["lease_expires_at"] < datetime.now(UTC)
    if (
        item["status"] != "leased"
        or item["leased_by"] != user_id
        or body.lease_token is None
        or item["lease_token"] != body.lease_token
        or expired
    ):
        raise ActionError(409, f"work item {wid} is not leased to you (lease expired or taken)")


async def _resolve(ctx: Ctx, resolution: str) -> dict:
    await repo.set_item_status(
        ctx.conn, ctx.item["work_item_id"], "resolved", user_id=ctx.user_id, resolution=resolution
    )
    return {"status": "resolved", "resolution": resolution}


def _submitted_claim(ctx: Ctx):
    c = ctx.claim
    if c is None or c["submitted_at"] is None:
        raise ActionError(
            409,
            f"claim {ctx.item['claim_id']} has no submission on record; nothing to correct or void",
        )
    if c["state"] == "replaced":
        raise ActionError(409, f"claim {c['claim_id']} was already replaced or voided")
    return c


async def _correction(ctx: Ctx, body: ActionRequest, frequency: Literal["7", "8"]) -> dict:
    claim = _submitted_claim(ctx)
    if frequency == "8" and (body.diagnoses or body.procedures):
        raise ActionError(422, "a void (frequency 8) takes no replacement codes")
    try:
        payload = CorrectionRequestedPayload(
            claim_id=claim["claim_id"],
            frequency_code=frequency,
            reason=body.reason or ctx.item["label"][:200],
            requested_by=ctx.user_id,
            work_item_id=str(ctx.item["work_item_id"]),
            diagnoses=[CodedDiagnosis(code=icd10cm.normalize(d)) for d in body.diagnoses]
            if body.diagnoses
            else None,
            procedures=[
                CodedProcedure(
                    code=p.code,
                    system="hcpcs" if p.code[:1].isalpha() else "cpt",
                    modifiers=p.modifiers,
                    units=p.units,
                    diagnosis_pointers=p.diagnosis_pointers,
                )
                for p in body.procedures
            ]
            if body.procedures
            else None,
        )
    except ValidationError as e:
        raise ActionError(422, describe_error(e)) from e
    event = CorrectionRequested(
        site_id=ctx.item["site_id"], encounter_id=ctx.item["encounter_id"], payload=payload
    )
    ctx.emitter.emit(event)
    done = await _resolve(
        ctx, "replacement claim requested" if frequency == "7" else "void requested"
    )
    return {**done, "frequency_code": frequency, "event_id": str(event.event_id)}


async def _correct(ctx: Ctx, body: ActionRequest) -> dict:
    return await _correction(ctx, body, "7")


async def _void(ctx: Ctx, body: ActionRequest) -> dict:
    return await _correction(ctx, body, "8")


async def _appeal(ctx: Ctx, body: ActionRequest) -> dict:
    deadline = ctx.item["deadline_date"]
    if deadline is not None and ctx.today > deadline:
        raise ActionError(422, f"appeal deadline passed on {deadline.isoformat()}")
    previous = await repo.appeals_of(ctx.conn, ctx.item["claim_id"])
    level = 1 + sum(1 for a in previous if a["work_item_id"] == ctx.item["work_item_id"])
    appeal_id = await repo.insert_appeal(
        ctx.conn,
        work_item_id=ctx.item["work_item_id"],
        claim_id=ctx.item["claim_id"],
        site_id=ctx.item["site_id"],
        level=level,
        filed_by=ctx.user_id,
        deadline=deadline,
        note=body.reason,
    )
    await repo.set_item_status(ctx.conn, ctx.item["work_item_id"], "waiting", user_id=ctx.user_id)
    return {
        "status": "waiting",
        "appeal_id": appeal_id,
        "level": level,
        "deadline_date": deadline.isoformat() if deadline else None,
    }


async def _appeal_outcome(ctx: Ctx, body: ActionRequest) -> dict:
    if body.outcome is None:
        raise ActionError(422, "appeal_outcome needs 'outcome': overturned, partial or upheld")
    appeal = await repo.pending_appeal(ctx.conn, ctx.item["work_item_id"])
    if appeal is None:
        raise ActionError(
            409, f"work item {ctx.item['work_item_id']} has no appeal waiting for a decision"
        )
    await repo.record_appeal_outcome(
        ctx.conn, appeal["appeal_id"], body.outcome, body.amount_recovered, ctx.user_id
    )
    out = {"appeal_id": appeal["appeal_id"], "outcome": body.outcome}
    if body.outcome == "overturned":
        return {**out, **await _resolve(ctx, "appeal overturned the denial")}
    # Upheld or partly upheld: back to the queue for the next step (write off or a further appeal).
    await repo.set_item_status(ctx.conn, ctx.item["work_item_id"], "open", user_id=ctx.user_id)
    return {**out, "status": "open"}


def _balances(ctx: Ctx) -> tuple[Decimal, Decimal]:
    if ctx.claim is None:
        return Decimal("0.00"), Decimal("0.00")
    return ctx.claim["payer_balance"], ctx.claim["patient_balance"]


async def _write_off(ctx: Ctx, body: ActionRequest) -> dict:
    amount = (body.amount or ctx.item["amount"]).quantize(CENT)
    if amount <= 0:
        raise ActionError(422, "write-off amount must be positive (give 'amount')")
    payer, patient = _balances(ctx)
    available = (
        ctx.ledger_balance if ctx.ledger_balance is not None else open_balance(payer, patient)
    )
    if amount > available:
        raise ActionError(
            422,
            f"write-off {amount} exceeds the open balance {available} of claim {ctx.item['claim_id']}",
        )
    request_id = uuid.uuid4()
    reason = body.reason or ctx.item["label"][:200]
    await repo.insert_writeoff(
        ctx.conn,
        request_id=request_id,
        work_item_id=ctx.item["work_item_id"],
        claim_id=ctx.item["claim_id"],
        amount=amount,
        category=ctx.item["category"],
        reason=reason,
        requested_by=ctx.user_id,
    )
    event = WriteOffRequested(
        site_id=ctx.item["site_id"],
        encounter_id=ctx.item["encounter_id"],
        payload=WriteOffRequestedPayload(
            request_id=str(request_id),
            claim_id=ctx.item["claim_id"],
            amount=amount,
            reason=reason,
            category=ctx.item["category"],
            requested_by=ctx.user_id,
        ),
    )
    ctx.emitter.emit(event)
    # Mirror payments' posting (payer balance first) so balances, aging and statements agree at once.
    split = writeoff_split(amount, payer)
    await repo.adjust_balances(ctx.conn, ctx.item["claim_id"], -split.payer, -split.patient)
    done = await _resolve(ctx, f"write-off {amount} requested")
    return {
        **done,
        "amount": str(amount),
        "request_id": str(request_id),
        "event_id": str(event.event_id),
    }


async def _transfer(ctx: Ctx, body: ActionRequest) -> dict:
    payer, _ = _balances(ctx)
    amount = (body.amount or payer).quantize(CENT)
    if amount <= 0:
        raise ActionError(422, f"claim {ctx.item['claim_id']} has no payer balance to transfer")
    if amount > payer:
        raise ActionError(
            422,
            f"transfer {amount} exceeds the payer balance {payer} of claim {ctx.item['claim_id']}",
        )
    transfer_id = await repo.insert_transfer(
        ctx.conn,
        work_item_id=ctx.item["work_item_id"],
        claim_id=ctx.item["claim_id"],
        amount=amount,
        reason=body.reason,
        requested_by=ctx.user_id,
    )
    await repo.adjust_balances(ctx.conn, ctx.item["claim_id"], -amount, amount)
    done = await _resolve(ctx, f"{amount} transferred to patient responsibility")
    return {**done, "amount": str(amount), "transfer_id": transfer_id}


async def _resolve_action(ctx: Ctx, body: ActionRequest) -> dict:
    if not body.reason:
        raise ActionError(422, "resolve needs a 'reason'")
    return await _resolve(ctx, body.reason)


_HANDLERS = {
    "correct": _correct,
    "void": _void,
    "appeal": _appeal,
    "appeal_outcome": _appeal_outcome,
    "write_off": _write_off,
    "transfer_to_patient": _transfer,
    "resolve": _resolve_action,
}
