"""Cross-process wake-ups through LISTEN/NOTIFY against the real PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import pytest

from shared.notify import ChannelWatch, notify

pytestmark = pytest.mark.integration

CHANNEL = "rcm_test_wakeups"


@contextlib.asynccontextmanager
async def _watching(dsn: str):
    """A running watch on CHANNEL, and a connection to notify it through."""
    stop = asyncio.Event()
    watch = ChannelWatch(dsn, CHANNEL)
    task = asyncio.create_task(watch.run(stop, retry_seconds=0.1))
    conn = await asyncpg.connect(dsn)
    try:
        await asyncio.wait_for(watch.listening.wait(), 10)
        yield watch, conn
    finally:
        await conn.close()
        stop.set()
        await asyncio.wait_for(task, 10)


async def _notified(
    watch: ChannelWatch, conn: asyncpg.Connection, *, commit: bool, keys=(), waiting_for=None
) -> bool:
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
    async with _watching(stack_endpoints["postgres"]) as (watch, conn):
        assert not await _notified(watch, conn, commit=False)
        assert await _notified(watch, conn, commit=True)


async def test_only_the_waiters_for_the_notified_keys_wake(stack_endpoints) -> None:
    async with _watching(stack_endpoints["postgres"]) as (watch, conn):
        assert await _notified(
            watch, conn, commit=True, keys=["north", "east"], waiting_for=["east"]
        )
        assert not await _notified(
            watch, conn, commit=True, keys=["north"], waiting_for=["east", "west"]
        )
        assert await _notified(
            watch, conn, commit=True, keys=["north"], waiting_for=None
        )  # a waiter for any site
        assert await _notified(
            watch, conn, commit=True, keys=[], waiting_for=["west"]
        )  # no keys: everyone


async def test_the_listener_reconnects_after_its_connection_is_killed(stack_endpoints) -> None:
    async with _watching(stack_endpoints["postgres"]) as (watch, conn):
        with watch.waiting(
            ["north"]
        ) as reconnected:  # a new listener wakes every waiter: look again
            killed = await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'"
                f" AND query LIKE '%{CHANNEL}%'"
            )
            assert killed == 1
            await asyncio.wait_for(reconnected.wait(), 10)
        await asyncio.wait_for(watch.listening.wait(), 10)
        assert await _notified(watch, conn, commit=True)


async def test_a_key_wakes_one_waiter_the_longest_waiting(stack_endpoints) -> None:
    async with _watching(stack_endpoints["postgres"]) as (watch, conn):

        async def woken_by(keys: list[str]) -> list[bool]:
            with watch.waiting(["north"]) as first, watch.waiting(["north"]) as second:
                async with conn.transaction():
                    await notify(conn, CHANNEL, keys)
                await asyncio.sleep(0.5)  # time for the notification to arrive
                return [first.is_set(), second.is_set()]

        assert await woken_by(["north"]) == [True, False]  # one queued item: one coder
        assert await woken_by(["north", "north"]) == [True, True]
        assert await woken_by(["east"]) == [False, False]
