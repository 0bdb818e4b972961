"""Diagnosis phrase lookup: Postgres full-text search vs the in-memory term index.

For every description of a sample of billable ICD-10-CM codes (reworded: the
words shuffled and a stop word dropped) and every curated synonym, both indexes
are asked for the code; reported: top-1 / top-5 hit rate (the expected code or a
code under its stem) and median latency. Needs the local stack (`rcm stack up`)
with code sets loaded (`rcm codesets load`). Prints JSON.

    python benchmarks/compare_term_index.py [--sample 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import random
import statistics
import time
from pathlib import Path

import asyncpg

from services.coding.codesets import search_icd10cm
from services.coding.domain.lexicon import term_index
from shared import icd10cm
from shared.settings import ServiceSettings

SYNONYMS = Path(__file__).resolve().parents[1] / "services" / "coding" / "data" / "synonyms.csv"


def queries(sample: int, seed: int = 3) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    billable = [(c, d) for c, d, b in icd10cm.iter_codes() if b and len(c) <= 6]
    out = []
    for code, desc in rng.sample(billable, sample):
        words = [
            w
            for w in desc.replace(",", " ").split()
            if w.lower() not in ("of", "and", "the", "with", "in")
        ]
        rng.shuffle(words)
        out.append((" ".join(words), code))
    with open(SYNONYMS) as f:
        rows = csv.DictReader(line for line in f if not line.startswith("#"))
        out += [(r["phrase"], r["code"]) for r in rows if r.get("kind", "dx") in ("dx", "")]
    return out


def hit(found: list[str], expected: str, k: int) -> bool:
    return any(c.startswith(expected) for c in found[:k])


async def main(sample: int) -> dict:
    qs = queries(sample)
    idx = term_index()
    idx.search("warm up")
    mem_t, mem_1, mem_5 = [], 0, 0
    for phrase, code in qs:
        t = time.perf_counter()
        found = [c for c, _ in idx.search(phrase, 5)]
        mem_t.append(time.perf_counter() - t)
        mem_1 += hit(found, code, 1)
        mem_5 += hit(found, code, 5)
    conn = await asyncpg.connect(ServiceSettings().dsn)
    pg_t, pg_1, pg_5 = [], 0, 0
    try:
        for phrase, code in qs:
            t = time.perf_counter()
            found = [r["code"] for r in await search_icd10cm(conn, phrase, 5)]
            pg_t.append(time.perf_counter() - t)
            pg_1 += hit(found, code, 1)
            pg_5 += hit(found, code, 5)
    finally:
        await conn.close()
    n = len(qs)
    return {
        "queries": n,
        "in_memory": {
            "top1": round(mem_1 / n, 3),
            "top5": round(mem_5 / n, 3),
            "median_ms": round(statistics.median(mem_t) * 1000, 3),
        },
        "postgres_fts": {
            "top1": round(pg_1 / n, 3),
            "top5": round(pg_5 / n, 3),
            "median_ms": round(statistics.median(pg_t) * 1000, 3),
        },
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--sample", type=int, default=2000)
    print(json.dumps(asyncio.run(main(ap.parse_args().sample)), indent=2))
