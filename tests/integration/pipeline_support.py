"""Polling helpers for tests against the running pipeline (bounded waits, no sleeps as assertions)."""

from __future__ import annotations

import asyncio
import time
from datetime import date, timedelta

import asyncpg

# Sample encounters dated inside every payer's timely-filing window.
RECENT = date.today() - timedelta(days=35)


async def wait_for(
    dsn: str, query: str, *args, predicate=lambda v: v, timeout: float = 60, interval: float = 0.3
):
    """Poll ``query`` (fetchval) until ``predicate(value)``; return the value or fail with the last one."""
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = await conn.fetchval(query, *args)
            if predicate(value):
                return value
            await asyncio.sleep(interval)
        raise AssertionError(
            f"timed out after {timeout}s waiting on {query!r}; last value {value!r}"
        )
    finally:
        await conn.close()


async def fetch(dsn: str, query: str, *args):
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def fetchval(dsn: str, query: str, *args):
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()
