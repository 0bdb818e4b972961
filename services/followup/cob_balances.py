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
"""

from __future__ import annotations

import asyncpg

from services.followup import repository as repo
from shared.messaging import Inbound


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
