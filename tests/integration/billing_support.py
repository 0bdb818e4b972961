"""Billing's handlers run in a test's own transaction on the real Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from shared import db

BILLING = Path(__file__).resolve().parents[2] / "services" / "billing"


@asynccontextmanager
async def billing_rolled_back(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection on billing's migrated schema, inside a transaction rolled back on exit:
    the claims, files and work items a test makes leave nothing behind."""
    conn = await asyncpg.connect(dsn)
    try:
        await db.migrate(conn, "billing", BILLING)
        tx = conn.transaction()
        await tx.start()
        try:
            yield conn
        finally:
            await tx.rollback()
    finally:
        await conn.close()
