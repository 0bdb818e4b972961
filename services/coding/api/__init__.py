"""HTTP API of the coding service: the coder work queue, queries to providers, code search,
statistics, and its audit trail.

Every route but ``/health`` needs a bearer token of a role it names (``deps``) and answers
only for the caller's sites: another site's work item or query is 403, lists and figures
cover the caller's sites. Each read of a work item or query (they carry the note) and each
change is audited (docs/security.md, docs/coding-queries.md).
"""

from __future__ import annotations

from fastapi import FastAPI

from services.coding.api import codes, queries, stats, work_items
from services.coding.api.deps import ApiState
from services.coding.repository import SCHEMA
from shared.service import Runtime, audit_router, service_app


def create_app(rt: Runtime) -> FastAPI:
    app = service_app(rt, "rcm coding")
    app.state.coding = ApiState(
        pool=rt.pool, settings=rt.settings, context=rt.context, notify=rt.relay.notify
    )
    for resource in (work_items, queries, codes, stats):
        app.include_router(resource.router)
    app.include_router(audit_router(SCHEMA))
    return app
