"""Billing service wiring: coded encounters, corrections and remittances in; 837s out; acks in."""

from pathlib import Path

from services.billing.acks_inbound import apply_ack
from services.billing.api import create_app
from services.billing.cob_flow import check_crossovers
from services.billing.context import BillingContext
from services.billing.handlers import make_handler
from services.billing.repository import SCHEMA
from services.billing.settings import BillingSettings
from shared.mailbox import InboundMailbox, file_writer_loop
from shared.service import Runtime, ServiceSpec
from shared.topics import CORRECTION_REQUESTED, ENCOUNTER_CODED, REMITTANCE_RECEIVED


async def build_context(rt: Runtime) -> BillingContext:
    import asyncio

    from shared import icd10cm

    await asyncio.to_thread(icd10cm.load)  # the scrubber's code set, loaded before the first claim
    ctx = BillingContext.from_settings(rt.settings)
    rt.on_commit.append(ctx.files_written.set)  # a committed batch may have queued 837s
    return ctx


async def file_writer(rt: Runtime) -> None:
    """Writes queued 837 files to the outbound mailbox after their transaction committed."""
    # Each committed batch wakes the writer; the poll only finds files another instance or a crash left.
    await file_writer_loop(rt.pool, SCHEMA, rt.stop, rt.context.files_written, interval=1.0)


async def ack_mailbox(rt: Runtime) -> None:
    # One file per transaction: an acknowledgement locks its claims, which the remittance
    # consumer locks too (both in claim order; see repository.lock_claims).
    box = InboundMailbox(
        rt.settings.inbound_dir,
        frozenset({"999", "277CA"}),
        SCHEMA,
        apply_ack,
        on_commit=rt.relay.notify,
        files_per_transaction=1,
    )
    await box.run(rt.pool, rt.stop, rt.settings.mailbox.poll_seconds)


async def crossover_check(rt: Runtime) -> None:
    """Periodically opens work items (and holds the next payer's claim) for crossovers whose
    next payer's 835 is overdue."""
    import asyncio
    from datetime import UTC, datetime

    while not rt.stop.is_set():
        async with rt.pool.acquire() as conn:
            if await check_crossovers(conn, datetime.now(UTC), rt.context):
                rt.relay.notify()  # claim.held for each, in the outbox
        try:
            await asyncio.wait_for(rt.stop.wait(), rt.context.crossover_check_seconds)
        except TimeoutError:
            pass


def spec() -> ServiceSpec:
    return ServiceSpec(
        name="billing",
        schema=SCHEMA,
        package_dir=Path(__file__).parent,
        settings=BillingSettings,
        topics=[ENCOUNTER_CODED, CORRECTION_REQUESTED, REMITTANCE_RECEIVED],
        handler=make_handler,
        api=create_app,
        loops=[file_writer, ack_mailbox, crossover_check],
        build_context=build_context,
    )
