"""Clearinghouse mailboxes: directories, as an SFTP-synced mailbox would be.

Inbound: each service polls the shared inbound directory for the transaction
types it owns (835 -> payments, 999/277CA -> billing, 277 -> followup, 837 in
payer_sim's own inbox). A file is applied exactly once: its content hash and its
sender + interchange control number are recorded in the same transaction as
the state it changes; only then is it moved to ``processed/``. An unreadable
file goes to ``failed/`` with ``<name>.reason.txt`` and the poller carries on.

Outbound: files are first stored in ``outbound_file`` inside the transaction
that produced them; ``write_pending`` writes them afterwards (temp name, fsync,
rename) so a crash never leaves a half file or loses one.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from shared.consumer import is_transient
from shared.lifecycle import wait_stopped
from shared.logs import describe_error, log
from shared.messaging import Emitter
from shared.telemetry import tracer

_log = logging.getLogger("rcm.mailbox")


# --------------------------------------------------------------------------- classify


@dataclass(frozen=True)
class FileKind:
    transaction: str | None  # ST01: 835, 837, 999, 277, 276 ...
    version: str | None  # GS08
    sender: str | None  # ISA06
    interchange_control_number: str | None  # ISA13

    @property
    def kind(self) -> str:
        if self.transaction == "277" and self.version and self.version.startswith("005010X214"):
            return "277CA"
        return self.transaction or "unknown"


def classify(text: str) -> FileKind:
    """Peek at ISA/GS/ST without parsing the file; unknown parts are None."""
    start = text.find("ISA")
    if start < 0 or len(text) < start + 106:
        return FileKind(None, None, None, None)
    isa = text[start : start + 106]
    el, term = isa[3], isa[105]
    parts = isa.split(el)
    sender = parts[6].strip() if len(parts) > 13 else None
    icn = parts[13].strip() if len(parts) > 13 else None
    head = text[start : start + 4096]
    version = transaction = None
    for seg in head.split(term)[1:4]:
        f = seg.strip().split(el)
        if f[0] == "GS" and len(f) > 8:
            version = f[8]
        elif f[0] == "ST" and len(f) > 1:
            transaction = f[1]
            break
    return FileKind(transaction, version, sender, icn)


# --------------------------------------------------------------------------- inbound

Apply = Callable[[asyncpg.Connection, str, str, Emitter], Awaitable[None]]


class Rejected(ValueError):
    """The file is not acceptable (bad structure, wrong content); goes to failed/."""


@dataclass
class InboundMailbox:
    """Poll ``directory`` for files of ``kinds``; ``apply(conn, text, file_name, emitter)`` each once."""

    directory: Path
    kinds: frozenset[str]
    schema: str
    apply: Apply
    on_commit: Callable[[], None] | None = None
    handles_unknown: bool = False  # exactly one poller per inbox takes garbage to failed/
    # Files applied in one transaction (one WAL flush for all). 1 where files lock rows that
    # another writer locks too: locks taken file after file in one transaction follow no
    # single order, and a writer locking the same rows in claim order could deadlock with it.
    files_per_transaction: int = 50

    def __post_init__(self) -> None:
        for sub in ("", "processed", "failed"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        # Files another poller of this inbox takes (a 999 in front of payments, an 835 in front
        # of billing), by name -> (inode, mtime, size): read and classified once, not on every
        # poll while they wait for their owner. A rewritten file has a new signature.
        self._not_ours: dict[str, tuple[int, int, int]] = {}

    def candidates(self) -> list[Path]:
        files = []
        not_ours = {}
        for entry in os.scandir(self.directory):
            if (
                entry.is_file()
                and not entry.name.startswith(".")
                and not entry.name.endswith(".tmp")
            ):
                known = self._not_ours.get(entry.name)
                if known is not None:
                    try:
                        st = entry.stat()
                    except FileNotFoundError:
                        continue  # its owner took it
                    if known == (st.st_ino, st.st_mtime_ns, st.st_size):
                        not_ours[entry.name] = known
                        continue
                files.append(Path(entry.path))
        self._not_ours = not_ours  # names gone from the directory are forgotten
        return sorted(files, key=lambda p: p.name)

    async def poll_once(self, pool: asyncpg.Pool) -> int:
        """Take the files of our kinds waiting now, up to ``files_per_transaction`` per transaction."""
        handled = 0
        mine: list[tuple[Path, bytes, str, FileKind]] = []
        for path in self.candidates():
            try:
                raw, st = _read(path)
            except FileNotFoundError:
                continue  # another instance took it
            text = raw.decode("utf-8", errors="replace")
            kind = classify(text)
            if kind.kind not in self.kinds and not (
                self.handles_unknown and kind.kind == "unknown"
            ):
                self._not_ours[path.name] = (st.st_ino, st.st_mtime_ns, st.st_size)
                continue
            mine.append((path, raw, text, kind))
            if len(mine) == self.files_per_transaction:
                handled += await self._take(pool, mine)
                mine = []
        if mine:
            handled += await self._take(pool, mine)
        return handled

    async def _take(
        self, pool: asyncpg.Pool, files: list[tuple[Path, bytes, str, FileKind]]
    ) -> int:
        """Ingest ``files`` in one transaction, each inside its own savepoint.

        A file that fails rolls back alone and is recorded as failed; one commit (one WAL
        flush) covers the batch. Files move to processed/ or failed/ only after the commit,
        so a crash before it leaves them to be taken again.
        """
        outcomes: list[tuple[Path, str, str | None]] = []
        async with pool.acquire() as conn, conn.transaction():
            for path, raw, text, kind in files:
                status, reason = await self._take_one(conn, path, raw, text, kind)
                outcomes.append((path, status, reason))
        if self.on_commit and any(status == "processed" for _, status, _ in outcomes):
            self.on_commit()
        for path, status, reason in outcomes:
            self._move(path, "failed" if status == "failed" else "processed", reason)
            log(
                _log,
                logging.INFO if status != "failed" else logging.WARNING,
                f"inbound file {status}",
                file_name=path.name,
                component=self.schema,
            )
        return len(outcomes)

    async def _take_one(
        self, conn: asyncpg.Connection, path: Path, raw: bytes, text: str, kind: FileKind
    ) -> tuple[str, str | None]:
        digest = hashlib.sha256(raw).hexdigest()
        icn_key = (
            f"{kind.sender}:{kind.interchange_control_number}"
            if kind.interchange_control_number
            else None
        )
        emitter = Emitter(self.schema)
        with tracer().start_as_current_span(
            "mailbox ingest", attributes={"rcm.file_name": path.name, "rcm.file_kind": kind.kind}
        ):
            try:
                async with conn.transaction():  # a savepoint: this file's work only
                    seen = await conn.fetchrow(
                        f"SELECT status, reason FROM {self.schema}.mailbox_file WHERE content_hash = $1"
                        " OR (interchange_control_number = $2 AND status = 'processed')"
                        " ORDER BY (content_hash = $1) DESC LIMIT 1",
                        digest,
                        icn_key,
                    )
                    if seen is not None and seen["status"] == "failed":
                        return "failed", f"already failed before: {seen['reason']}"
                    if seen is not None:
                        return "duplicate", None
                    if kind.kind == "unknown":
                        raise Rejected("not an X12 interchange: no ISA/GS/ST header found")
                    await self.apply(conn, text, path.name, emitter)
                    await emitter.flush(conn)
                    await conn.execute(
                        f"INSERT INTO {self.schema}.mailbox_file"
                        " (content_hash, file_name, interchange_control_number, status) VALUES ($1,$2,$3,'processed')",
                        digest,
                        path.name,
                        icn_key,
                    )
                    return "processed", None
            except Exception as e:
                if is_transient(e):
                    raise
                reason = describe_error(e)
                await self._record_failure(conn, digest, path.name, reason)
                return "failed", reason

    async def _record_failure(
        self, conn: asyncpg.Connection, digest: str, name: str, reason: str
    ) -> None:
        await conn.execute(
            f"INSERT INTO {self.schema}.mailbox_file (content_hash, file_name, interchange_control_number,"
            " status, reason) VALUES ($1,$2,NULL,'failed',$3) ON CONFLICT (content_hash) DO NOTHING",
            digest,
            name,
            reason,
        )

    def _move(self, path: Path, sub: str, reason: str | None) -> None:
        target = self.directory / sub / path.name
        try:
            os.replace(path, target)
        except FileNotFoundError:
            return  # another instance moved it
        if reason is not None:
            target.with_name(target.name + ".reason.txt").write_text(reason + "\n")

    async def run(self, pool: asyncpg.Pool, stop: asyncio.Event, interval: float) -> None:
        while not stop.is_set():
            n = await self.poll_once(pool)
            if not n:
                await wait_stopped(stop, interval)


def _read(path: Path) -> tuple[bytes, os.stat_result]:
    """A mailbox file's bytes and the signature of exactly those bytes (a small local read)."""
    with open(path, "rb") as f:
        return f.read(), os.fstat(f.fileno())


# --------------------------------------------------------------------------- outbound


async def add_outbound(
    conn: asyncpg.Connection, schema: str, directory: Path, file_name: str, content: str
) -> None:
    """Queue a file for the outbound mailbox in the caller's transaction."""
    await conn.execute(
        f"INSERT INTO {schema}.outbound_file (file_name, directory, content) VALUES ($1, $2, $3)",
        file_name,
        str(directory),
        content,
    )


def write_atomically(directory: Path, name: str, content: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{name}.tmp"
    with open(tmp, "w") as f:
        f.write(content)
        f.flush()
        os.fsync(f.fileno())
    final = directory / name
    os.replace(tmp, final)
    return final


def _write_all(files: list[tuple[Path, str, str]]) -> list[tuple[int, int]]:
    """Write each file atomically, in order; each one's start and end time (ns) for its span."""
    times = []
    for directory, name, content in files:
        start = time.time_ns()
        write_atomically(directory, name, content)
        times.append((start, time.time_ns()))
    return times


async def write_pending(
    pool: asyncpg.Pool, schema: str, limit: int = 200, min_age_seconds: float = 0
) -> int:
    """Write queued outbound files; a crash after the rename rewrites identical bytes (deduped downstream).

    ``min_age_seconds`` holds files back (payer_sim's simulated turnaround).
    """
    async with pool.acquire() as conn, conn.transaction():
        # Asynchronous commit (set per row returned, for this transaction only): a lost
        # "written" mark rewrites identical bytes after a crash. The file itself is fsynced.
        rows = await conn.fetch(
            f"SELECT file_name, directory, content, set_config('synchronous_commit', 'off', true)"
            f" FROM {schema}.outbound_file WHERE written_at IS NULL"
            " AND created_at <= now() - make_interval(secs => $2)"
            " ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED",
            limit,
            float(min_age_seconds),
        )
        if rows:
            # One trip to a worker thread per batch: a hand-off per file cost more CPU than the write.
            times = await asyncio.to_thread(
                _write_all, [(Path(r["directory"]), r["file_name"], r["content"]) for r in rows]
            )
            t = tracer()
            for r, (start, end) in zip(rows, times, strict=True):
                t.start_span(
                    "mailbox write", start_time=start, attributes={"rcm.file_name": r["file_name"]}
                ).end(end)
            await conn.execute(
                f"UPDATE {schema}.outbound_file SET written_at = now(), content = '' WHERE file_name = ANY($1::text[])",
                [r["file_name"] for r in rows],
            )
    return len(rows)


async def file_writer_loop(
    pool: asyncpg.Pool,
    schema: str,
    stop: asyncio.Event,
    wake: asyncio.Event,
    interval: float = 0.2,
    min_age_seconds: float = 0,
) -> None:
    while not stop.is_set():
        wake.clear()  # before the query: a commit during it sets it again, so no wake-up is lost
        try:
            n = await write_pending(pool, schema, min_age_seconds=min_age_seconds)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # disk or database trouble: retry, never die silently
            log(
                _log,
                logging.WARNING,
                "outbound file write failed; retrying",
                error_type=type(e).__name__,
                component=schema,
            )
            n = 0
            await asyncio.sleep(1)
        if n == 0:
            try:
                await asyncio.wait_for(wake.wait(), interval)
            except TimeoutError:
                pass
