"""The master data the mapping looks things up in, built from the registry tables.

Each instance keeps one in memory and rebuilds it when the tables' generation moved (every
registry change bumps it in its own transaction), so a site loaded by `rcm sites load` or
PUT on any instance applies to the next encounter everywhere.
"""

from __future__ import annotations

import asyncpg

from services.intake import repository as repo
from services.intake.domain.registry import Registry


async def load_registry(conn: asyncpg.Connection) -> Registry:
    """The registry as stored now."""
    return Registry(await repo.sites(conn), await repo.providers(conn), await repo.payers(conn))


class RegistryCache:
    def __init__(self) -> None:
        self._generation: int | None = None
        self._registry: Registry | None = None

    async def get(self, conn: asyncpg.Connection) -> Registry:
        """The registry as of now: one small query when nothing changed."""
        generation = await repo.registry_generation(conn)
        if generation != self._generation:
            self._registry = await load_registry(conn)
            self._generation = generation
        return self._registry
