"""Answers many people share, fetched once: queue depths, dashboard figures, a trace.

A hundred supervisors opening the dashboard at once would make eleven calls each to the
services; the figures are counts and codes (no patient) and the same for everyone with the
same roles and sites, so one caller's request is made and the others wait for its answer.
An answer is kept ``ttl`` seconds (1 by default: a burst shares it, a page read a moment later
sees fresh figures). Past that, the first caller fetches afresh, and whoever asks while that
fetch is on its way gets the previous answer at once if it is under ``stale`` seconds old,
rather than queueing behind it: a dashboard's figures wait on the services' /ops/status
answers (a few hundred ms under load). A caller alone always sees a fresh answer. A failure
is not kept: the next caller tries again. With ``behind=True`` (operations figures: consumer
lag and dead letters, slow to gather and read as "about now") no caller waits once an answer
is kept: an answer past ``ttl`` is served and refreshed in the background, one fetch at a time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from services.workbench.sessions import Session

MAX_ENTRIES = 1024


def scope(s: Session, *more: Hashable) -> tuple:
    """The key of an answer that depends only on who may see what: roles and sites."""
    return (tuple(sorted(s.roles)), tuple(sorted(s.sites)), *more)


class Coalesced:
    def __init__(self, ttl: float = 1.0, stale: float = 10.0):
        self.ttl = ttl
        self.stale = max(stale, ttl)
        self._kept: dict[Hashable, tuple[float, Any]] = {}
        self._locks: dict[Hashable, asyncio.Lock] = {}
        self._behind: dict[Hashable, asyncio.Task] = {}

    async def get(
        self, key: Hashable, fetch: Callable[[], Awaitable[Any]], *, behind: bool = False
    ) -> Any:
        kept = self._kept.get(key)
        if kept is not None:
            age = time.monotonic() - kept[0]
            if age < self.ttl:
                return kept[1]
            refreshing = self._locks.get(key)
            if age < self.stale and refreshing is not None and refreshing.locked():
                return kept[1]  # a fetch is on its way; its answer would be no newer to the eye
            if age < self.stale and behind:
                self._refresh_behind(key, fetch)
                return kept[1]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # the first caller fetches; those behind it take its answer
            kept = self._kept.get(key)
            if kept is not None and time.monotonic() - kept[0] < self.ttl:
                return kept[1]
            value = await fetch()
            if len(self._kept) >= MAX_ENTRIES:
                self._prune()
            self._kept[key] = (time.monotonic(), value)
            return value

    def _refresh_behind(self, key: Hashable, fetch: Callable[[], Awaitable[Any]]) -> None:
        if key in self._behind:
            return

        async def refresh() -> None:
            try:
                await self.get(key, fetch)  # under the key's lock, like any caller's fetch
            finally:
                self._behind.pop(key, None)

        task = asyncio.create_task(refresh())
        self._behind[key] = task
        # a failed refresh leaves the kept answer until it is stale; retrieved, not raised
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    def _prune(self) -> None:
        now = time.monotonic()
        for key in [k for k, (at, _) in self._kept.items() if now - at >= self.stale]:
            self._kept.pop(key, None)
            lock = self._locks.get(key)
            if lock is not None and not lock.locked():
                self._locks.pop(key, None)
        if len(self._kept) >= MAX_ENTRIES:  # all fresh: drop the oldest half
            for key, _ in sorted(self._kept.items(), key=lambda kv: kv[1][0])[: MAX_ENTRIES // 2]:
                self._kept.pop(key, None)
