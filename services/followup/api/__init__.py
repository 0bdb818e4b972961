"""HTTP API of the followup service: the biller work queue, claims, A/R aging, the jobs, and
its audit trail.

Every route but ``/health`` needs a bearer token of a role it names (``deps``) and answers
only for the caller's sites: another site's work item or claim is 403, lists and jobs cover
the caller's sites. Each read or change of PHI is audited (docs/security.md).
"""

from __future__ import annotations

from fastapi import FastAPI

from services.followup.api import aging, claims, jobs, work_items, worklist
from services.followup.api.deps import ApiState
from services.followup.repository import SCHEMA
from shared.service import Runtime, audit_router, service_app


def create_app(rt: Runtime) -> FastAPI:
    app = service_app(rt, "rcm followup")
    app.state.followup = ApiState(
        pool=rt.pool,
        settings=rt.settings,
        context=rt.context,
        notify=rt.relay.notify,
        identity=rt.identity,
    )
    for resource in (work_items, worklist, claims, aging, jobs):
        app.include_router(resource.router)
    app.include_router(audit_router(SCHEMA))
    return app
