"""Coding service wiring."""

from dataclasses import dataclass
from pathlib import Path

from services.coding.api import create_app
from services.coding.handlers import make_handler
from services.coding.repository import WORK_CHANNEL
from services.coding.settings import CodingSettings
from shared.notify import ChannelWatch
from shared.service import Runtime, ServiceSpec
from shared.topics import ENCOUNTER_DOCUMENTED


@dataclass
class CodingContext:
    work_watch: ChannelWatch  # wakes long-polling coders when any instance queues work


async def build_context(rt: Runtime) -> CodingContext:
    """Build the code set and term index now, not on the first encounter; ready the work-queue listener."""
    import asyncio

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
        loops=[work_watch],
        max_records=100,  # ~2-10 ms of coding per encounter: keep each batch well under a second
    )
