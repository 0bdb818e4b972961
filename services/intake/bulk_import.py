"""A bulk FHIR ``$export`` into intake: stream, stage, regroup per encounter, map, accept.

``stage_files`` streams NDJSON files (plain or gzip) line by line into an on-disk staging
store; ``import_staged`` regroups each Encounter with what belongs to it, maps it, and
versions, stores and emits the encounters a batch per transaction. Memory stays flat in the
number of resources. Problems name the file, line and resource, never a value.
"""

from __future__ import annotations

import asyncio
import gzip
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from services.intake import repository as repo
from services.intake.accept import accept
from services.intake.domain.bulk import Bad, Skipped, assemble, read_line
from services.intake.mapping import Mapped, MappedEncounter, parse, plain
from services.intake.staging import Member, Staging
from shared.messaging import Emitter
from shared.relay import OutboxRelay

SUFFIXES = (".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz")
_ENTRY = re.compile(r"^entry\[(\d+)\]\.resource\.?")
_KEEP_EXAMPLES = 25


def ndjson_files(paths: Iterable[Path]) -> list[Path]:
    """The NDJSON files of ``paths`` (directories searched recursively), in name order.

    Raises ValueError naming a path that does not exist or holds no NDJSON file.
    """
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.name.endswith(SUFFIXES))
            if not found:
                raise ValueError(f"{p}: no NDJSON files ({', '.join(SUFFIXES)}) in this directory")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise ValueError(f"{p}: no such file or directory")
    return out


@dataclass
class Summary:
    """What an import read, grouped and did; JSON-ready through ``as_json``."""

    files: int = 0
    bytes: int = 0
    lines: int = 0
    resources: Counter = field(default_factory=Counter)  # staged, by type
    skipped: Counter = field(default_factory=Counter)  # types billing does not read
    bad_lines: int = 0
    duplicates: int = 0
    unmatched: int = 0  # grouped resources naming an encounter the export does not hold
    encounters: int = 0  # Encounter resources regrouped
    accepted: int = 0
    new_versions: int = 0  # accepted as version 2 or later
    unchanged: int = 0  # the same content as the version already received
    conflicts: int = 0
    rejected: int = 0  # Encounters the mapping refused
    warnings: int = 0
    missing: Counter = field(default_factory=Counter)  # billing data missing, by field
    problems: Counter = field(default_factory=Counter)  # rejections and bad lines, by message
    examples: list[dict] = field(default_factory=list)  # the first problems, with their place
    seconds: dict[str, float] = field(default_factory=dict)

    def problem(self, where: str, message: str) -> None:
        self.problems[message] += 1
        if len(self.examples) < _KEEP_EXAMPLES:
            self.examples.append({"path": where, "message": message})

    def count(self, outcomes: Iterable[dict]) -> None:
        """Count outcomes as ``Outcome.as_json`` (or the HTTP API) gives them."""
        for o in outcomes:
            if o["status"] == "accepted":
                self.accepted += 1
                self.new_versions += (o.get("document_version") or 1) > 1
                self.warnings += len(o.get("warnings", ()))
                for m in o.get("missing", ()):
                    self.missing[_missing_name(m)] += 1
            elif o["status"] == "duplicate":
                self.unchanged += 1
            else:
                self.conflicts += 1

    def as_json(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "bytes": self.bytes,
            "lines": self.lines,
            "resources": dict(sorted(self.resources.items())),
            "skipped": dict(sorted(self.skipped.items())),
            "bad_lines": self.bad_lines,
            "duplicate_resources": self.duplicates,
            "unmatched_resources": self.unmatched,
            "encounters": self.encounters,
            "accepted": self.accepted,
            "new_versions": self.new_versions,
            "unchanged": self.unchanged,
            "conflicts": self.conflicts,
            "rejected": self.rejected,
            "warnings": self.warnings,
            "missing": dict(self.missing.most_common()),
            "problems": dict(self.problems.most_common()),
            "examples": self.examples,
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
        }


def _missing_name(m: Any) -> str:
    m = plain(m)
    if isinstance(m, dict):
        return str(m.get("field") or m.get("path") or m.get("name") or m)
    return str(m)


# --------------------------------------------------------------------------- staging


def stage_files(
    files: list[Path],
    staging: Staging,
    summary: Summary,
    on_progress: Callable[[int], None] = lambda _: None,
) -> None:
    """Stream every line of ``files`` into ``staging``; ``on_progress`` gets bytes read so far."""
    done = 0
    for src, path in enumerate(files):
        summary.files += 1
        with (gzip.open if path.name.endswith(".gz") else open)(path, "rb") as f:
            for n, raw in enumerate(f, 1):
                summary.lines += 1
                done += len(raw)
                if n % 2000 == 0:
                    on_progress(done)
                got = read_line(raw, f"{path.name}:{n}")
                if got is None:
                    continue
                if isinstance(got, Skipped):
                    summary.skipped[got.rtype] += 1
                elif isinstance(got, Bad):
                    summary.bad_lines += 1
                    summary.problem(got.path, got.message)
                else:
                    keys, _ = got
                    summary.resources[keys.rtype] += 1
                    staging.add(keys, raw.decode().rstrip("\r\n"), src, n)
        on_progress(done)
    summary.bytes = done
    summary.unmatched = staging.finish()
    summary.duplicates = staging.duplicates


# --------------------------------------------------------------------------- regrouping


@dataclass(frozen=True)
class Group:
    """One Encounter's resources as a collection Bundle, and where each entry was read."""

    members: list[Member]
    files: list[Path]

    def bundle_text(self) -> str:
        return assemble((m.rid, m.body) for m in self.members)

    def locate(self, path: str) -> str:
        """A bundle path (``entry[3].resource.period``) as ``file:line (Type/id).period``."""
        m = _ENTRY.match(path)
        if not m or int(m.group(1)) >= len(self.members):
            return f"{self.where(0)}: {path}"
        rest = path[m.end() :]
        return self.where(int(m.group(1))) + (f".{rest}" if rest else "")

    def where(self, i: int) -> str:
        m = self.members[i]
        return f"{self.files[m.src].name}:{m.line} ({m.rtype}/{m.rid})"


def groups(staging: Staging, files: list[Path]) -> Iterator[Group]:
    for members in staging.groups():
        yield Group(members, files)


def map_group(group: Group, summary: Summary, **options: Any) -> list[MappedEncounter]:
    """Map one group (``options``: registry, codes, site_id); rejections are counted in
    ``summary`` with their file and line."""
    mapped: Mapped = parse(group.bundle_text(), **options)
    summary.encounters += 1
    if not mapped.encounters:
        summary.rejected += 1
    for p in mapped.problems:
        summary.problem(group.locate(p["path"]), p["message"])
    summary.warnings += len(mapped.warnings)
    return mapped.encounters


def map_batch(
    it: Iterator[Group], size: int, summary: Summary, options: dict
) -> tuple[list[MappedEncounter], bool]:
    """Map groups from ``it`` until ``size`` encounters; (them, whether ``it`` is exhausted)."""
    batch: list[MappedEncounter] = []
    for group in it:
        batch += map_group(group, summary, **options)
        if len(batch) >= size:
            return batch, False
    return batch, True


async def accept_batch(
    conn: asyncpg.Connection, batch: list[MappedEncounter], summary: Summary
) -> int:
    """Version, store and emit one batch in one transaction; the number of events emitted."""
    emitter = Emitter(repo.S)
    async with conn.transaction():
        outcomes = await accept(conn, batch, emitter, source="import")
        emitted = await emitter.flush(conn)
    summary.count(o.as_json() for o in outcomes)
    return emitted


async def import_staged(
    pool: asyncpg.Pool,
    relay: OutboxRelay,
    staging: Staging,
    files: list[Path],
    summary: Summary,
    *,
    batch_size: int,
    options: dict,
    on_progress: Callable[[int], None] = lambda _: None,
) -> None:
    """Map the staged groups and accept them a batch per transaction, until all are in Kafka.

    Mapping (CPU) runs in a worker thread while the previous batch is stored and the relay
    publishes, so the three overlap. Returns once the outbox is empty.
    """
    stop = asyncio.Event()
    relaying = asyncio.create_task(relay.run(stop, idle_seconds=0.5))
    it = groups(staging, files)
    storing: asyncio.Task | None = None
    mapped = stored = 0.0

    async def store(batch: list[MappedEncounter]) -> None:
        nonlocal stored
        t = time.monotonic()
        async with pool.acquire() as conn:
            if await accept_batch(conn, batch, summary):
                relay.notify()
        stored += time.monotonic() - t
        on_progress(summary.encounters)

    try:
        done = False
        while not done:
            t = time.monotonic()
            batch, done = await asyncio.to_thread(map_batch, it, batch_size, summary, options)
            mapped += time.monotonic() - t
            if storing is not None:
                await storing
            storing = asyncio.create_task(store(batch)) if batch else None
        if storing is not None:
            await storing
        while await _outbox_rows(pool):
            relay.notify()
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        relay.notify()
        await relaying
    summary.seconds["map"], summary.seconds["store"] = mapped, stored


async def _outbox_rows(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn:
        return await conn.fetchval(f"SELECT count(*) FROM {repo.S}.outbox")
