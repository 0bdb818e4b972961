"""Coding service wiring."""

from pathlib import Path

from services.coding.api import create_app
from services.coding.handlers import make_handler
from services.coding.settings import CodingSettings
from shared.service import ServiceSpec
from shared.topics import ENCOUNTER_DOCUMENTED


def spec() -> ServiceSpec:
    return ServiceSpec(
        name="coding",
        schema="coding",
        package_dir=Path(__file__).parent,
        topics=[ENCOUNTER_DOCUMENTED],
        handler=make_handler,
        api=create_app,
    )


Settings = CodingSettings
