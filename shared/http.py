"""What every service's HTTP API shares."""

from __future__ import annotations

import asyncpg
from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig

# FastAPI's own telemetry keeps one server span per request, in the caller's trace. Off: its
# operation spans (four more spans per request, a fifth of a coder request's CPU), its metrics
# (ours are in shared.metrics) and its logs, which record validation errors with the
# request's values (PHI).
TELEMETRY: TelemetryConfig = {"operation_spans": False, "metrics": False, "logs": False}


def add_health(app: FastAPI, pool: asyncpg.Pool) -> None:
    """GET /health: 200 when the service can reach its database."""

    @app.get("/health")
    async def health():
        async with pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
        return {"status": "ok"}
