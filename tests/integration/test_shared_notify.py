"""Cross-process wake-ups through LISTEN/NOTIFY against the real PostgreSQL."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from shared.notify import ChannelWatch, notify

pytestmark = pytest.mark.integration

CHANNEL = "rcm_test_wakeups"


async def _started(dsn: str, stop: asyncio.Event) -> tuple[ChannelWatch, asyncio.Task]:
    watch = ChannelWatch(dsn, CHANNEL)
    task = asyncio.create_task(watch.run(stop, retry_seconds=0.1))
    await asyncio.wait_for(watch.listening.wait(), 10)
    return watch, task


async def _notified(watch: ChannelWatch, conn: asyncpg.Connection, *, commit: bool) -> bool:
    woken = watch.signal()
    tx = conn.transaction()
    await tx.start()
    await notify(conn, CHANNEL)
    await (tx.commit() if commit else tx.rollback())
    try:
        await asyncio.wait_for(woken.wait(), 2)
    except TimeoutError:
        return False
    return True


async def test_a_commit_wakes_the_waiters_and_a_rollback_does_not(stack_endpoints) -> None:
    stop = asyncio.Event()
    watch, task = await _started(stack_endpoints["postgres"], stop)
    conn = await asyncpg.connect(stack_endpoints["postgres"])
    try:
        assert not await _notified(watch, conn, commit=False)
        assert await _notified(watch, conn, commit=True)
    finally:
        await conn.close()
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_the_listener_reconnects_after_its_connection_is_killed(stack_endpoints) -> None:
    stop = asyncio.Event()
    watch, task = await _started(stack_endpoints["postgres"], stop)
    conn = await asyncpg.connect(stack_endpoints["postgres"])
    try:
        reconnected = watch.signal()  # a new listener looks again at once: it wakes the waiters
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'"
            f" AND query LIKE '%{CHANNEL}%'"
        )
        assert killed == 1
        await asyncio.wait_for(reconnected.wait(), 10)
        await asyncio.wait_for(watch.listening.wait(), 10)
        assert await _notified(watch, conn, commit=True)
    finally:
        await conn.close()
        stop.set()
        await asyncio.wait_for(task, 10)
