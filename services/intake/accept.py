"""Accepting mapped encounters: versioned, stored and emitted in the caller's transaction.

Every transport (HTTP, bulk import, later the MLLP listener) ends here. Per encounter id:
content never seen is a new version, stored and emitted as ``encounter.documented`` through
the outbox; the same content as the current version is a duplicate (nothing happens);
another site's encounter id is a conflict (nothing happens), except that an encounter intake
first put on the unassigned site (its site unknown then) moves to the site a newer version
names, when the sender may send for the unassigned site.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import asyncpg

from services.intake import eligibility_flow
from services.intake import repository as repo
from services.intake.mapping import MappedEncounter, plain
from shared.events import Encounter, EncounterDocumented
from shared.messaging import Emitter
from shared.telemetry import context_from_traceparent, current_traceparent, tracer

Status = Literal["accepted", "duplicate", "conflict"]


def content_hash(enc: Encounter) -> str:
    """SHA-256 of the encounter as intake mapped it, its version number left out."""
    return _hash_of(_unversioned_json(enc))


def _unversioned_json(enc: Encounter) -> str:
    return enc.model_dump_json(exclude={"document_version"})


def _hash_of(unversioned: str) -> str:
    return hashlib.sha256(unversioned.encode()).hexdigest()


def _versioned_json(unversioned: str, version: int) -> str:
    """The stored document: the hashed JSON with its version added (``document_version`` is the
    encounter's last field, so this is ``model_dump_json()`` of the versioned copy, without
    serialising the encounter a second time)."""
    return f'{unversioned[:-1]},"document_version":{version}}}'


@dataclass(frozen=True)
class Outcome:
    encounter_id: str
    site_id: str
    status: Status
    document_version: int | None  # the new version, or the current one when nothing changed
    event_id: uuid.UUID | None = None
    warnings: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    placed_from: str | None = None  # the unassigned site this version moved the encounter off

    def as_json(self) -> dict:
        out: dict = {"encounter_id": self.encounter_id, "status": self.status}
        if self.event_id is not None:
            out["event_id"] = str(self.event_id)
        out["document_version"] = self.document_version
        if self.placed_from is not None:
            out["placed_from"] = self.placed_from
        if self.status == "conflict":
            out["message"] = "this encounter id belongs to another site's encounter"
        if self.status == "accepted":
            out["warnings"] = [plain(w) for w in self.warnings]
            out["missing"] = [plain(m) for m in self.missing]
        return out


async def accept(
    conn: asyncpg.Connection,
    mapped: Sequence[MappedEncounter],
    emitter: Emitter,
    *,
    source: str,
    parents: Sequence[str | None] | None = None,
    may_place: Sequence[bool] | None = None,
) -> list[Outcome]:
    """Record and emit ``mapped`` (in order) within the caller's transaction; one outcome each.

    ``parents[i]`` is the traceparent the i-th encounter's trace continues (a request's); None,
    or no ``parents`` at all, starts a trace of its own. ``may_place[i]``: the i-th encounter
    may move its encounter id off the unassigned site (its sender may send for that site;
    default yes: the operator's import). The caller flushes ``emitter``.
    """
    parents = list(parents) if parents is not None else [None] * len(mapped)
    places = list(may_place) if may_place is not None else [True] * len(mapped)
    outcomes: list[Outcome | None] = [None] * len(mapped)
    emitter = eligibility_flow.gate(emitter)  # eligibility results on the events (or a hold)
    pending = list(enumerate(mapped))
    while pending:  # an encounter id twice in one call: its versions are recorded in turn
        seen: set[str] = set()
        now, later = [], []
        for i, m in pending:
            (later if m.encounter.encounter_id in seen else now).append((i, m))
            seen.add(m.encounter.encounter_id)
        await _accept_round(conn, now, parents, places, outcomes, emitter, source)
        pending = later
    await emitter.settle(conn)
    return outcomes  # type: ignore[return-value]


async def _accept_round(conn, items, parents, places, outcomes, emitter, source) -> None:
    ids = _event_ids(len(items))
    unversioned = [_unversioned_json(m.encounter) for _, m in items]
    received = [
        repo.Received(
            m.encounter.encounter_id,
            m.encounter.site_id,
            _hash_of(body),
            eid,
            places[i],
        )
        for (i, m), eid, body in zip(items, ids, unversioned, strict=True)
    ]
    recorded = await repo.record_versions(conn, received)
    documents = []
    t = tracer()
    for (i, m), r, body in zip(items, received, unversioned, strict=True):
        enc, got = m.encounter, recorded[r.encounter_id]
        if got.version is None:
            status: Status = "duplicate" if got.current_site == enc.site_id else "conflict"
            outcomes[i] = Outcome(enc.encounter_id, enc.site_id, status, got.current_version)
            continue
        versioned = enc.model_copy(update={"document_version": got.version})
        event = EncounterDocumented(
            event_id=r.event_id,
            site_id=enc.site_id,
            encounter_id=enc.encounter_id,
            payload=versioned,
        )
        span = t.start_span(
            "intake accept",
            context=context_from_traceparent(parents[i]),
            attributes={
                "rcm.encounter_id": enc.encounter_id,
                "rcm.site_id": enc.site_id,
                "rcm.document_version": got.version,
                "rcm.placed": got.placed_from is not None,
                "rcm.source": source,
            },
        )
        emitter.emit(event, traceparent=current_traceparent(span))
        span.end()
        documents.append(
            (
                enc.encounter_id,
                got.version,
                enc.site_id,
                r.content_hash,
                r.event_id,
                source,
                _versioned_json(body, got.version),
                json.dumps([plain(w) for w in m.warnings]),
                json.dumps([plain(x) for x in m.missing]),
            )
        )
        outcomes[i] = Outcome(
            enc.encounter_id,
            enc.site_id,
            "accepted",
            got.version,
            r.event_id,
            list(m.warnings),
            list(m.missing),
            got.placed_from,
        )
    await repo.insert_documents(conn, documents)


def _event_ids(n: int) -> list[uuid.UUID]:
    """n random (version 4) UUIDs from one read of the system's randomness, not one each."""
    raw = os.urandom(16 * n)
    return [uuid.UUID(bytes=raw[i : i + 16], version=4) for i in range(0, 16 * n, 16)]


class AcceptQueue:
    """Encounters of concurrent requests accepted together: everything waiting goes into one
    transaction (one commit), so a burst of requests costs a few transactions, not one each.

    ``accept`` returns once the caller's encounters are committed (durable: the sender may
    stop retrying); ``run`` is the one loop that applies them.
    """

    def __init__(
        self, pool: asyncpg.Pool, on_emitted: Callable[[], None], *, source: str, most: int = 500
    ):
        self.pool = pool
        self.on_emitted = on_emitted
        self.source = source
        self.most = most  # encounters per transaction (a bigger request goes alone)
        self._waiting: deque[tuple[list, list, list, asyncio.Future]] = deque()
        self._wake = asyncio.Event()

    async def accept(
        self,
        mapped: Sequence[MappedEncounter],
        parents: Sequence[str | None],
        may_place: Sequence[bool] | None = None,
    ) -> list[Outcome]:
        done = asyncio.get_running_loop().create_future()
        places = list(may_place) if may_place is not None else [True] * len(mapped)
        self._waiting.append((list(mapped), list(parents), places, done))
        self._wake.set()
        return await done

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                if not self._waiting:
                    self._wake.clear()
                    if not self._waiting:  # nothing came between the look and the clear
                        try:
                            await asyncio.wait_for(self._wake.wait(), 1.0)
                        except TimeoutError:
                            pass
                    continue
                await self._apply(self._take())
        finally:
            while self._waiting:
                self._waiting.popleft()[3].cancel()

    def _take(self) -> list[tuple[list, list, list, asyncio.Future]]:
        taken, n = [], 0
        while self._waiting and (not taken or n + len(self._waiting[0][0]) <= self.most):
            item = self._waiting.popleft()
            if not item[3].cancelled():  # its request went away
                taken.append(item)
                n += len(item[0])
        return taken

    async def _apply(self, taken) -> None:
        mapped = [m for item in taken for m in item[0]]
        parents = [p for item in taken for p in item[1]]
        places = [p for item in taken for p in item[2]]
        emitter = Emitter(repo.S)
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                outcomes = await accept(
                    conn, mapped, emitter, source=self.source, parents=parents, may_place=places
                )
                emitted = await emitter.flush(conn)
        except Exception as e:  # every waiting request fails with it (500, or 503 when away)
            for _, _, _, done in taken:
                if not done.done():
                    done.set_exception(e)
            return
        if emitted:
            self.on_emitted()
        start = 0
        for items, _, _, done in taken:
            if not done.done():
                done.set_result(outcomes[start : start + len(items)])
            start += len(items)
