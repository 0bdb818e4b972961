"""HTTP API of the followup service: the biller work queue, claims, A/R aging, and the jobs.

Billers (role ``biller`` or ``supervisor``) see and act on the items of their
sites only (403 otherwise). Jobs take role ``supervisor`` or ``service``.
"""

from __future__ import annotations

from fastapi import FastAPI

from services.followup.api import aging, claims, jobs, work_items
from services.followup.api.deps import BILLERS, OPS, READERS, ApiState
from shared.auth import principal_dependency
from shared.http import TELEMETRY, add_health
from shared.service import Runtime


def create_app(rt: Runtime) -> FastAPI:
    app = FastAPI(title="rcm followup", version="1", telemetry=TELEMETRY)
    secret = rt.settings.auth.token_secret
    app.state.followup = ApiState(
        pool=rt.pool,
        settings=rt.settings,
        context=rt.context,
        notify=rt.relay.notify,
        biller=principal_dependency(secret, BILLERS).dependency,
        ops=principal_dependency(secret, OPS).dependency,
        reader=principal_dependency(secret, READERS).dependency,
    )
    add_health(app, rt.pool)
    for resource in (work_items, claims, aging, jobs):
        app.include_router(resource.router)
    return app
