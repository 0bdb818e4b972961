"""The shared connection pool against the real PostgreSQL: what a released connection keeps."""

from __future__ import annotations

import asyncio

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


async def test_a_cached_statement_is_planned_again_once_its_table_grew(stack_endpoints) -> None:
    """A generic plan made while a table was small does not outlive the pool's statement lifetime."""
    pool = await db.create_pool(stack_endpoints["postgres"], min_size=1, max_size=1, statement_lifetime=1)
    plans: list[str] = []
    try:
        async with pool.acquire() as conn:
            await conn.execute("CREATE TEMP TABLE plan_probe (id text PRIMARY KEY, n int)")
            await conn.execute("INSERT INTO plan_probe SELECT 's' || g, g FROM generate_series(1, 40) g")
            await conn.execute("ANALYZE plan_probe")  # statistics of a new deployment's small table
            # Every plan comes back to this session as a LOG message.
            await conn.execute("LOAD 'auto_explain'")
            await conn.execute("SET auto_explain.log_min_duration = 0; SET client_min_messages = log")
            def listener(_conn, message) -> None:
                plans.append(message.message)

            conn.add_log_listener(listener)
            query = "SELECT n FROM plan_probe WHERE id = ANY($1::text[])"
            for _ in range(8):  # past the five custom plans after which a generic plan sticks
                await conn.fetch(query, ["s1", "s2"])
            await conn.execute("INSERT INTO plan_probe SELECT 'k' || g, g FROM generate_series(1, 50000) g")
            await asyncio.sleep(1.2)
            plans.clear()
            await conn.fetch(query, ["k7", "k9"])
            await asyncio.sleep(0.1)  # log messages arrive asynchronously
            conn.remove_log_listener(listener)
    finally:
        await pool.close()
    plan = "\n".join(p for p in plans if "plan_probe" in p)
    assert "plan_probe_pkey" in plan and "Seq Scan" not in plan, plan


async def test_queued_outbound_files_are_written_once_in_order_and_cleared(stack_endpoints, tmp_path) -> None:
    """The file writer writes a batch of queued files (one worker-thread trip) and marks each written."""
    from shared import mailbox

    pool = await db.create_pool(stack_endpoints["postgres"], min_size=1, max_size=2)
    schema = f"probe_{tmp_path.name[-8:].lower().replace('-', '_')}"
    try:
        async with pool.acquire() as conn:
            await db.migrate(conn, schema, None)
            async with conn.transaction():
                for i in range(5):
                    await mailbox.add_outbound(conn, schema, tmp_path / "out", f"F{i}.x12", f"ISA*{i}~")
        assert await mailbox.write_pending(pool, schema, limit=3) == 3
        assert await mailbox.write_pending(pool, schema, limit=3) == 2
        assert await mailbox.write_pending(pool, schema) == 0
        written = sorted(p.name for p in (tmp_path / "out").iterdir())
        assert written == [f"F{i}.x12" for i in range(5)]  # no temp files left behind
        assert [(tmp_path / "out" / f"F{i}.x12").read_text() for i in range(5)] == [f"ISA*{i}~" for i in range(5)]
        async with pool.acquire() as conn:
            rows = await conn.fetch(f"SELECT written_at IS NOT NULL AS done, content FROM {schema}.outbound_file")
            assert len(rows) == 5 and all(r["done"] and r["content"] == "" for r in rows)
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await pool.close()
