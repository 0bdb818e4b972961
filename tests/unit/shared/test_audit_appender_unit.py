"""The audit appender's batching when its database cannot be reached (the chain itself, on a
real PostgreSQL, is tests/integration/test_audit_appender.py)."""

from __future__ import annotations

import asyncio

import pytest

from shared import audit
from shared.audit import Actor, AuditAppender, AuditEvent, AuditUnavailable

READ = AuditEvent("read", "claim", ["CLM-1"], account_key="A1B2C3", site_id="north-clinic")


def unreachable():
    calls = []

    async def connect():
        calls.append(1)
        await asyncio.sleep(0.01)  # requests arriving meanwhile join the batch
        raise OSError("connection refused")

    return connect, calls


async def test_every_request_of_a_failed_batch_fails_and_the_next_batch_tries_again():
    connect, calls = unreachable()
    appender = AuditAppender("billing", connect)
    got = await asyncio.gather(
        *(appender.append(Actor(f"biller-{i}", "biller"), [READ]) for i in range(20)),
        return_exceptions=True,
    )
    assert all(isinstance(g, AuditUnavailable) for g in got), got
    assert len(calls) == 1  # one batch for the 20 requests
    assert str(got[0]) == "billing audit append failed (OSError)"  # no record's values
    with pytest.raises(AuditUnavailable):
        await appender.append(Actor("biller-21", "biller"), [READ])
    assert len(calls) == 2 and appender.batches == 0
    await appender.close()


async def test_a_closed_appender_refuses_and_a_request_without_records_needs_none():
    connect, calls = unreachable()
    appender = AuditAppender("followup", connect)
    await appender.append(Actor("biller-1", "biller"), [])
    assert calls == []
    await appender.close()
    with pytest.raises(AuditUnavailable, match="closed"):
        await appender.append(Actor("biller-1", "biller"), [READ])


async def test_reads_go_to_the_schemas_appender_while_it_is_started():
    connect, calls = unreachable()
    appender = audit.start_appender("payments", connect)
    try:
        with pytest.raises(AuditUnavailable):  # not the connection given: the appender's
            await audit.read_events(None, "payments", Actor("biller-1", "biller"), [READ])
    finally:
        await audit.stop_appender(appender)
    assert len(calls) == 1 and "payments" not in audit._appenders
