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


async def _notified(watch: ChannelWatch, conn: asyncpg.Connection, *, commit: bool, keys=(), waiting_for=None) -> bool:
    """Whether a waiter for ``waiting_for`` (None: any key) wakes when a transaction notifies ``keys``."""
    with watch.waiting(waiting_for) as woken:
        tx = conn.transaction()
        await tx.start()
        await notify(conn, CHANNEL, keys)
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


async def test_only_the_waiters_for_the_notified_keys_wake(stack_endpoints) -> None:
    stop = asyncio.Event()
    watch, task = await _started(stack_endpoints["postgres"], stop)
    conn = await asyncpg.connect(stack_endpoints["postgres"])
    try:
        assert await _notified(watch, conn, commit=True, keys=["north", "east"], waiting_for=["east"])
        assert not await _notified(watch, conn, commit=True, keys=["north"], waiting_for=["east", "west"])
        assert await _notified(watch, conn, commit=True, keys=["north"], waiting_for=None)  # a waiter for any site
        assert await _notified(watch, conn, commit=True, keys=[], waiting_for=["west"])  # no keys: everyone
    finally:
        await conn.close()
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_the_listener_reconnects_after_its_connection_is_killed(stack_endpoints) -> None:
    stop = asyncio.Event()
    watch, task = await _started(stack_endpoints["postgres"], stop)
    conn = await asyncpg.connect(stack_endpoints["postgres"])
    try:
        with watch.waiting(["north"]) as reconnected:  # a new listener wakes every waiter: look again
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


async def test_a_key_wakes_one_waiter_the_longest_waiting(stack_endpoints) -> None:
    stop = asyncio.Event()
    watch, task = await _started(stack_endpoints["postgres"], stop)
    conn = await asyncpg.connect(stack_endpoints["postgres"])

    async def woken_by(keys: list[str]) -> list[bool]:
        with watch.waiting(["north"]) as first, watch.waiting(["north"]) as second:
            async with conn.transaction():
                await notify(conn, CHANNEL, keys)
            await asyncio.sleep(0.5)  # time for the notification to arrive
            return [first.is_set(), second.is_set()]

    try:
        assert await woken_by(["north"]) == [True, False]  # one queued item: one coder
        assert await woken_by(["north", "north"]) == [True, True]
        assert await woken_by(["east"]) == [False, False]
    finally:
        await conn.close()
        stop.set()
        await asyncio.wait_for(task, 10)
