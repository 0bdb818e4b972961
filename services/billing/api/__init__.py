"""HTTP API of the billing service: claims with their history (site-scoped tokens)."""

from __future__ import annotations

from fastapi import FastAPI

from services.billing.api import claims
from services.billing.api.deps import ApiState
from shared.auth import principal_dependency
from shared.http import TELEMETRY, add_health
from shared.service import Runtime


def create_app(rt: Runtime) -> FastAPI:
    app = FastAPI(title="rcm billing", version="1", telemetry=TELEMETRY)
    app.state.billing = ApiState(
        pool=rt.pool, caller=principal_dependency(rt.settings.auth.token_secret).dependency
    )
    add_health(app, rt.pool)
    app.include_router(claims.router)
    return app
