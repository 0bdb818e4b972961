"""Speed of offline coding: code-set load, index build, per-encounter latency.

    python benchmarks/bench_coding.py [--rounds 20] [--samples 0] [--fresh]

Codes every labelled vignette (tests/fixtures/vignettes) ``--rounds`` times
after one warm-up pass, or with ``--samples N`` the first N synthetic samples
(rcm.simulation.samples, seed 11) that many rounds, and prints JSON: load times
and the mean/median/p95/max milliseconds per encounter. ``--fresh`` warms up
on other samples (seed 12) and times one pass, so no note has been seen
before (the engine memoises refinements and term-index answers). Not a test:
nothing asserts on speed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _vignettes() -> list:
    spec = importlib.util.spec_from_file_location(
        "bv", ROOT / "tests/fixtures/vignettes/build_vignettes.py"
    )
    bv = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bv)
    return [bv.encounter(v) for v in bv.VIGNETTES]


def _samples(n: int, seed: int = 11) -> list:
    from rcm.simulation.samples import generate_samples
    from services.intake.domain.fhir import parse_intake

    return [
        parse_intake(s.bundle) for s in generate_samples(n, seed=seed, start_date=date(2026, 10, 1))
    ]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument(
        "--samples", type=int, default=0, help="code N synthetic samples instead of the vignettes"
    )
    ap.add_argument(
        "--fresh",
        action="store_true",
        help="warm up on other samples; time one pass over unseen ones",
    )
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    from shared import icd10cm

    icd10cm.load()
    t1 = time.perf_counter()
    from services.coding.domain import engine, lexicon

    lexicon.lexicon()
    lexicon.term_index()
    t2 = time.perf_counter()
    encounters = _samples(args.samples or 300) if args.samples or args.fresh else _vignettes()
    warm = _samples(len(encounters), seed=12) if args.fresh else encounters
    for enc in warm:  # warm-up: caches of descriptions and subtrees
        engine.code_encounter(enc)
    samples = []
    for _ in range(1 if args.fresh else args.rounds):
        for enc in encounters:
            s = time.perf_counter()
            engine.code_encounter(enc)
            samples.append((time.perf_counter() - s) * 1000)
    samples.sort()
    report = {
        "code_set_version": icd10cm.VERSION,
        "input": (
            f"{len(encounters)} unseen synthetic samples"
            if args.fresh
            else f"{args.samples} synthetic samples"
            if args.samples
            else "vignettes"
        ),
        "code_set_load_s": round(t1 - t0, 3),
        "term_index_build_s": round(t2 - t1, 3),
        "encounters": len(samples),
        "mean_ms": round(statistics.mean(samples), 2),
        "median_ms": round(statistics.median(samples), 2),
        "p95_ms": round(samples[int(0.95 * (len(samples) - 1))], 2),
        "max_ms": round(samples[-1], 2),
        "encounters_per_s": round(1000 / statistics.mean(samples), 1),
    }
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
