"""What payments' routes depend on: the app's state (built by ``create_app``) and who may call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from shared.auth import Principal
from shared.service import requires


@dataclass(frozen=True)
class ApiState:
    pool: asyncpg.Pool
    page_limit: int  # the largest page a listing returns, whatever ``limit`` asks


def api_state(request: Request) -> ApiState:
    return request.app.state.payments


State = Annotated[ApiState, Depends(api_state)]
# Claim balances: billing staff, leads, auditors, and services (followup checks a write-off).
BalanceReader = Annotated[Principal, requires("biller", "supervisor", "auditor", "service")]
# The remittance queues (835 claim payments, with the payer's view of the patient).
RemittanceReader = Annotated[Principal, requires("biller", "supervisor", "auditor")]
# Deposits against cash posted: money totals per payer, no patient in them.
Reconciler = Annotated[Principal, requires("biller", "supervisor", "auditor", "ops")]
