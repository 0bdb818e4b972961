"""HTTP API of the payments service: balances, remittance queues, reconciliation (read-only),
and its audit trail.

Every route but ``/health`` needs a bearer token of a role it names and answers only for
the caller's sites (docs/security.md); each read of balances or remittances is audited.
"""

from __future__ import annotations

from fastapi import FastAPI

from services.payments.api import (
    balances,
    claim_remittances,
    patient_payments,
    reconciliation,
    remittances,
)
from services.payments.api.deps import ApiState
from services.payments.repository import SCHEMA
from shared.service import Runtime, audit_router, service_app


def create_app(rt: Runtime) -> FastAPI:
    app = service_app(rt, "rcm payments")
    rules = getattr(rt.settings, "payments", None)
    app.state.payments = ApiState(
        pool=rt.pool, page_limit=rules.page_limit if rules is not None else 5000
    )
    for resource in (balances, remittances, reconciliation, patient_payments, claim_remittances):
        app.include_router(resource.router)
    app.include_router(audit_router(SCHEMA))
    return app
