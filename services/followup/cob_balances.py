"""A next payer's claim in followup's balances, as payments' ledger opens it (issue 21 item 3).

Payments charges an encounter once, on its first claim. A claim billed to a next payer (a
secondary or tertiary claim: another claim of the encounter was adjudicated before it) is
opened by a transfer, not a charge: what the prior payers left to the patient moves to that
payer's receivable, both sides on the new claim (``services/payments/domain/ledger.py``,
``entry_for_cob_transfer``). claim.submitted opened the claim's payer balance with its charge
(``repository.upsert_submitted``); this replaces that with the transfer, once, on the first
submission seen. Applied after the batch's remittances, so a prior payer's remittance
consumed in the same batch counts.

Followup reads billing's and payments' topics independently, so a prior payer's remittance
may come after the next payer's claim it led to (billing built that claim from it, so
payments had posted it before the transfer). Such a late remittance (it occurred before the
next payer's claim was submitted, and that claim was opened in an earlier batch) moves its
patient balance change to the next payer's claim, as the transfer would have. A next payer's
claim is an original claim of an encounter with an earlier original claim (billing's claims of
an encounter arrive in order: one topic, keyed by the encounter).

A next payer's claim replaced (7) or voided (8) is a transfer too, not a charge and a write-off
(``entries_for_next_payer_replacement``): the original's open payer balance goes back to its
patient balance and, for a replacement, on to the replacement's payer balance, off its patient
balance (``replace_next_payer_claims``, once, on the replacement's first submission).
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

import asyncpg

from services.followup import repository as repo
from services.followup.balances import ZERO, Delta
from shared.messaging import Inbound


class Replacement(NamedTuple):
    """A replacement (7) or void (8) claim.submitted, first seen."""

    claim_id: str
    original_id: str
    frequency_code: str
    total_charge: Decimal


async def first_submissions(conn: asyncpg.Connection, items: list[Inbound]) -> list[str]:
    """Original claims among the batch's claim.submitted that followup has not seen submitted
    (read before the batch's submissions are applied)."""
    ids = sorted({i.event.payload.claim_id for i in items if i.event.payload.frequency_code == "1"})
    if not ids:
        return []
    seen = await repo.submitted_ids(conn, ids)
    return [c for c in ids if c not in seen]


async def open_next_payer_claims(conn: asyncpg.Connection, claim_ids: list[str]) -> None:
    """Of ``claim_ids`` (first submissions), those billed to a next payer: payer balance = what
    the encounter's other claims hold as patient balance (instead of the charge), taken off this
    claim's patient balance, as payments posts the transfer."""
    if not claim_ids:
        return
    await conn.execute(
        f"UPDATE {repo.SCHEMA}.claim n SET payer_balance = n.payer_balance - n.total_charge"
        " + x.prior, patient_balance = n.patient_balance - x.prior, updated_at = now()"
        " FROM (SELECT c.claim_id, greatest(coalesce(sum(o.patient_balance), 0), 0) AS prior"
        f" FROM {repo.SCHEMA}.claim c JOIN {repo.SCHEMA}.claim o"
        " ON o.encounter_id = c.encounter_id AND o.claim_id <> c.claim_id"
        " WHERE c.claim_id = ANY($1::text[]) AND c.frequency_code = '1'"
        " GROUP BY c.claim_id HAVING bool_or(o.frequency_code = '1'"
        " AND o.submitted_at < c.submitted_at)) x WHERE n.claim_id = x.claim_id",
        claim_ids,
    )


async def new_remittances(conn: asyncpg.Connection, items: list[Inbound]) -> list[Inbound]:
    """The batch's remittances (reversals aside) followup has not recorded yet (read before
    they are applied), one per remittance id."""
    ids = sorted({i.event.payload.remittance_id for i in items})
    if not ids:
        return []
    rows = await conn.fetch(
        f"SELECT remittance_id FROM {repo.SCHEMA}.remittance WHERE remittance_id = ANY($1::text[])",
        ids,
    )
    seen = {r["remittance_id"] for r in rows}
    out = {}
    for i in items:
        p = i.event.payload
        if not p.is_reversal and p.remittance_id not in seen:
            out.setdefault(p.remittance_id, i)
    return list(out.values())


async def follow_late_remittances(
    conn: asyncpg.Connection, items: list[Inbound], fresh: list[str]
) -> None:
    """Move the patient balance change of each late remittance among ``items`` (new ones) to the
    first next payer's claim of its encounter submitted after it occurred and opened before
    this batch (not in ``fresh``): that claim's payer balance up, its patient balance down."""
    late = [
        (
            i.event.payload.remittance_id,
            i.event.payload.claim_id,
            i.event.encounter_id,
            i.event.occurred_at,
            i.event.payload.patient_balance_change,
        )
        for i in items
        if i.event.payload.patient_balance_change
    ]
    if not late:
        return
    await conn.execute(
        f"UPDATE {repo.SCHEMA}.claim n SET payer_balance = n.payer_balance + x.moved,"
        " patient_balance = n.patient_balance - x.moved, updated_at = now()"
        " FROM (SELECT claim_id, sum(d) AS moved FROM (SELECT DISTINCT ON (r.rid) r.rid, r.d,"
        " c.claim_id FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[],"
        " $5::numeric[]) AS r(rid, claim_id, encounter_id, at, d)"
        f" JOIN {repo.SCHEMA}.claim c ON c.encounter_id = r.encounter_id"
        " AND c.claim_id <> r.claim_id AND c.frequency_code = '1' AND c.submitted_at > r.at"
        " AND NOT c.claim_id = ANY($6::text[])"
        f" AND EXISTS (SELECT 1 FROM {repo.SCHEMA}.claim o WHERE o.encounter_id = c.encounter_id"
        " AND o.claim_id <> c.claim_id AND o.frequency_code = '1'"
        " AND o.submitted_at < c.submitted_at)"
        " ORDER BY r.rid, c.submitted_at, c.claim_id) f GROUP BY claim_id) x"
        " WHERE n.claim_id = x.claim_id",
        *map(list, zip(*late, strict=True)),
        fresh,
    )


# --------------------------------------------------------------- a next payer's claim replaced


def replacement_deltas(open_payer: Decimal, frequency_code: str) -> tuple[Delta, Delta]:
    """The balance changes of a next payer's claim replaced (7) or voided (8), on the original
    and on its replacement, as payments posts them (``entries_for_next_payer_replacement``):
    what its payer still owed on the original goes back to the patient there, and a
    replacement's payer takes it over from the patient; a void leaves it with the patient."""
    moved = max(open_payer, ZERO)
    forward = Delta(moved, -moved) if frequency_code == "7" else Delta(ZERO, ZERO)
    return Delta(-moved, moved), forward


async def first_replacements(conn: asyncpg.Connection, items: list[Inbound]) -> list[Replacement]:
    """Replacements and voids among the batch's claim.submitted that followup has not seen
    submitted (read before the batch's submissions are applied), in the batch's order."""
    subs = {
        p.claim_id: p
        for p in (i.event.payload for i in items)
        if p.frequency_code in ("7", "8") and p.original_claim_id
    }
    if not subs:
        return []
    seen = await repo.submitted_ids(conn, list(subs))
    return [
        Replacement(c, p.original_claim_id, p.frequency_code, p.total_charge)
        for c, p in subs.items()
        if c not in seen
    ]


async def next_payer_claims(conn: asyncpg.Connection, claim_ids: list[str]) -> set[str]:
    """The claims among ``claim_ids`` that payments opened by a COB transfer: a next payer's
    original claim (``open_next_payer_claims``), or a replacement down from one."""
    if not claim_ids:
        return set()
    rows = await conn.fetch(
        "WITH RECURSIVE up (start, claim_id, original_claim_id, frequency_code, depth) AS ("
        " SELECT claim_id, claim_id, original_claim_id, frequency_code, 0"
        f" FROM {repo.SCHEMA}.claim WHERE claim_id = ANY($1::text[])"
        " UNION ALL SELECT u.start, c.claim_id, c.original_claim_id, c.frequency_code, u.depth + 1"
        f" FROM up u JOIN {repo.SCHEMA}.claim c ON c.claim_id = u.original_claim_id"
        " WHERE u.frequency_code <> '1' AND u.depth < 50)"  # depth: a bad chain cannot loop
        f" SELECT u.start FROM up u JOIN {repo.SCHEMA}.claim r ON r.claim_id = u.claim_id"
        " WHERE u.frequency_code = '1'"
        f" AND EXISTS (SELECT 1 FROM {repo.SCHEMA}.claim o WHERE o.encounter_id = r.encounter_id"
        " AND o.claim_id <> r.claim_id AND o.frequency_code = '1'"
        " AND o.submitted_at < r.submitted_at)",
        claim_ids,
    )
    return {r["start"] for r in rows}


async def replace_next_payer_claims(
    conn: asyncpg.Connection, replacements: list[Replacement]
) -> None:
    """Of ``replacements`` (first submissions), those of a next payer's claim: instead of the
    charge ``upsert_submitted`` opened and the payer balance ``mark_replaced`` would have taken
    off the books, the original's open payer balance moves back to its patient balance and on
    to the replacement's payer balance (``replacement_deltas``). Applied after the batch's
    remittances and transfers, so they count; an original replaced twice moves once."""
    originals = await next_payer_claims(conn, sorted({r.original_id for r in replacements}))
    todo = [r for r in replacements if r.original_id in originals]
    if not todo:
        return
    rows = await conn.fetch(
        f"SELECT claim_id, payer_balance FROM {repo.SCHEMA}.claim WHERE claim_id = ANY($1::text[])",
        sorted(originals),
    )
    open_payer = {r["claim_id"]: r["payer_balance"] for r in rows}
    changes: list[tuple[str, Decimal, Decimal]] = []
    for r in todo:
        back, forward = replacement_deltas(open_payer.pop(r.original_id, ZERO), r.frequency_code)
        # the replacement's charge (upsert_submitted) is not payments': the transfer opens it
        charged = r.total_charge if r.frequency_code == "7" else ZERO
        changes.append((r.original_id, back.payer, back.patient))
        changes.append((r.claim_id, forward.payer - charged, forward.patient))
    await conn.execute(
        f"UPDATE {repo.SCHEMA}.claim n SET payer_balance = n.payer_balance + x.payer,"
        " patient_balance = n.patient_balance + x.patient, updated_at = now()"
        " FROM (SELECT claim_id, sum(payer) AS payer, sum(patient) AS patient"
        " FROM unnest($1::text[], $2::numeric[], $3::numeric[]) AS d(claim_id, payer, patient)"
        " GROUP BY claim_id) x WHERE n.claim_id = x.claim_id",
        *map(list, zip(*changes, strict=True)),
    )
