"""What billing's routes depend on: the app's state (built by ``create_app``) and who may call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from services.billing.context import BillingContext
from shared.auth import Principal
from shared.service import requires


@dataclass(frozen=True)
class ApiState:
    pool: asyncpg.Pool
    context: BillingContext  # payer rules, NCCI, chargemasters: a released claim is re-scrubbed
    notify: Callable[[], None]  # after a commit that queued events and 837 files


def api_state(request: Request) -> ApiState:
    return request.app.state.billing


State = Annotated[ApiState, Depends(api_state)]
# Claims with their history: billing staff, their leads, and auditors (of their sites).
ClaimReader = Annotated[Principal, requires("biller", "supervisor", "auditor")]
# Supplying a held claim's missing billing data: billing staff and their leads.
ClaimEditor = Annotated[Principal, requires("biller", "supervisor")]
