"""Followup service wiring: claim lifecycle consumer, biller work-queue API, no-response job, 276/277 mailboxes."""

from __future__ import annotations

from pathlib import Path

from services.followup.api import create_app
from services.followup.context import FollowupContext
from services.followup.handlers import make_handler
from services.followup.noresponse_job import apply_277, every, no_response_pass
from services.followup.repository import SCHEMA
from services.followup.settings import FollowupSettings
from shared import clock
from shared.mailbox import InboundMailbox, file_writer_loop
from shared.service import Runtime, ServiceSpec
from shared.settings import ConfigurationError
from shared.topics import (
    CLAIM_ACCEPTED,
    CLAIM_HELD,
    CLAIM_REJECTED,
    CLAIM_SUBMITTED,
    ENCOUNTER_CODED,
    PATIENT_ACCOUNT,
    REMITTANCE_HELD,
    REMITTANCE_RECEIVED,
)


async def build_context(rt: Runtime) -> FollowupContext:
    try:
        return FollowupContext(policies=rt.settings.payer_policies())
    except ValueError as e:
        raise ConfigurationError(f"followup: {e}") from e


async def file_writer(rt: Runtime[FollowupContext]) -> None:
    """Writes queued 276 files to the outbound mailbox after their transaction committed."""
    await file_writer_loop(rt.pool, SCHEMA, rt.stop, rt.context.files_written, interval=0.5)


async def status_mailbox(rt: Runtime) -> None:
    """277 claim-status responses from the inbound mailbox (277CA acknowledgments are billing's)."""
    box = InboundMailbox(
        rt.settings.inbound_dir,
        frozenset({"277"}),
        SCHEMA,
        apply_277,
        on_commit=rt.relay.notify,
        settings=rt.settings.mailbox,
    )
    await box.run(rt.pool, rt.stop, rt.settings.mailbox.poll_seconds)


async def no_response_job(rt: Runtime[FollowupContext]) -> None:
    """The no-response pass now and then every ``RCM_FOLLOWUP_NORESPONSE_INTERVAL_SECONDS`` (default 1 h)."""

    async def run_once() -> None:
        await no_response_pass(rt.pool, rt.settings, rt.context, clock.today())

    await every(rt.stop, rt.settings.followup.noresponse_interval_seconds, run_once)


def spec() -> ServiceSpec:
    return ServiceSpec(
        name="followup",
        schema=SCHEMA,
        package_dir=Path(__file__).parent,
        settings=FollowupSettings,
        topics=[
            ENCOUNTER_CODED,
            CLAIM_SUBMITTED,
            CLAIM_HELD,
            CLAIM_ACCEPTED,
            CLAIM_REJECTED,
            REMITTANCE_RECEIVED,
            REMITTANCE_HELD,
            PATIENT_ACCOUNT,
        ],
        handler=make_handler,
        api=create_app,
        loops=[file_writer, status_mailbox, no_response_job],
        build_context=build_context,
    )
