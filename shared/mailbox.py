"""Clearinghouse mailboxes: directories, as an SFTP-synced mailbox would be.

Inbound: each service polls the shared inbound directory for the transaction
types it owns (835 -> payments, 999/277CA -> billing, 277 -> followup, 837 in
payer_sim's own inbox). A file is applied exactly once: its content hash and its
sender + interchange control number are recorded in the same transaction as
the state it changes; only then is it moved to ``processed/``. A file that cannot
be applied goes to ``failed/`` with ``<name>.reason.txt`` and the poller carries on.

What a mailbox refuses (issue 18), each to ``failed/`` with the reason:

- anything but a regular file (a symbolic link is moved, never followed; files are
  opened with ``O_NOFOLLOW``) and names outside ``SAFE_NAME`` (renamed safely);
  a file with several hard links is left unread and reported;
- a file above ``max_file_bytes``, after reading only its header;
- a file whose ISA06 sender is not a configured trading partner (``senders``);
- an interchange number (sender + ISA13) used before with other content;
- a file whose processing failed ``max_attempts`` times in a row: timed out, or the
  process died on it. Each attempt is counted on disk (``.attempts/NAME``) before
  it starts, so a crash counts too; a file that failed once is retried alone. The record
  names the process: when it is gone (SIGKILL, out of memory), the file is retried at the
  next poll, not after ``in_flight_seconds``.

Hidden names (``.x``, ``..x``) and temporary ones (``x.tmp``, ``x.part``) are never
taken: they are uploads in progress. ``mailbox_report`` lists them, with files
waiting too long, for ``rcm status``. Archived files are never overwritten: a name
already in ``processed/`` or ``failed/`` gets a numbered one.

Outbound: files are first stored in ``outbound_file`` inside the transaction
that produced them; ``write_pending`` writes them afterwards (temp name, fsync,
rename) so a crash never leaves a half file or loses one.

Everything rcm writes here (outbound files, archives, reasons) is 0600 in 0700
directories: the files carry PHI.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import re
import socket
import stat
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from shared.consumer import is_transient
from shared.lifecycle import wait_stopped
from shared.logs import describe_error, log
from shared.messaging import Emitter
from shared.settings import MailboxSettings
from shared.telemetry import tracer
from shared.x12 import X12Error, prepare, shown

_log = logging.getLogger("rcm.mailbox")

FILE_MODE = 0o600
DIR_MODE = 0o700
# A mailbox file name rcm takes: letters, digits and . _ - + = @, not starting with a dot.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=@-]{0,199}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+=@-]")
TEMPORARY_SUFFIXES = (".tmp", ".part", ".filepart", ".partial")
ATTEMPTS = ".attempts"  # per-file attempt counters, inside the mailbox directory
IN_FLIGHT = "the process stopped while applying it"  # an attempt's error until it settles
_HEAD_BYTES = 4096  # enough for ISA, GS and ST: what ``classify`` reads
BATCH_CHARS = 8 * 1024 * 1024  # a batch of files stops growing at this much text


def is_temporary(name: str) -> bool:
    """Hidden (``.x``, ``..x``) or an upload in progress (``x.tmp``, ``x.part``): never taken."""
    return name.startswith(".") or name.lower().endswith(TEMPORARY_SUFFIXES)


def safe_name(name: str) -> str:
    """``name`` with every character outside ``SAFE_NAME``'s set replaced, for archive names
    and reports (a name may carry anything, a newline or a patient's name in another script)."""
    cleaned = _UNSAFE.sub("_", name)[:200].lstrip(".")
    return cleaned or "unnamed"


# --------------------------------------------------------------------------- permissions


def private_dir(directory: Path, keep_group: bool = False) -> Path:
    """Create ``directory`` and its missing parents 0700; take others' rights (and the
    group's, unless ``keep_group``) from it if it exists and is ours.

    ``keep_group``: a mailbox root an SFTP account may share through its group. A
    directory someone else owns is left as its owner set it.
    """
    missing = []
    d = directory
    while not d.exists():
        missing.append(d)
        d = d.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=DIR_MODE)
        except FileExistsError:
            pass
    st = directory.stat()
    mode = stat.S_IMODE(st.st_mode)
    closed = mode & ~(0o007 if keep_group else 0o077)
    if st.st_uid == os.geteuid() and closed != mode:
        os.chmod(directory, closed)
    return directory


def _make_private(path: Path) -> None:
    """0600 for a file rcm archived (its sender may have written it 0644). A link moved to
    failed/ is left alone: chmod would follow it to its target."""
    try:
        if stat.S_ISREG(path.lstat().st_mode):
            os.chmod(path, FILE_MODE)
    except (FileNotFoundError, PermissionError):  # gone, or not ours (an SFTP account's)
        pass


def _write_private(path: Path, data: bytes, *, sync: bool = False) -> None:
    """Write ``data`` to a new file at ``path``, created 0600 (never through a link)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, FILE_MODE)
    except FileExistsError:  # a temp file a crash left behind
        os.unlink(path)
        fd = os.open(path, flags, FILE_MODE)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        if sync:
            f.flush()
            os.fsync(f.fileno())


def private_file(path: Path) -> Path:
    """An empty 0600 file at ``path`` (in a 0700 directory) for a writer that opens it by
    name, as a PDF renderer does: the bytes it writes stay 0600. Whatever was at ``path``
    (a file, a link) is replaced, never followed."""
    private_dir(path.parent)
    path.unlink(missing_ok=True)
    _write_private(path, b"")
    return path


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
    """Peek at ISA/GS/ST without parsing the file; unknown parts are None.

    Read through ``shared.x12.prepare`` as the parsers read it (a wrapped ISA, a bare ST..SE
    with no sender nor ISA13 of its own)."""
    try:
        prepared = prepare(text[: max(text.find("ISA"), 0) + 2 * _HEAD_BYTES])
    except X12Error:
        return FileKind(None, None, None, None)
    text, el, term = prepared.text, prepared.seps.element, prepared.seps.segment
    parts = text[:106].split(el)
    enveloped = prepared.enveloped and len(parts) > 13
    sender = parts[6].strip() if enveloped else None
    icn = parts[13].strip() if enveloped else None
    head = text[:_HEAD_BYTES]
    version = transaction = None
    for seg in head.split(term)[1:4]:
        f = seg.strip().split(el)
        if f[0] == "GS" and len(f) > 8:
            version = f[8]
        elif f[0] == "ST" and len(f) > 1:
            transaction = f[1]
            break
    return FileKind(transaction, version, sender, icn)


def _shown_sender(sender: str | None) -> str:
    if sender and re.fullmatch(r"[A-Za-z0-9 ._-]{1,15}", sender):
        return repr(sender)
    return "(unreadable)"


# --------------------------------------------------------------------------- inbound

Apply = Callable[[asyncpg.Connection, str, str, Emitter], Awaitable[None]]


class Rejected(ValueError):
    """The file is not acceptable (bad structure, wrong content); goes to failed/."""


@dataclass(frozen=True, slots=True)
class _Attempts:
    signature: tuple[int, int, int]  # (inode, mtime ns, size) of the file they were made on
    count: int
    last_error: str
    owner: str = ""  # the process making the attempt (``_owner()``); "" when unknown
    # The record this attempt replaced (same file), put back if the attempt is taken back.
    before: _Attempts | None = None


def _process_start(pid: int) -> str | None:
    """A token that differs between two processes given the same pid (their start time in
    clock ticks since boot, from /proc); "" where /proc is absent but the pid is alive;
    None when no process has that pid."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        if not Path("/proc/self/stat").exists():  # no /proc here: ask the kernel
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return None
            except PermissionError:
                pass
            return ""
        return None
    except OSError:
        return ""
    return stat_line.rsplit(")", 1)[1].split()[19]  # field 22, starttime


_owners: dict[int, str] = {}


def _owner() -> str:
    """This process, as an attempt records it: host, pid and start (a fork is another)."""
    pid = os.getpid()
    got = _owners.get(pid)
    if got is None:
        got = _owners[pid] = f"{socket.gethostname()}:{pid}:{_process_start(pid) or ''}"
    return got


def _owner_died(owner: str) -> bool:
    """Whether the process that recorded ``owner`` is certainly gone: it ran on this host and
    its pid is free or taken by a later process. A process on another host (a mailbox shared
    over the network) is never known dead: its attempt waits ``in_flight_seconds``."""
    host, _, rest = owner.partition(":")
    pid, _, start = rest.partition(":")
    if not pid.isdigit() or host != socket.gethostname():
        return False
    now = _process_start(int(pid))
    return now is None or bool(start and now and now != start)


@dataclass
class InboundMailbox:
    """Poll ``directory`` for files of ``kinds``; ``apply(conn, text, file_name, emitter)`` each once.

    ``settings`` (limits, trading partners): the service's ``MailboxSettings``.
    """

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
    settings: MailboxSettings = field(default_factory=MailboxSettings)

    def __post_init__(self) -> None:
        private_dir(self.directory, keep_group=True)
        for sub in ("processed", "failed", ATTEMPTS):
            private_dir(self.directory / sub)
        # Files another poller of this inbox takes (a 999 in front of payments, an 835 in front
        # of billing), by name -> (inode, mtime, size): read and classified once, not on every
        # poll while they wait for their owner. A rewritten file has a new signature.
        self._not_ours: dict[str, tuple[int, int, int]] = {}
        self._in_flight: set[str] = set()
        if not self.settings.senders:
            log(
                _log,
                logging.WARNING,
                "mailbox accepts files from any sender: set RCM_MAILBOX_SENDERS (trading partners)",
                component=self.schema,
            )

    # ----------------------------------------------------------------- what waits

    def _scan(self) -> tuple[list[Path], list[tuple[Path, str]]]:
        """(candidates, refusals). Candidates: regular files with a safe name, not known to be
        another poller's, in name order. Refusals: entries no poller may read, with the
        reason; only the poller that ``handles_unknown`` takes them to failed/."""
        files: list[Path] = []
        refused: list[tuple[Path, str]] = []
        not_ours = {}
        for entry in os.scandir(self.directory):
            name = entry.name
            if is_temporary(name) or entry.is_dir(follow_symlinks=False):
                continue  # an upload in progress (or hidden): mailbox_report shows it
            if not entry.is_file(follow_symlinks=False):  # d_type: no stat for the usual file
                try:
                    kind = _file_type(entry.stat(follow_symlinks=False))
                except FileNotFoundError:
                    continue  # taken meanwhile
                refused.append((Path(entry.path), f"not a regular file ({kind}): not read"))
                continue
            if SAFE_NAME.fullmatch(name) is None:
                refused.append(
                    (
                        Path(entry.path),
                        "file name has characters outside letters, digits and . _ - + = @"
                        f" (archived as {safe_name(name)!r}): not read",
                    )
                )
                continue
            known = self._not_ours.get(name)
            if known is not None:
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # its owner took it
                if known == _signature(st):
                    not_ours[name] = known
                    continue
            files.append(Path(entry.path))
        self._not_ours = not_ours  # names gone from the directory are forgotten
        return sorted(files, key=lambda p: p.name), refused

    async def poll_once(self, pool: asyncpg.Pool) -> int:
        """Take the files of our kinds waiting now, up to ``files_per_transaction`` per
        transaction; a file that failed before is taken alone."""
        handled = 0
        files, refused = self._scan()
        if self.handles_unknown:
            for path, reason in refused:
                handled += self._refuse(path, reason, rename=True)
        attempts = self._attempts()
        mine: list[tuple[Path, str, str, FileKind]] = []  # (path, sha256, text, kind)
        pending = 0  # characters of text in ``mine``
        for path in files:
            try:
                read = self._read(path)
            except FileNotFoundError:
                continue  # another instance took it
            if isinstance(read, str):  # left unread and reported (a hard-linked file)
                continue
            raw, st, complete = read
            digest = hashlib.sha256(raw).hexdigest()
            text = raw.decode("utf-8", errors="replace")
            del raw, read  # the text is what is kept: not the bytes too
            kind = classify(text)
            if kind.kind not in self.kinds and not (
                self.handles_unknown and kind.kind == "unknown"
            ):
                self._not_ours[path.name] = (st.st_ino, st.st_mtime_ns, st.st_size)
                continue
            if path.name in self._in_flight:
                continue  # being applied right now, by another instance or an earlier poll
            why = self._refusal(kind, st, complete)
            previous = attempts.get(path.name)
            if previous is not None and previous.signature != _signature(st):
                previous = None  # a new file under an old name
            if (
                why is None
                and previous is not None
                and previous.count >= self.settings.max_attempts
            ):
                why = (
                    f"processing failed {previous.count} times in a row"
                    f" (last: {previous.last_error}); not tried again"
                )
            if why is not None:
                handled += self._refuse(path, why)
                continue
            if previous is not None:  # failed before: alone, so it fails alone
                handled += await self._try_take(pool, [(path, digest, text, kind)])
                continue
            mine.append((path, digest, text, kind))
            pending += len(text)
            # Bounded by count and by size: the files of a batch are all in memory at once.
            if len(mine) == self.files_per_transaction or pending >= BATCH_CHARS:
                handled += await self._try_take(pool, mine)
                mine, pending = [], 0
        if mine:
            handled += await self._try_take(pool, mine)
        return handled

    async def _try_take(
        self, pool: asyncpg.Pool, files: list[tuple[Path, str, str, FileKind]]
    ) -> int:
        """``_take``; when the files timed out, their attempt is on record and the poll goes
        on with the next files (the database being away still stops it)."""
        try:
            return await self._take(pool, files)
        except (TimeoutError, asyncpg.QueryCanceledError) as e:
            log(
                _log,
                logging.WARNING,
                "inbound files timed out; each is retried alone",
                count=len(files),
                component=self.schema,
                error_type=type(e).__name__,
            )
            return 0

    def _read(self, path: Path) -> tuple[bytes, os.stat_result, bool] | str:
        """The file's bytes (only its head above the size limit: complete False) and its
        signature, read through a descriptor that never follows a link; or why it was left
        unread. Raises FileNotFoundError when it is gone."""
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(path, flags)
        except OSError as e:
            if e.errno == errno.ELOOP:  # became a link since the scan: next scan refuses it
                return "a symbolic link"
            raise
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                return "not a regular file"
            if st.st_nlink > 1:
                # A hard link to a file elsewhere would be read through it: never read one.
                self._report_once(path, f"{st.st_nlink} hard links")
                return "hard-linked"
            if st.st_size > self.settings.max_file_bytes:
                return f.read(_HEAD_BYTES), st, False
            return f.read(), st, True

    def _report_once(self, path: Path, what: str) -> None:
        if self._not_ours.get(path.name) is None:
            log(
                _log,
                logging.WARNING,
                f"mailbox file left unread: {what}",
                file_name=safe_name(path.name),
                component=self.schema,
            )
        st = path.lstat()
        self._not_ours[path.name] = (st.st_ino, st.st_mtime_ns, st.st_size)

    def _refusal(self, kind: FileKind, st: os.stat_result, complete: bool) -> str | None:
        """Why a file of ours must not be applied before anything reads it whole; None if it may."""
        limit = self.settings.max_file_bytes
        if not complete:
            return (
                f"file is {st.st_size} bytes, above this mailbox's limit of {limit} bytes"
                " (RCM_MAILBOX_MAX_FILE_BYTES): not read"
            )
        allowed = self.settings.allowed_senders(kind.kind)
        if kind.kind != "unknown" and allowed is not None and kind.sender not in allowed:
            return (
                f"unknown sender: ISA06 {_shown_sender(kind.sender)} is not a trading partner"
                f" configured for {kind.kind} files (RCM_MAILBOX_SENDERS)"
            )
        return None

    def _refuse(self, path: Path, reason: str, rename: bool = False) -> int:
        """Move a file no poller may apply to failed/ with the reason; 1 if this call moved it.

        Not recorded by content hash: once the configuration allows it (a new trading
        partner, a higher limit), the same file dropped again is taken.
        """
        name = safe_name(path.name) if rename else path.name
        if self._archive(path, "failed", reason, name) is None:
            return 0
        self._clear_attempts(path.name)
        log(
            _log,
            logging.WARNING,
            "inbound file refused",
            file_name=name,
            component=self.schema,
            error=reason,
        )
        return 1

    # ----------------------------------------------------------------- applying

    async def _take(self, pool: asyncpg.Pool, files: list[tuple[Path, str, str, FileKind]]) -> int:
        """Ingest ``files`` in one transaction, each inside its own savepoint.

        A file that fails rolls back alone and is recorded as failed; one commit (one WAL
        flush) covers the batch. Files move to processed/ or failed/ only after the commit,
        so a crash before it leaves them to be taken again. Each file's attempt is counted
        before the transaction starts; an error that is not the files' doing (the database
        away, a lost lock race, a stop) takes the count back.
        """
        counted = [self._count_attempt(path) for path, *_ in files]
        outcomes: list[tuple[Path, str, str | None]] = []
        try:
            async with pool.acquire() as conn, conn.transaction():
                for path, digest, text, kind in files:
                    status, reason = await self._take_one(conn, path, digest, text, kind)
                    outcomes.append((path, status, reason))
        except BaseException as e:
            for (path, *_), attempt in zip(files, counted, strict=True):
                self._settle_attempt(path, attempt, e)
            raise
        if self.on_commit and any(status == "processed" for _, status, _ in outcomes):
            self.on_commit()
        for path, status, reason in outcomes:
            self._archive(path, "failed" if status == "failed" else "processed", reason)
            self._clear_attempts(path.name)
            log(
                _log,
                logging.INFO if status != "failed" else logging.WARNING,
                f"inbound file {status}",
                file_name=path.name,
                component=self.schema,
            )
        return len(outcomes)

    async def _take_one(
        self, conn: asyncpg.Connection, path: Path, digest: str, text: str, kind: FileKind
    ) -> tuple[str, str | None]:
        """Apply one file in a savepoint: (status, reason). ``digest``: its bytes' SHA-256."""
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
                        f"SELECT status, reason, file_name, content_hash = $1 AS same_bytes"
                        f" FROM {self.schema}.mailbox_file WHERE content_hash = $1"
                        " OR (interchange_control_number = $2 AND status = 'processed')"
                        " ORDER BY (content_hash = $1) DESC LIMIT 1",
                        digest,
                        icn_key,
                    )
                    if seen is not None and seen["same_bytes"]:
                        if seen["status"] == "failed":
                            return "failed", f"already failed before: {seen['reason']}"
                        return "duplicate", None
                    if seen is not None:  # the interchange number, with other bytes
                        raise Rejected(
                            "interchange control number (ISA13)"
                            f" {shown(kind.interchange_control_number, 9, quote=False)}"
                            f" from sender {_shown_sender(kind.sender)} was used before by"
                            f" {safe_name(seen['file_name'])!r} with other content: a sender"
                            " never reuses one; nothing of this file was applied"
                        )
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

    def _archive(
        self, path: Path, sub: str, reason: str | None, name: str | None = None
    ) -> Path | None:
        """Move ``path`` into ``sub``/ under a name not taken there (never overwriting an
        archived file), 0600, with ``<name>.reason.txt`` when there is a reason; None when
        another instance moved it first."""
        target = _move_unique(path, self.directory / sub, name or path.name)
        if target is None:
            return None
        _make_private(target)
        if reason is not None:
            _write_private(target.with_name(target.name + ".reason.txt"), (reason + "\n").encode())
        return target

    # ----------------------------------------------------------------- attempts

    def _attempts(self) -> dict[str, _Attempts]:
        """The attempt records of waiting files; an unsettled one younger than
        ``in_flight_seconds`` is left out of the count and its file skipped by this poll: another
        instance (or this one) is applying it, and only a record that old means a process died."""
        out = {}
        self._in_flight = set()
        now = time.time()
        try:
            entries = list(os.scandir(self.directory / ATTEMPTS))
        except FileNotFoundError:
            return out
        for entry in entries:
            if not (self.directory / entry.name).exists():  # taken, or removed by hand
                Path(entry.path).unlink(missing_ok=True)
                continue
            a = _read_attempts(Path(entry.path))
            if a is None:
                continue
            if a.last_error == IN_FLIGHT and not _owner_died(a.owner):
                # Its process may be alive (or is on another host): until the record is that
                # old, the attempt is that process's. A process known dead (SIGKILL, OOM) is
                # tried again at once, so a restarted service resumes where it stopped.
                try:
                    age = now - Path(entry.path).stat().st_mtime
                except FileNotFoundError:
                    continue
                if age < self.settings.in_flight_seconds:
                    self._in_flight.add(entry.name)
                    continue
            out[entry.name] = a
        return out

    def _count_attempt(self, path: Path) -> _Attempts | None:
        """Record one more attempt at ``path`` before it starts; the record written."""
        try:
            st = path.lstat()
        except FileNotFoundError:
            return None
        marker = self.directory / ATTEMPTS / path.name
        before = _read_attempts(marker)
        if before is not None and before.signature != _signature(st):
            before = None  # another file under an old name: its count starts again
        count = before.count if before is not None else 0
        attempt = _Attempts(_signature(st), count + 1, IN_FLIGHT, _owner(), before)
        _write_attempts(marker, attempt)
        return attempt

    def _settle_attempt(self, path: Path, attempt: _Attempts | None, e: BaseException) -> None:
        """After an attempt that raised: keep it with its error, or take it back when the
        error was not the file's doing."""
        if attempt is None:
            return
        marker = self.directory / ATTEMPTS / path.name
        if isinstance(e, TimeoutError | asyncpg.QueryCanceledError) or not (
            is_transient(e) or isinstance(e, asyncio.CancelledError)
        ):
            _write_attempts(marker, _Attempts(attempt.signature, attempt.count, type(e).__name__))
        elif attempt.before is not None:
            # the record as it was: its count and last error (an "in flight" record left here
            # would hold the file back for in_flight_seconds though nobody applies it)
            _write_attempts(marker, attempt.before)
        else:
            marker.unlink(missing_ok=True)

    def _clear_attempts(self, name: str) -> None:
        (self.directory / ATTEMPTS / name).unlink(missing_ok=True)

    async def run(self, pool: asyncpg.Pool, stop: asyncio.Event, interval: float) -> None:
        while not stop.is_set():
            n = await self.poll_once(pool)
            if not n:
                await wait_stopped(stop, interval)


def _signature(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _read_attempts(marker: Path) -> _Attempts | None:
    try:
        ino, mtime, size, count, last = marker.read_text().rstrip("\n").split(" ", 4)
        owner = ""
        if last.startswith("@"):  # "@host:pid:start last error"
            owner, _, last = last[1:].partition(" ")
        return _Attempts((int(ino), int(mtime), int(size)), int(count), last, owner)
    except (OSError, ValueError):
        return None


def _write_attempts(marker: Path, a: _Attempts) -> None:
    """In place (a marker torn by a crash reads as none: the count starts again), 0600,
    never through a link."""
    ino, mtime, size = a.signature
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(marker, flags, FILE_MODE)
    with os.fdopen(fd, "wb") as f:
        owner = f"@{a.owner} " if a.owner else ""
        f.write(f"{ino} {mtime} {size} {a.count} {owner}{a.last_error}\n".encode())


def _move_unique(path: Path, directory: Path, name: str) -> Path | None:
    """Move ``path`` to ``directory/name``, or ``name`` numbered (``x-2.835``) when taken.

    A hard link then an unlink: the link fails rather than replace an existing archive,
    whatever else moves files there meanwhile. None when ``path`` is gone.
    """
    stem, dot, suffix = name.rpartition(".") if "." in name.lstrip(".") else (name, "", "")
    for n in range(1, 10_000):
        candidate = directory / (name if n == 1 else f"{stem}-{n}{dot}{suffix}")
        try:
            os.link(path, candidate, follow_symlinks=False)
        except FileExistsError:
            continue
        except FileNotFoundError:
            return None
        except OSError:  # no hard links here (some network file systems): rename if free
            if candidate.exists() or candidate.is_symlink():
                continue
            try:
                os.rename(path, candidate)
            except FileNotFoundError:
                return None
            return candidate
        try:
            os.unlink(path)
        except FileNotFoundError:  # another instance moved it too: keep one archive
            os.unlink(candidate)
            return None
        return candidate
    raise RuntimeError(f"no free archive name for {safe_name(name)!r} in {directory}")


def _file_type(st: os.stat_result) -> str:
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device or other special file"


# --------------------------------------------------------------------------- report


def mailbox_report(directory: Path, stuck_seconds: float = 300, limit: int = 20) -> dict:
    """What sits in a mailbox directory that no poller will take by itself, for ``rcm status``.

    ``waiting``: files a poller may take; ``stuck``: those of them (and of every other
    list) older than ``stuck_seconds``; ``temporary`` / ``hidden``: names never taken
    (uploads in progress, or left behind); ``not_regular``: links, pipes, devices and
    hard-linked files (never read); ``invalid_name``: names outside ``SAFE_NAME``;
    ``retrying``: files whose processing failed, with their attempt counts; ``failed``:
    files in ``failed/``. Names are shown with characters outside ``SAFE_NAME``'s set replaced,
    at most ``limit`` each.
    """
    now = time.time()
    out: dict = {
        "directory": str(directory),
        "waiting": 0,
        "stuck": [],
        "temporary": [],
        "hidden": [],
        "not_regular": [],
        "invalid_name": [],
        "retrying": {},
        "failed": 0,
    }
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return out
    for entry in sorted(entries, key=lambda e: e.name):
        name = entry.name
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode):
            continue
        label = _UNSAFE.sub("_", name)[:200]  # leading dots kept: the name to look for
        if name.startswith("."):
            bucket = "hidden"
        elif is_temporary(name):
            bucket = "temporary"
        elif not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
            bucket = "not_regular"
        elif SAFE_NAME.fullmatch(name) is None:
            bucket = "invalid_name"
        else:
            bucket = None
            out["waiting"] += 1
        if bucket is not None and len(out[bucket]) < limit:
            out[bucket].append(label)
        if now - st.st_mtime > stuck_seconds and len(out["stuck"]) < limit:
            out["stuck"].append(label)
    for name, a in sorted(_attempt_counts(directory).items())[:limit]:
        out["retrying"][safe_name(name)] = a
    try:
        out["failed"] = sum(
            1
            for e in os.scandir(directory / "failed")
            if not e.name.endswith(".reason.txt") and not e.is_dir(follow_symlinks=False)
        )
    except FileNotFoundError:
        pass
    return out


def _attempt_counts(directory: Path) -> dict[str, int]:
    out = {}
    try:
        entries = list(os.scandir(directory / ATTEMPTS))
    except FileNotFoundError:
        return out
    for entry in entries:
        a = _read_attempts(Path(entry.path))
        if a is not None and (directory / entry.name).exists():
            out[entry.name] = a.count
    return out


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
    """Write ``directory/name`` whole or not at all: a 0600 temp file, fsync, rename."""
    private_dir(directory, keep_group=True)
    tmp = directory / f".{name}.tmp"
    _write_private(tmp, content.encode(), sync=True)
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
