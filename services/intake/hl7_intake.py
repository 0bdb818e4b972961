"""HL7 v2 messages in (MLLP frames, ``POST /hl7`` bodies): checked, stored, assembled into
visits, emitted, and only then acknowledged.

``Hl7Intake.read_frame`` / ``read_body`` parse (``services.intake.domain.hl7v2.receive``) and
check the sender; ``take`` queues what was read and returns each message's ACK once the
transaction holding it has committed. ``run`` is the one loop that applies the queue: every
message waiting goes into one transaction (one commit), which:

1. stores each message not stored before, keyed by sending facility and MSH-10 (a re-sent
   message finds its row: it is acknowledged again with the stored answer, applied once);
2. locks the row of each visit the new messages belong to and gives them their order in it;
3. adds them to the visit's ``VisitAssembler`` (cached per visit; after a restart, or when
   another instance applied a message since, rebuilt from the visit's stored messages);
4. emits the visit's encounter through ``services.intake.accept`` when it is ready, or when a
   version was emitted before and the encounter changed (a new document version).

A message with errors (unreadable header, required segment missing, no visit identifier, a
sender not allowed) is not stored: its AE/AR names the segment and field, and a row in
``hl7_rejection`` records the problem (no values).

Size limits (``services.intake.limits``, as for ``POST /encounters``): a frame above
RCM_INTAKE_MLLP_MAX_FRAME_BYTES and a message whose own notes are above
RCM_INTAKE_MAX_NOTE_BYTES are refused AR (not stored); a visit whose assembled encounter is
above the note or encounter limit is not emitted (an event the broker refuses would stop the
outbox for every later encounter), and the messages that made it so are answered AE naming
the limit.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace

import asyncpg

from services.intake import repository as repo
from services.intake.accept import accept
from services.intake.domain.hl7v2 import (
    AssembledVisit,
    Hl7Error,
    Hl7Problem,
    Hl7Rules,
    Received,
    VisitAssembler,
    build_ack,
    parse_message,
    receive,
    split_messages,
)
from services.intake.domain.hl7v2.charset import codec_for
from services.intake.domain.hl7v2.framing import RawMessage
from services.intake.domain.hl7v2.problems import ack_code
from services.intake.domain.registry import Registry
from services.intake.limits import IntakeLimits, note_bytes, note_too_large, too_large
from services.intake.mapping import Codes, MappedEncounter
from services.intake.registry_cache import RegistryCache
from services.intake.settings import Hl7Settings
from shared import logs
from shared.messaging import Emitter

_log = logging.getLogger("rcm.intake.hl7")

PARSE_IN_THREAD_BYTES = 256 * 1024  # messages above this are parsed off the event loop
CACHED_VISITS = 5000  # assembled visits kept in memory between their messages
REUSED = Hl7Problem(
    "a different message came before under this control id from this facility: not applied",
    "MSH",
    10,
    code=205,
    severity="W",
    position=1,
    occurrence=1,
)


@dataclass
class Incoming:
    """One message read: what ``receive`` made of it and the bytes kept for it."""

    received: Received
    data: bytes
    text_form: bool  # data is the message's text in UTF-8 (from a file of several)
    source: str
    digest: str = ""  # SHA-256 of the message's text (segments joined by CR)

    @property
    def rejected(self) -> bool:
        return any(p.is_error for p in self.received.problems)

    @property
    def key(self) -> tuple[str, str]:
        meta = self.received.meta
        assert meta is not None
        return meta.facility, meta.control_id


@dataclass
class Answer:
    """What a message was answered: the ACK code, its problems (warnings and errors, named by
    segment and field) and the ACK text (segments end with CR)."""

    code: str
    problems: list[Hl7Problem]
    ack: str
    control_id: str = ""
    charset: str = ""  # MSH-18 of the message, echoed by the ACK

    def ack_bytes(self) -> bytes:
        """The ACK in the message's character set (UTF-8 when it declared none, or UTF-16/32:
        an MLLP frame's 0x1C 0x0D must stay single bytes)."""
        codec = codec_for(self.charset) if self.charset else None
        if codec is None or codec.startswith("utf-16") or codec.startswith("utf-32"):
            codec = "utf-8"
        return self.ack.encode(codec, errors="replace")


@dataclass
class _Visit:
    """A visit's assembler and how many of its messages it has seen."""

    assembler: VisitAssembler
    count: int


@dataclass
class _Batch:
    """What applying a batch did, for the caches once it committed."""

    answers: list[tuple[str, list[Hl7Problem]] | None]
    visits: dict[str, _Visit] = field(default_factory=dict)


class Hl7Intake:
    """Reads, checks, stores and applies HL7 v2 messages (see the module docstring)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        registry: RegistryCache,
        codes: Codes,
        settings: Hl7Settings,
        on_emitted: Callable[[], None],
        *,
        most: int = 200,
        limits: IntakeLimits | None = None,
    ):
        self.pool = pool
        self.registry = registry
        self.codes = codes
        self.rules = settings.rules
        self.senders = settings.allowed_senders
        self.on_emitted = on_emitted
        self.most = most  # messages per transaction
        self.limits = limits or IntakeLimits()
        self._waiting: deque[tuple[list[Incoming], asyncio.Future]] = deque()
        self._wake = asyncio.Event()
        self._visits: OrderedDict[str, _Visit] = OrderedDict()
        self._sender_rules: dict[str, Hl7Rules] = {}

    # ----------------------------------------------------------------------- reading

    def rules_for(self, facility: str) -> Hl7Rules:
        """The rules for a sender's messages: a sender allowed for one site only has that site
        as its default site (unless RCM_INTAKE_HL7_DEFAULT_SITE names one)."""
        rules = self._sender_rules.get(facility)
        if rules is None:
            sites = (self.senders or {}).get(facility, frozenset())
            rules = self.rules
            if len(sites) == 1 and not rules.default_site:
                rules = replace(rules, default_site=next(iter(sites)))
            self._sender_rules[facility] = rules
        return rules

    def read_frame(self, data: bytes, registry: Registry, source: str = "mllp") -> Incoming:
        """One MLLP frame's message, parsed and checked; never raises."""
        split = split_messages(data)
        if len(split.messages) != 1:  # none, or several: refused, naming why
            return Incoming(receive(data), data, False, source)
        return self._read(split.messages[0], data, False, registry, source)

    def read_oversize(self, head: bytes, limit: int, source: str = "mllp") -> Incoming:
        """A message larger than ``limit`` bytes: refused (AR), its header read from ``head``."""
        meta = None
        first = head.replace(b"\n", b"\r").split(b"\r", 1)[0]
        try:
            meta = parse_message(first).meta
        except Hl7Error as e:
            meta = e.meta
        problem = Hl7Problem(f"the message is larger than {limit} bytes", code=207)
        return Incoming(Received(meta, None, None, [problem]), b"", False, source)

    def read_body(
        self, body: bytes, registry: Registry, source: str = "http"
    ) -> tuple[list[Incoming], list[Hl7Problem]]:
        """The messages of a file or request body (any terminator, FHS/BHS batches), parsed
        and checked; and the problems of the input itself (lines outside any message)."""
        split = split_messages(body)
        out = [
            self._read(raw, raw.text.encode("utf-8"), True, registry, source)
            for raw in split.messages
        ]
        return out, split.problems

    def _read(
        self, raw: RawMessage, data: bytes, text_form: bool, registry: Registry, source: str
    ) -> Incoming:
        digest = hashlib.sha256(raw.text.encode("utf-8", errors="replace")).hexdigest()
        try:
            msg = parse_message(raw)
        except Hl7Error as e:
            return Incoming(receive(e), data, text_form, source, digest)
        received = receive(msg, self.rules_for(msg.meta.facility), registry)
        self._check_sender(received)
        self._check_size(received)
        return Incoming(received, data, text_form, source, digest)

    def _check_size(self, received: Received) -> None:
        """Notes that alone are above the note limit: refused before anything is stored."""
        c = received.contribution
        size = sum(note_bytes(n.text) for n in c.notes) if c is not None else 0
        if why := note_too_large(size, self.limits):
            received.problems.append(Hl7Problem(why, code=207))

    def _check_sender(self, received: Received) -> None:
        """An unknown sending facility, or a site the sender may not send for, is refused (AR)."""
        if self.senders is None or received.meta is None:
            return
        sites = self.senders.get(received.meta.facility)
        if sites is None:
            received.problems.append(
                Hl7Problem("not an allowed sender", "MSH", 4, code=207, position=1, occurrence=1)
            )
        elif received.site_id is not None and received.site_id not in sites:
            received.problems.append(
                Hl7Problem(
                    "the sender may not send for the site the message names",
                    "MSH",
                    4,
                    code=207,
                    position=1,
                    occurrence=1,
                )
            )

    # ----------------------------------------------------------------------- answering

    async def take(self, items: Sequence[Incoming]) -> list[Answer]:
        """Store and apply ``items`` (in order); each one's answer once committed.

        Raises what the database raised when even the retry of a message alone failed
        (the caller answers nothing: the sender sends again)."""
        if not items:
            return []
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((list(items), done))
        self._wake.set()
        results: list[tuple[str, list[Hl7Problem]]] = await done
        out = []
        for item, (code, extra) in zip(items, results, strict=True):
            problems = [*item.received.problems, *extra]
            meta = item.received.meta
            out.append(
                Answer(
                    code,
                    problems,
                    build_ack(meta, code, problems),
                    meta.control_id if meta else "",
                    meta.charset if meta else "",
                )
            )
        return out

    async def run(self, stop: asyncio.Event) -> None:
        """Apply what ``take`` queued, a transaction per batch, until ``stop``."""
        try:
            while not stop.is_set():
                if not self._waiting:
                    self._wake.clear()
                    if not self._waiting:
                        try:
                            await asyncio.wait_for(self._wake.wait(), 1.0)
                        except TimeoutError:
                            pass
                    continue
                await self._apply_waiting(self._take())
        finally:
            while self._waiting:
                self._waiting.popleft()[1].cancel()

    def _take(self) -> list[tuple[list[Incoming], asyncio.Future]]:
        taken, n = [], 0
        while self._waiting and (not taken or n + len(self._waiting[0][0]) <= self.most):
            items, done = self._waiting.popleft()
            if not done.cancelled():
                taken.append((items, done))
                n += len(items)
        return taken

    async def _apply_waiting(self, taken) -> None:
        items = [it for group, _ in taken for it in group]
        try:
            results = await self._apply_committed(items)
        except Exception as e:  # one message may be at fault: each alone, the others still go
            logs.log(_log, logging.WARNING, "hl7 batch failed", count=len(items),
                     component="hl7", error_type=type(e).__name__)  # fmt: skip
            alone = len(items) > 1 and not _unreachable(e)
            results = [] if alone else [e] * len(items)
            for it in items if alone else ():
                try:
                    results += await self._apply_committed([it])
                except Exception as e:
                    logs.log(_log, logging.ERROR, "hl7 message not stored", component="hl7",
                             error_type=type(e).__name__)  # fmt: skip
                    results.append(e)
        start = 0
        for group, done in taken:
            mine = results[start : start + len(group)]
            start += len(group)
            if done.done():
                continue
            failed = [r for r in mine if isinstance(r, BaseException)]
            if failed and len(failed) == len(mine):
                done.set_exception(failed[0])
            else:  # the others of the request are stored: answer them, the failed ones AR
                done.set_result(
                    [_not_stored() if isinstance(r, BaseException) else r for r in mine]
                )

    async def _apply_committed(self, items: list[Incoming]) -> list:
        registry = await self.registry.get(self.pool)
        emitter = Emitter(repo.S)
        batch = _Batch([None] * len(items))
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await self._apply(conn, items, registry, emitter, batch)
                emitted = await emitter.flush(conn)
        except BaseException:
            for key in batch.visits:  # their assemblers may hold what was rolled back
                self._visits.pop(key, None)
            raise
        for key, visit in batch.visits.items():
            self._visits[key] = visit
            self._visits.move_to_end(key)
        while len(self._visits) > CACHED_VISITS:
            self._visits.popitem(last=False)
        if emitted:
            self.on_emitted()
        return batch.answers

    # ----------------------------------------------------------------------- applying

    async def _apply(
        self, conn, items: list[Incoming], registry: Registry, emitter: Emitter, batch: _Batch
    ) -> None:
        answers = batch.answers
        rejections = []
        first: dict[tuple[str, str], int] = {}
        repeats: dict[int, int] = {}
        for i, it in enumerate(items):
            if it.rejected:
                meta = it.received.meta
                code = ack_code(it.received.problems)
                answers[i] = (code, [])
                rejections.append(
                    (
                        meta.facility if meta else None,
                        meta.control_id if meta else None,
                        it.source,
                        code,
                        json.dumps([p.as_dict() for p in it.received.problems if p.is_error]),
                    )
                )
            elif it.key in first:
                repeats[i] = first[it.key]
            else:
                first[it.key] = i
        await repo.insert_rejections(conn, rejections)
        rows = {
            key: repo.Hl7Stored(
                *key,
                _type(items[i].received),
                items[i].received.meta.version,  # type: ignore[union-attr]
                items[i].source,
                items[i].received.visit_key,
                items[i].text_form,
                items[i].data,
                items[i].digest,
            )
            for key, i in first.items()
        }
        stored = await repo.store_hl7_messages(conn, list(rows.values()))
        seen_before = [row for key, row in rows.items() if key not in stored]
        for key, (code, errors, same) in (await repo.hl7_answers(conn, seen_before)).items():
            problems = [Hl7Problem(**e) for e in errors]
            if not same:  # another message under a control id already used: not applied
                problems.append(REUSED)
            answers[first[key]] = (code, problems)
        new = [i for k, i in first.items() if k in stored]
        settled = await self._assemble(conn, items, new, registry, emitter, batch)
        await repo.settle_hl7_messages(conn, settled)
        for i, j in repeats.items():  # the same message twice in one batch: answered alike
            answers[i] = answers[j]

    async def _assemble(
        self,
        conn,
        items: list[Incoming],
        new: list[int],
        registry: Registry,
        emitter: Emitter,
        batch: _Batch,
    ) -> list[tuple]:
        """Apply the newly stored messages to their visits and emit what changed; returns the
        messages' rows for ``settle_hl7_messages``."""
        answers = batch.answers
        seqs: dict[int, int | None] = {}
        statuses: dict[int, str] = {}
        by_visit: dict[str, list[int]] = {}
        for i in new:
            key = items[i].received.visit_key
            if key is None:  # a type intake does not use: kept and acknowledged
                seqs[i], statuses[i] = None, "ignored"
            else:
                by_visit.setdefault(key, []).append(i)
        locks = await repo.lock_visits(
            conn, [(k, items[ix[0]].received.site_id or "", len(ix)) for k, ix in by_visit.items()]
        )
        bases = {k: locks[k].count - len(ix) for k, ix in by_visit.items()}
        stale = [  # a new visit (base 0) has no history to read
            k
            for k in by_visit
            if bases[k] and ((v := self._visits.get(k)) is None or v.count != bases[k])
        ]
        history = await repo.visit_messages(conn, stale)
        released: dict[str, tuple[str, AssembledVisit]] = {}  # visit key -> (source, visit)
        visit_rows: dict[str, tuple] = {}
        for key, ix in by_visit.items():
            visit = None if key in history or not bases[key] else self._visits.get(key)
            if visit is None:
                visit = _Visit(self._assembler(registry), 0)
                for stored in history.get(key, []):
                    visit.assembler.add(self._replay(stored, key, registry))
                    visit.count += 1
            visit.assembler.registry = registry
            batch.visits[key] = visit  # dropped from the cache if the transaction fails
            step = None
            for i in ix:
                step = visit.assembler.add(items[i].received)
                visit.count += 1
                seqs[i], statuses[i] = visit.count, step.status
            assembled = _current(visit.assembler, step)
            encounter = assembled.encounter if assembled else None
            if (
                assembled is not None
                and encounter is not None
                and not assembled.cancelled
                and (assembled.ready or locks[key].released)
            ):
                released[key] = (items[ix[-1]].source, assembled)
            visit_rows[key] = (
                key,
                encounter.encounter_id if encounter else None,
                False,
                json.dumps(assembled.awaiting if assembled else []),
            )
        refused = {}  # visit key -> why its encounter is not emitted (too large)
        for key, (_, v) in released.items():
            if found := too_large(v.encounter, self.limits):  # type: ignore[arg-type]
                refused[key] = Hl7Problem(f"the visit's encounter: {found[1]}", code=207)
        for key in refused:
            del released[key]
        if refused:
            logs.log(_log, logging.WARNING, "hl7 visit not emitted: encounter above a size limit",
                     component="hl7", count=len(refused))  # fmt: skip
        conflicts = await self._emit(conn, released, emitter)
        for key in released:
            if key not in conflicts:
                visit_rows[key] = (*visit_rows[key][:2], True, visit_rows[key][3])
        await repo.settle_visits(conn, list(visit_rows.values()))
        rows = []
        for i in new:
            errors = []
            if items[i].received.visit_key in refused:
                errors = [refused[items[i].received.visit_key]]  # type: ignore[index]
            elif items[i].received.visit_key in conflicts:
                errors = [
                    Hl7Problem(
                        "the visit's encounter id belongs to another site's encounter",
                        "PV1",
                        19,
                        code=205,
                    )
                ]
            code = "AE" if errors else "AA"
            answers[i] = (code, errors)
            rows.append(
                (*items[i].key, seqs[i], statuses[i], code, json.dumps([asdict(p) for p in errors]))
            )
        return rows

    async def _emit(
        self, conn, released: dict[str, tuple[str, AssembledVisit]], emitter: Emitter
    ) -> set[str]:
        """Version and emit each visit's encounter (unchanged content emits nothing); the keys
        of visits whose encounter id belongs to another site's encounter."""
        conflicts = set()
        for source in sorted({s for s, _ in released.values()}):
            keys = [k for k, (s, _) in released.items() if s == source]
            mapped = [
                MappedEncounter(
                    v.encounter,  # type: ignore[arg-type]
                    [p.as_dict() for p in v.warnings],  # type: ignore[misc]
                    list(v.missing),
                )
                for v in (released[k][1] for k in keys)
            ]
            outcomes = await accept(conn, mapped, emitter, source=source)
            conflicts.update(
                k for k, o in zip(keys, outcomes, strict=True) if o.status == "conflict"
            )
        return conflicts

    def _assembler(self, registry: Registry) -> VisitAssembler:
        return VisitAssembler(self.rules, registry=registry, concept_maps=self.codes.concept_maps)

    def _replay(self, stored: repo.VisitMessage, key: str, registry: Registry) -> Received:
        """A stored message read again, as part of its visit whatever the rules say now."""
        data = stored.message.decode("utf-8") if stored.text_form else stored.message
        received = receive(data, self.rules_for(stored.facility), registry)
        received.visit_key = key
        return received


def _unreachable(e: BaseException) -> bool:
    """The database is away: every message would fail alone too."""
    x = asyncpg.exceptions
    return isinstance(
        e,
        OSError
        | asyncpg.InterfaceError
        | x.PostgresConnectionError
        | x.CannotConnectNowError
        | x.TooManyConnectionsError,
    )


def _current(assembler: VisitAssembler, step) -> AssembledVisit | None:
    if step is not None and step.visit is not None:
        return step.visit
    visits = assembler.visits()
    return visits[0] if visits else None


def _type(received: Received) -> str:
    meta = received.meta
    assert meta is not None
    return "^".join(p for p in (meta.message_type, meta.trigger) if p)


def _not_stored() -> tuple[str, list[Hl7Problem]]:
    return (
        "AR",
        [Hl7Problem("the message could not be stored; send it again", code=207, severity="E")],
    )
