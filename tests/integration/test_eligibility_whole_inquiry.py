"""A 271 that refuses a whole 270 at the information source (2000A AAA, no TRN echoed) reaches
the checks of that 270 through its BHT03, on the real Postgres: the payer-down answer sets them
to retry instead of leaving them to time out; a check sent in another 270 keeps waiting."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from services.intake.eligibility_flow import apply_271
from shared import db
from shared.messaging import Emitter
from tests.unit.eligibility.test_eligibility_271_envelope import (
    _inquiry,
    _segment,
    _source_rejection,
)

pytestmark = pytest.mark.integration
INTAKE = Path(__file__).resolve().parents[2] / "services" / "intake"
CHECK = (
    "INSERT INTO intake.eligibility_check (trace_number, coverage_key, encounter_id, site_id,"
    " sequence, payer_id, payer_name, service_date, request, attempt, retry_seconds,"
    " retry_max_seconds, max_attempts, requested_by, state, file_name) VALUES ($1, $1, $2,"
    " 'north-clinic', 'primary', 'ACME01', 'Acme Health', current_date, '{}', 1, 30, 600, 4,"
    " 'intake', 'sent', $3)"
)


async def test_a_whole_inquiry_rejection_answers_the_checks_of_its_270(stack_endpoints):
    conn = await asyncpg.connect(stack_endpoints["postgres"])
    try:
        await db.migrate(conn, "intake", INTAKE)
        tx = conn.transaction()
        await tx.start()
        try:
            for trace, enc, file in (
                ("WI-41-A", "WI-ENC-1", "270_000000041.x12"),
                ("WI-41-B", "WI-ENC-2", "270_000000041.x12"),
                ("WI-42-A", "WI-ENC-3", "270_000000042.x12"),
            ):
                await conn.execute(CHECK, trace, enc, file)
            bht03 = _segment(_inquiry(41, "WI-41-A", "WI-41-B"), "BHT")[3]
            await apply_271(conn, _source_rejection(bht03), "271_x.x12", Emitter("intake"))
            rows = await conn.fetch(
                "SELECT trace_number, state, reason_code FROM intake.eligibility_check"
                " WHERE trace_number LIKE 'WI-%' ORDER BY trace_number"
            )
        finally:
            await tx.rollback()
    finally:
        await conn.close()
    assert [tuple(r) for r in rows] == [
        ("WI-41-A", "retry", "42"),
        ("WI-41-B", "retry", "42"),
        ("WI-42-A", "sent", None),
    ]
