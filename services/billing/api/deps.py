"""What billing's routes depend on: the app's state (built by ``create_app``) and who may call."""

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


def api_state(request: Request) -> ApiState:
    return request.app.state.billing


State = Annotated[ApiState, Depends(api_state)]
# Claims with their history: billing staff, their leads, and auditors (of their sites).
ClaimReader = Annotated[Principal, requires("biller", "supervisor", "auditor")]
