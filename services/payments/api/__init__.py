"""HTTP API of the payments service: balances, remittance queues, reconciliation (read-only)."""

from __future__ import annotations

from fastapi import FastAPI

from services.payments.api import balances, reconciliation, remittances
from services.payments.api.deps import ApiState
from shared.http import TELEMETRY, add_health
from shared.service import Runtime


def create_app(rt: Runtime) -> FastAPI:
    app = FastAPI(title="rcm payments", version="1", telemetry=TELEMETRY)
    rules = getattr(rt.settings, "payments", None)
    app.state.payments = ApiState(
        pool=rt.pool, page_limit=rules.page_limit if rules is not None else 5000
    )
    add_health(app, rt.pool)
    for resource in (balances, remittances, reconciliation):
        app.include_router(resource.router)
    return app
