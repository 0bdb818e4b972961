"""Message handlers of the payments service: claims submitted by billing, write-offs asked by followup.

The whole consumed micro-batch is applied in the caller's transaction (inbox rows
already claimed by ``shared.consumer``); nothing here commits or publishes.
"""

from __future__ import annotations

import logging
from decimal import Decimal

import asyncpg

from services.payments import repository as repo
from services.payments.domain.ledger import (
    BAD_DEBT_WRITEOFF,
    GROSS_CHARGES,
    OTHER_ADJUSTMENT,
    PAYER_RECEIVABLE,
    entries_for_next_payer_replacement,
    entry_for_claim_charge,
    entry_for_cob_transfer,
    entry_for_writeoff,
)
from services.payments.patient_accounts import on_claims_registered
from services.payments.posting import rematch
from shared.consumer import Handler
from shared.events import ClaimSubmitted, ClaimSubmittedPayload, WriteOffRequested
from shared.logs import log
from shared.messaging import Emitter, Inbound
from shared.service import Runtime

_log = logging.getLogger("rcm.payments")
ZERO = Decimal("0.00")


def make_handler(rt: Runtime) -> Handler:
    """Payments' batch handler (it needs nothing from the runtime)."""
    return handle


async def handle(conn: asyncpg.Connection, items: list[Inbound], emitter: Emitter) -> None:
    """Apply one batch in the caller's transaction: submitted claims, then write-offs in order."""
    submitted = [i for i in items if isinstance(i.event, ClaimSubmitted)]
    if submitted:
        await on_submitted(conn, submitted, emitter)
    for i in items:
        if isinstance(i.event, WriteOffRequested):
            await on_writeoff(conn, i)


async def on_submitted(conn: asyncpg.Connection, items: list[Inbound], emitter: Emitter) -> None:
    """Register submitted claims, post their charges, and post remittances that were waiting for them.

    A next payer's claim (another claim of the encounter has a posted payment) posts no charge:
    what the prior payers left to the patient is transferred to its payer receivable
    (``ledger.entry_for_cob_transfer``).

    A replacement (7) or void (8) takes the original's open payer balance off the books
    (the replacement then posts its own charge; a void posts none), except that of a next
    payer's claim, which follows the transfer (``registration_entries``). A claim id seen
    before is left as it is.
    """
    rows = []
    for i in items:
        p = i.event.payload
        rows.append(
            repo.ClaimRow(
                claim_id=p.claim_id,
                encounter_id=i.event.encounter_id,
                site_id=i.event.site_id,
                payer_id=p.payer_id,
                payer_name=p.payer_name,
                frequency_code=p.frequency_code,
                original_claim_id=p.original_claim_id,
                payer_claim_control_number=p.payer_claim_control_number,
                total_charge=p.total_charge,
                service_date=p.service_date,
                submitted_at=p.submitted_at,
                traceparent=i.traceparent,
                lines=repo.dumps([ln.model_dump(mode="json") for ln in p.lines]),
            )
        )
    new = await repo.insert_claims(conn, rows)
    fresh = [i.event.payload for i in items if i.event.payload.claim_id in new]
    originals = sorted(
        {
            p.original_claim_id
            for p in fresh
            if p.original_claim_id and p.frequency_code in ("7", "8")
        }
    )
    open_payer = (
        {r["claim_id"]: r["payer_balance"] for r in await repo.claim_balances(conn, originals)}
        if originals
        else {}
    )
    # A claim billed to a next payer (secondary, tertiary) is not charged again: the prior
    # payers' patient responsibility moves to its payer receivable; nor is a replacement of one.
    next_payer = await repo.next_payer_claims(
        conn, [p.claim_id for p in fresh if p.frequency_code == "1"]
    )
    next_payer_originals = await repo.transferred_claims(conn, originals) if originals else set()
    entries = registration_entries(fresh, open_payer, next_payer, next_payer_originals)
    await repo.post_entries(conn, entries)
    await on_claims_registered(conn, sorted(new), emitter)  # a next payer's claim: credit waits
    if new:
        await repo.lock_matching(conn)  # taken after the claims are written (see lock_matching)
        await rematch(conn, sorted(new), emitter)


async def on_writeoff(conn: asyncpg.Connection, item: Inbound) -> None:
    """Write off part of a claim's open balance: payer balance first, then the patient's.

    Refused (recorded as rejected, nothing posted) for an unknown claim, a non-positive
    amount, or more than is open. A request id seen before is a no-op.
    """
    p = item.event.payload
    rows = await repo.claim_balances(conn, [p.claim_id])
    payer = rows[0]["payer_balance"] if rows else ZERO
    open_total = payer + rows[0]["patient_balance"] if rows else ZERO
    if not rows:
        why = "claim not known to payments"
    elif p.amount <= 0:
        why = f"amount {p.amount} is not positive"
    elif p.amount > open_total:
        why = f"amount {p.amount} exceeds open balance {open_total}"
    else:
        why = None
    if why is not None:
        if await repo.record_writeoff(conn, p.request_id, p.claim_id, p.amount, "rejected", why):
            log(
                _log,
                logging.WARNING,
                "write-off rejected",
                claim_id=p.claim_id,
                component=p.request_id,
                error=why,
            )
        return
    if not await repo.record_writeoff(conn, p.request_id, p.claim_id, p.amount, "posted", p.reason):
        return
    payer_part = min(
        p.amount, max(payer, ZERO)
    )  # as followup's mirror does (balances.writeoff_split)
    await repo.post_entries(
        conn,
        [
            repo.Entry(
                "writeoff",
                f"writeoff:{p.request_id}:payer",
                p.claim_id,
                None,
                None,
                entry_for_writeoff(p.claim_id, payer_part, OTHER_ADJUSTMENT),
            ),
            repo.Entry(
                "writeoff",
                f"writeoff:{p.request_id}:patient",
                p.claim_id,
                None,
                None,
                entry_for_writeoff(p.claim_id, p.amount - payer_part, BAD_DEBT_WRITEOFF),
            ),
        ],
    )


def registration_entries(
    fresh: list[ClaimSubmittedPayload],
    open_payer: dict[str, Decimal],
    next_payer: dict[str, Decimal],
    next_payer_originals: set[str],
) -> list[repo.Entry]:
    """The journal entries of newly registered claims, in order.

    ``open_payer``: the open payer balance of each replaced or voided original (taken as
    used); ``next_payer``: original claims billed to a next payer, with what the prior payers
    left to the patient; ``next_payer_originals``: the originals that are next payers' claims
    (a transfer opened them). A primary's replacement or void takes the original's open payer
    balance off gross charges and a replacement is charged; a next payer's is moved back to
    the patient and on to the replacement (``entries_for_next_payer_replacement``), never
    charged: the encounter was charged once, on its primary claim.
    """
    entries: list[repo.Entry] = []
    for p in fresh:
        replaces = p.frequency_code in ("7", "8")
        replaced = open_payer.pop(p.original_claim_id, ZERO) if replaces else ZERO
        if replaces and p.original_claim_id in next_payer_originals:
            back, forward = entries_for_next_payer_replacement(
                p.original_claim_id,
                p.claim_id if p.frequency_code == "7" else None,
                p.payer_id,
                max(replaced, ZERO),
            )
            # Both kind "transfer": a later payer's transfer sums them (next_payer_claims), and
            # a payment on the replacement settles its own payer receivable (transferred_claims).
            entries.append(
                repo.Entry(
                    "transfer",
                    f"replaced:{p.original_claim_id}:{p.claim_id}",
                    p.original_claim_id,
                    p.payer_id,
                    None,
                    back,
                )
            )
            entries.append(
                repo.Entry(
                    "transfer", f"cob-transfer:{p.claim_id}", p.claim_id, p.payer_id, None, forward
                )
            )
            continue
        if replaced > 0:
            entries.append(
                repo.Entry(
                    "replaced",
                    f"replaced:{p.original_claim_id}:{p.claim_id}",
                    p.original_claim_id,
                    p.payer_id,
                    None,
                    entry_for_writeoff(
                        p.original_claim_id, replaced, GROSS_CHARGES, p.payer_id, PAYER_RECEIVABLE
                    ),
                )
            )
        if p.claim_id in next_payer:
            entries.append(
                repo.Entry(
                    "transfer",
                    f"cob-transfer:{p.claim_id}",
                    p.claim_id,
                    p.payer_id,
                    None,
                    entry_for_cob_transfer(
                        p.claim_id, p.payer_id, max(next_payer[p.claim_id], ZERO)
                    ),
                )
            )
        elif p.frequency_code != "8" and p.total_charge > 0:
            entries.append(
                repo.Entry(
                    "charge",
                    f"charge:{p.claim_id}",
                    p.claim_id,
                    p.payer_id,
                    None,
                    entry_for_claim_charge(p.claim_id, p.payer_id, p.total_charge),
                )
            )
    return entries
