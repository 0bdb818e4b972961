"""Golden-output guard for the coding engine: same input, byte-identical output.

    python benchmarks/coding_golden.py --out /tmp/coding_golden_before.jsonl
    python benchmarks/coding_golden.py --check /tmp/coding_golden_before.jsonl

Codes 1500 synthetic samples (rcm.simulation.samples, seed 11, from 2026-10-01)
and every FHIR vignette in tests/fixtures/vignettes, and writes one line per
encounter: ``<id>\\t<json.dumps(offline_json(result), sort_keys=True)>``.
``--check`` recomputes and compares with a saved file, printing the first
differences; the exit status is 1 when anything differs. Used to prove that
performance work changes no output.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VIGNETTES = ROOT / "tests" / "fixtures" / "vignettes"


def encounters(n: int = 1500) -> Iterator[tuple[str, object]]:
    """(id, Encounter) for the samples then the vignettes, in a fixed order."""
    from rcm.simulation.samples import generate_samples
    from services.intake.domain.fhir import parse_intake

    for i, s in enumerate(generate_samples(n, seed=11, start_date=date(2026, 10, 1))):
        yield f"sample-{i:04d}", parse_intake(s.bundle)
    for path in sorted(VIGNETTES.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if (
            isinstance(data, dict) and data.get("resourceType") == "Bundle"
        ):  # labels.json is not one
            yield f"vignette-{path.stem}", parse_intake(data)


def lines(n: int = 1500) -> list[str]:
    from services.coding.domain import engine

    return [
        f"{key}\t{json.dumps(engine.offline_json(engine.code_encounter(enc)), sort_keys=True)}"
        for key, enc in encounters(n)
    ]


def check(saved: list[str], now: list[str], show: int = 5) -> int:
    """Number of differing lines (printing the first ``show``)."""
    diffs = 0
    if len(saved) != len(now):
        print(f"line count differs: saved {len(saved)}, now {len(now)}")
        diffs += 1
    for a, b in zip(saved, now, strict=False):
        if a == b:
            continue
        diffs += 1
        if diffs <= show:
            key = a.split("\t", 1)[0]
            ja, jb = json.loads(a.split("\t", 1)[1]), json.loads(b.split("\t", 1)[1])
            fields = sorted(k for k in set(ja) | set(jb) if ja.get(k) != jb.get(k))
            print(f"{key}: fields differ: {fields}")
            for k in fields[:3]:
                print(f"  saved {k}: {json.dumps(ja.get(k))[:400]}")
                print(f"  now   {k}: {json.dumps(jb.get(k))[:400]}")
    return diffs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--out", type=Path, help="write the golden file")
    g.add_argument("--check", type=Path, help="compare with a golden file")
    ap.add_argument("--n", type=int, default=1500)
    args = ap.parse_args(argv)
    now = lines(args.n)
    if args.out:
        args.out.write_text("\n".join(now) + "\n", encoding="utf-8")
        print(f"wrote {len(now)} encounters to {args.out}")
        return 0
    saved = args.check.read_text(encoding="utf-8").splitlines()
    diffs = check(saved, now)
    print(f"{'OK' if not diffs else 'DIFFERENT'}: {len(now)} encounters, {diffs} differing")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
