"""Followup service wiring: claim lifecycle consumer, biller work-queue API, no-response job, 276/277 mailboxes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from services.followup.api import create_app
from services.followup.domain.deadlines import PayerPolicies
from services.followup.handlers import make_handler
from services.followup.noresponse_job import apply_277, every, run_no_response
from services.followup.settings import FollowupSettings
from shared.mailbox import InboundMailbox, file_writer_loop
from shared.service import Runtime, ServiceSpec
from shared.settings import ConfigurationError
from shared.topics import (
    CLAIM_ACCEPTED,
    CLAIM_HELD,
    CLAIM_REJECTED,
    CLAIM_SUBMITTED,
    ENCOUNTER_CODED,
    REMITTANCE_RECEIVED,
)

S = "followup"


@dataclass
class FollowupContext:
    policies: PayerPolicies | None
    # Set when a 276 file was queued: the file writer wakes instead of waiting for its poll.
    files_written: asyncio.Event = field(default_factory=asyncio.Event)


async def build_context(rt: Runtime) -> FollowupContext:
    try:
        return FollowupContext(policies=rt.settings.payer_policies())
    except ValueError as e:
        raise ConfigurationError(f"followup: {e}") from e


async def file_writer(rt: Runtime) -> None:
    """Writes queued 276 files to the outbound mailbox after their transaction committed."""
    await file_writer_loop(rt.pool, S, rt.stop, rt.context.files_written, interval=0.5)


async def status_mailbox(rt: Runtime) -> None:
    """277 claim-status responses from the inbound mailbox (277CA acknowledgments are billing's)."""
    box = InboundMailbox(
        rt.settings.inbound_dir, frozenset({"277"}), S, apply_277, on_commit=rt.relay.notify
    )
    await box.run(rt.pool, rt.stop, rt.settings.mailbox.poll_seconds)


async def no_response_job(rt: Runtime) -> None:
    """The no-response pass now and then every ``RCM_FOLLOWUP_NORESPONSE_INTERVAL_SECONDS`` (default 1 h)."""
    s = rt.settings

    async def run_once() -> None:
        result = await run_no_response(
            rt.pool,
            datetime.now(UTC).date(),
            outbound_dir=s.outbound_dir,
            policies=rt.context.policies,
            sender_id=s.followup.sender_id,
            receiver_id=s.followup.receiver_id,
        )
        if result["file_name"]:
            rt.context.files_written.set()

    await every(rt.stop, s.followup.noresponse_interval_seconds, run_once)


def spec() -> ServiceSpec:
    return ServiceSpec(
        name="followup",
        schema=S,
        package_dir=Path(__file__).parent,
        settings=FollowupSettings,
        topics=[
            ENCOUNTER_CODED,
            CLAIM_SUBMITTED,
            CLAIM_HELD,
            CLAIM_ACCEPTED,
            CLAIM_REJECTED,
            REMITTANCE_RECEIVED,
        ],
        handler=make_handler,
        api=create_app,
        loops=[file_writer, status_mailbox, no_response_job],
        build_context=build_context,
    )
