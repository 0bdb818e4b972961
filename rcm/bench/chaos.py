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

Beyond the primary payer: a seeded share of the encounters get another coverage (Medicare
with a Medigap plan the provider bills, sometimes a third plan, or with Medicaid, which
Medicare forwards the claim to; a commercial plan with a spouse's plan), so secondary and
tertiary claims and crossovers run through the faults; and while they run, part of what
patients owe is paid through ``POST /patient-payments`` on whichever payments process is up,
retried under the same Idempotency-Key until it answers. The invariants cover them: one claim
per encounter and payer, every payer decision followed by the next payer's claim (or a
crossover wait), every later claim answered, each patient payment taken exactly once with
its cash and allocations in the ledger.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import asyncpg
import httpx
from aiokafka.admin import AIOKafkaAdminClient

from rcm import queries
from rcm.localstack import Postgres, kafka_cluster
from rcm.localstack.supervisor import Supervisor
from shared.auth import issue
from shared.events import Coverage, Encounter
from shared.kafka import start_producer
from shared.settings import ServiceSettings
from shared.topics import CLAIM_SUBMITTED, ENCOUNTER_DOCUMENTED
from shared.x12 import split_segments

# Which services consume (and so dead-letter) each topic a poison message is put on.
CONSUMERS = {ENCOUNTER_DOCUMENTED: ("coding",), CLAIM_SUBMITTED: ("payments", "followup")}

# Shares of the run's encounters (seeded draws per encounter id).
SECONDARY_SHARE = 0.35  # of those with one coverage (not Medicaid, the payer of last resort)
MEDIGAP_SHARE = 0.6  # of Medicare patients given a second plan: Medigap; the rest Medicaid
TERTIARY_SHARE = 0.3  # of those given a second plan (not Medicaid): a third one
PATIENT_PAYMENT_SHARE = 0.5  # of the encounters whose patient owes something
CENT = Decimal("0.01")
_OTHER_COMMERCIAL = (
    ("UHC001", "Unity Health Care Plan", "CI"),
    ("AETNA1", "Aster Health Insurance Co", "CI"),
)
ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


def _draw(seed: int, key: str, purpose: str) -> float:
    digest = hashlib.sha256(f"{seed}|{key}|{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _digits(seed: int, key: str, purpose: str, n: int) -> str:
    return str(int(_draw(seed, key, purpose) * 10**n)).zfill(n)


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
    # Of the encounters given a second plan (not Medicaid), the share given a third one.
    tertiary_share: float = TERTIARY_SHARE
    # Idempotency-Key -> the patient payment asked for and its answer (None until one came:
    # taken, or refused with a 422 when a later payer left the patient owing less meanwhile).
    patient_payments: dict[str, dict] = field(default_factory=dict)

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

    # ---------------------------------------------------------------- COB and patient payments

    def with_other_coverage(self, enc: Encounter) -> Encounter:
        """The encounter, with a second coverage for a seeded share of those with one, and a
        third for some of those: Medicare with Medigap (billed by the provider) or Medicaid (a
        crossover, and nothing after it: the payer of last resort), a commercial plan with a
        spouse's. Member ids are fixed by the seed and the encounter."""
        key = enc.encounter_id
        if len(enc.coverages) != 1 or _draw(self.seed, key, "secondary") >= SECONDARY_SHARE:
            return enc
        primary = enc.coverages[0]
        if primary.filing_indicator == "MC":
            return enc  # Medicaid pays last: it is nobody's primary before another plan
        medicare = primary.filing_indicator in ("MB", "MA")
        if medicare and _draw(self.seed, key, "medigap") >= MEDIGAP_SHARE:
            medicaid = Coverage(
                payer_id="MCD01",
                payer_name="Buckeye State Medicaid (demo)",
                member_id=_digits(self.seed, key, "member-2", 12),
                filing_indicator="MC",
                sequence="secondary",
            )
            return enc.model_copy(update={"coverages": [primary, medicaid]})
        plans = [("BCBS01", "Blue Lakes Cross Shield (demo)", "BL")] if medicare else []
        plans += [p for p in _OTHER_COMMERCIAL if p[0] != primary.payer_id]
        n = 2 if _draw(self.seed, key, "tertiary") < self.tertiary_share else 1
        others = [
            Coverage(
                payer_id=payer_id,
                payer_name=name,
                member_id=("XLB" if payer_id == "BCBS01" else "")
                + _digits(self.seed, key, f"member-{i}", 9),
                group_number="G" + _digits(self.seed, key, f"group-{i}", 5),
                filing_indicator=filing,
                sequence=sequence,
            )
            for i, ((payer_id, name, filing), sequence) in enumerate(
                zip(plans[:n], ("secondary", "tertiary"), strict=False), start=2
            )
        ]
        return enc.model_copy(update={"coverages": [primary, *others]})

    async def take_patient_payments(
        self, sup: Supervisor, ids: list[str], stop: asyncio.Event
    ) -> None:
        """Until ``stop``: for a seeded share of the encounters whose patient owes something,
        pay half of it (cash, allocated to the claim) through ``POST /patient-payments`` on a
        payments process that is up; every payment is retried with the same key and body until
        payments answers, also after ``stop`` (bounded)."""
        token = issue(self.settings.auth.token_secret, "chaos-cashier", "biller", ["*"])
        rng = random.Random(self.seed * 31)
        async with httpx.AsyncClient(
            timeout=10, headers={"authorization": f"Bearer {token}"}
        ) as client:
            while not stop.is_set():
                try:
                    conn = await asyncpg.connect(self.endpoints["postgres"], timeout=5)
                    try:
                        owing = await queries.patient_balances(conn, ids)
                    finally:
                        await conn.close()
                except ERRORS:
                    owing = []  # Postgres restarting (chaos): ask again next time
                for r in owing:
                    key = f"chaos-{self.seed}-{r['encounter_id']}"
                    amount = (r["balance"] / 2).quantize(CENT, ROUND_DOWN)
                    if (
                        key in self.patient_payments
                        or amount < CENT
                        or _draw(self.seed, r["encounter_id"], "pays") >= PATIENT_PAYMENT_SHARE
                    ):
                        continue
                    self.patient_payments[key] = {
                        "account": r["encounter_id"],
                        "claim_id": r["claim_id"],
                        "amount": amount,
                        "answer": None,
                        "attempts": 0,
                    }
                await self._pay_pending(client, sup, rng)
                try:
                    await asyncio.wait_for(stop.wait(), 1.0)
                except TimeoutError:
                    pass
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and self._unanswered():
                await self._pay_pending(client, sup, rng)
                await asyncio.sleep(0.5)

    def _unanswered(self) -> list[str]:
        return [k for k, p in self.patient_payments.items() if p["answer"] is None]

    async def _pay_pending(self, client: httpx.AsyncClient, sup: Supervisor, rng) -> None:
        for key in self._unanswered():
            up = [p for p in sup.by_name("payments") if p.http_port and p.alive()]
            if not up:
                return
            p = self.patient_payments[key]
            amount = str(p["amount"])
            p["attempts"] += 1
            try:
                got = await client.post(
                    f"http://127.0.0.1:{rng.choice(up).http_port}/patient-payments",
                    json={
                        "account": p["account"],
                        "amount": amount,
                        "method": "cash",
                        "allocations": [{"claim_id": p["claim_id"], "amount": amount}],
                    },
                    headers={"Idempotency-Key": key},
                )
            except httpx.HTTPError:
                continue  # killed mid-request or not listening yet: the same key again later
            if got.status_code in (200, 201):
                p["answer"] = "taken"
            elif got.status_code == 422:
                p["answer"] = "refused"  # the claim's patient balance fell below it meanwhile
            # 409 (the same key in flight on another process) and 5xx: asked again later

    async def drain(self, ids: list[str], timeout: float = 180) -> None:
        """After every encounter settled: wait (bounded) until the later payers' claims are
        built and answered and every patient payment has its answer; ``verify`` reports what
        is still missing then."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                conn = await asyncpg.connect(self.endpoints["postgres"], timeout=5)
                try:
                    cob = await queries.cob_counts(conn, ids)
                finally:
                    await conn.close()
                if not (
                    cob["in_flight"] or cob["unrecorded"] or cob["unbilled"] or self._unanswered()
                ):
                    return
            except ERRORS:
                pass
            await asyncio.sleep(0.5)

    async def _cob_and_patient_payments(self, conn: asyncpg.Connection, ids: list[str]):
        v = []
        cob = await queries.cob_counts(conn, ids)
        if cob["unrecorded"]:
            v.append(
                f"{cob['unrecorded']} payer decision(s) posted by payments that billing never"
                " recorded for the next payer"
            )
        if cob["unbilled"]:
            v.append(
                f"{cob['unbilled']} encounter(s) with another coverage whose next payer was"
                " neither billed nor awaited after a crossover"
            )
        if cob["in_flight"]:
            stuck = await queries.later_claims_in_flight(conn, ids)
            where = "; ".join(
                f"{r['claim_id']} {r['cob_sequence']} to {r['payer_id']}: {r['status']},"
                f" {'in a file' if r['sent'] else 'never in a file'},"
                f" payments {r['payments'] or 'none'}"
                for r in stuck[:6]
            )
            v.append(
                f"{cob['in_flight']} secondary/tertiary claim(s) sent and never answered ({where})"
            )
        keys = sorted(self.patient_payments)
        rows = await queries.patient_payments_by_key(conn, keys)
        per_key = Counter(r["key"] for r in rows)
        twice = [k for k, n in per_key.items() if n > 1]
        if twice:
            v.append(f"{len(twice)} patient payment(s) taken more than once: {twice[:3]}")
        for key, p in self.patient_payments.items():
            if p["answer"] is None:
                v.append(f"patient payment {key} never answered after {p['attempts']} attempt(s)")
            elif p["answer"] == "taken" and per_key[key] == 0:
                v.append(f"patient payment {key} answered as taken but not recorded")
            elif p["answer"] == "refused" and per_key[key]:
                v.append(f"patient payment {key} refused but recorded")
        for r in rows:
            want = self.patient_payments[r["key"]]["amount"]
            if not r["amount"] == r["cash"] == r["allocated"] == r["applied"] == want:
                v.append(
                    f"patient payment {r['key']}: amount {r['amount']}, cash {r['cash']},"
                    f" allocated {r['allocated']}, applied {r['applied']} (asked {want})"
                )
        answers = Counter(p["answer"] for p in self.patient_payments.values())
        summary = {
            "cob": dict(cob),
            "patient_payments": {
                "asked": len(self.patient_payments),
                "taken": answers["taken"],
                "refused": answers["refused"],
                "attempts": sum(p["attempts"] for p in self.patient_payments.values()),
            },
        }
        return v, summary

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
        more, beyond_primary = await self._cob_and_patient_payments(conn, ids)
        v += more
        v += await self._dead_letters(conn)
        verdict = {
            "seed": self.seed,
            "faults": sum(self.faults.values()),
            "by_kind": dict(self.faults),
            "poison_injected": len(self.injected),
            "violations": v,
            "schedule_head": self.schedule[:5],
            **beyond_primary,
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
        """Per claim, followup's view (from events) must match payments' ledger to the cent,
        and what the ledger recognised as billed must be what the claim's lines settle; per
        encounter, the charge is recognised once (a next payer's claim is opened by a
        transfer of what the prior payers left, not by a second charge)."""
        rows = await queries.claim_ledger_totals(conn, ids)
        bad = []
        charged: dict[str, list] = {}
        for r in rows:
            charged.setdefault(r["encounter_id"], []).append(r)
            # A patient payment applied to the claim moved patient receivable to credit.
            if r["cash"] + r["patient"] + r["payer"] + r["adj"] + r["credit"] != r["billed"]:
                bad.append(r["claim_id"])
            elif r["fu_paid"] is not None and r["fu_paid"] != r["cash"]:
                bad.append(f"{r['claim_id']} (followup paid {r['fu_paid']} vs ledger {r['cash']})")
        for encounter, claims in charged.items():
            billed = sum((r["billed"] for r in claims), Decimal("0.00"))
            if billed not in (Decimal("0.00"), max(r["total_charge"] for r in claims)):
                bad.append(f"encounter {encounter} charged {billed} over its claims")
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
