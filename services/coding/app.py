"""Coding service wiring."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from services.coding.api import create_app
from services.coding.code_search import CodeSearch
from services.coding.escalation import escalate_queries
from services.coding.handlers import make_handler
from services.coding.repository import WORK_CHANNEL
from services.coding.settings import CodingSettings, QuerySettings
from shared.notify import ChannelWatch
from shared.service import Runtime, ServiceSpec
from shared.topics import ENCOUNTER_DOCUMENTED


@dataclass
class CodingContext:
    work_watch: ChannelWatch  # wakes long-polling coders when any instance queues work
    queries: QuerySettings = field(default_factory=QuerySettings)
    _search: asyncio.Future | None = None

    async def code_search(self) -> CodeSearch:
        """The code search index, built on first use (off the event loop; concurrent first
        searches wait for the same build)."""
        if self._search is None:
            self._search = asyncio.ensure_future(asyncio.to_thread(CodeSearch.build))
        try:
            return await asyncio.shield(self._search)
        except Exception:
            self._search = None  # a failed build is tried again by the next search
            raise


async def build_context(rt: Runtime) -> CodingContext:
    """Build the code set and term index now, not on the first encounter; ready the work-queue listener."""
    from services.coding.domain.lexicon import term_index
    from shared import icd10cm

    await asyncio.to_thread(lambda: (icd10cm.load(), term_index()))
    return CodingContext(work_watch=ChannelWatch(rt.settings.dsn, WORK_CHANNEL))


async def work_watch(rt: Runtime) -> None:
    """Listens for queued work (any instance's) so long-polling coders wake at once."""
    await rt.context.work_watch.run(rt.stop)


def spec() -> ServiceSpec:
    return ServiceSpec(
        name="coding",
        schema="coding",
        package_dir=Path(__file__).parent,
        settings=CodingSettings,
        topics=[ENCOUNTER_DOCUMENTED],
        handler=make_handler,
        api=create_app,
        build_context=build_context,
        loops=[work_watch, escalate_queries],
        max_records=100,  # ~2-10 ms of coding per encounter: keep each batch well under a second
    )
