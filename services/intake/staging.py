"""On-disk staging of a bulk export (SQLite), so an import's memory stays flat in its size.

Resources billing can use are filed as they stream in (by type and id, patient, the
encounters they name, their day, their identifiers); then each Encounter is regrouped with
what belongs to it: the resources that name it, its patient and the patient's coverages,
the patient's resources that name no (known) encounter and fall on its dates, and what all
of those reference (organisations, practitioners, locations, binaries), conditional
references resolved by identifier. Only one patient's resources are in memory at a time,
plus a bounded cache of shared resources.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from services.intake.domain.bulk import (
    GROUPED_TYPES,
    SHARED_TYPES,
    Keys,
    conditional,
    parse_reference,
    references_in,
)

_SCHEMA = """
CREATE TABLE resource (
    rtype TEXT NOT NULL, rid TEXT NOT NULL, patient TEXT, day TEXT, end_day TEXT,
    linked INTEGER NOT NULL, src INTEGER NOT NULL, line INTEGER NOT NULL, body TEXT NOT NULL,
    UNIQUE (rtype, rid)
);
CREATE TABLE link (encounter TEXT NOT NULL, rtype TEXT NOT NULL, rid TEXT NOT NULL);
CREATE TABLE ident (system TEXT NOT NULL, value TEXT NOT NULL, rtype TEXT NOT NULL, rid TEXT NOT NULL);
"""
_INDEXES = """
CREATE INDEX link_encounter ON link (encounter);
CREATE INDEX link_source ON link (rtype, rid);
CREATE INDEX ident_value ON ident (value, system);
CREATE INDEX resource_patient ON resource (patient, rtype);
CREATE INDEX resource_rid ON resource (rid);
ANALYZE;
"""
_GROUPED = tuple(sorted(GROUPED_TYPES))
# Followed by reference: shared resources and coverages (never another encounter's resources,
# which the mapping would take for this one's).
_REFERENCED = SHARED_TYPES | {"Coverage"}
_SHARED_CACHE = 5000


@dataclass(frozen=True, slots=True)
class Member:
    """One resource of an encounter's group, with where it was read."""

    rtype: str
    rid: str
    src: int  # index of the file
    line: int
    body: str


class Staging:
    def __init__(self, path: Path, batch: int = 5000):
        # One thread at a time uses it (the importer maps in a worker thread).
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "cache_size = -16384"):
            self.db.execute(f"PRAGMA {pragma}")
        self.db.executescript(_SCHEMA)
        self.batch = batch
        self._resources: list[tuple] = []
        self._links: list[tuple] = []
        self._idents: list[tuple] = []
        self.duplicates = 0
        self._shared: OrderedDict[tuple[str, str], Member | None] = OrderedDict()

    def close(self) -> None:
        self.db.close()

    # ---------------------------------------------------------------- filing

    def add(self, keys: Keys, body: str, src: int, line: int) -> None:
        self._resources.append(
            (
                keys.rtype,
                keys.rid,
                keys.patient,
                keys.day,
                keys.end_day,
                1 if keys.encounters else 0,
                src,
                line,
                body,
            )
        )
        self._links += [(e, keys.rtype, keys.rid) for e in keys.encounters]
        self._idents += [(s, v, keys.rtype, keys.rid) for s, v in keys.identifiers]
        if len(self._resources) >= self.batch:
            self._flush()

    def _flush(self) -> None:
        before = self.db.total_changes
        self.db.execute("BEGIN")
        self.db.executemany(
            "INSERT OR IGNORE INTO resource VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", self._resources
        )
        self.duplicates += len(self._resources) - (self.db.total_changes - before)
        self.db.executemany("INSERT INTO link VALUES (?, ?, ?)", self._links)
        self.db.executemany("INSERT INTO ident VALUES (?, ?, ?, ?)", self._idents)
        self.db.execute("COMMIT")
        self._resources, self._links, self._idents = [], [], []

    def finish(self) -> int:
        """Index what was filed; return how many grouped resources name only encounters the
        export does not hold (they are then matched by patient and date, like unlinked ones)."""
        self._flush()
        self.db.executescript(_INDEXES)
        cur = self.db.execute(
            "UPDATE resource SET linked = 0 WHERE linked = 1 AND NOT EXISTS ("
            " SELECT 1 FROM link l JOIN resource e ON e.rtype = 'Encounter' AND e.rid = l.encounter"
            " WHERE l.rtype = resource.rtype AND l.rid = resource.rid)"
        )
        return cur.rowcount

    def counts(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT rtype, count(*) FROM resource GROUP BY rtype"))

    # ---------------------------------------------------------------- regrouping

    def encounter_count(self) -> int:
        return self.db.execute(
            "SELECT count(*) FROM resource WHERE rtype = 'Encounter'"
        ).fetchone()[0]

    def groups(self) -> Iterator[list[Member]]:
        """Each Encounter's group, the Encounter first; patient by patient."""
        patient_of: str | None = object()  # type: ignore[assignment]
        common: list[Member] = []
        by_date: dict[str, list[Member]] = {}
        cur = self.db.execute(
            "SELECT rid, patient, src, line, body FROM resource WHERE rtype = 'Encounter'"
            " ORDER BY patient, day, rid"
        )
        while rows := cur.fetchmany(500):
            for rid, patient, src, line, body in rows:
                if patient != patient_of:
                    patient_of = patient
                    common, by_date = self._patient(patient)
                group = {("Encounter", rid): Member("Encounter", rid, src, line, body)}
                for m in common:
                    group.setdefault((m.rtype, m.rid), m)
                for m in self._linked(rid) + by_date.get(rid, []):
                    group.setdefault((m.rtype, m.rid), m)
                self._close_over(group)
                yield list(group.values())

    def _patient(self, patient: str | None) -> tuple[list[Member], dict[str, list[Member]]]:
        """The patient with its coverages, and its unlinked resources by the encounter they fit."""
        if patient is None:
            return [], {}
        common = [
            Member(*r)
            for r in self.db.execute(
                "SELECT rtype, rid, src, line, body FROM resource"
                " WHERE patient = ? AND rtype IN ('Patient', 'Coverage') ORDER BY rtype, rid",
                (patient,),
            )
        ]
        spans = self.db.execute(
            "SELECT rid, day, end_day FROM resource WHERE rtype = 'Encounter' AND patient = ?",
            (patient,),
        ).fetchall()
        by_date: dict[str, list[Member]] = {}
        marks = ",".join("?" * len(_GROUPED))
        for rtype, rid, src, line, body, day in self.db.execute(
            f"SELECT rtype, rid, src, line, body, day FROM resource WHERE patient = ?"
            f" AND linked = 0 AND rtype IN ({marks})",
            (patient, *_GROUPED),
        ):
            if len(spans) == 1:
                fits = [spans[0][0]]
            elif day is None:
                continue
            else:
                fits = [e for e, start, end in spans if start and start <= day <= (end or start)]
            if len(fits) == 1:  # several: not guessed at (the mapping warns the same way)
                by_date.setdefault(fits[0], []).append(Member(rtype, rid, src, line, body))
        return common, by_date

    def _linked(self, encounter: str) -> list[Member]:
        return [
            Member(*r)
            for r in self.db.execute(
                "SELECT r.rtype, r.rid, r.src, r.line, r.body FROM link l"
                " JOIN resource r ON r.rtype = l.rtype AND r.rid = l.rid"
                " WHERE l.encounter = ? ORDER BY r.rtype, r.rid",
                (encounter,),
            )
        ]

    def _close_over(self, group: dict[tuple[str, str], Member], depth: int = 2) -> None:
        """Add the shared resources and coverages the group references, ``depth`` references deep."""
        fresh = list(group.values())
        for _ in range(depth):
            found = []
            for m in fresh:
                for ref in references_in(m.body):
                    hit = self._resolve(ref)
                    if hit is not None and (hit.rtype, hit.rid) not in group:
                        group[(hit.rtype, hit.rid)] = hit
                        found.append(hit)
            fresh = found

    def _resolve(self, ref: str) -> Member | None:
        target = parse_reference(ref)
        cond = None
        if target is not None:
            key = target
            if target[0] not in _REFERENCED and target[0] is not None:
                return None
        else:
            cond = conditional(ref)
            if cond is None or cond[0] not in _REFERENCED:
                return None
            key = (cond[0], f"?{cond[1]}|{cond[2]}")
        if key in self._shared:
            self._shared.move_to_end(key)
            return self._shared[key]
        if cond is not None:
            row = self.db.execute(
                "SELECT r.rtype, r.rid, r.src, r.line, r.body FROM ident i"
                " JOIN resource r ON r.rtype = i.rtype AND r.rid = i.rid"
                " WHERE i.value = ? AND i.system = ? AND i.rtype = ? LIMIT 1",
                (cond[2], cond[1], cond[0]),
            ).fetchone()
        elif key[0] is None:  # urn:uuid: the id alone names it
            marks = ",".join("?" * len(_REFERENCED))
            row = self.db.execute(
                "SELECT rtype, rid, src, line, body FROM resource"
                f" WHERE rid = ? AND rtype IN ({marks}) LIMIT 1",
                (key[1], *sorted(_REFERENCED)),
            ).fetchone()
        else:
            row = self.db.execute(
                "SELECT rtype, rid, src, line, body FROM resource WHERE rtype = ? AND rid = ?",
                key,
            ).fetchone()
        hit = Member(*row) if row else None
        self._shared[key] = hit
        if len(self._shared) > _SHARED_CACHE:
            self._shared.popitem(last=False)
        return hit
