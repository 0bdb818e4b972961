"""Payments service wiring: claim.submitted / write-off consumer, 835 inbound mailbox, API."""

from pathlib import Path

from services.payments.api import create_app
from services.payments.handlers import make_handler
from services.payments.posting import apply_era
from shared.mailbox import InboundMailbox
from shared.service import Runtime, ServiceSpec
from shared.settings import ServiceSettings
from shared.topics import CLAIM_SUBMITTED, WRITEOFF_REQUESTED


class Settings(ServiceSettings):
    service_name: str = "payments"


async def era_mailbox(rt: Runtime) -> None:
    """835s from the inbound mailbox; payments also moves unreadable files there to failed/."""
    box = InboundMailbox(rt.settings.inbound_dir, frozenset({"835"}), "payments", apply_era,
                         on_commit=rt.relay.notify, handles_unknown=True)  # fmt: skip
    await box.run(rt.pool, rt.stop, rt.settings.mailbox.poll_seconds)


def spec() -> ServiceSpec:
    return ServiceSpec(
        name="payments",
        schema="payments",
        package_dir=Path(__file__).parent,
        topics=[CLAIM_SUBMITTED, WRITEOFF_REQUESTED],
        handler=make_handler,
        api=create_app,
        loops=[era_mailbox],
    )
