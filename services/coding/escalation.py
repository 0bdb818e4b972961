"""Queries to providers left unanswered: escalated after a configurable time (a periodic loop).

An escalated query stays open (the encounter still waits for the answer); the
``coding.query`` event with status ``escalated`` tells whoever follows up (a physician
advisor, the site's coding lead) and the escalation is on the audit chain as a job.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from services.coding import query_events
from services.coding import repository as repo
from services.coding.settings import QuerySettings
from shared import audit, logs
from shared.lifecycle import wait_stopped
from shared.messaging import Emitter
from shared.service import Runtime

_log = logging.getLogger("rcm.coding.queries")


async def escalate_queries(rt: Runtime) -> None:
    """Every ``check_seconds``: escalate the queries sent longer ago than the limit."""
    settings: QuerySettings = rt.context.queries
    while not await wait_stopped(rt.stop, settings.check_seconds):
        n = await escalate_once(rt, settings.escalate_after_hours)
        if n:
            logs.log(_log, logging.INFO, "provider queries escalated", count=n)


async def escalate_once(rt: Runtime, after_hours: float) -> int:
    """One pass in one transaction (queries, outbox events, audit record); how many escalated."""
    emitter = Emitter(repo.SCHEMA)
    due = datetime.now(UTC) - timedelta(hours=after_hours)
    async with rt.pool.acquire() as conn, conn.transaction():
        rows = await repo.escalate_due(conn, due)
        if not rows:
            return 0
        for q in rows:
            query_events.emit(emitter, q, traceparent=q["traceparent"])
        await emitter.flush(conn)
        actor = audit.Actor(user_id=f"service:{rt.settings.service_name}", role="service")
        await audit.append(
            conn,
            repo.SCHEMA,
            actor,
            [
                audit.AuditEvent(
                    "job",
                    "provider_query",
                    [str(q["query_id"]), q["encounter_id"], "escalate"],
                    site_id=q["site_id"],
                )
                for q in rows
            ],
        )
    rt.relay.notify()
    return len(rows)
