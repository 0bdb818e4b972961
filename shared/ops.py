"""Operational state, read the same way by the metrics loop and `rcm status`.

Each service reports only its own schema (outbox backlog, dead letters, its work
queues, its claims) plus its consumer group's lag.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import CoordinatorNotAvailableError

# Work queues per schema: (table, open condition).
WORK_QUEUES = {
    "coding": "status <> 'completed'",
    "billing": "status = 'open'",
    "followup": "status <> 'resolved'",
}
CLAIM_STATES = {"billing": "SELECT status, count(*) FROM billing.claim GROUP BY 1"}


async def schema_snapshot(conn: asyncpg.Connection, schema: str) -> dict:
    out: dict = {
        "outbox_backlog": await conn.fetchval(f"SELECT count(*) FROM {schema}.outbox"),
        "dead_letters": await conn.fetchval(f"SELECT count(*) FROM {schema}.dead_letter"),
        "pending_files": await conn.fetchval(
            f"SELECT count(*) FROM {schema}.outbound_file WHERE written_at IS NULL"
        ),
        "failed_files": await conn.fetchval(
            f"SELECT count(*) FROM {schema}.mailbox_file WHERE status = 'failed'"
        ),
    }
    if schema in WORK_QUEUES:
        rows = await conn.fetch(
            f"SELECT site_id, count(*) FROM {schema}.work_item WHERE {WORK_QUEUES[schema]} GROUP BY 1"
        )
        out["work_queue_depth"] = {r[0]: r[1] for r in rows}
    if schema in CLAIM_STATES:
        out["claims_by_state"] = {r[0]: r[1] for r in await conn.fetch(CLAIM_STATES[schema])}
    return out


async def group_lag(bootstrap: str, groups: list[str]) -> dict[str, int]:
    """Messages not yet committed, per consumer group (sum over partitions)."""
    from shared.kafka import client_security

    security = client_security()  # RCM_KAFKA_*: TLS and SASL as every client of the process
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000, **security)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=5000, **security)
    try:  # started inside: a broker that is away (or a caller's timeout) still closes both clients
        await admin.start()
        await consumer.start()
        out = {}
        for g in groups:
            offsets = await _committed_offsets(admin, g)
            committed = {tp: m.offset for tp, m in offsets.items() if m.offset >= 0}
            if not committed:
                out[g] = 0
                continue
            ends = await consumer.end_offsets(list(committed))
            out[g] = sum(max(0, ends[tp] - off) for tp, off in committed.items())
        return out
    finally:
        await consumer.stop()
        await admin.close()


async def _committed_offsets(
    admin: AIOKafkaAdminClient, group: str, tries: int = 6, pause: float = 0.5
) -> dict:
    """A group's committed offsets. A broker that has just started answers "coordinator not
    available" while it creates its offsets topic: asked again shortly, it answers."""
    for attempt in range(tries):
        try:
            return await admin.list_consumer_group_offsets(group)
        except CoordinatorNotAvailableError:
            if attempt == tries - 1:
                raise
            await asyncio.sleep(pause * (attempt + 1))
    return {}


# --------------------------------------------------------------------------- GET /ops/status

# The services that take files from the clearinghouse's inbound mailbox, and those that write
# files to its outbound one: their mailbox depth is part of their state.
INBOUND_READERS = frozenset({"billing", "payments", "followup"})
OUTBOUND_WRITERS = frozenset({"billing", "followup"})
STATUS_TTL_SECONDS = 5.0  # a dashboard read by many people costs one collection per interval
LAG_TIMEOUT_SECONDS = 5.0


class OpsStatus:
    """One service's operational state for ``GET /ops/status``: its consumer group's lag, its
    dead letters (per source topic), outbox backlog, unwritten and failed files, mailbox depth
    and work queues.

    Collected at most once per ``ttl`` seconds and shared by concurrent callers: the lag needs a
    Kafka admin client and a consumer, too dear for each of a hundred supervisors' page loads.
    """

    def __init__(
        self,
        service: str,
        schema: str,
        pool: asyncpg.Pool,
        settings,
        *,
        consumes: bool,
        ttl: float = STATUS_TTL_SECONDS,
    ):
        self.service = service
        self.schema = schema
        self.pool = pool
        self.settings = settings
        self.consumes = consumes
        self.ttl = ttl
        self._value: dict | None = None
        self._at = 0.0
        self._lock = asyncio.Lock()

    async def snapshot(self) -> dict:
        if self._value is not None and time.monotonic() - self._at < self.ttl:
            return self._value
        async with self._lock:  # one collection at a time; the others take its result
            if self._value is None or time.monotonic() - self._at >= self.ttl:
                self._value = await self._collect()
                self._at = time.monotonic()
        return self._value

    async def _collect(self) -> dict:
        async with self.pool.acquire() as conn:
            out = await schema_snapshot(conn, self.schema)
            rows = await conn.fetch(
                f"SELECT source_topic, count(*) FROM {self.schema}.dead_letter GROUP BY 1 ORDER BY 1"
            )
        out["dead_letters_by_topic"] = {r[0]: r[1] for r in rows}
        out["service"] = self.service
        out["collected_at"] = datetime.now(UTC).isoformat()
        out["consumer_group"] = f"rcm-{self.service}" if self.consumes else None
        out["consumer_lag"] = None
        if self.consumes:
            try:
                lag = await asyncio.wait_for(
                    group_lag(self.settings.kafka_servers, [out["consumer_group"]]),
                    LAG_TIMEOUT_SECONDS,
                )
                out["consumer_lag"] = lag[out["consumer_group"]]
            except Exception as e:  # the broker away: say so, the rest still stands
                out["lag_error"] = f"Kafka unavailable ({type(e).__name__})"
        out["mailboxes"] = await asyncio.to_thread(self._mailboxes)
        return out

    def _mailboxes(self) -> dict:
        from shared.mailbox import mailbox_report

        boxes = {}
        if self.service in INBOUND_READERS:
            # payments may read 835s from a mailbox of its own (RCM_PAYMENTS_ERA_INBOUND_DIR)
            boxes["inbound"] = getattr(self.settings, "era_inbound", self.settings.inbound_dir)
        if self.service in OUTBOUND_WRITERS:
            boxes["outbound"] = self.settings.outbound_dir
        stuck = self.settings.mailbox.stuck_seconds
        out = {}
        for name, path in boxes.items():
            report = mailbox_report(path, stuck)
            # counts only: file names may be a sender's, not ours to show on a dashboard
            out[name] = {
                "waiting": report["waiting"],
                "failed": report["failed"],
                "stuck": len(report["stuck"]),
                "retrying": len(report["retrying"]),
            }
        return out


def scoped(snapshot: dict, p) -> dict:
    """What a caller may see: work queues of their own sites; claim counts (all sites') only
    for a caller of every site. Lag, dead letters and backlogs are the pipeline's, not a site's."""
    out = dict(snapshot)
    if "work_queue_depth" in out:
        out["work_queue_depth"] = {
            site: n for site, n in out["work_queue_depth"].items() if p.can_access(site)
        }
    if not p.all_sites:
        out.pop("claims_by_state", None)
    return out


def ops_router(status: OpsStatus, auth):
    """``GET /ops/status`` of one service, for operations and supervisors (``auth``: the
    process's ``shared.auth.Authenticator``)."""
    from fastapi import APIRouter

    from shared.auth import Principal

    router = APIRouter()

    @router.get("/ops/status")
    async def ops_status(p: Principal = auth.require("ops", "supervisor")) -> dict:
        """Consumer lag, dead letters, outbox backlog, files and mailbox depth, work queues."""
        return scoped(await status.snapshot(), p)

    return router
