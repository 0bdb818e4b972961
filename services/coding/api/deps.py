"""What coding's routes depend on: the app's state (built by ``create_app``), who may call,
and the audit record of a read or change of an encounter's PHI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import asyncpg
from fastapi import Depends, Request
from pydantic import AfterValidator

from services.coding.repository import SCHEMA
from services.coding.settings import CodingSettings
from shared import audit
from shared.audit import account_key
from shared.auth import Principal
from shared.service import requires
from shared.text import Unstorable, unstorable

if TYPE_CHECKING:
    from services.coding.app import CodingContext


@dataclass(frozen=True)
class ApiState:
    pool: asyncpg.Pool
    settings: CodingSettings
    context: CodingContext
    notify: Callable[[], None]  # wakes the outbox relay after a commit that queued events


def api_state(request: Request) -> ApiState:
    return request.app.state.coding


State = Annotated[ApiState, Depends(api_state)]
# The work queue (items with their notes; completing them) and drafting, sending and
# cancelling queries to providers: coders and their leads.
Coder = Annotated[Principal, requires("coder", "supervisor")]
# Code search: no PHI, for whoever codes.
CodeReader = Annotated[Principal, requires("coder", "supervisor")]
# Queue depth and coder statistics (a coder sees its own): no clinical content.
QueueWatcher = Annotated[Principal, requires("coder", "supervisor", "ops")]
# Auto vs review counts and query turnaround per provider: leads and operations.
StatsReader = Annotated[Principal, requires("supervisor", "ops")]
# A query as the provider sees it: coders, leads, and the EHR integration delivering it.
QueryReader = Annotated[Principal, requires("coder", "supervisor", "integration")]
# The provider's answer comes back through the EHR integration.
Answerer = Annotated[Principal, requires("integration")]


def _storable(value: str) -> str:
    """Text Postgres can store (shared.text): a 422 naming the field, never a 500."""
    flaw = unstorable(value)
    if flaw is not None:
        raise ValueError(_UNSTORABLE[flaw])
    return value


_UNSTORABLE = {
    Unstorable.NUL: "must not contain NUL characters",
    Unstorable.LONE_SURROGATE: "must be valid Unicode (a lone surrogate was sent)",
}


# Free text of a request body (a reason, a question, an answer), as Postgres can store it.
Text = Annotated[str, AfterValidator(_storable)]


async def record(
    conn: asyncpg.Connection,
    request: Request,
    p: Principal,
    action: str,
    resource: str,
    ids: list[str],
    row,
) -> None:
    """Audit ``action`` on ``resource`` of the encounter ``row`` (a work item or encounter row:
    site_id, encounter_id, patient_id) in the caller's transaction."""
    await audit.record(
        conn,
        SCHEMA,
        request,
        p,
        action,
        resource,
        ids,
        account_key=account_key(row["site_id"], row["patient_id"], row["encounter_id"]),
        site_id=row["site_id"],
    )


async def record_read(
    conn: asyncpg.Connection, request: Request, p: Principal, resource: str, ids: list[str], row
) -> None:
    """``record`` of a read, committed by the process's audit appender (shared.audit.read)
    before the answer leaves, so the read's transaction does not hold the chain's head lock."""
    await audit.read(
        conn,
        SCHEMA,
        request,
        p,
        resource,
        ids,
        account_key=account_key(row["site_id"], row["patient_id"], row["encounter_id"]),
        site_id=row["site_id"],
    )
