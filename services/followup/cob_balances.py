"""A next payer's claim in followup's balances, as payments' ledger opens it (issue 21 item 3).

Payments charges an encounter once, on its first claim. A claim billed to a next payer (a
secondary or tertiary claim: another claim of the encounter was adjudicated before it) is
opened by a transfer, not a charge: what the prior payers left to the patient moves to that
payer's receivable, both sides on the new claim (``services/payments/domain/ledger.py``,
``entry_for_cob_transfer``). claim.submitted opened the claim's payer balance with its charge
(``repository.upsert_submitted``); this replaces that with the transfer, once, on the first
submission seen. Applied after the batch's remittances, so a prior payer's remittance
consumed in the same batch counts.
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
        " GROUP BY c.claim_id HAVING bool_or(EXISTS (SELECT 1"
        f" FROM {repo.SCHEMA}.remittance r WHERE r.claim_id = o.claim_id"
        " AND r.status_code <> '22'))) x WHERE n.claim_id = x.claim_id",
        claim_ids,
    )
