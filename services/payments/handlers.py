"""Message handlers of the payments service."""

from __future__ import annotations

from decimal import Decimal

import asyncpg

from services.payments import repository as repo
from services.payments.domain.ledger import (
    GROSS_CHARGES,
    OTHER_ADJUSTMENT,
    PAYER_RECEIVABLE,
    entry_for_claim_charge,
    entry_for_writeoff,
)
from services.payments.posting import rematch
from shared.consumer import Handler
from shared.events import ClaimSubmitted, WriteOffRequested
from shared.messaging import Emitter, Inbound
from shared.service import Runtime


def make_handler(rt: Runtime) -> Handler:
    async def handle(conn: asyncpg.Connection, items: list[Inbound], emitter: Emitter) -> None:
        submitted = [i for i in items if isinstance(i.event, ClaimSubmitted)]
        writeoffs = [i for i in items if isinstance(i.event, WriteOffRequested)]
        if submitted:
            await on_submitted(conn, submitted, emitter)
        for i in writeoffs:
            await on_writeoff(conn, i)

    return handle


async def on_submitted(conn: asyncpg.Connection, items: list[Inbound], emitter: Emitter) -> None:
    """Register submitted claims, post their charges, and post remittances that were waiting for them.

    A replacement (7) or void (8) takes the original's open payer balance off the books
    (the replacement then posts its own charge; a void posts none).
    """
    rows = []
    for i in items:
        p = i.event.payload
        rows.append((p.claim_id, i.event.encounter_id, i.event.site_id, p.payer_id, p.payer_name, p.frequency_code,
                     p.original_claim_id, p.payer_claim_control_number, p.total_charge, p.service_date,
                     p.submitted_at, i.traceparent, repo.dumps([ln.model_dump(mode="json") for ln in p.lines])))  # fmt: skip
    new = await repo.insert_claims(conn, rows)
    entries = []
    for i in items:
        p = i.event.payload
        if p.claim_id not in new:
            continue
        if p.original_claim_id and p.frequency_code in ("7", "8"):
            open_payer = await _payer_balance(conn, p.original_claim_id)
            if open_payer > 0:
                entries.append(("replaced", f"replaced:{p.original_claim_id}:{p.claim_id}", p.original_claim_id,
                                p.payer_id, None, entry_for_writeoff(p.original_claim_id, open_payer, GROSS_CHARGES,
                                                                     p.payer_id, PAYER_RECEIVABLE)))  # fmt: skip
        if p.frequency_code != "8" and p.total_charge > 0:
            entries.append(("charge", f"charge:{p.claim_id}", p.claim_id, p.payer_id, None,
                            entry_for_claim_charge(p.claim_id, p.payer_id, p.total_charge)))  # fmt: skip
    await repo.post_entries(conn, entries)
    await rematch(conn, sorted(new), emitter)


async def on_writeoff(conn: asyncpg.Connection, item: Inbound) -> None:
    """Write off part of a claim's open balance, never more than is open (else rejected, recorded)."""
    p = item.event.payload
    balances = await repo.claim_balances(conn, [p.claim_id])
    open_total = (balances[0]["payer_balance"] + balances[0]["patient_balance"]) if balances else Decimal(0)
    if not balances or p.amount > open_total:
        await repo.record_writeoff(conn, p.request_id, p.claim_id, p.amount, "rejected",
                                   f"amount exceeds open balance {open_total}")  # fmt: skip
        return
    if not await repo.record_writeoff(conn, p.request_id, p.claim_id, p.amount, "posted", p.reason):
        return
    payer_part = min(p.amount, balances[0]["payer_balance"])
    entries = []
    if payer_part > 0:
        entries.append(("writeoff", f"writeoff:{p.request_id}:payer", p.claim_id, None, None,
                        entry_for_writeoff(p.claim_id, payer_part, OTHER_ADJUSTMENT)))  # fmt: skip
    if p.amount - payer_part > 0:
        entries.append(("writeoff", f"writeoff:{p.request_id}:patient", p.claim_id, None, None,
                        entry_for_writeoff(p.claim_id, p.amount - payer_part, "bad_debt_writeoff")))  # fmt: skip
    await repo.post_entries(conn, entries)


async def _payer_balance(conn: asyncpg.Connection, claim_id: str) -> Decimal:
    rows = await repo.claim_balances(conn, [claim_id])
    return rows[0]["payer_balance"] if rows else Decimal(0)
