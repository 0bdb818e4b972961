"""`rcm status` reports intake (outbox, dead letters, 270 files, eligibility waits) on real
migrated schemas: the named queries of ``rcm/queries.py`` against intake's tables."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date

import asyncpg
import pytest
from aiokafka.errors import GroupCoordinatorNotAvailableError

from rcm.cli import status
from rcm.queries import eligibility_waits
from shared import db
from tests.integration.test_tooling_report import PACKAGES

pytestmark = pytest.mark.integration

RUN = uuid.uuid4().hex[:8].upper()
SITE = f"ST{RUN}"


async def _check(conn, n: int, state: str, encounter_id: str) -> None:
    await conn.execute(
        "INSERT INTO intake.eligibility_check (trace_number, coverage_key, encounter_id, site_id,"
        " sequence, payer_id, payer_name, service_date, request, attempt, retry_seconds,"
        " retry_max_seconds, max_attempts, requested_by, state)"
        " VALUES ($1, $2, $3, $4, 'primary', 'AETNA1', 'Aetna', $5, '{}', 1, 60, 3600, 3,"
        " 'intake', $6)",
        f"T{RUN}{n}",
        f"K{RUN}{n}",
        encounter_id,
        SITE,
        date.today(),
        state,
    )


async def _hold(conn, encounter_id: str, version: int) -> None:
    await conn.execute(
        "INSERT INTO intake.eligibility_hold (event_id, encounter_id, document_version,"
        " coverage_keys, event, release_at) VALUES ($1, $2, $3, '{}', '{}', now())",
        uuid.uuid4(),
        encounter_id,
        version,
    )


async def _work(conn, encounter_id: str, code: str, state: str) -> None:
    await conn.execute(
        "INSERT INTO intake.eligibility_work_item (site_id, encounter_id, sequence, payer_id, kind,"
        " reason_code, message, trace_number, status)"
        " VALUES ($1, $2, 'primary', 'AETNA1', 'registration', $3, 'member not found', 'T', $4)",
        SITE,
        encounter_id,
        code,
        state,
    )


@pytest.fixture(scope="module")
async def conn(stack_endpoints):
    c = await asyncpg.connect(stack_endpoints["postgres"])
    for schema, package in PACKAGES.items():  # `rcm status` reads every schema there is
        await db.migrate(c, schema, package)
    yield c
    await c.close()


async def test_eligibility_waits_count_sent_retrying_held_and_open_work(conn):
    e1, e2 = f"E{RUN}1", f"E{RUN}2"
    # One snapshot for both reads: what other tests commit meanwhile does not move the delta.
    tx = conn.transaction(isolation="repeatable_read")
    await tx.start()
    try:
        before = await eligibility_waits(conn)
        for n, state in enumerate(("sent", "sent", "retry", "retried", "answered", "gave_up")):
            await _check(conn, n, state, e1 if n < 3 else e2)
        await _hold(conn, e1, 1)
        await _hold(conn, e1, 2)  # a second version of the same encounter: one encounter held
        await _hold(conn, e2, 1)
        await _work(conn, e1, "72", "open")
        await _work(conn, e2, "75", "resolved")
        after = await eligibility_waits(conn)
    finally:
        await tx.rollback()
    assert {k: after[k] - before[k] for k in after} == {
        "checks_waiting": 2,
        "checks_retrying": 1,
        "encounters_held": 2,
        "work_items_open": 1,
    }


async def test_rcm_status_lists_intake_first_without_consumer_lag(conn, settings):
    for _ in range(30):  # a fresh broker has no group coordinator for a few seconds
        try:
            data = await status.collect(settings)
            break
        except GroupCoordinatorNotAvailableError:
            await asyncio.sleep(1)
    assert next(iter(data["schemas"])) == "intake"
    intake = data["schemas"]["intake"]
    assert intake["dead_letters"] == await conn.fetchval("SELECT count(*) FROM intake.dead_letter")
    assert set(intake["eligibility"]) == {
        "checks_waiting",
        "checks_retrying",
        "encounters_held",
        "work_items_open",
    }
    assert "rcm-intake" not in data["consumer_lag"]  # intake consumes no topic
    json.dumps(data)  # what `rcm status --json` prints
    line = next(x for x in status.render(data).splitlines() if x.startswith("intake "))
    assert line.split()[1] == "-" and "eligibility" in line
