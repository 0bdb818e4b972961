"""What every service's HTTP API shares."""

from __future__ import annotations

import asyncpg
from fastapi import FastAPI


def add_health(app: FastAPI, pool: asyncpg.Pool) -> None:
    """GET /health: 200 when the service can reach its database."""

    @app.get("/health")
    async def health():
        async with pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
        return {"status": "ok"}
