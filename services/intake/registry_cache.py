"""The master data the mapping looks things up in, built from the registry tables.

Each instance keeps one in memory and rebuilds it when the tables' generation moved (every
registry change bumps it in its own transaction). The generation is looked at once a second
at most: a change made on this instance applies to its next encounter, one made elsewhere
(`rcm sites load`, another instance) within a second.
"""

from __future__ import annotations

import time

import asyncpg

from services.intake import repository as repo
from services.intake.domain.registry import Registry


async def load_registry(conn: asyncpg.Connection) -> Registry:
    """The registry as stored now."""
    return Registry(await repo.sites(conn), await repo.providers(conn), await repo.payers(conn))


class RegistryCache:
    def __init__(self, recheck_seconds: float = 1.0) -> None:
        self.recheck_seconds = recheck_seconds
        self._generation: int | None = None
        self._registry: Registry | None = None
        self._checked = float("-inf")

    def invalidate(self) -> None:
        """This instance changed the registry: look again before the next encounter."""
        self._checked = float("-inf")

    async def get(self, pool: asyncpg.Pool) -> Registry:
        """The registry: rebuilt when its generation moved, looked at once a second at most."""
        now = time.monotonic()
        if self._registry is not None and now - self._checked < self.recheck_seconds:
            return self._registry
        async with pool.acquire() as conn:
            generation = await repo.registry_generation(conn)
            if generation != self._generation or self._registry is None:
                self._registry = await load_registry(conn)
                self._generation = generation
        self._checked = now
        return self._registry
