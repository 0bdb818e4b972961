"""What payments' routes depend on: the app's state, built by ``create_app``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends, Request


@dataclass(frozen=True)
class ApiState:
    pool: asyncpg.Pool
    page_limit: int  # the largest page a listing returns, whatever ``limit`` asks


def api_state(request: Request) -> ApiState:
    return request.app.state.payments


State = Annotated[ApiState, Depends(api_state)]
