"""Speed of offline coding: code-set load, index build, per-encounter latency.

    python benchmarks/bench_coding.py [--rounds 20]

Codes every labelled vignette (tests/fixtures/vignettes) ``--rounds`` times
after one warm-up pass and prints JSON: load times and the median/p95/max
milliseconds per encounter. Not a test: nothing asserts on speed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    from shared import icd10cm

    icd10cm.load()
    t1 = time.perf_counter()
    from services.coding.domain import engine, lexicon

    lexicon.lexicon()
    lexicon.term_index()
    t2 = time.perf_counter()
    spec = importlib.util.spec_from_file_location("bv", ROOT / "tests/fixtures/vignettes/build_vignettes.py")
    bv = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bv)
    encounters = [bv.encounter(v) for v in bv.VIGNETTES]
    for enc in encounters:  # warm-up: caches of descriptions and subtrees
        engine.code_encounter(enc)
    samples = []
    for _ in range(args.rounds):
        for enc in encounters:
            s = time.perf_counter()
            engine.code_encounter(enc)
            samples.append((time.perf_counter() - s) * 1000)
    samples.sort()
    report = {
        "code_set_version": icd10cm.VERSION,
        "code_set_load_s": round(t1 - t0, 3),
        "term_index_build_s": round(t2 - t1, 3),
        "encounters": len(samples),
        "median_ms": round(statistics.median(samples), 2),
        "p95_ms": round(samples[int(0.95 * (len(samples) - 1))], 2),
        "max_ms": round(samples[-1], 2),
        "encounters_per_s": round(1000 / statistics.mean(samples), 1),
    }
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
