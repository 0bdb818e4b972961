"""Benchmark HL7 v2 intake over MLLP, beside the FHIR HTTP intake rate (benchmarks/bench_intake.py).

Against the local stack (started if needed, or KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL), one
intake process (`rcm serve intake` with RCM_INTAKE_MLLP_PORT) takes, in the same session:

- **MLLP**: --visits visits of three messages each (the hand-written ADT^A04, MDM^T02 and
  DFT^P03 of tests/unit/intake_hl7v2, each visit under its own visit number), sent over
  --connections connections at once, each waiting for every ACK before the next message (as
  MLLP senders do). An ACK means the message is committed; a visit is released (one
  encounter.documented) with its third message. Reports messages/s acknowledged, encounters/s
  emitted and published to Kafka (the outbox drained), ACK latency and the intake process's
  CPU per message.
- **FHIR over HTTP**: --http sample bundles POSTed to /encounters, --concurrency at a time
  (bench_intake.bench_http).

Prints JSON.

    .venv/bin/python benchmarks/bench_mllp.py [--visits 2000] [--connections 16] [--http 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import asyncpg  # noqa: E402
import psutil  # noqa: E402
from bench_intake import bench_http  # noqa: E402
from on_stack import add_run_dir, run_on_stack  # noqa: E402

from rcm.cli.demo import base_env, load_sample_registries, wait_http  # noqa: E402
from rcm.localstack.procs import free_port  # noqa: E402
from rcm.localstack.supervisor import Supervisor  # noqa: E402
from services.intake.mllp import MllpClient, read_ack  # noqa: E402
from shared.kafka import ensure_topics  # noqa: E402
from shared.settings import ServiceSettings  # noqa: E402

MESSAGES = ROOT / "tests" / "unit" / "intake_hl7v2" / "messages"
INTAKE_ENV = {
    "RCM_INTAKE_HL7_FACILITIES": "NORTHGATE=north-clinic",
    "RCM_INTAKE_HL7_SITE_READINESS": "north-clinic=note+charges",
}


def visits(n: int, run: str) -> list[list[bytes]]:
    """n visits of three messages, each under its own visit number, dated 30 days ago."""
    day = (date.today() - timedelta(days=30)).strftime("%Y%m%d").encode()
    base = [
        (MESSAGES / f"visit_v251_{name}.hl7").read_bytes()
        for name in ("adt_a04", "mdm_t02", "dft_p03")
    ]
    return [
        [
            m.replace(b"V20260511-01", f"V{run}-{i:06d}".encode()).replace(b"20260511", day)
            for m in base
        ]  # fmt: skip
        for i in range(n)
    ]


async def drained(conn: asyncpg.Connection) -> float:
    """When intake's outbox was seen empty (every emitted encounter published to Kafka)."""
    for _ in range(12_000):
        if not await conn.fetchval("SELECT count(*) FROM intake.outbox"):
            return time.perf_counter()
        await asyncio.sleep(0.05)
    raise RuntimeError("intake's outbox not drained in 10 minutes")


async def bench_mllp(port: int, dsn: str, n: int, connections: int, pid: int) -> dict:
    run = uuid.uuid4().hex[:8].upper()
    work = visits(n, run)
    latencies: list[float] = []
    codes: dict[str, int] = {}
    queue = iter(work)

    async def sender() -> None:
        async with MllpClient("127.0.0.1", port, timeout=120) as client:
            for messages in queue:
                for m in messages:
                    t = time.perf_counter()
                    code = read_ack(await client.send(m)).code
                    latencies.append(time.perf_counter() - t)
                    codes[code] = codes.get(code, 0) + 1

    async with MllpClient("127.0.0.1", port) as client:  # warm up (registry, pool)
        for m in visits(1, run + "W")[0]:
            await client.send(m)
    proc = psutil.Process(pid)
    cpu_before = sum(proc.cpu_times()[:2])
    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(connections)))
    acked = time.perf_counter() - started
    cpu = sum(proc.cpu_times()[:2]) - cpu_before
    conn = await asyncpg.connect(dsn)
    try:
        emitted = await conn.fetchval(
            "SELECT count(*) FROM intake.encounter_document WHERE encounter_id LIKE $1",
            f"V{run}-%",
        )
        published = await drained(conn) - started
    finally:
        await conn.close()
    latencies.sort()
    messages = 3 * n
    return {
        "visits": n,
        "messages": messages,
        "connections": connections,
        "ack_codes": codes,
        "seconds_to_last_ack": round(acked, 2),
        "messages_per_s": round(messages / acked, 1),
        "encounters_emitted": emitted,
        "encounters_per_s_published": round(emitted / published, 1),
        "seconds_to_outbox_drained": round(published, 2),
        "ack_latency_ms": {
            "p50": round(1000 * statistics.median(latencies), 1),
            "p95": round(1000 * latencies[int(0.95 * (len(latencies) - 1))], 1),
        },
        "intake_cpu_ms_per_message": round(1000 * cpu / messages, 2),
    }


async def bench(args, settings: ServiceSettings, endpoints: dict) -> dict:
    await ensure_topics(endpoints["kafka"])
    await load_sample_registries(endpoints["postgres"])
    port = free_port()
    sup = Supervisor(settings.run_path, base_env(settings, endpoints))
    proc = sup.add("intake", http=True, extra_env={**INTAKE_ENV, "RCM_INTAKE_MLLP_PORT": str(port)})
    sup.start_all()
    result: dict = {}
    try:
        url = f"http://127.0.0.1:{proc.http_port}"
        await wait_http(url + "/health", sup)
        result["mllp"] = await bench_mllp(
            port, endpoints["postgres"], args.visits, args.connections, proc.proc.pid
        )
        if args.http:
            result["fhir_http"] = await bench_http(url, args.http, args.concurrency)
    finally:
        sup.stop_all()
    if "fhir_http" in result:
        result["comparison"] = {
            "mllp_messages_per_s": result["mllp"]["messages_per_s"],
            "mllp_encounters_per_s": result["mllp"]["encounters_per_s_published"],
            "fhir_http_encounters_per_s": result["fhir_http"]["encounters_per_s"],
        }
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--visits", type=int, default=2000, help="visits of three messages")
    p.add_argument("--connections", type=int, default=16, help="MLLP connections at once")
    p.add_argument("--http", type=int, default=2000, help="FHIR bundles to POST (0: skip)")
    p.add_argument("--concurrency", type=int, default=8, help="HTTP requests in flight")
    add_run_dir(p)
    args = p.parse_args()
    result = run_on_stack(bench, args)
    return 0 if result["mllp"]["ack_codes"] == {"AA": 3 * args.visits} else 1


if __name__ == "__main__":
    sys.exit(main())
