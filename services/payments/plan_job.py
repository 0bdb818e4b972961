"""The payment plan review, run by the service once a day (and on demand over HTTP:
``POST /payment-plans/review``): plans that missed an instalment past their grace period
default, paid-off ones complete (``patient_accounts.review_plans``)."""

from __future__ import annotations

import asyncio
import logging

from services.payments.patient_accounts import review_plans
from services.payments.repository import SCHEMA
from shared import clock
from shared.logs import log
from shared.messaging import Emitter
from shared.service import Runtime

_log = logging.getLogger("rcm.payments.plans")
INTERVAL_SECONDS = 24 * 3600


async def plan_review_loop(rt: Runtime) -> None:
    """Review every site's active plans now and then daily, until the service stops."""
    while not rt.stop.is_set():
        try:
            emitter = Emitter(SCHEMA)
            async with rt.pool.acquire() as conn, conn.transaction():
                changed = await review_plans(conn, clock.today(), None, emitter)
                await emitter.flush(conn)
            if changed:
                rt.relay.notify()
                log(_log, logging.INFO, "payment plans reviewed", count=len(changed))
        except asyncio.CancelledError:
            raise
        except Exception as e:  # database away: report, try again at the next interval
            log(_log, logging.WARNING, "plan review failed", error_type=type(e).__name__)
        try:
            await asyncio.wait_for(rt.stop.wait(), INTERVAL_SECONDS)
        except TimeoutError:
            pass
