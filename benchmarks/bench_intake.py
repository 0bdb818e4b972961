"""Benchmark intake: encounters over HTTP, and a bulk `$export` through `rcm import`.

Against the local stack (started if needed, or KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL):

- **HTTP**: starts the intake service (`rcm serve intake`) and POSTs --http sample FHIR
  bundles, --concurrency at a time; reports encounters/s and latency.
- **Bulk import**: writes an `$export` of --resources resources (the sample encounters as
  NDJSON, one file per resource type, relative references: every resource is one billing
  reads, so none is skipped cheaply) and runs `rcm import DIR --json` as its own process;
  reports resources/s, encounters/s and the import's peak RSS, also for an export a fifth
  the size, to show memory stays flat.

Target: the import is faster than the pipeline codes encounters (about 400 encounters/s),
i.e. 100,000 resources in well under their encounters / 400 seconds. Prints JSON.

    .venv/bin/python benchmarks/bench_intake.py [--resources 100000] [--http 2000] [--run-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import psutil  # noqa: E402
from on_stack import add_run_dir, run_on_stack  # noqa: E402

from rcm.cli.demo import base_env, load_sample_registries, wait_http  # noqa: E402
from rcm.localstack.supervisor import Supervisor  # noqa: E402
from rcm.simulation.samples import encounter_to_bundle, generate_samples  # noqa: E402
from shared.kafka import ensure_topics  # noqa: E402
from shared.settings import ServiceSettings  # noqa: E402

PIPELINE_CODING_RATE = 400  # encounters/s the pipeline codes (README, `rcm bench` drain)


def sample_bundles(n: int, run: str) -> list[dict]:
    """n FHIR bundles of distinct encounters (the sample generator's, ids made unique)."""
    base = generate_samples(min(n, 500), seed=17, start_date=date.today() - timedelta(days=30))
    out = []
    for i in range(n):
        enc = base[i % len(base)].encounter
        enc = enc.model_copy(update={"encounter_id": f"B{run}-{i:06d}"})
        out.append(encounter_to_bundle(enc, references="relative", salt=f"{run}-{i}"))
    return out


def write_export(directory: Path, resources: int, run: str) -> dict:
    """An `$export` of about ``resources`` resources: one NDJSON file per type."""
    directory.mkdir(parents=True)
    files: dict[str, object] = {}
    written = encounters = 0
    try:
        i = 0
        while written < resources:
            for bundle in sample_bundles(200, f"{run}-{i}"):
                encounters += 1
                for entry in bundle["entry"]:
                    res = entry["resource"]
                    f = files.get(res["resourceType"])
                    if f is None:
                        f = files[res["resourceType"]] = open(  # noqa: SIM115
                            directory / f"{res['resourceType']}.ndjson", "w"
                        )
                    f.write(json.dumps(res, separators=(",", ":")) + "\n")
                    written += 1
                if written >= resources:
                    break
            i += 1
    finally:
        for f in files.values():
            f.close()
    size = sum(p.stat().st_size for p in directory.iterdir())
    return {"resources": written, "encounters": encounters, "bytes": size}


def run_import(directory: Path, env: dict) -> dict:
    """`rcm import DIR --json` as its own process: its summary, wall time and peak RSS."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = psutil.Popen(
        [sys.executable, "-m", "rcm.cli.main", "import", str(directory), "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, proc.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    out = proc.stdout.read()
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"rcm import exited {proc.returncode}")
    summary = json.loads(out)
    return {
        "seconds": round(seconds, 2),
        "resources_per_s": round(sum(summary["resources"].values()) / seconds),
        "encounters_per_s": round(summary["encounters"] / seconds, 1),
        "accepted": summary["accepted"],
        "refused": summary["rejected"],
        "peak_rss_mb": round(peak / 2**20, 1),
        # the import process's own CPU (a shared machine stretches wall time, not this)
        "cpu_seconds": round(cpu, 2),
        "cpu_ms_per_encounter": round(1000 * cpu / max(summary["encounters"], 1), 2),
        "phases_s": summary["seconds"],
    }


async def bench_http(url: str, n: int, concurrency: int, pid: int | None = None) -> dict:
    """``pid``: the receiving service's process, whose CPU per encounter is reported (steadier
    than the rate on a shared machine)."""
    bundles = [json.dumps(b).encode() for b in sample_bundles(n, uuid.uuid4().hex[:6])]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = iter(bundles)

    async def worker(client: httpx.AsyncClient) -> None:
        for body in queue:
            t = time.perf_counter()
            r = await client.post("/encounters", content=body)
            latencies.append(time.perf_counter() - t)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    from shared.auth import issue
    from shared.settings import ServiceSettings

    token = issue(ServiceSettings().auth.token_secret, "bench-ehr-feed", "integration", ["*"])
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, timeout=60, headers=headers) as client:
        await client.post("/encounters", content=bundles[0])  # warm up (registry, pool)
        before = _cpu(pid)
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        cpu = _cpu(pid) - before
    latencies.sort()
    return {
        "encounters": n,
        "concurrency": concurrency,
        "seconds": round(seconds, 2),
        "encounters_per_s": round(n / seconds, 1),
        "service_cpu_ms_per_encounter": round(1000 * cpu / n, 2) if pid else None,
        "latency_ms": {
            "p50": round(1000 * statistics.median(latencies), 1),
            "p95": round(1000 * latencies[int(0.95 * (len(latencies) - 1))], 1),
        },
        "statuses": statuses,
    }


def _cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


async def bench(args, settings: ServiceSettings, endpoints: dict) -> dict:
    await ensure_topics(endpoints["kafka"])
    await load_sample_registries(endpoints["postgres"])
    env = {**os.environ, **base_env(settings, endpoints)}
    result: dict = {}
    if args.http:
        sup = Supervisor(settings.run_path, base_env(settings, endpoints))
        proc = sup.add("intake", http=True)
        sup.start_all()
        try:
            url = f"http://127.0.0.1:{proc.http_port}"
            await wait_http(url + "/health", sup)
            result["http"] = await bench_http(url, args.http, args.concurrency, proc.proc.pid)
        finally:
            sup.stop_all()
    with tempfile.TemporaryDirectory(prefix="bench-intake-") as tmp:
        run = uuid.uuid4().hex[:6]
        small = write_export(Path(tmp) / "small", max(args.resources // 5, 1), f"s{run}")
        big = write_export(Path(tmp) / "big", args.resources, f"b{run}")
        result["import_small"] = {
            **small,
            **await asyncio.to_thread(run_import, Path(tmp) / "small", env),
        }
        result["import"] = {**big, **await asyncio.to_thread(run_import, Path(tmp) / "big", env)}
    imp = result["import"]
    budget = imp["encounters"] / PIPELINE_CODING_RATE
    result["target"] = {
        "pipeline_coding_rate_per_s": PIPELINE_CODING_RATE,
        "import_seconds": imp["seconds"],
        "pipeline_would_take_s": round(budget, 1),
        "met": imp["seconds"] < budget,
        "rss_growth_mb": round(imp["peak_rss_mb"] - result["import_small"]["peak_rss_mb"], 1),
    }
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--resources", type=int, default=100_000)
    p.add_argument("--http", type=int, default=2000, help="encounters to POST (0: skip)")
    p.add_argument("--concurrency", type=int, default=8)
    add_run_dir(p)
    result = run_on_stack(bench, p.parse_args())
    return 0 if result["target"]["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
