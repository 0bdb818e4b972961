"""Benchmark the workbench's pages with ``--users`` signed-in people (100): p50/p95/max server
time per page, in two modes.

- burst (``--mode burst``): all of them ask for a page at the same instant, every page in
  turn, ``--rounds`` times: the worst case, 100 requests arriving in one millisecond.
- steady (``--mode steady``): 100 concurrent users as load tools model them (a closed loop):
  each asks for the page, waits for it, then thinks for an exponentially distributed time of
  mean ``--think`` seconds (3 s: someone clicking through lists and work items briskly; a
  coder reading a note or a biller reading a remittance takes far longer, so this overstates
  the load a person makes), for ``--duration`` seconds per page. Users start spread over one
  think time, so the run does not open with a burst.

``--mode both`` (the default) runs the burst, then the steady mode, on one stack. The
workbench runs as `rcm serve workbench --workers N` (``--workers``, default the machine's
cores): N processes on one port.

It starts its own stack (Kafka + PostgreSQL in a temporary run directory), every service and a
workbench as `rcm serve` runs them, registers the demo sites and posts ``--encounters`` sample
FHIR encounters. Simulated coders work the review queues until a denial has come back from the
payer simulator (billers then have work items and claims with remittances); a third as many
encounters again are posted after, so that coders have items. Then ``--users`` sessions sign in
through the development sign-in page for each kind of page (coder-north for the coding screens,
biller-all for billing, supervisor-all for the dashboard and a trace) and every page is asked
for by all of them at the same moment.

Server time is the workbench's own measure of each request (its access log's ``duration_ms``,
matched by request id: from the request entering the app to the response's last byte,
including the upstream services' answers and any queueing inside the workbench's process);
the client's wall time is shown beside it. Target: p95 under 200 ms per page (issue 19).
Prints JSON.

    .venv/bin/python benchmarks/bench_workbench.py [--users 100] [--mode both] [--rounds 3]
        [--think 3] [--duration 30] [--workers N] [--encounters 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg  # noqa: E402
import httpx  # noqa: E402

from rcm import localstack as stack  # noqa: E402
from rcm.cli.demo import (  # noqa: E402
    SERVICE_ORDER,
    base_env,
    coder_pool,
    load_sample_registries,
    post_encounters,
    wait_http,
)
from rcm.localstack.supervisor import Supervisor  # noqa: E402
from shared.kafka import ensure_topics  # noqa: E402
from shared.settings import ConnectionSettings, RuntimeSettings, ServiceSettings  # noqa: E402

TARGET_P95_MS = 200
SIGN_IN_CONCURRENCY = 20


def summary(ms: list[float]) -> dict:
    ms = sorted(ms)
    if not ms:
        return {"n": 0}

    def pct(p: float) -> float:
        return round(ms[min(len(ms) - 1, int(p * len(ms)))], 1)

    return {
        "n": len(ms),
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "max_ms": round(ms[-1], 1),
        "mean_ms": round(statistics.fmean(ms), 1),
    }


async def sign_in(base: str, username: str) -> httpx.AsyncClient:
    """A browser-like client with its own session, signed in as ``username``."""
    # Idle connections dropped after 4 s, before the workbench's server drops them (uvicorn: 5 s;
    # steady mode's think times often pass that), as the workbench does with the services.
    c = httpx.AsyncClient(
        base_url=base,
        timeout=120,
        headers={"origin": base},
        limits=httpx.Limits(keepalive_expiry=4),
    )
    r = await c.get("/signin")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
    if csrf is None:
        raise SystemExit(f"no sign-in form at {base}/signin: HTTP {r.status_code}")
    r = await c.post("/signin/dev", data={"username": username, "csrf_token": csrf.group(1)})
    if r.status_code != 303:
        raise SystemExit(f"sign-in as {username} answered {r.status_code}")
    return c


async def sessions(base: str, username: str, n: int) -> list[httpx.AsyncClient]:
    gate = asyncio.Semaphore(SIGN_IN_CONCURRENCY)

    async def one() -> httpx.AsyncClient:
        async with gate:
            return await sign_in(base, username)

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def wait_for_denial(dsn: str, timeout: float) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await conn.fetchval(
                "SELECT count(*) FROM followup.work_item WHERE status = 'open' AND carc IS NOT NULL"
            ):
                return
            await asyncio.sleep(1)
    finally:
        await conn.close()
    raise SystemExit(f"no denial came back within {timeout:.0f}s")


async def wait_for_work(dsn: str, timeout: float) -> dict[str, str]:
    """Until there is a queued coding item, an open denial work item with a remitted claim and
    a traced encounter: their ids (the pages' paths need them)."""
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            coding = await conn.fetchval(
                "SELECT work_item_id FROM coding.work_item WHERE status = 'queued'"
                " AND site_id = 'north-clinic' ORDER BY work_item_id LIMIT 1"
            )
            followup = await conn.fetchrow(
                "SELECT w.work_item_id, w.claim_id, w.encounter_id FROM followup.work_item w"
                " JOIN followup.claim c USING (claim_id) WHERE w.status = 'open'"
                " AND w.carc IS NOT NULL AND c.remitted_at IS NOT NULL"
                " ORDER BY w.work_item_id LIMIT 1"
            )
            if coding and followup:
                return {
                    "coding_item": str(coding),
                    "followup_item": str(followup["work_item_id"]),
                    "claim": followup["claim_id"],
                    "encounter": followup["encounter_id"],
                }
            await asyncio.sleep(1)
    finally:
        await conn.close()
    raise SystemExit(f"no queued coding item and denial work item within {timeout:.0f}s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (the workers of `rcm serve
    --workers`) so far."""
    import psutil

    proc = psutil.Process(pid)
    total = 0.0
    for p in (proc, *proc.children(recursive=True)):
        t = p.cpu_times()
        total += t.user + t.system
    return total


def start_services(settings, endpoints, extra_env: dict[str, str], workers: int) -> Supervisor:
    """Every service and a workbench of ``workers`` processes, as `rcm demo` starts them."""
    sup = Supervisor(settings.run_path, {**base_env(settings, endpoints), **extra_env})
    for name in SERVICE_ORDER:
        sup.add(name, http=name != "payer_sim")
    urls = {
        f"RCM_WORKBENCH_{n.upper()}_URL": f"http://127.0.0.1:{sup.by_name(n)[0].http_port}"
        for n in ("intake", "coding", "billing", "payments", "followup")
    }
    wb = sup.add(
        "workbench",
        http=True,
        extra_env={
            **urls,
            "RCM_WORKBENCH_COOKIE_SECURE": "false",
            "RCM_HTTP_WORKERS": str(workers),
        },
    )
    wb.env["RCM_WORKBENCH_PUBLIC_URL"] = f"http://127.0.0.1:{wb.http_port}"
    sup.start_all()
    return sup


async def audit_chains(dsn: str) -> dict[str, str]:
    """``rcm audit verify`` of every schema after the run: records and intact, or the break."""
    from shared.audit import audit_schemas, verify_chain

    conn = await asyncpg.connect(dsn)
    try:
        out = {}
        for schema in await audit_schemas(conn):
            r = await verify_chain(conn, schema)
            out[schema] = f"{r.records} records, intact" if r.ok else f"broken: {r.problem}"
        return out
    finally:
        await conn.close()


def server_times(log: Path, ids: set[str]) -> dict[str, float]:
    """The workbench's own duration of each request, by request id, from its access log."""
    out = {}
    for line in log.read_text(errors="replace").splitlines():
        if '"request_id"' not in line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        rid = rec.get("request_id")
        if rid in ids and "duration_ms" in rec:
            out[rid] = float(rec["duration_ms"])
    return out


async def hit(
    clients: list[httpx.AsyncClient], path: str
) -> tuple[list[str], list[float], list[int]]:
    """Every client asks for ``path`` at once: request ids, client wall times, statuses."""
    start = asyncio.Event()

    async def one(c: httpx.AsyncClient) -> tuple[str, float, int]:
        rid = uuid.uuid4().hex
        await start.wait()
        t = time.perf_counter()
        try:
            r = await c.get(path, headers={"x-request-id": rid})
        except (httpx.RemoteProtocolError, httpx.ReadError):
            # The server closed an idle keep-alive connection as the request went out (uvicorn
            # keeps one 5 s): a browser sends a GET again on a new connection, and so do we.
            t = time.perf_counter()
            r = await c.get(path, headers={"x-request-id": rid})
        return rid, (time.perf_counter() - t) * 1000, r.status_code

    tasks = [asyncio.create_task(one(c)) for c in clients]
    await asyncio.sleep(0)
    start.set()
    done = await asyncio.gather(*tasks)
    return [d[0] for d in done], [d[1] for d in done], [d[2] for d in done]


async def steady(
    clients: list[httpx.AsyncClient], path: str, think: float, duration: float, rng: random.Random
) -> tuple[list[str], list[float], list[int]]:
    """Each client in a closed loop for ``duration`` seconds: ask for ``path``, wait for the
    page, think an exponential time of mean ``think``. Request ids, wall times, statuses."""
    rids: list[str] = []
    wall: list[float] = []
    statuses: list[int] = []
    end = time.monotonic() + duration

    async def user(c: httpx.AsyncClient, first: float) -> None:
        await asyncio.sleep(first)
        while time.monotonic() < end:
            rid = uuid.uuid4().hex
            t = time.perf_counter()
            try:
                r = await c.get(path, headers={"x-request-id": rid})
            except (httpx.RemoteProtocolError, httpx.ReadError):  # a closed connection, as in hit()
                t = time.perf_counter()
                r = await c.get(path, headers={"x-request-id": rid})
            wall.append((time.perf_counter() - t) * 1000)
            rids.append(rid)
            statuses.append(r.status_code)
            await asyncio.sleep(rng.expovariate(1 / think))

    # warm-up, not measured (as the burst's warm-up round): a few users' first page, so that
    # each workbench process has its connections and shared answers, as a running one has
    await asyncio.gather(*(c.get(path) for c in clients[:8]))
    end = time.monotonic() + duration
    # users arrive spread over one think time: a steady state from the start, not a burst
    await asyncio.gather(*(user(c, rng.uniform(0, think)) for c in clients))
    return rids, wall, statuses


def template(path: str) -> str:
    return re.sub(r"/(\d+|[A-Z0-9][A-Za-z0-9._:-]{5,})$", "/{id}", path)


def report(
    pages: dict[str, str],
    times: dict[str, float],
    asked: dict[str, list[str]],
    wall: dict[str, list[float]],
    statuses: dict[str, Counter],
    page_cpu: dict[str, float],
) -> dict:
    out = {}
    for path in pages:
        server = [times[r] for r in asked[path] if r in times]
        out[template(path)] = {
            "user": pages[path],
            "server": summary(server),
            "client_wall": summary(wall[path]),
            "statuses": {str(k): v for k, v in sorted(statuses[path].items())},
            "workbench_cpu_ms": round(page_cpu[path] * 1000 / max(1, len(asked[path])), 2),
            "under_target": bool(server)
            and set(statuses[path]) == {200}
            and summary(server)["p95_ms"] < TARGET_P95_MS,
        }
    return out


async def main(
    users: int,
    rounds: int,
    encounters: int,
    seed: int,
    profile: str = "",
    *,
    mode: str = "both",
    think: float = 3.0,
    duration: float = 30.0,
    workers: int = 1,
) -> dict:
    from rcm.simulation.samples import generate_samples

    run_dir = Path(tempfile.mkdtemp(prefix="rcm-bench-wb-"))
    settings = ServiceSettings(
        runtime=RuntimeSettings(run_dir=run_dir), connections=ConnectionSettings()
    )
    endpoints = await asyncio.to_thread(stack.up, settings)
    await ensure_topics(endpoints["kafka"], partitions=settings.consumer.partitions)
    env = {"RCM_LOG_LEVEL": "INFO"}
    if profile:  # pyinstrument profiles in <run dir>/profiles/ when the processes stop
        env["RCM_PROFILE_SERVICES"] = profile
    sup = start_services(settings, endpoints, env, workers)
    clients: list[httpx.AsyncClient] = []
    try:
        port = lambda name: sup.by_name(name)[0].http_port  # noqa: E731
        base = f"http://127.0.0.1:{port('workbench')}"
        for name in ("intake", "coding", "billing", "payments", "followup", "workbench"):
            url = base if name == "workbench" else f"http://127.0.0.1:{port(name)}"
            await wait_http(url + "/health", sup)
        await load_sample_registries(endpoints["postgres"])
        samples = generate_samples(encounters, seed, start_date=date.today() - timedelta(days=35))
        await post_encounters(
            f"http://127.0.0.1:{port('intake')}",
            [s.bundle for s in samples],
            settings.auth.token_secret,
        )
        # Simulated coders work the review queues until a denial has come back; what they
        # leave queued is the coding screens' work.
        stop = asyncio.Event()
        expected = {s.encounter.encounter_id: s.expected for s in samples}
        sites = sorted({s.encounter.site_id for s in samples})
        pool = asyncio.create_task(
            coder_pool(
                f"http://127.0.0.1:{port('coding')}",
                settings.auth.token_secret,
                expected,
                stop,
                sites,
            )
        )
        try:
            await wait_for_denial(endpoints["postgres"], 600)
        finally:
            stop.set()
            await asyncio.wait_for(pool, 60)
        more = generate_samples(
            encounters // 3, seed + 1, start_date=date.today() - timedelta(days=30)
        )
        await post_encounters(
            f"http://127.0.0.1:{port('intake')}",
            [s.bundle for s in more],
            settings.auth.token_secret,
        )
        ids = await wait_for_work(endpoints["postgres"], 300)
        pages = {
            "/coder": "coder-north",
            f"/coder/items/{ids['coding_item']}": "coder-north",
            "/billing": "biller-all",
            f"/billing/items/{ids['followup_item']}": "biller-all",
            f"/billing/claims/{ids['claim']}": "biller-all",
            "/dashboard": "supervisor-all",
            f"/traces/{ids['encounter']}": "supervisor-all",
        }
        by_user = {}
        for username in sorted(set(pages.values())):
            by_user[username] = await sessions(base, username, users)
            clients += by_user[username]
        # one warm-up round (connection pools, first-use imports), not counted
        for path, username in pages.items():
            await hit(by_user[username], path)
        procs = {
            n: sup.by_name(n)[0].proc.pid
            for n in ("workbench", "coding", "billing", "payments", "followup")
        }
        log = sup.by_name("workbench")[0].log_path
        result = {
            "users": users,
            "encounters": encounters,
            "workbench_workers": workers,
            "cores": os.cpu_count(),
            "target_p95_ms": TARGET_P95_MS,
            "run_dir": str(run_dir),
            "loadavg_before": Path("/proc/loadavg").read_text().split()[:3],
        }
        for kind in ("burst", "steady") if mode == "both" else (mode,):
            cpu_before = {n: cpu_seconds(pid) for n, pid in procs.items()}
            asked: dict[str, list[str]] = {p: [] for p in pages}
            wall: dict[str, list[float]] = {p: [] for p in pages}
            statuses: dict[str, Counter] = {p: Counter() for p in pages}
            page_cpu: dict[str, float] = {p: 0.0 for p in pages}  # the workbench's, per page
            rng = random.Random(seed)
            for _ in range(rounds if kind == "burst" else 1):
                for path, username in pages.items():
                    before = cpu_seconds(procs["workbench"])
                    if kind == "burst":
                        rids, ms, got = await hit(by_user[username], path)
                    else:
                        rids, ms, got = await steady(by_user[username], path, think, duration, rng)
                    page_cpu[path] += cpu_seconds(procs["workbench"]) - before
                    asked[path] += rids
                    wall[path] += ms
                    statuses[path].update(got)
            measured = sum(len(v) for v in asked.values())
            cpu_ms_per_page = {
                n: round((cpu_seconds(pid) - cpu_before[n]) * 1000 / max(1, measured), 2)
                for n, pid in procs.items()
            }
            await asyncio.sleep(1)  # the access log's last lines
            times = server_times(log, {r for v in asked.values() for r in v})
            result[kind] = {
                **(
                    {"rounds": rounds, "requests_per_page": users * rounds}
                    if kind == "burst"
                    else {"think_s": think, "duration_s_per_page": duration}
                ),
                "requests": measured,
                "loadavg_after": Path("/proc/loadavg").read_text().split()[:3],
                # CPU each process spent in this mode, per page asked (all pages together)
                "cpu_ms_per_page": cpu_ms_per_page,
                "pages": report(pages, times, asked, wall, statuses, page_cpu),
            }
        # every schema's chain walked after the run: one chain each, intact
        result["audit_chains"] = await audit_chains(endpoints["postgres"])
        return result
    finally:
        for c in clients:
            await c.aclose()
        sup.stop_all()
        await asyncio.to_thread(stack.down, settings)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--encounters", type=int, default=60)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--profile", default="", help="services to profile, e.g. workbench,followup")
    ap.add_argument("--mode", choices=("burst", "steady", "both"), default="both")
    ap.add_argument("--think", type=float, default=3.0, help="steady: mean think time, seconds")
    ap.add_argument("--duration", type=float, default=30.0, help="steady: seconds per page")
    ap.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="workbench processes (rcm serve --workers); default the machine's cores",
    )
    args = ap.parse_args()
    if args.think <= 0 or args.duration <= 0 or args.workers < 1 or args.users < 1:
        ap.error("--think, --duration, --workers and --users must be positive")
    result = asyncio.run(
        main(
            args.users,
            args.rounds,
            args.encounters,
            args.seed,
            args.profile,
            mode=args.mode,
            think=args.think,
            duration=args.duration,
            workers=args.workers,
        )
    )
    print(json.dumps(result, indent=2))
