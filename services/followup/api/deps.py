"""What followup's routes depend on: the app's state (built by ``create_app``) and the caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from services.followup.context import FollowupContext
from services.followup.settings import FollowupSettings
from shared.auth import Principal

BILLERS = frozenset({"biller", "supervisor"})
OPS = frozenset({"supervisor", "service"})
READERS = frozenset({"biller", "supervisor", "service"})

# Verifies the request's bearer token: the caller, 401 without a valid token, 403 for a wrong role.
Verifier = Callable[[Request], Awaitable[Principal]]


@dataclass(frozen=True)
class ApiState:
    pool: asyncpg.Pool
    settings: FollowupSettings
    context: FollowupContext
    notify: Callable[[], None]  # wakes the outbox relay after a commit that queued events
    biller: Verifier
    ops: Verifier
    reader: Verifier


def api_state(request: Request) -> ApiState:
    return request.app.state.followup


async def _biller(request: Request) -> Principal:
    return await api_state(request).biller(request)


async def _ops(request: Request) -> Principal:
    return await api_state(request).ops(request)


async def _reader(request: Request) -> Principal:
    return await api_state(request).reader(request)


State = Annotated[ApiState, Depends(api_state)]
Biller = Annotated[Principal, Depends(_biller)]
Ops = Annotated[Principal, Depends(_ops)]
Reader = Annotated[Principal, Depends(_reader)]


def sites_of(p: Principal) -> list[str] | None:
    """The caller's sites for a ``site_id = ANY(...)`` filter; None for all sites."""
    return None if "*" in p.sites else sorted(p.sites)


def today() -> date:
    return datetime.now(UTC).date()
