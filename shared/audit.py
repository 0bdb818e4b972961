"""Audit records: who read or changed which PHI, in an append-only hash chain per schema.

Every service schema has ``audit_record`` (shared migration 005): who (the token's
``sub``), in which role, did what (read, create, update, delete, job) to which
resource (type and ids, the patient/account key: a key, never PHI), when, from
where (client address) and in which request. Each record's ``hash`` is SHA-256
over its canonical serialisation (sorted-key JSON) including the previous
record's hash; the first record follows a hash of the schema's name. Every
append locks the one-row ``audit_head`` for its insert, so concurrent writers
line up and the chain never forks: a change's record in the change's own
transaction (``record``, its last statement), a read's through the process's
``AuditAppender`` (``read``: group commit, committed before the answer leaves).
The database refuses UPDATE, DELETE and TRUNCATE on the records (trigger and
privileges). ``verify_chain`` walks a
chain and names the first record that was changed, deleted or reordered.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from fastapi import Request

from shared.auth import Principal

ACTIONS = ("read", "create", "update", "delete", "job")
_COLUMNS = (
    "seq, recorded_at, actor, role, action, resource_type, resource_ids, account_key, site_id,"
    " client_address, request_id, prev_hash, hash"
)


@dataclass(frozen=True)
class Actor:
    """Who is acting, and from where."""

    user_id: str
    role: str
    client_address: str | None = None
    request_id: str | None = None

    @classmethod
    def of(cls, request: Request, p: Principal) -> Actor:
        return cls(
            user_id=p.user_id,
            role=",".join(sorted(p.roles)) or p.role,
            client_address=request.client.host if request.client else None,
            request_id=(request.scope.get("state") or {}).get("request_id"),
        )


@dataclass(frozen=True)
class AuditEvent:
    action: str
    resource_type: str
    resource_ids: Sequence[str] = ()
    account_key: str | None = None
    site_id: str | None = None

    def __post_init__(self):
        if self.action not in ACTIONS:
            raise ValueError(f"audit action must be one of {', '.join(ACTIONS)}")


def account_key(site_id: str, patient_id: str | None, encounter_id: str) -> str:
    """The opaque, stable patient account key audit records and work items name: a hash of
    site and MRN (or of the encounter without one), so every service names a patient alike."""
    basis = f"{site_id}:mrn:{patient_id}" if patient_id else f"{site_id}:enc:{encounter_id}"
    return "A" + hashlib.sha256(basis.encode()).hexdigest()[:12].upper()


def genesis(schema: str) -> str:
    """The hash the first record of ``schema``'s chain follows (as migration 005 seeds it)."""
    return hashlib.sha256(f"rcm-audit-genesis:{schema}".encode()).hexdigest()


def record_hash(record: dict) -> str:
    """SHA-256 over the record's canonical serialisation (every column but ``hash``)."""
    canonical = {
        "seq": record["seq"],
        "recorded_at": record["recorded_at"].astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": record["actor"],
        "role": record["role"],
        "action": record["action"],
        "resource_type": record["resource_type"],
        "resource_ids": list(record["resource_ids"]),
        "account_key": record["account_key"],
        "site_id": record["site_id"],
        "client_address": record["client_address"],
        "request_id": record["request_id"],
        "prev_hash": record["prev_hash"],
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


async def append(
    conn: asyncpg.Connection, schema: str, actor: Actor, events: Sequence[AuditEvent]
) -> None:
    """Append ``events`` to ``schema``'s chain in the connection's transaction (or its own).

    Holds the chain head's row lock until that transaction ends: appends of one schema
    are serialised, so a change's transaction appends its record as its last statement.
    Reads go through ``read`` (the process's ``AuditAppender``) instead.
    """
    if events:
        await _append_rows(conn, schema, [(actor, ev) for ev in events])


async def _append_rows(
    conn: asyncpg.Connection, schema: str, rows_in: Sequence[tuple[Actor, AuditEvent]]
) -> None:
    """Link ``rows_in`` after the chain's head and move the head, in one statement."""
    async with conn.transaction():  # a savepoint inside the caller's transaction
        head = await conn.fetchrow(f"SELECT seq, hash FROM {schema}.audit_head WHERE id FOR UPDATE")
        seq, prev = head["seq"], head["hash"]
        now = datetime.now(UTC)
        rows = []
        for actor, ev in rows_in:
            seq += 1
            record = {
                "seq": seq,
                "recorded_at": now,
                "actor": actor.user_id,
                "role": actor.role,
                "action": ev.action,
                "resource_type": ev.resource_type,
                "resource_ids": [str(i) for i in ev.resource_ids],
                "account_key": ev.account_key,
                "site_id": ev.site_id,
                "client_address": actor.client_address,
                "request_id": actor.request_id,
                "prev_hash": prev,
            }
            prev = record["hash"] = record_hash(record)
            rows.append(record)
        columns = [[r[c] for r in rows] for c in _COLUMNS.replace(" ", "").split(",")]
        columns[6] = [json.dumps(ids) for ids in columns[6]]  # text[] per row: through JSON
        await conn.execute(
            f"""
            WITH added AS (
                INSERT INTO {schema}.audit_record ({_COLUMNS})
                SELECT s, t, a, r, act, rt, ARRAY(SELECT jsonb_array_elements_text(ids::jsonb)),
                       ak, si, ca, ri, ph, h
                FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[],
                            $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                            $11::text[], $12::text[], $13::text[])
                     AS x(s, t, a, r, act, rt, ids, ak, si, ca, ri, ph, h)
            )
            UPDATE {schema}.audit_head SET seq = $14, hash = $15 WHERE id
            """,
            *columns,
            seq,
            prev,
        )


async def record(
    conn: asyncpg.Connection,
    schema: str,
    request: Request,
    principal: Principal,
    action: str,
    resource_type: str,
    resource_ids: Sequence[str],
    *,
    account_key: str | None = None,
    site_id: str | None = None,
) -> None:
    """Record one access by the request's caller, on the connection (and transaction) of the
    access itself: a PHI read with no audit record cannot commit, nor can the record alone."""
    await append(
        conn,
        schema,
        Actor.of(request, principal),
        [AuditEvent(action, resource_type, resource_ids, account_key, site_id)],
    )


async def read(
    conn: asyncpg.Connection,
    schema: str,
    request: Request,
    principal: Principal,
    resource_type: str,
    resource_ids: Sequence[str],
    *,
    account_key: str | None = None,
    site_id: str | None = None,
) -> None:
    """Record one PHI read by the request's caller; returns once the record is committed.

    Call it after the read and before answering (the answer leaves only if the record is
    durable). With the process's ``AuditAppender`` running (``shared.service`` starts one per
    service) the record is committed with the concurrent requests' records in one short
    transaction of its own, so the read's transaction never holds the chain's head lock; without
    one (an app built without the service runtime) it is appended on ``conn`` as ``record``
    does. Never call it in a transaction that has already appended to the same chain (a change's
    record): the appender would wait for the head lock that transaction holds.
    """
    await read_events(
        conn,
        schema,
        Actor.of(request, principal),
        [AuditEvent("read", resource_type, resource_ids, account_key, site_id)],
    )


async def read_events(
    conn: asyncpg.Connection, schema: str, actor: Actor, events: Sequence[AuditEvent]
) -> None:
    """``read`` for several records of one request (a list's rows)."""
    appender = _appenders.get(schema)
    if appender is None:
        await append(conn, schema, actor, events)
    else:
        await appender.append(actor, events)


class AuditUnavailable(RuntimeError):
    """The batch holding a request's audit record did not commit: the request must not answer
    with the data it read (a 500, its message naming no record)."""


class AuditAppender:
    """Group commit of one schema's audit records, one per process.

    Requests hand their records over and wait. One flush at a time takes every record waiting
    (up to ``max_batch``) and appends them in one transaction on the appender's own connection:
    lock the head, insert, move the head, commit. The head lock is held only for that insert,
    and records arriving during a flush form the next batch, so a burst of N reads costs a few
    commits instead of N transactions queued on the lock. A batch that fails fails every
    request in it (``AuditUnavailable``) and the connection is opened again for the next one.
    Its own connection (not the service's pool): requests waiting here hold pool connections,
    so taking one from the pool could wait for ever.
    """

    def __init__(
        self,
        schema: str,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        max_batch: int = 1000,
    ):
        self.schema = schema
        self._connect = connect
        self._max_batch = max_batch
        self._conn: asyncpg.Connection | None = None
        self._waiting: list[tuple[Actor, list[AuditEvent], asyncio.Future]] = []
        self._flusher: asyncio.Task | None = None
        self._closed = False
        self.batches = 0  # committed, for tests and the benchmark's curiosity

    async def append(self, actor: Actor, events: Sequence[AuditEvent]) -> None:
        """Return once ``events`` are committed to the chain; raise ``AuditUnavailable`` if not."""
        if not events:
            return
        if self._closed:
            raise AuditUnavailable(f"{self.schema} audit appender is closed")
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((actor, list(events), done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name=f"audit-{self.schema}")
        await done

    async def _flush(self) -> None:
        while self._waiting:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            try:
                if self._conn is None or self._conn.is_closed():
                    self._conn = await self._connect()
                async with self._conn.transaction():
                    await _append_rows(
                        self._conn, self.schema, [(a, ev) for a, evs, _ in batch for ev in evs]
                    )
            except (Exception, asyncio.CancelledError) as e:
                await self._drop()
                for *_, done in batch:
                    if not done.done():
                        done.set_exception(
                            AuditUnavailable(
                                f"{self.schema} audit append failed ({type(e).__name__})"
                            )
                        )
                if isinstance(e, asyncio.CancelledError):
                    self._fail_waiting()
                    raise
                continue
            self.batches += 1
            for *_, done in batch:
                if not done.done():  # a request cancelled meanwhile: its record stays, harmless
                    done.set_result(None)

    def _fail_waiting(self) -> None:
        waiting, self._waiting = self._waiting, []
        for *_, done in waiting:
            if not done.done():
                done.set_exception(AuditUnavailable(f"{self.schema} audit appender is closed"))

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()  # its state after a failure is unknown: not reused

    async def close(self) -> None:
        """Finish the batch in flight, refuse what comes after, close the connection."""
        self._closed = True
        if self._flusher is not None:
            with contextlib.suppress(BaseException):
                await self._flusher
        self._fail_waiting()
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=5)


_appenders: dict[str, AuditAppender] = {}


def start_appender(
    schema: str, connect: Callable[[], Awaitable[asyncpg.Connection]]
) -> AuditAppender:
    """Serve ``read``s of ``schema`` in this process through a new appender (see ``read``)."""
    appender = AuditAppender(schema, connect)
    _appenders[schema] = appender
    return appender


async def stop_appender(appender: AuditAppender) -> None:
    if _appenders.get(appender.schema) is appender:
        del _appenders[appender.schema]
    await appender.close()


# --------------------------------------------------------------------------- verify, query


@dataclass
class ChainReport:
    schema: str
    records: int = 0
    head_seq: int = 0
    head_hash: str = ""
    problem: str | None = None
    seq: int | None = None  # the record where the chain first breaks

    @property
    def ok(self) -> bool:
        return self.problem is None


async def audit_schemas(conn: asyncpg.Connection) -> list[str]:
    """Every schema holding an audit chain."""
    rows = await conn.fetch(
        "SELECT table_schema FROM information_schema.tables WHERE table_name = 'audit_record'"
        " ORDER BY table_schema"
    )
    return [r["table_schema"] for r in rows]


async def verify_chain(conn: asyncpg.Connection, schema: str, prefetch: int = 2000) -> ChainReport:
    """Walk ``schema``'s chain in order; the report names the first record that breaks it."""
    report = ChainReport(schema)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        head = await conn.fetchrow(f"SELECT seq, hash FROM {schema}.audit_head WHERE id")
        report.head_seq, report.head_hash = head["seq"], head["hash"]
        expected_seq, expected_prev = 1, genesis(schema)
        cursor = conn.cursor(
            f"SELECT {_COLUMNS} FROM {schema}.audit_record ORDER BY seq", prefetch=prefetch
        )
        async for row in cursor:
            r = dict(row)
            n = r["seq"]
            if n != expected_seq:
                return _broken(report, expected_seq, f"record {expected_seq} is missing (deleted)")
            if record_hash(r) != r["hash"]:
                return _broken(report, n, f"record {n} was changed (it no longer matches its hash)")
            if r["prev_hash"] != expected_prev:
                return _broken(
                    report,
                    n - 1,
                    f"record {n - 1} was changed, replaced or reordered "
                    f"(record {n} no longer follows it)",
                )
            expected_seq, expected_prev = n + 1, r["hash"]
            report.records += 1
    last = expected_seq - 1
    if report.head_seq > last:
        return _broken(
            report,
            last + 1,
            f"records {last + 1} to {report.head_seq} are missing (deleted after record {last})",
        )
    if report.head_seq < last or report.head_hash != expected_prev:
        return _broken(report, last, f"the chain head does not match record {last}")
    return report


def _broken(report: ChainReport, seq: int, problem: str) -> ChainReport:
    report.seq, report.problem = seq, problem
    return report


async def query(
    conn: asyncpg.Connection,
    schema: str,
    *,
    user: str | None = None,
    account: str | None = None,
    since: datetime | None = None,
    limit: int = 1000,
) -> list[dict]:
    """Records of ``schema`` matching every filter given, oldest first."""
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM {schema}.audit_record
        WHERE ($1::text IS NULL OR actor = $1)
          AND ($2::text IS NULL OR account_key = $2)
          AND ($3::timestamptz IS NULL OR recorded_at >= $3)
        ORDER BY seq LIMIT $4
        """,
        user,
        account,
        since,
        limit,
    )
    return [{"schema": schema, **dict(r)} for r in rows]
