"""Followup service wiring."""

from pathlib import Path

from services.followup.handlers import make_handler
from shared.service import ServiceSpec
from shared.settings import ServiceSettings
from shared.topics import (
    CLAIM_ACCEPTED,
    CLAIM_HELD,
    CLAIM_REJECTED,
    CLAIM_SUBMITTED,
    REMITTANCE_RECEIVED,
)


class Settings(ServiceSettings):
    service_name: str = "followup"


def spec() -> ServiceSpec:
    return ServiceSpec(
        name="followup",
        schema="followup",
        package_dir=Path(__file__).parent,
        topics=[CLAIM_SUBMITTED, CLAIM_HELD, CLAIM_ACCEPTED, CLAIM_REJECTED, REMITTANCE_RECEIVED],
        handler=make_handler,
    )
