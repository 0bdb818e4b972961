"""HTTP API of the billing service: claims with their history, and its audit trail.

Every route but ``/health`` needs a bearer token of a role it names and answers only for
the caller's sites (docs/security.md).
"""

from __future__ import annotations

from fastapi import FastAPI

from services.billing.api import claims, estimates
from services.billing.api.deps import ApiState
from services.billing.repository import SCHEMA
from shared.service import Runtime, audit_router, service_app


def create_app(rt: Runtime) -> FastAPI:
    app = service_app(rt, "rcm billing")
    ctx = rt.context

    def notify() -> None:
        ctx.files_written.set()  # the 837 file writer
        rt.relay.notify()  # the outbox relay

    app.state.billing = ApiState(pool=rt.pool, context=ctx, notify=notify)
    app.include_router(claims.router)
    app.include_router(estimates.router)
    app.include_router(audit_router(SCHEMA))
    return app
