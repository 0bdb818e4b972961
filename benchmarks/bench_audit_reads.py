"""Benchmark audited PHI reads alone: ``--requests`` reads (100) arriving at once at one
service-sized pool (5 connections), each a short read transaction (three small queries) whose
audit record is appended either in the read's own transaction (``in-transaction``: the chain's
head locked until it commits, as every read did before) or through the process's appender
(``appender``: group commit, ``shared.audit.read``). Latency from a request's arrival to its
record being committed; p50/p95/max per mode, several bursts, modes alternated; then
``verify_chain`` of the chain. Starts its own PostgreSQL in a temporary directory. Prints JSON.

    .venv/bin/python benchmarks/bench_audit_reads.py [--requests 100] [--bursts 5] [--pool 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg  # noqa: E402

from rcm.localstack.postgres import Postgres  # noqa: E402
from shared import audit, db  # noqa: E402
from shared.audit import Actor, AuditEvent  # noqa: E402

SCHEMA = "bench_audit"
POOL_SIZE = 5  # a service's (shared.service.ServiceSpec.pool_size); --pool changes it


def summary(ms: list[float]) -> dict:
    ms = sorted(ms)
    return {
        "n": len(ms),
        "p50_ms": round(ms[len(ms) // 2], 1),
        "p95_ms": round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 1),
        "max_ms": round(ms[-1], 1),
        "mean_ms": round(statistics.fmean(ms), 1),
    }


async def burst(pool: asyncpg.Pool, n: int, mode: str, tag: str) -> list[float]:
    start = asyncio.Event()

    async def one(i: int) -> float:
        await start.wait()
        t = time.perf_counter()
        actor = Actor(f"biller-{i}", "biller", "10.0.0.8", f"{tag}-{i}")
        event = AuditEvent("read", "claim", [f"CLM-{i}"], account_key=f"A{i}", site_id="north")
        async with pool.acquire() as conn, conn.transaction():
            for _ in range(3):  # the read itself: a claim, its history, its work items
                await conn.fetchval("SELECT count(*) FROM pg_class WHERE relname = $1", str(i))
            if mode == "appender":
                await audit.read_events(conn, SCHEMA, actor, [event])
            else:
                await audit.append(conn, SCHEMA, actor, [event])
        return (time.perf_counter() - t) * 1000

    tasks = [asyncio.create_task(one(i)) for i in range(n)]
    await asyncio.sleep(0)
    start.set()
    return list(await asyncio.gather(*tasks))


async def main(requests: int, bursts: int, pool_size: int = POOL_SIZE) -> dict:
    pg = Postgres(Path(tempfile.mkdtemp(prefix="rcm-bench-audit-")))
    dsn = await asyncio.to_thread(pg.start)
    try:
        conn = await asyncpg.connect(dsn)
        await db.migrate(conn, SCHEMA, None)
        pool = await db.create_pool(dsn, max_size=pool_size)
        appender = audit.start_appender(SCHEMA, lambda: asyncpg.connect(dsn))
        times: dict[str, list[float]] = {"in-transaction": [], "appender": []}
        try:
            for mode in times:  # warm-up: connections, prepared statements
                await burst(pool, requests, mode, f"warm-{mode}")
            for b in range(bursts):
                for mode in times:
                    times[mode] += await burst(pool, requests, mode, f"{mode}-{b}")
        finally:
            await audit.stop_appender(appender)
            await pool.close()
        report = await audit.verify_chain(conn, SCHEMA)
        await conn.close()
        return {
            "requests_per_burst": requests,
            "bursts": bursts,
            "pool_size": pool_size,
            "modes": {m: summary(v) for m, v in times.items()},
            "appender_batches": appender.batches,
            "chain": f"{report.records} records, intact" if report.ok else report.problem,
        }
    finally:
        await asyncio.to_thread(pg.stop)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--bursts", type=int, default=5)
    ap.add_argument("--pool", type=int, default=POOL_SIZE)
    args = ap.parse_args()
    print(json.dumps(asyncio.run(main(args.requests, args.bursts, args.pool)), indent=2))
