"""Workbench wiring: the web front end for coders, billers and supervisors (docs/workbench.md).

It owns no business data: every screen is built from the other services' HTTP APIs, called
with the signed-in person's access token. Its own schema holds only browser sessions.
"""

from __future__ import annotations

from pathlib import Path

from services.workbench import context
from services.workbench.sessions import SCHEMA, MemorySessions, PostgresSessions
from services.workbench.settings import WorkbenchSettings
from services.workbench.web.app import create_app
from shared.lifecycle import wait_stopped
from shared.service import Runtime, ServiceSpec

PRUNE_EVERY_SECONDS = 600


async def build_context(rt: Runtime) -> context.WorkbenchContext:
    settings = rt.settings
    assert isinstance(settings, WorkbenchSettings)
    store = (
        PostgresSessions(rt.pool)
        if settings.workbench.session_store == "postgres"
        else MemorySessions()
    )
    return context.build(settings, store)


def api(rt: Runtime):
    async def health() -> None:
        async with rt.pool.acquire() as conn:
            await conn.fetchval("SELECT 1")

    return create_app(rt.context, health)


async def prune_sessions(rt: Runtime) -> None:
    """Delete ended sessions and sign-in transactions every ten minutes."""
    while not await wait_stopped(rt.stop, PRUNE_EVERY_SECONDS):
        await rt.context.sessions.prune()
    await rt.context.close()


def spec() -> ServiceSpec:
    return ServiceSpec(
        name="workbench",
        schema=SCHEMA,
        package_dir=Path(__file__).parent,
        settings=WorkbenchSettings,
        api=api,
        build_context=build_context,
        loops=[prune_sessions],
        pool_size=10,
        kafka=False,  # it calls the services' APIs; no event in or out
    )
