"""The shared connection pool against the real PostgreSQL: what a released connection keeps."""

from __future__ import annotations

import pytest

from shared import db

pytestmark = pytest.mark.integration


async def test_a_released_connection_comes_back_without_the_open_transaction(stack_endpoints) -> None:
    pool = await db.create_pool(stack_endpoints["postgres"], min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            pid = conn.get_server_pid()
            await conn.execute("CREATE TEMP TABLE IF NOT EXISTS pool_probe (n int)")
            await conn.execute("BEGIN")  # left open, as by a task cancelled mid-transaction
            await conn.execute("INSERT INTO pool_probe VALUES (1)")
        async with pool.acquire() as conn:
            assert conn.get_server_pid() == pid  # the same session, reused
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT count(*) FROM pool_probe") == 0  # the insert was rolled back
    finally:
        await pool.close()
