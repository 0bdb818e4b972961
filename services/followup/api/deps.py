"""What followup's routes depend on: the app's state (built by ``create_app``) and who may call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from services.followup.context import FollowupContext
from services.followup.settings import FollowupSettings
from shared.auth import Principal
from shared.service import ServiceIdentity, requires


@dataclass(frozen=True)
class ApiState:
    pool: asyncpg.Pool
    settings: FollowupSettings
    context: FollowupContext
    notify: Callable[[], None]  # wakes the outbox relay after a commit that queued events
    identity: ServiceIdentity  # followup's own token, for asking payments


def api_state(request: Request) -> ApiState:
    return request.app.state.followup


State = Annotated[ApiState, Depends(api_state)]
# The work queue (items with their notes, actions on them): billers and their leads.
Biller = Annotated[Principal, requires("biller", "supervisor")]
# Queue depth (counts per site and category, no patient): also operations.
QueueWatcher = Annotated[Principal, requires("biller", "supervisor", "ops")]
# A claim as followup sees it: also auditors.
Reader = Annotated[Principal, requires("biller", "supervisor", "auditor")]
# A/R aging: also operations, by payer or site only (not by patient account).
AgingReader = Annotated[Principal, requires("biller", "supervisor", "auditor", "ops")]
# The periodic jobs on demand: leads, operations and a scheduler's service identity.
JobRunner = Annotated[Principal, requires("supervisor", "ops", "service")]


def account_of(claim) -> str:
    """The patient account key an audit record names for a claim (the encounter's without one)."""
    return claim["account_key"] or f"E{claim['encounter_id']}"
