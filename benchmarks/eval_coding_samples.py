"""Agreement of the coding engine with the synthetic demo samples' expected coding.

    python benchmarks/eval_coding_samples.py [--n 300] [--seed 7] [--verbose]

The samples (rcm.simulation.samples) carry their generator's expected codes and
route; this reports principal-diagnosis accuracy, diagnosis micro-F1, E/M
accuracy, procedure micro-F1, route agreement and per-scenario misses. The
generator's labels are a second, independent opinion, not ground truth.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.coding.domain import cpt, engine  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    from rcm.simulation.samples import generate_samples
    from services.intake.domain.fhir import parse_intake

    n = principal = em_ok = route_ok = 0
    dx = Counter()
    px = Counter()
    misses: Counter = Counter()
    examples: dict[str, dict] = {}
    for s in generate_samples(args.n, seed=args.seed):
        enc = parse_intake(s.bundle)
        r = engine.code_encounter(enc)
        exp = s.expected
        got_dx = [d.code for d in r.diagnoses]
        ems = [p.code for p in r.procedures if cpt.is_em(p.code)]
        got_px = {p.code for p in r.procedures if not cpt.is_em(p.code) and p.code != "99417"}
        want_px = set(exp["procedures"])
        n += 1
        ok_p = got_dx[:1] == [exp["principal_dx"]]
        ok_em = (ems[0] if ems else None) == exp["em_code"]
        principal += ok_p
        em_ok += ok_em
        route_ok += r.route == exp["route"]
        for key, want, got in (("dx", set(exp["diagnoses"]), set(got_dx)), ("px", want_px, got_px)):
            c = dx if key == "dx" else px
            c["tp"] += len(want & got)
            c["fp"] += len(got - want)
            c["fn"] += len(want - got)
        if not (
            ok_p
            and ok_em
            and set(got_dx) == set(exp["diagnoses"])
            and got_px == want_px
            and r.route == exp["route"]
        ):
            misses[s.scenario] += 1
            examples.setdefault(
                s.scenario,
                {
                    "dx": got_dx,
                    "want_dx": exp["diagnoses"],
                    "em": ems,
                    "want_em": exp["em_code"],
                    "px": sorted(got_px),
                    "want_px": sorted(want_px),
                    "route": r.route,
                    "want_route": exp["route"],
                    "edits": [e.code for e in r.edits],
                },
            )

    def f1(c):
        p = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 1.0
        rc = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 1.0
        return round(2 * p * rc / (p + rc), 4) if p + rc else 0.0

    report = {
        "samples": n,
        "principal_dx_accuracy": round(principal / n, 4),
        "dx_f1": f1(dx),
        "em_accuracy": round(em_ok / n, 4),
        "procedure_f1": f1(px),
        "route_agreement": round(route_ok / n, 4),
        "scenarios_with_misses": dict(misses.most_common()),
    }
    if args.verbose:
        report["examples"] = examples
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
