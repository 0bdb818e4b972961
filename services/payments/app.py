"""Payments service wiring: claim.submitted / write-off consumer, 835 inbound mailbox, API."""

from pathlib import Path

from services.payments.api import create_app
from services.payments.handlers import make_handler
from services.payments.plan_job import plan_review_loop
from services.payments.posting import apply_era
from services.payments.repository import SCHEMA
from services.payments.settings import PaymentsSettings
from shared.mailbox import InboundMailbox
from shared.service import Runtime, ServiceSpec
from shared.topics import CLAIM_SUBMITTED, WRITEOFF_REQUESTED


async def era_mailbox(rt: Runtime) -> None:
    """835s from the inbound mailbox; payments also moves unreadable files there to failed/."""
    inbound = (
        rt.settings.era_inbound
        if isinstance(rt.settings, PaymentsSettings)
        else rt.settings.inbound_dir
    )
    box = InboundMailbox(
        inbound,
        frozenset({"835"}),
        SCHEMA,
        apply_era,
        on_commit=rt.relay.notify,
        handles_unknown=True,
        settings=rt.settings.mailbox,
    )
    await box.run(rt.pool, rt.stop, rt.settings.mailbox.poll_seconds)


def spec() -> ServiceSpec:
    return ServiceSpec(
        name="payments",
        schema=SCHEMA,
        package_dir=Path(__file__).parent,
        settings=PaymentsSettings,
        topics=[CLAIM_SUBMITTED, WRITEOFF_REQUESTED],
        handler=make_handler,
        api=create_app,
        loops=[era_mailbox, plan_review_loop],
    )
