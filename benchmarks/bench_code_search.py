"""Benchmark coding's code search (GET /codes/search) as a coder types.

Every prefix (2 characters and more) of a list of searches coders make (words and codes,
ICD-10-CM, CPT, HCPCS) is asked, with no system and with the workbench's system filter,
``--rounds`` times in random order, against:

- the index alone (``CodeSearch.search``), and
- the route as served (the coding app as `rcm serve coding` hardens it: access log, body
  limit, authenticator, validation, JSON; called in-process through ASGI: server time, no
  network).

Target: p95 under 50 ms server side (issue 19). No broker or database is needed. Prints JSON.

    .venv/bin/python benchmarks/bench_code_search.py [--rounds 3] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from services.coding.app import CodingContext, spec  # noqa: E402
from services.coding.repository import WORK_CHANNEL  # noqa: E402
from services.coding.settings import CodingSettings  # noqa: E402
from shared import icd10cm  # noqa: E402
from shared.auth import DevSigner  # noqa: E402
from shared.notify import ChannelWatch  # noqa: E402
from shared.service import Runtime, http_app  # noqa: E402

SEARCHES = [
    ("ankle sprain", None),
    ("sprain of left ankle", "icd10cm"),
    ("type 2 diabetes with hyperglycemia", "icd10cm"),
    ("essential hypertension", None),
    ("acute otitis media", "icd10cm"),
    ("low back pain", None),
    ("migraine without aura", "icd10cm"),
    ("chest pain", None),
    ("urinary tract infection", "icd10cm"),
    ("gastro-esophageal reflux", None),
    ("fracture of distal radius", "icd10cm"),
    ("pneumonia unspecified organism", None),
    ("major depressive disorder single episode", "icd10cm"),
    ("encounter for immunization", None),
    ("history of", None),
    ("unspecified", None),
    ("E11.9", None),
    ("S93.401A", "icd10cm"),
    ("M54.50", None),
    ("Z00.00", None),
    ("99213", "cpt"),
    ("office visit established", "cpt"),
    ("injection", "hcpcs"),
    ("J1030", "hcpcs"),
    ("90471", None),
]


def typed(searches) -> list[tuple[str, str | None]]:
    """Each search as the coder types it: every prefix from two characters."""
    return [(text[:n], system) for text, system in searches for n in range(2, len(text) + 1)]


def summary(ms: list[float]) -> dict:
    ms = sorted(ms)

    def pct(p: float) -> float:
        return round(ms[min(len(ms) - 1, int(p * len(ms)))], 3)

    return {
        "n": len(ms),
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "max_ms": round(ms[-1], 3),
        "mean_ms": round(statistics.fmean(ms), 3),
    }


async def main(rounds: int, seed: int) -> dict:
    settings = CodingSettings()
    relay = SimpleNamespace(notify=lambda: None)  # nothing is published
    rt = Runtime(settings=settings, pool=None, relay=relay, stop=asyncio.Event())  # type: ignore[arg-type]
    # no database: the search reads none (the work-queue listener is never started)
    rt.context = CodingContext(work_watch=ChannelWatch("", WORK_CHANNEL))
    app = http_app(spec(), rt)  # as `rcm serve coding` serves it: hardened, access-logged
    logging.getLogger("rcm.http").setLevel(logging.WARNING)  # the access log, not on stdout
    token = DevSigner.build(settings.auth, settings.runtime).sign(
        "bench-coder", ["coder"], ["*"], 3600
    )
    started = time.perf_counter()
    await asyncio.to_thread(icd10cm.load)
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    index = await rt.context.code_search()
    built = time.perf_counter() - started

    queries = typed(SEARCHES) * rounds
    random.Random(seed).shuffle(queries)
    alone = []
    for q, system in queries:
        t = time.perf_counter()
        index.search(q, system, 20)
        alone.append((time.perf_counter() - t) * 1000)

    served, empty = [], 0
    transport = httpx.ASGITransport(app=app)
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for q, system in queries:
            params = {"q": q, "limit": "20"} | ({"system": system} if system else {})
            t = time.perf_counter()
            r = await client.get("/codes/search", params=params, headers=headers)
            served.append((time.perf_counter() - t) * 1000)
            if r.status_code != 200:
                raise SystemExit(f"GET /codes/search answered {r.status_code}: {r.text[:200]}")
            empty += not r.json()
    return {
        "icd10cm_load_seconds": round(loaded, 2),
        "index_build_seconds": round(built, 2),
        "codes_indexed": {s: len(ix.hits) for s, ix in index.indexes.items()},
        "searches": len(SEARCHES),
        "queries": len(queries),
        "queries_without_results": empty,
        "index_only": summary(alone),
        "route_server_side": summary(served),
        "target_p95_ms": 50,
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    print(json.dumps(asyncio.run(main(args.rounds, args.seed)), indent=2))
