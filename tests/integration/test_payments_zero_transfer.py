"""A next payer's claim billed when the prior payers left the patient nothing (a 0.00 COB
transfer) is still that payer's claim in the ledger, on the real Postgres: its replacement is
moved, never charged, so the encounter is charged once."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from services.payments import repository as repo
from services.payments.handlers import registration_entries
from shared import db
from shared.events import ClaimSubmittedPayload

pytestmark = pytest.mark.integration
PAYMENTS = Path(__file__).resolve().parents[2] / "services" / "payments"


def _submitted(claim_id: str, frequency: str = "1", original: str | None = None):
    fields = ClaimSubmittedPayload.model_fields
    base = {
        "claim_id": claim_id,
        "payer_id": "BCBS01",
        "frequency_code": frequency,
        "original_claim_id": original,
        "total_charge": Decimal("150.00"),
    }
    # Only what registration reads; the rest of the payload as the model's defaults allow.
    return ClaimSubmittedPayload.model_construct(**{k: v for k, v in base.items() if k in fields})


async def test_a_zero_transfer_still_marks_the_next_payers_claim(stack_endpoints):
    conn = await asyncpg.connect(stack_endpoints["postgres"])
    try:
        await db.migrate(conn, "payments", PAYMENTS)
        tx = conn.transaction()
        await tx.start()
        try:
            secondary = _submitted("ZT-SEC-1")
            first = registration_entries([secondary], {}, {"ZT-SEC-1": Decimal("0.00")}, set())
            assert [e.kind for e in first] == ["transfer"] and first[0].lines == []
            assert await repo.post_entries(conn, first) == {"cob-transfer:ZT-SEC-1"}
            marked = await repo.transferred_claims(conn, ["ZT-SEC-1"])
            replacement = _submitted("ZT-SEC-1R", "7", "ZT-SEC-1")
            second = registration_entries([replacement], {"ZT-SEC-1": Decimal("0.00")}, {}, marked)
            await repo.post_entries(conn, second)
            charged = await conn.fetchval(
                "SELECT count(*) FROM payments.journal_entry WHERE kind = 'charge'"
                " AND claim_id LIKE 'ZT-%'"
            )
            unbalanced = await conn.fetchval(
                "SELECT count(*) FROM (SELECT entry_id FROM payments.journal_line"
                " GROUP BY entry_id HAVING sum(amount) <> 0) x"
            )
        finally:
            await tx.rollback()
    finally:
        await conn.close()
    assert marked == {"ZT-SEC-1"}
    assert charged == 0 and unbalanced == 0
