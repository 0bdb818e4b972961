"""Chaos for `rcm bench --chaos --seed S`: seeded faults during a run, invariants after it.

Faults (the schedule depends only on the seed): SIGKILL a random service
process every couple of seconds and restart it; SIGKILL the Kafka broker and
restart it on the same data directory; stop PostgreSQL with
``pg_ctl stop -m immediate`` and restart it. Poison messages are injected and
must end up in the DLQs, exactly those. Every wait is bounded: a component that
cannot be restarted is reported and the run fails.

With a replicated Kafka (``--brokers 3``) the faults are broker kills only, one broker at a
time and only while every partition has all its replicas in sync: the other two keep the
metadata quorum and every partition's ISR at 2 (``min.insync.replicas``), so the pipeline
must keep flowing. Each kill window (SIGKILL until the broker is back and in sync again) is
recorded; the bench reports the pipeline's throughput inside the windows and outside them,
and the same invariants are checked afterwards.
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
from aiokafka.admin import AIOKafkaAdminClient

from rcm import queries
from rcm.localstack import Postgres, kafka_cluster
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
    # Kafka brokers of the stack; with more than one, the faults are broker kills only.
    brokers: int = 1
    broker_down: tuple[float, float] = (4.0, 8.0)  # seconds a killed broker of a cluster stays dead
    broker_gap: tuple[float, float] = (8.0, 14.0)  # seconds between a cluster's kill windows
    faults: Counter = field(default_factory=Counter)
    schedule: list[tuple[float, str, str]] = field(default_factory=list)
    injected: set[tuple[str, int, int]] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    # Broker kill windows (epoch seconds): node, killed, restarted, back in sync; fewest
    # in-sync replicas of any partition seen while a broker was dead.
    windows: list[dict] = field(default_factory=list)
    min_isr_seen: int | None = None
    supervisor: Supervisor | None = None

    def __post_init__(self) -> None:
        self.schedule = self.plan()

    @property
    def replicated(self) -> bool:
        return self.brokers > 1

    def plan(self) -> list[tuple[float, str, str]]:
        """(seconds from start, kind, target): a pure function of the seed."""
        rng = random.Random(self.seed)
        if self.replicated:
            return self._plan_broker_kills(rng)
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

    def _plan_broker_kills(self, rng: random.Random) -> list[tuple[float, str, str]]:
        """One broker at a time, each in turn in a seeded order; each kill is a few seconds
        after the previous window (a window lasts about ``broker_down`` plus a restart)."""
        order = list(range(1, self.brokers + 1))
        rng.shuffle(order)
        events, t = [], 0.0
        for i in range(self.broker_kills):
            t += rng.uniform(*self.broker_gap)
            events.append((round(t, 2), "broker", str(order[i % len(order)])))
            t += self.broker_down[1] + 15  # the window: dead, then restart and catch up
        return events

    def load_seconds(self) -> float:
        """How long the load must last to be flowing through every kill window."""
        return (self.schedule[-1][0] if self.schedule else 0.0) + self.broker_down[1] + 25

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
        kafka = kafka_cluster(self.settings)
        pg = Postgres(self.settings.run_path)
        self.supervisor = sup
        t0 = time.monotonic()
        try:
            for at, kind, target in self.schedule:
                delay = at - (time.monotonic() - t0)
                if delay > 0:
                    await asyncio.sleep(delay)
                if kind == "broker" and self.replicated:
                    await self._kill_one_broker(kafka, int(target), rng)
                elif kind == "service":
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

    async def _kill_one_broker(self, kafka, node_id: int, rng: random.Random) -> None:
        """SIGKILL one broker of the cluster, keep it dead a while, restart it on its data and
        wait until every partition is fully in sync again: one kill window."""
        bootstrap = self.endpoints["kafka"]
        if not await self._wait_in_sync(bootstrap, 120):  # ISR >= 2 must hold after the kill
            self.errors.append(f"Kafka not fully in sync before killing broker {node_id}")
            raise RuntimeError(self.errors[-1])
        window = {"node": node_id, "killed_at": time.time()}
        await asyncio.to_thread(kafka.kill, node_id)
        self.faults["broker_kill"] += 1
        down_until = time.monotonic() + rng.uniform(*self.broker_down)
        while time.monotonic() < down_until:
            await self._sample_isr(bootstrap)
            await asyncio.sleep(0.5)
        window["restarted_at"] = time.time()
        await self._restart(f"Kafka broker {node_id}", lambda: kafka.start_node(node_id, 120))
        if not await self._wait_in_sync(bootstrap, 120):
            self.errors.append(f"broker {node_id} not back in sync 120 s after its restart")
            raise RuntimeError(self.errors[-1])
        window["in_sync_at"] = time.time()
        self.windows.append(window)

    async def _sample_isr(self, bootstrap: str) -> None:
        """Record the fewest in-sync replicas of any partition (while a broker is dead)."""
        try:
            parts = await asyncio.wait_for(partition_replicas(bootstrap), 10)
        except Exception:  # noqa: BLE001 - a sample lost to a leader change; the next one counts
            return
        if parts:
            low = min(len(isr) for _, isr in parts)
            self.min_isr_seen = low if self.min_isr_seen is None else min(self.min_isr_seen, low)

    @staticmethod
    async def _wait_in_sync(bootstrap: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                parts = await asyncio.wait_for(partition_replicas(bootstrap), 10)
                if parts and all(set(isr) >= set(replicas) for replicas, isr in parts):
                    return True
            except Exception:  # noqa: BLE001 - the cluster is recovering: ask again
                pass
            await asyncio.sleep(0.5)
        return False

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
        verdict = {
            "seed": self.seed,
            "faults": sum(self.faults.values()),
            "by_kind": dict(self.faults),
            "poison_injected": len(self.injected),
            "violations": v,
            "schedule_head": self.schedule[:5],
        }
        if self.replicated:
            if self.min_isr_seen is not None and self.min_isr_seen < 2:
                v.append(f"a partition fell to {self.min_isr_seen} in-sync replica(s)")
            verdict |= {
                "brokers": self.brokers,
                "kill_windows": [
                    {
                        "node": w["node"],
                        "dead_seconds": round(w["restarted_at"] - w["killed_at"], 1),
                        "window_seconds": round(w["in_sync_at"] - w["killed_at"], 1),
                    }
                    for w in self.windows
                ],
                "min_isr_during_kills": self.min_isr_seen,
                "service_restarts": sum(p.restarts for p in self.supervisor.processes)
                if self.supervisor
                else 0,
            }
        return verdict

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


async def partition_replicas(bootstrap: str) -> list[tuple[list[int], list[int]]]:
    """(replicas, in-sync replicas) of every partition of every topic, internal ones included."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        topics = await admin.describe_topics()
    finally:
        await admin.close()
    return [
        (p["replicas"], p["isr"])
        for t in topics
        if t.get("error_code", 0) == 0
        for p in t["partitions"]
    ]


def flow_in_windows(
    times: dict[str, list[float]], windows: list[dict], start: float, end: float
) -> dict:
    """Per stage, how many encounters passed it (and at what rate) inside the kill windows and
    outside them, between ``start`` and ``end`` (epoch seconds). A window is from a broker's
    SIGKILL until it is back in sync; windows are clipped to [start, end]."""
    spans = [
        (max(start, w["killed_at"]), min(end, w["in_sync_at"]))
        for w in windows
        if w["in_sync_at"] > start and w["killed_at"] < end
    ]
    inside_s = sum(b - a for a, b in spans)
    outside_s = max(0.0, end - start - inside_s)
    out = {"seconds_during_kills": round(inside_s, 1), "seconds_outside_kills": round(outside_s, 1)}
    for stage, ts in times.items():
        ts = [t for t in ts if start <= t <= end]
        inside = sum(1 for t in ts if any(a <= t < b for a, b in spans))
        out[stage] = {
            "during_kills": inside,
            "outside_kills": len(ts) - inside,
            "per_s_during_kills": round(inside / inside_s, 2) if inside_s else None,
            "per_s_outside_kills": round((len(ts) - inside) / outside_s, 2) if outside_s else None,
        }
    return out
