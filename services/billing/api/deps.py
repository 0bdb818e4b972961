"""What billing's routes depend on: the app's state (built by ``create_app``) and the caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from shared.auth import Principal


@dataclass(frozen=True)
class ApiState:
    pool: asyncpg.Pool
    caller: Callable[[Request], Awaitable[Principal]]  # 401 without a valid bearer token


def api_state(request: Request) -> ApiState:
    return request.app.state.billing


async def _caller(request: Request) -> Principal:
    return await api_state(request).caller(request)


State = Annotated[ApiState, Depends(api_state)]
Caller = Annotated[Principal, Depends(_caller)]
