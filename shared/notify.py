"""Wake-ups across processes through Postgres LISTEN/NOTIFY.

A transaction that makes work available runs ``NOTIFY <channel>``; Postgres
delivers it to every listener once the transaction commits, so any instance of
a service can wake the requests waiting for that work (a coder's long-polled
``/work/next``). A notification is only a hint: waiters look at the tables
again and also wake on a timeout, so a lost one (listener reconnecting, the
database restarting) costs at most that timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator

import asyncpg

from shared.lifecycle import wait_stopped
from shared.logs import log

_log = logging.getLogger("rcm.notify")
_MAX_PAYLOAD = 8000  # Postgres' limit on a NOTIFY payload; a longer list of keys wakes every waiter


class ChannelWatch:
    """Listens on one channel over a dedicated connection (a pooled one must not keep a LISTEN).

    A notification's payload lists a key per unit of work it made available (comma-separated,
    e.g. a site per queued item): each key wakes one waiter for that key, the longest waiting
    first (else one waiting for any key). A queued item thus wakes one coder, not every coder
    waiting on that site's queue (the others would only find it leased).
    """

    def __init__(self, dsn: str, channel: str):
        self.dsn = dsn
        self.channel = channel
        # key (None: any key) -> waiters, oldest first (a dict as an ordered set)
        self._waiters: dict[str | None, dict[asyncio.Event, None]] = defaultdict(dict)
        self.listening = (
            asyncio.Event()
        )  # set while the listener connection is up (tests wait on it)

    @contextlib.contextmanager
    def waiting(self, keys: Iterable[str] | None = None) -> Iterator[asyncio.Event]:
        """An event a notification for one of ``keys`` (None: any key) sets.

        Enter it *before* looking at the tables, so a notification arriving while you look
        is not missed.
        """
        event = asyncio.Event()
        registered = [None] if keys is None else list(keys)
        for key in registered:
            self._waiters[key][event] = None
        try:
            yield event
        finally:
            for key in registered:
                self._waiters[key].pop(event, None)

    def _notified(self, _conn=None, _pid=None, _channel=None, payload: str = "") -> None:
        if not payload:  # no keys: everyone looks again
            for events in self._waiters.values():
                for event in events:
                    event.set()
            return
        for key in payload.split(","):
            event = next((e for e in self._waiters.get(key, ()) if not e.is_set()), None) or next(
                (e for e in self._waiters.get(None, ()) if not e.is_set()), None
            )
            if event is not None:
                event.set()

    async def run(self, stop: asyncio.Event, retry_seconds: float = 1.0) -> None:
        """Keep the listener connected until ``stop`` (reconnecting after the database went away)."""
        while not stop.is_set():
            try:
                await self._listen(stop)
            except asyncio.CancelledError:
                raise
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as e:
                log(
                    _log,
                    logging.WARNING,
                    "notification listener down; reconnecting",
                    error_type=type(e).__name__,
                    component=self.channel,
                )
            await wait_stopped(stop, retry_seconds)

    async def _listen(self, stop: asyncio.Event) -> None:
        """One listener connection, until it drops or ``stop``."""
        conn = await asyncpg.connect(self.dsn, timeout=10)
        closed = asyncio.Event()
        conn.add_termination_listener(lambda _c: closed.set())
        try:
            await conn.add_listener(self.channel, self._notified)
            self.listening.set()
            self._notified()  # whatever was committed while nobody listened: look again
            waits = [asyncio.ensure_future(closed.wait()), asyncio.ensure_future(stop.wait())]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
        finally:
            self.listening.clear()
            if not conn.is_closed():
                try:
                    await asyncio.wait_for(conn.close(), 5)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                    conn.terminate()


async def notify(conn: asyncpg.Connection, channel: str, keys: Iterable[str] = ()) -> None:
    """Wake a waiter of ``channel`` per key in ``keys`` (no keys: all of them) when the caller's
    transaction commits (not before, not on rollback)."""
    payload = ",".join(keys)
    await conn.execute(
        "SELECT pg_notify($1, $2)", channel, payload if len(payload) < _MAX_PAYLOAD else ""
    )
