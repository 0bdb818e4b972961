"""`rcm bench`: the full pipeline under load on the local stack, measured.

Every service (and payer_sim, with zero delay) runs as its own process. N
synthetic encounters are published to ``rcm.encounter.documented.v1``; a coder
pool works the review queues over HTTP. Measured: end-to-end throughput
(encounters reaching a terminal state per second), per-stage throughput,
latency from ``encounter.documented`` to remittance posted (p50/p95/p99), max
consumer lag per group, peak RSS and CPU seconds per service, and a raw aiokafka
baseline (produce + consume the same number of messages of the same size).
With ``--chaos`` processes, the broker and Postgres are killed on a seeded
schedule and the run ends with an invariant check (see ``rcm/bench/chaos.py``).
With ``--brokers 3`` the stack's Kafka is a replicated cluster; with ``--chaos`` too, one
broker at a time is killed while the load is published at a pace that keeps it flowing
through every kill window, and the throughput of each stage inside the windows and outside
them is reported (``broker_chaos``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import psutil
from aiokafka import AIOKafkaConsumer

from rcm import localstack as stack
from rcm import queries
from rcm.bench.chaos import flow_in_windows
from rcm.cli.demo import coder_pool, start_services, wait_http
from rcm.cli.progress import progress
from rcm.localstack.supervisor import Supervisor
from shared.events import EncounterDocumented
from shared.kafka import ensure_topics, start_producer
from shared.ops import group_lag
from shared.settings import ConnectionSettings, RuntimeSettings, ServiceSettings
from shared.topics import ENCOUNTER_DOCUMENTED

GROUPS = ("rcm-coding", "rcm-billing", "rcm-payments", "rcm-followup")
# Simulated coders per site. One person per site could not keep up with the share of
# encounters the engine routes to review (about 9 %) at hundreds of encounters a second.
CODERS_PER_SITE = 3


class BenchError(RuntimeError):
    """Reported as one line by the CLI."""


@dataclass
class ProcessStats:
    peak_rss: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    # CPU already used when the run starts (imports, migrations, code-set loading):
    # start-up is not per-encounter work, so it is subtracted.
    cpu_at_start: dict[str, float] = field(default_factory=dict)

    infra_pids: dict[str, int] = field(default_factory=dict)  # kafka, postgres (with its backends)
    # This process (publishing, simulated coders, polling) shares the machine: its CPU is
    # reported beside the pipeline's, not in it.
    load_generator_cpu: float = 0.0

    def start(self, sup: Supervisor) -> None:
        self.sample(sup)
        self.cpu_at_start = dict(self.cpu)
        self.load_generator_cpu = -_own_cpu()

    def stop(self) -> None:
        self.load_generator_cpu += _own_cpu()

    def sample_infra(self) -> None:
        for name, pid in self.infra_pids.items():
            try:
                p = psutil.Process(pid)
                procs = [p, *p.children(recursive=True)]
            except psutil.Error:
                continue
            total = 0.0
            for q in procs:
                try:
                    t = q.cpu_times()
                    total += (
                        t.user + t.system + (t.children_user + t.children_system if q is p else 0)
                    )
                except psutil.Error:
                    pass
            key = f"{name}#{pid}"
            self.cpu[key] = max(self.cpu.get(key, 0.0), total)

    def sample(self, sup: Supervisor) -> None:
        for sp in sup.processes:
            if not sp.alive():
                continue
            try:
                p = psutil.Process(sp.proc.pid)
                rss = p.memory_info().rss
                t = p.cpu_times()
            except psutil.Error:
                continue
            self.peak_rss[sp.label] = max(self.peak_rss.get(sp.label, 0), rss)
            # CPU of the current incarnation; restarts (chaos) add up.
            key = f"{sp.label}#{sp.restarts}"
            self.cpu[key] = t.user + t.system

    def cpu_by_service(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for key, v in self.cpu.items():
            label = key.split("#")[0]
            out[label] = out.get(label, 0.0) + v - self.cpu_at_start.get(key, 0.0)
        return out


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system  # this process only (children are the services, measured apiece)


async def consumer_lag(bootstrap: str) -> dict[str, int]:
    return await group_lag(bootstrap, list(GROUPS))


async def raw_baseline(bootstrap: str, n: int, size: int, partitions: int) -> dict:
    """Produce and consume n messages of ``size`` bytes with aiokafka alone."""
    topic = f"rcm.bench.raw.{uuid.uuid4().hex[:8]}"
    await ensure_topics(bootstrap, [topic], partitions)
    payload = b"x" * size
    producer = await start_producer(bootstrap)
    t0 = time.perf_counter()
    try:
        for i in range(n):
            await producer.send(topic, payload, key=str(i).encode())
        await producer.flush()
    finally:
        await producer.stop()
    produced = time.perf_counter() - t0
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-{topic}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    got = 0
    t1 = time.perf_counter()
    try:
        while got < n and time.perf_counter() - t1 < 120:
            batch = await consumer.getmany(timeout_ms=500, max_records=2000)
            got += sum(len(v) for v in batch.values())
            await consumer.commit()
    finally:
        await consumer.stop()
    consumed = time.perf_counter() - t1
    total = produced + consumed
    return {
        "messages": n,
        "bytes": size,
        "produce_per_s": round(n / produced),
        "consume_per_s": round(got / consumed),
        "produce_and_consume_per_s": round(n / total, 1),
    }


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
    return values[k]


async def stage_stats(conn: asyncpg.Connection, ids: list[str]) -> tuple[dict, dict]:
    """Per-stage throughput and end-to-end latency from what each service recorded."""
    stages = {}
    for name, (lo, hi, n) in (await queries.stage_windows(conn, ids)).items():
        span = (hi - lo).total_seconds() if lo and hi else 0
        stages[name] = {"count": n, "per_s": round(n / span, 1) if span > 0 else None}
    rows = await queries.posted_at_by_encounter(conn, ids)
    return stages, {r["encounter_id"]: float(r["posted"]) for r in rows}


# A bench event's occurred_at before it is published: serialised once with this placeholder,
# which ``stamp`` replaces with the publishing time (a re-serialisation per event cost the load
# generator more than its Kafka sends).
_UNSTAMPED = datetime(2000, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)
_UNSTAMPED_JSON = b'"occurred_at":"2000-01-01T00:00:00.123456Z"'


def stamp(body: bytes, at: datetime) -> bytes:
    """``body`` (serialised with ``_UNSTAMPED``) with ``at`` as its occurred_at."""
    at = at.astimezone(UTC)
    new = b'"occurred_at":"' + at.strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode() + b'"'
    out = body.replace(_UNSTAMPED_JSON, new, 1)
    if out is body or len(out) != len(body):
        raise BenchError("a bench event was not serialised with the occurred_at placeholder")
    return out


HOPS = (
    ("documented", "received", "intake (Kafka -> coding)"),
    ("received", "coded", "coding"),
    ("coded", "claimed", "coded -> claim"),
    ("claimed", "submitted", "claim -> 837 written"),
    ("submitted", "remitted", "837 -> payer -> 835 read"),
    ("remitted", "posted", "835 -> posted"),
)


async def hop_stats(conn: asyncpg.Connection, documented: dict[str, float]) -> dict:
    """Latency per hop (p50/p95 s) and end to end split by coding route (auto vs coder review).

    The split matters: a reviewed encounter waits for a person, so its latency
    says how fast coders are, not how fast the pipeline is.
    """
    rows = await queries.hop_times(conn, list(documented))
    per_hop: dict[str, list[float]] = {label: [] for _, _, label in HOPS}
    by_route: dict[str, list[float]] = {}
    for r in rows:
        t = {
            k: (float(r[k]) if r[k] is not None else None)
            for k in ("received", "coded", "claimed", "submitted", "remitted", "posted")
        }
        t["documented"] = documented[r["encounter_id"]]
        if r["route"] == "auto":  # hops of a reviewed encounter include the coder's time
            for a, b, label in HOPS:
                if t[a] is not None and t[b] is not None:
                    per_hop[label].append(max(0.0, t[b] - t[a]))
        if t["posted"] is not None:
            by_route.setdefault(r["route"], []).append(t["posted"] - t["documented"])

    def pct(v: list[float]) -> dict:
        return {"p50": round(_pct(v, 0.5), 3), "p95": round(_pct(v, 0.95), 3), "count": len(v)}

    return {
        "hops_auto": {k: pct(v) for k, v in per_hop.items()},
        "latency_by_route": {k: pct(v) for k, v in sorted(by_route.items())},
    }


@dataclass
class BenchRun:
    n: int
    instances: int
    seed: int
    settings: ServiceSettings
    endpoints: dict
    coder_pool: bool = True
    timeout: float = 900
    chaos: object | None = None  # rcm.bench.chaos.Chaos
    quiet: bool = False
    rate: float | None = None  # encounters/s; None = all at once (measures drain capacity)
    # Coders start only once the engine has routed every encounter and the auto-coded ones
    # have settled, so CPU splits into the auto path and the review path (see ``phase_split``).
    review_after_auto: bool = False
    _start_coders: object | None = field(default=None, init=False, repr=False)
    _pool: asyncio.Task | None = field(default=None, init=False, repr=False)
    _boundary: dict | None = field(default=None, init=False, repr=False)
    _last_progress: tuple[int, int] = field(default=(-1, -1), init=False, repr=False)
    _since: float = field(default=0.0, init=False, repr=False)

    async def run(self) -> dict:
        from rcm.simulation.samples import generate_samples
        from services.intake.domain.fhir import parse_intake

        s = self.settings
        if self.rate is None and getattr(self.chaos, "replicated", False):
            # Broker kills measure flow during the kills: the load must last through them all.
            self.rate = round(self.n / self.chaos.load_seconds(), 2)
        # Dates of service inside every payer's filing window.
        samples = generate_samples(self.n, self.seed, start_date=date.today() - timedelta(days=40))
        events, expected = [], {}
        for smp in samples:
            enc = parse_intake(smp.bundle)
            if self.chaos:  # secondary and tertiary claims run through the faults too
                enc = self.chaos.with_other_coverage(enc)
            events.append(
                EncounterDocumented(
                    site_id=enc.site_id,
                    encounter_id=enc.encounter_id,
                    payload=enc,
                    occurred_at=_UNSTAMPED,
                )
            )
            expected[enc.encounter_id] = smp.expected
        ids = [e.encounter_id for e in events]
        bodies = [e.to_json() for e in events]
        documented: dict[
            str, float
        ] = {}  # encounter id -> when it was published (latency starts there)
        calibration_before = await asyncio.to_thread(calibrate)  # before the services start
        sup = start_services(
            s,
            self.endpoints,
            instances=self.instances,
            extra_env={
                "RCM_PAYER_SIM_DELAY_SECONDS": "0",
                "RCM_LOG_LEVEL": "WARNING",
                # A coder whose completion was lost (chaos) gets the item back soon.
                "RCM_LEASE_SECONDS": "20",
                "RCM_CONSUMER_PARTITIONS": str(s.consumer.partitions),
            },
        )
        stats = ProcessStats()
        stop = asyncio.Event()
        lag_max: dict[str, int] = dict.fromkeys(GROUPS, 0)
        try:
            coding = sup.by_name("coding")[0]
            base_url = f"http://127.0.0.1:{coding.http_port}"
            for sp in sup.processes:
                if sp.http_port:
                    await wait_http(f"http://127.0.0.1:{sp.http_port}/health", sup, timeout=240)
            await asyncio.sleep(2)  # consumers join their groups
            sites = sorted({e.site_id for e in events})

            def start_coders() -> asyncio.Task:
                return asyncio.create_task(
                    coder_pool(
                        base_url,
                        s.auth.token_secret,
                        expected,
                        stop,
                        sites,
                        per_site=CODERS_PER_SITE,
                    )
                )

            pool = start_coders() if self.coder_pool and not self.review_after_auto else None
            self._start_coders = start_coders if self.coder_pool and pool is None else None
            chaos_task = asyncio.create_task(self.chaos.run(sup, stop)) if self.chaos else None
            paying = asyncio.Event()  # set once the later payers and patient payments drained
            cashier = (
                asyncio.create_task(self.chaos.take_patient_payments(sup, ids, paying))
                if self.chaos
                else None
            )
            if self.chaos:
                await self.chaos.inject_poison(self.endpoints["kafka"])
            producer = await start_producer(self.endpoints["kafka"])
            stats.infra_pids = await self._infra_pids()
            stats.sample_infra()
            stats.start(sup)
            started = time.time()
            try:
                for i, (e, body) in enumerate(zip(events, bodies, strict=True)):
                    if self.rate:  # paced: encounters arrive at `rate` per second, like a live feed
                        ahead = started + i / self.rate - time.time()
                        if ahead > 0:  # the producer's linger sends what is due; no flush per event
                            await asyncio.sleep(ahead)
                    # occurred_at is the documentation time latency is measured from: stamped as
                    # it is published, into the body serialised beforehand.
                    now = datetime.now(UTC)
                    documented[e.encounter_id] = now.timestamp()
                    await producer.send(
                        ENCOUNTER_DOCUMENTED,
                        stamp(body, now),
                        key=e.key(),
                        headers=[("event_type", b"encounter.documented")],
                    )
                await producer.flush()
            finally:
                await producer.stop()
            published = time.time()
            missing = await self._wait(ids, sup, stats, lag_max, stop)
            finished = time.time()
            if self.chaos:
                await self.chaos.drain(ids)
            paying.set()
            if cashier:
                await asyncio.wait_for(cashier, 120)
            stop.set()
            if chaos_task:
                await asyncio.wait_for(chaos_task, 120)
            pool = pool or self._pool
            if pool:
                await asyncio.wait_for(pool, 60)
            stats.sample(sup)
            stats.stop()
            stats.infra_pids = await self._infra_pids()  # chaos restarts the broker and database
            stats.sample_infra()
            conn = await asyncpg.connect(self.endpoints["postgres"])
            try:
                stages, posted = await stage_stats(conn, ids)
                latencies = [posted[i] - t for i, t in documented.items() if i in posted]
                hops = await hop_stats(conn, documented)
                verdict = (
                    await self.chaos.verify(conn, ids, self.endpoints["kafka"])
                    if self.chaos
                    else None
                )
                if verdict is not None and self.chaos.replicated:
                    times = await queries.stage_times(conn, ids)
                    # Up to the last terminal outcome: a window after the load is idle anyway.
                    end = max(times["settled"], default=finished)
                    verdict["flow"] = flow_in_windows(times, self.chaos.windows, started, end)
                    # The harshest part of each window: from the SIGKILL to the restart.
                    dead = [
                        {"killed_at": w["killed_at"], "in_sync_at": w["restarted_at"]}
                        for w in self.chaos.windows
                    ]
                    verdict["flow_while_dead"] = flow_in_windows(times, dead, started, end)
            finally:
                await conn.close()
        finally:
            stop.set()
            sup.stop_all()
        calibration = {"before": calibration_before, "after": await asyncio.to_thread(calibrate)}
        settled = len(ids) - len(missing)
        cpu = stats.cpu_by_service()
        result = {
            "encounters": self.n,
            "instances": self.instances,
            "settled": settled,
            "unsettled": len(missing),
            "publish_seconds": round(published - started, 2),
            "elapsed_seconds": round(finished - started, 2),
            "throughput_per_s": round(settled / (finished - started), 1),
            "stages": stages,
            "latency_seconds": {
                "p50": round(_pct(latencies, 0.5), 3),
                "p95": round(_pct(latencies, 0.95), 3),
                "p99": round(_pct(latencies, 0.99), 3),
                "mean": round(statistics.fmean(latencies), 3) if latencies else None,
                "count": len(latencies),
            },
            **hops,
            "max_consumer_lag": lag_max,
            "peak_rss_mb": {k: round(v / 2**20, 1) for k, v in sorted(stats.peak_rss.items())},
            "cpu_seconds": {k: round(v, 1) for k, v in sorted(cpu.items())},
            # All CPU the run cost (services, broker, database) per settled encounter.
            "cpu_ms_per_encounter": round(1000 * sum(cpu.values()) / settled, 2)
            if settled
            else None,
            "load_generator_cpu_seconds": round(stats.load_generator_cpu, 1),
            "event_bytes_mean": round(statistics.fmean(len(b) for b in bodies)),
            "calibration_cpu_seconds": calibration,
        }
        if self._boundary is not None:
            result["phases"] = phase_split(
                self._boundary,
                {
                    "at": finished,
                    "cpu": cpu,
                    "load_generator": stats.load_generator_cpu,
                    "settled": settled,
                },
                started=started,
                routes=await self._routes(ids),
            )
        if verdict is not None:
            result["chaos"] = verdict
        return result

    async def _routes(self, ids: list[str]) -> dict[str, int]:
        conn = await asyncpg.connect(self.endpoints["postgres"])
        try:
            return await queries.coding_routes(conn, ids)
        finally:
            await conn.close()

    async def _auto_path_drained(
        self, conn: asyncpg.Connection, ids: list[str], settled: int, sup, stats
    ) -> None:
        """With ``review_after_auto``: once every encounter is routed and as many have settled
        as were auto-coded (no coder has worked yet, so only those can), note the CPU used so
        far and let the coders start. A run whose auto path stalls (an encounter held for a
        biller, one dead-lettered before coding) starts them after 30 s without progress."""
        routes = await queries.coding_routes(conn, ids)
        now = time.monotonic()
        routed = sum(routes.values())
        if (routed, settled) != self._last_progress:
            self._last_progress, self._since = (routed, settled), now
        drained = routed == len(ids) and settled >= routes.get("auto", 0)
        if not drained and (routed == 0 or now - self._since <= 30):
            return
        stats.sample(sup)
        stats.sample_infra()
        self._boundary = {
            "at": time.time(),
            "cpu": stats.cpu_by_service(),
            "load_generator": stats.load_generator_cpu + _own_cpu(),
            "settled": settled,
        }
        self._pool = self._start_coders()
        self._start_coders = None

    async def _infra_pids(self) -> dict[str, int]:
        try:  # an external stack (KAFKA_BOOTSTRAP_SERVERS) has no local pids to watch
            st = await asyncio.to_thread(stack.status, self.settings)
        except Exception:  # noqa: BLE001 - CPU figures for the broker/database are optional
            return {}
        pids = {"postgres": st.get("postgres", {}).get("pid")}
        brokers = st.get("kafka", {}).get("brokers", [])
        for b in brokers:  # one broker: "kafka"; a cluster: "kafka-1", "kafka-2", ...
            pids["kafka" if len(brokers) == 1 else f"kafka-{b['node_id']}"] = b["pid"]
        return {k: pid for k, pid in pids.items() if pid}

    async def _wait(
        self, ids: list[str], sup: Supervisor, stats: ProcessStats, lag_max: dict, stop
    ) -> set[str]:
        conn = await asyncpg.connect(self.endpoints["postgres"])
        missing = set(ids)
        deadline = time.monotonic() + self.timeout
        last_lag = 0.0
        try:
            while (
                missing or (self.chaos and not self.chaos.done.is_set())
            ) and time.monotonic() < deadline:
                try:
                    missing -= await queries.settled_encounters(conn, list(missing))
                    if self._start_coders:
                        await self._auto_path_drained(
                            conn, ids, len(ids) - len(missing), sup, stats
                        )
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    await asyncio.sleep(1)  # Postgres restarting (chaos)
                    try:
                        await conn.close()
                    except Exception:
                        pass
                    try:
                        conn = await asyncpg.connect(self.endpoints["postgres"], timeout=5)
                    except (OSError, asyncpg.PostgresError):
                        pass
                    continue
                stats.sample(sup)
                if time.monotonic() - last_lag > 1.0:
                    last_lag = time.monotonic()
                    try:
                        lag = await asyncio.wait_for(consumer_lag(self.endpoints["kafka"]), 10)
                        for g, v in lag.items():
                            lag_max[g] = max(lag_max[g], v)
                    except Exception:
                        pass  # broker restarting (chaos)
                for sp in sup.dead():
                    if not self.chaos:
                        raise BenchError(
                            f"service {sp.label} died during the run (log: {sp.log_path})"
                        )
                    sp.restarts += (
                        1  # chaos: what died of an outage is restarted, as a process manager would
                    )
                    sp.start()
                if not self.quiet:
                    progress(len(ids) - len(missing), len(ids))
                await asyncio.sleep(0.5)
        finally:
            if not self.quiet and sys.stderr.isatty():
                print(file=sys.stderr)
            try:
                await conn.close()
            except Exception:
                pass
        return missing


def phase_split(boundary: dict, end: dict, *, started: float, routes: dict[str, int]) -> dict:
    """CPU of a ``review_after_auto`` run split at the moment the coders started.

    ``boundary`` and ``end`` hold ``at`` (epoch s), ``cpu`` (seconds per service since the
    run started), ``load_generator`` (its CPU seconds) and ``settled`` (encounters). The
    first phase is the engine coding every encounter and the auto-coded ones going through
    billing, the payer and posting in full batches; the second is the coders' HTTP work
    (lease, audited read, complete) and each reviewed encounter's trip downstream, which
    arrives one completion at a time.
    """
    after = {k: end["cpu"].get(k, 0.0) - v for k, v in boundary["cpu"].items()}
    after.update({k: v for k, v in end["cpu"].items() if k not in boundary["cpu"]})

    def phase(cpu: dict, seconds: float, settled: int, lg: float, per: int) -> dict:
        return {
            "seconds": round(seconds, 2),
            "settled": settled,
            "cpu_seconds": {k: round(v, 1) for k, v in sorted(cpu.items())},
            "cpu_ms_per_encounter": round(1000 * sum(cpu.values()) / per, 2) if per else None,
            "load_generator_cpu_seconds": round(lg, 1),
        }

    auto_n = routes.get("auto", 0)
    review_settled = end["settled"] - boundary["settled"]
    return {
        "routes": routes,
        # per encounter published: every one was coded by the engine in this phase
        "auto_path": phase(
            boundary["cpu"],
            boundary["at"] - started,
            boundary["settled"],
            boundary["load_generator"],
            sum(routes.values()),
        )
        | {"auto_coded": auto_n},
        # per reviewed encounter settled in this phase
        "review_path": phase(
            after,
            end["at"] - boundary["at"],
            review_settled,
            end["load_generator"] - boundary["load_generator"],
            review_settled,
        ),
    }


def render(result: dict) -> str:
    lines = [
        f"rcm bench: {result['encounters']} encounters, {result['instances']} instance(s) per service",
        f"  settled {result['settled']} (unsettled {result['unsettled']}) in {result['elapsed_seconds']} s"
        f" -> {result['throughput_per_s']} encounters/s end to end",
        "  stage throughput (/s): "
        + ", ".join(f"{k} {v['per_s']}" for k, v in result["stages"].items()),
        "  latency documented -> remittance posted (s): "
        + ", ".join(f"{k} {v}" for k, v in result["latency_seconds"].items() if k != "count"),
        "  latency by coding route (s): "
        + ", ".join(
            f"{k} p50 {v['p50']} p95 {v['p95']} (n={v['count']})"
            for k, v in result.get("latency_by_route", {}).items()
        ),
        "  hops, auto-coded (p50/p95 s): "
        + ", ".join(f"{k} {v['p50']}/{v['p95']}" for k, v in result.get("hops_auto", {}).items()),
        "  max consumer lag: "
        + ", ".join(f"{k} {v}" for k, v in result["max_consumer_lag"].items()),
        "  peak RSS (MB): " + ", ".join(f"{k} {v}" for k, v in result["peak_rss_mb"].items()),
        "  CPU seconds during the run: "
        + ", ".join(f"{k} {v}" for k, v in result["cpu_seconds"].items())
        + f" -> {result['cpu_ms_per_encounter']} ms CPU per encounter"
        f" (and the load generator, this process: {result['load_generator_cpu_seconds']} s)",
    ]
    ph = result.get("phases")
    if ph:
        a, r = ph["auto_path"], ph["review_path"]
        lines.append(
            f"  auto path (coders held back; the engine coded every encounter, {a['auto_coded']}"
            f" auto; {a['settled']} settled in {a['seconds']} s):"
            f" {a['cpu_ms_per_encounter']} ms CPU per encounter: "
            + ", ".join(f"{k} {v}" for k, v in a["cpu_seconds"].items())
        )
        lines.append(
            f"  review path ({r['settled']} reviewed encounters settled in {r['seconds']} s):"
            f" {r['cpu_ms_per_encounter']} ms CPU per reviewed encounter: "
            + ", ".join(f"{k} {v}" for k, v in r["cpu_seconds"].items())
            + f" (load generator, the coders: {r['load_generator_cpu_seconds']} s)"
        )
    raw = result.get("raw_baseline")
    if raw:
        lines.append(
            f"  raw aiokafka produce+consume: {raw['produce_and_consume_per_s']} msg/s "
            f"-> pipeline/raw = {result['pipeline_over_raw']}"
        )
    cal = result.get("calibration_cpu_seconds")
    if cal:
        lines.append(
            f"  machine speed: a fixed workload took {cal['before']} s before the run and {cal['after']} s after"
            " (lower is faster; compare runs alongside it)"
        )
    if "scaling_ratio" in result:
        lines.append(f"  scaling: K={result['instances']} vs K=1 = {result['scaling_ratio']}x")
    if "chaos" in result:
        c = result["chaos"]
        lines.append(f"  chaos: {c['faults']} faults; violations: {len(c['violations'])}")
        lines += [f"    - {v}" for v in c["violations"]]
        if "cob" in c:
            cob, pp = c["cob"], c["patient_payments"]
            lines.append(
                f"  beyond the primary payer: {cob['with_next_payer']} encounter(s) with another"
                f" coverage, {cob['secondary']} secondary and {cob['tertiary']} tertiary claim(s),"
                f" {cob['crossovers']} crossover(s) ({cob['crossovers_received']} answered);"
                f" patient payments {pp['taken']} taken, {pp['refused']} refused,"
                f" {pp['attempts']} attempt(s)"
            )
        if "flow" in c:
            f = c["flow"]
            lines.append(
                f"  broker kills ({c['brokers']} brokers): "
                + ", ".join(
                    f"node {w['node']} dead {w['dead_seconds']} s, window {w['window_seconds']} s"
                    for w in c["kill_windows"]
                )
                + f"; fewest in-sync replicas seen {c['min_isr_during_kills']}"
                f"; service restarts {c['service_restarts']}"
            )
            lines.append(
                f"  flow during kills ({f['seconds_during_kills']} s) vs outside"
                f" ({f['seconds_outside_kills']} s), per s: "
                + ", ".join(
                    f"{stage} {v['per_s_during_kills']} vs {v['per_s_outside_kills']}"
                    for stage, v in f.items()
                    if isinstance(v, dict)
                )
            )
            d = c["flow_while_dead"]
            lines.append(
                f"  settled while a broker was dead ({d['seconds_during_kills']} s):"
                f" {d['settled']['per_s_during_kills']} per s"
            )
    return "\n".join(lines)


async def run_bench(
    *,
    n: int,
    instances: int,
    seed: int,
    chaos_seed: int | None,
    as_json: bool,
    out: Path | None,
    timeout: float,
    partitions: int | None,
    keep_stack: bool = False,
    rate: float | None = None,
    brokers: int = 1,
    review_after_auto: bool = False,
) -> int:
    base = ServiceSettings()
    external = bool(base.connections.kafka_bootstrap_servers and base.connections.database_url)
    run_dir = (
        base.run_path
        if external
        else Path(tempfile.mkdtemp(prefix="rcm-bench-", dir=base.runtime.home))
    )
    parts = partitions or max(4, 2 * instances)
    s = ServiceSettings(
        runtime=RuntimeSettings(run_dir=run_dir, home=base.runtime.home),
        connections=ConnectionSettings(**base.connections.model_dump()),
        consumer=base.consumer.model_copy(update={"partitions": parts}),
    )
    print(
        f"rcm bench: starting a fresh local stack in {run_dir} ..."
        if not external
        else "rcm bench: using KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL",
        file=sys.stderr,
    )
    endpoints = await asyncio.to_thread(stack.up, s, brokers if brokers > 1 else None)
    try:
        await ensure_topics(endpoints["kafka"], partitions=parts)
        chaos = None
        if chaos_seed is not None:
            from rcm.bench.chaos import Chaos

            chaos = Chaos(seed=chaos_seed, settings=s, endpoints=endpoints, brokers=brokers)
        results = []
        ks = [1, instances] if instances > 1 and chaos is None else [instances]
        for i, k in enumerate(ks):
            print(
                f"rcm bench: {n} encounters through the pipeline with {k} instance(s) per service ...",
                file=sys.stderr,
            )
            bench_run = BenchRun(
                n=n,
                instances=k,
                seed=seed + i,
                settings=s,
                endpoints=endpoints,
                chaos=chaos,
                timeout=timeout,
                rate=rate,
                review_after_auto=review_after_auto,
            )
            r = await bench_run.run()
            r["publish_rate"] = bench_run.rate
            results.append(r)
        result = results[-1]
        if len(results) == 2 and results[0]["throughput_per_s"]:
            result["scaling_ratio"] = round(
                result["throughput_per_s"] / results[0]["throughput_per_s"], 2
            )
            result["k1"] = {
                k: results[0][k] for k in ("throughput_per_s", "latency_seconds", "elapsed_seconds")
            }
        print("rcm bench: raw aiokafka baseline ...", file=sys.stderr)
        raw = await raw_baseline(endpoints["kafka"], n, result["event_bytes_mean"], parts)
        result["raw_baseline"] = raw
        result["pipeline_over_raw"] = round(
            result["throughput_per_s"] / raw["produce_and_consume_per_s"], 3
        )
        result["machine"] = machine()
    finally:
        if not external and not keep_stack:
            await asyncio.to_thread(stack.down, s)
            if not (
                run_dir / "profiles"
            ).exists():  # profiles (RCM_PROFILE_SERVICES) are kept to be read
                shutil.rmtree(
                    run_dir, ignore_errors=True
                )  # a 10k run leaves hundreds of MB of data
    return report(result, as_json=as_json, out=out)


def report(result: dict, *, as_json: bool, out: Path | None) -> int:
    """Print the table (with ``as_json``: the JSON on stdout, the table on stderr, so it pipes),
    write the results file; 1 when an encounter did not settle or the chaos check found a violation."""
    print(render(result), file=sys.stderr if as_json else sys.stdout)
    if as_json:
        print(json.dumps(result, indent=2))
    out = out or Path(f"bench-results-{time.strftime('%Y%m%d-%H%M%S')}.json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"rcm bench: results written to {out}", file=sys.stderr)
    bad = result["unsettled"] > 0 or bool(result.get("chaos", {}).get("violations"))
    return 1 if bad else 0


def calibrate() -> float:
    """CPU seconds a fixed single-threaded workload takes on this machine now (lower is faster).

    A shared machine's speed drifts between runs; results of the same code are comparable
    only next to this figure. The best of three, so a passing burst of other work counts less.
    """
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        total = 0
        for i in range(500_000):
            total += i * i % 7
        data = b"x" * 1000
        for _ in range(30_000):
            hashlib.sha256(data).digest()
        best = min(best, time.process_time() - start)
    return round(best, 3)


def machine() -> dict:
    import os
    import platform

    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": platform.processor() or None,
    }
