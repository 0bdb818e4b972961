"""Coding service wiring."""

from pathlib import Path

from services.coding.api import create_app
from services.coding.handlers import make_handler
from services.coding.repository import WORK_CHANNEL
from services.coding.settings import CodingSettings
from shared.notify import ChannelWatch
from shared.service import Runtime, ServiceSpec
from shared.topics import ENCOUNTER_DOCUMENTED


async def warm_up(rt: Runtime) -> None:
    """Build the code set and term index now, not on the first encounter; ready the work-queue listener."""
    import asyncio

    from services.coding.domain.lexicon import term_index
    from shared import icd10cm

    rt.state["work_watch"] = ChannelWatch(rt.settings.dsn, WORK_CHANNEL)
    await asyncio.to_thread(lambda: (icd10cm.load(), term_index()))


async def work_watch(rt: Runtime) -> None:
    """Listens for queued work (any instance's) so long-polling coders wake at once."""
    await rt.state["work_watch"].run(rt.stop)


def spec() -> ServiceSpec:
    return ServiceSpec(
        name="coding",
        schema="coding",
        package_dir=Path(__file__).parent,
        topics=[ENCOUNTER_DOCUMENTED],
        handler=make_handler,
        api=create_app,
        on_start=warm_up,
        loops=[work_watch],
        max_records=100,  # ~2-10 ms of coding per encounter: keep each batch well under a second
    )


Settings = CodingSettings
