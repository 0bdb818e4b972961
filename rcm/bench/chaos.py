"""Chaos for `rcm bench --chaos --seed S`: seeded faults during a run, invariants after it.

Faults (the schedule depends only on the seed): SIGKILL a random service
process every couple of seconds and restart it; SIGKILL the Kafka broker and
restart it on the same data directory; stop PostgreSQL with
``pg_ctl stop -m immediate`` and restart it. Poison messages are injected and
must end up in the DLQs, exactly those. Every wait is bounded: a component that
cannot be restarted is reported and the run fails.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from rcm import queries
from rcm.localstack import KafkaBroker, Postgres
from rcm.localstack.supervisor import Supervisor
from shared.kafka import start_producer
from shared.settings import ServiceSettings
from shared.topics import CLAIM_SUBMITTED, ENCOUNTER_DOCUMENTED
from shared.x12 import split_segments

# Which services consume (and so dead-letter) each topic a poison message is put on.
CONSUMERS = {ENCOUNTER_DOCUMENTED: ("coding",), CLAIM_SUBMITTED: ("payments", "followup")}


@dataclass
class Chaos:
    seed: int
    settings: ServiceSettings
    endpoints: dict
    min_service_kills: int = 50
    broker_kills: int = 3
    postgres_stops: int = 2
    interval: tuple[float, float] = (1.0, 3.0)
    poison_count: int = 6
    faults: Counter = field(default_factory=Counter)
    schedule: list[tuple[float, str, str]] = field(default_factory=list)
    injected: set[tuple[str, int, int]] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.schedule = self.plan()

    def plan(self) -> list[tuple[float, str, str]]:
        """(seconds from start, kind, target): a pure function of the seed."""
        rng = random.Random(self.seed)
        events, t = [], 3.0
        names = ["coding", "billing", "payments", "followup", "payer_sim"]
        for _ in range(self.min_service_kills):
            t += rng.uniform(*self.interval)
            events.append((round(t, 2), "service", rng.choice(names)))
        span = t
        for i in range(self.broker_kills):
            events.append(
                (
                    round(span * (i + 1) / (self.broker_kills + 1) + rng.uniform(-1, 1), 2),
                    "broker",
                    "kafka",
                )
            )
        for i in range(self.postgres_stops):
            events.append(
                (
                    round(span * (i + 1.5) / (self.postgres_stops + 2) + rng.uniform(-1, 1), 2),
                    "postgres",
                    "pg",
                )
            )
        return sorted(events)

    async def inject_poison(self, bootstrap: str) -> None:
        """Messages no consumer can apply: garbage bytes and schema violations."""
        rng = random.Random(self.seed * 7919)
        producer = await start_producer(bootstrap)
        try:
            for i in range(self.poison_count):
                if i % 2 == 0:
                    topic, body = ENCOUNTER_DOCUMENTED, bytes(rng.getrandbits(8) for _ in range(64))
                else:
                    topic = CLAIM_SUBMITTED
                    body = json.dumps(
                        {
                            "event_type": "claim.submitted",
                            "event_id": f"{rng.getrandbits(64):x}",
                            "site_id": "chaos",
                            "encounter_id": f"POISON-{i}",
                            "payload": {},
                        }
                    ).encode()
                meta = await (await producer.send(topic, body, key=f"POISON-{i}".encode()))
                self.injected.add((topic, meta.partition, meta.offset))
        finally:
            await producer.stop()

    async def run(self, sup: Supervisor, stop: asyncio.Event) -> None:
        """Apply the schedule; restart what was killed; keep going until the schedule is done."""
        rng = random.Random(self.seed + 1)
        kafka = KafkaBroker(self.settings.run_path, self.settings.runtime.home)
        pg = Postgres(self.settings.run_path)
        t0 = time.monotonic()
        try:
            for at, kind, target in self.schedule:
                delay = at - (time.monotonic() - t0)
                if delay > 0:
                    await asyncio.sleep(delay)
                if kind == "service":
                    candidates = [p for p in sup.by_name(target) if p.alive()] or sup.processes
                    victim = rng.choice(candidates)
                    await asyncio.to_thread(victim.kill)
                    self.faults["service_kill"] += 1
                    await asyncio.sleep(0.3)
                    if not victim.alive():  # the bench's watch loop may have restarted it already
                        victim.restarts += 1
                        victim.start()
                elif kind == "broker":
                    await asyncio.to_thread(kafka.kill)
                    self.faults["broker_kill"] += 1
                    await asyncio.sleep(1)
                    await self._restart("Kafka", lambda: kafka.start(timeout=120))
                else:
                    await asyncio.to_thread(pg.stop, "immediate", 30)
                    self.faults["postgres_stop"] += 1
                    await asyncio.sleep(1)
                    await self._restart("PostgreSQL", lambda: pg.start(timeout=120))
                for p in sup.dead():  # a process manager restarts what died of the outage
                    p.restarts += 1
                    p.start()
        finally:
            self.done.set()

    async def _restart(self, name: str, start) -> None:
        try:
            await asyncio.wait_for(asyncio.to_thread(start), 180)
        except Exception as e:
            self.errors.append(f"could not restart {name}: {e}")
            raise

    # ---------------------------------------------------------------- verification

    async def verify(self, conn: asyncpg.Connection, ids: list[str], bootstrap: str) -> dict:
        v: list[str] = list(self.errors)
        outcomes = await queries.outcome_rows_per_encounter(conn, ids)
        if len(outcomes) != len(ids):
            v.append(f"{len(ids) - len(outcomes)} encounter(s) never reached a terminal state")
        originals = await queries.encounters_with_several_originals(conn, ids)
        if originals:
            v.append(f"{originals} encounter(s) with more than one original claim")
        dup_837 = self._duplicate_837_claims(self.settings.outbound_dir / "processed")
        if dup_837:
            v.append(f"{len(dup_837)} claim(s) sent in more than one 837: {sorted(dup_837)[:5]}")
        dup_adj = await queries.claims_adjudicated_twice(conn)
        if dup_adj:
            v.append(f"{dup_adj} claim(s) adjudicated twice by the payer")
        dup_post = await queries.claims_posted_twice(conn)
        if dup_post:
            v.append(f"{dup_post} claim(s) with a payment posted twice")
        dup_fu = await queries.claims_followed_up_twice(conn)
        if dup_fu:
            v.append(f"{dup_fu} claim(s) whose remittance followup applied twice")
        dup_st = await queries.duplicate_statements(conn)
        if dup_st:
            v.append(f"{dup_st} duplicate statement(s)")
        unbalanced = await queries.unbalanced_journal_entries(conn)
        total = await queries.ledger_total(conn)
        if unbalanced or total != 0:
            v.append(f"ledger: {unbalanced} unbalanced entr(ies), global sum {total}")
        mismatched = await self._claim_identity(conn, ids)
        if mismatched:
            v.append(
                f"{len(mismatched)} claim(s) where billed != paid + adjustments + patient + open: {mismatched[:5]}"
            )
        v += await self._dead_letters(conn)
        return {
            "seed": self.seed,
            "faults": sum(self.faults.values()),
            "by_kind": dict(self.faults),
            "poison_injected": len(self.injected),
            "violations": v,
            "schedule_head": self.schedule[:5],
        }

    @staticmethod
    def _duplicate_837_claims(directory: Path) -> set[str]:
        seen: Counter = Counter()
        for path in directory.glob("837*"):
            segs, _ = split_segments(path.read_text())
            seen.update(s[1] for s in segs if s[0] == "CLM")
        return {c for c, n in seen.items() if n > 1}

    @staticmethod
    async def _claim_identity(conn: asyncpg.Connection, ids: list[str]) -> list[str]:
        """Per claim, followup's view (from events) must match payments' ledger to the cent."""
        rows = await queries.claim_ledger_totals(conn, ids)
        bad = []
        for r in rows:
            if r["cash"] + r["patient"] + r["payer"] + r["adj"] != r["total_charge"]:
                bad.append(r["claim_id"])
            elif r["fu_paid"] is not None and r["fu_paid"] != r["cash"]:
                bad.append(f"{r['claim_id']} (followup paid {r['fu_paid']} vs ledger {r['cash']})")
        return bad

    async def _dead_letters(self, conn: asyncpg.Connection) -> list[str]:
        v = []
        for schema in queries.SCHEMAS:
            got = await queries.dead_letter_sources(conn, schema)
            want = {x for x in self.injected if schema in CONSUMERS.get(x[0], ())}
            if got - want:
                v.append(
                    f"{schema}: {len(got - want)} unexpected dead letter(s): {sorted(got - want)[:3]}"
                )
            if want - got:
                v.append(
                    f"{schema}: {len(want - got)} injected poison message(s) not dead-lettered"
                )
        return v
