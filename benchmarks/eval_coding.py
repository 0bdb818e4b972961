"""Accuracy of the coding engine: on the project's own vignettes, or on the blind evaluation set.

    python benchmarks/eval_coding.py [--verbose]                     # tests/fixtures/vignettes
    python benchmarks/eval_coding.py --blind [--half tuning|locked|tuning_c|locked_c|both|all]
        [--verbose]   # --verbose: tuning halves only

The project's vignettes (tests/fixtures/vignettes/*.json, FHIR R4 Bundles) go through the FHIR
intake mapping when it is importable, else they are built from build_vignettes.py. The blind set
(tests/fixtures/coding_eval/{tuning,locked}.jsonl) was written by authors who never saw the engine;
the locked half is scored, never tuned on. Prints JSON per half: principal-diagnosis accuracy,
diagnosis micro-F1, E/M accuracy, procedure micro-F1 (E/M excluded), routes, and the auto rate
with the auto precision (the share of auto-finalised encounters whose diagnoses, E/M and
procedures are all exactly right; the rest would have gone to a payer unchecked), and how
often each routing reason sent an encounter to a coder (services/coding/domain/routing.py).
Never run the locked half with --verbose: its cases are scored, not read.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VIGNETTES = ROOT / "tests" / "fixtures" / "vignettes"
BLIND = ROOT / "tests" / "fixtures" / "coding_eval"
HALVES = ("tuning", "locked")
# Set C (written later by a third blind author, split the same way): tuning_c is tuned on
# like tuning; locked_c is scored like locked, never read.
LATER_HALVES = ("tuning_c", "locked_c")

from services.coding.domain import cpt, engine  # noqa: E402


def _definitions():
    spec = importlib.util.spec_from_file_location(
        "build_vignettes", VIGNETTES / "build_vignettes.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def load_encounters() -> tuple[dict, str]:
    defs = _definitions()
    try:
        from services.intake.domain.fhir import parse_intake
    except ImportError:
        return {v["id"]: defs.encounter(v) for v in defs.VIGNETTES}, "definitions"
    out = {}
    for v in defs.VIGNETTES:
        out[v["id"]] = parse_intake(json.loads((VIGNETTES / f"{v['id']}.json").read_text()))
    return out, "fhir"


def load_blind(half: str) -> tuple[dict, dict]:
    """One half of the blind set: encounters and labels by id."""
    defs = _definitions()
    encounters, labels = {}, {}
    for line in (BLIND / f"{half}.jsonl").read_text().splitlines():
        if not line.strip():
            continue
        v = json.loads(line)
        v.setdefault("ehr_dx", [])
        v.setdefault("ehr_px", [])
        encounters[v["id"]] = defs.encounter(v)
        labels[v["id"]] = v["labels"]
    return encounters, labels


def f1(tp: int, fp: int, fn: int) -> float:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return round(2 * p * r / (p + r), 4) if p + r else 0.0


def is_em(code: str) -> bool:
    return cpt.is_em(code) or code in ("G0438", "G0439")


def score(encounters: dict, labels: dict) -> tuple[dict, list]:
    """Metrics over encounters against labels, and the mismatches."""
    n = principal_ok = em_ok = 0
    dx_tp = dx_fp = dx_fn = px_tp = px_fp = px_fn = 0
    auto = auto_right = 0
    routes: dict[str, int] = {}
    reasons: dict[str, int] = {}
    misses = []
    started = time.perf_counter()
    for vid, enc in encounters.items():
        lab = labels[vid]
        r = engine.code_encounter(enc)
        n += 1
        routes[r.route] = routes.get(r.route, 0) + 1
        for why in r.route_reasons:
            reasons[why] = reasons.get(why, 0) + 1
        dx = [d.code for d in r.diagnoses]
        ems = [p.code for p in r.procedures if is_em(p.code)]
        px = {p.code for p in r.procedures if not is_em(p.code) and p.code != "99417"}
        principal_ok += bool(dx) and dx[0] == lab["principal"]
        em_ok += (ems[0] if ems else None) == lab["em"]
        want_dx, got_dx = set(lab["diagnoses"]), set(dx)
        dx_tp += len(want_dx & got_dx)
        dx_fp += len(got_dx - want_dx)
        dx_fn += len(want_dx - got_dx)
        want_px = set(lab["procedures"])
        px_tp += len(want_px & px)
        px_fp += len(px - want_px)
        px_fn += len(want_px - px)
        right = (
            dx[:1] == [lab["principal"]]
            and got_dx == want_dx
            and (ems[0] if ems else None) == lab["em"]
            and px == want_px
        )
        if r.route == "auto":
            auto += 1
            auto_right += right
        if not right:
            misses.append(
                {
                    "id": vid,
                    "dx": dx,
                    "want_dx": lab["diagnoses"],
                    "em": ems,
                    "want_em": lab["em"],
                    "px": sorted(px),
                    "want_px": sorted(want_px),
                    "route": r.route,
                    "route_reasons": r.route_reasons,
                    "mdm": r.mdm,
                }
            )
    report = {
        "encounters": n,
        "principal_dx_accuracy": round(principal_ok / n, 4),
        "dx_f1": f1(dx_tp, dx_fp, dx_fn),
        "em_accuracy": round(em_ok / n, 4),
        "procedure_f1": f1(px_tp, px_fp, px_fn),
        "routes": routes,
        "auto_rate": round(auto / n, 4),
        "auto_precision": round(auto_right / auto, 4) if auto else None,
        "auto_wrong": auto - auto_right,
        # why encounters went to a coder (an encounter may have several reasons)
        "route_reasons": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
        "seconds": round(time.perf_counter() - started, 3),
    }
    return report, misses


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--blind", action="store_true", help="score the blind evaluation set")
    ap.add_argument(
        "--half",
        choices=(*HALVES, *LATER_HALVES, "both", "all"),
        default="both",
        help="both: tuning and locked; all: every half on disk",
    )
    args = ap.parse_args(argv)
    if args.blind:
        if args.verbose and args.half not in ("tuning", "tuning_c"):  # a locked half is never read
            ap.error("--verbose prints cases: only a tuning half may be read")
        out = {}
        halves = {
            "both": HALVES,
            "all": [h for h in (*HALVES, *LATER_HALVES) if (BLIND / f"{h}.jsonl").exists()],
        }.get(args.half, (args.half,))
        for half in halves:
            report, misses = score(*load_blind(half))
            if args.verbose:
                report["mismatches"] = misses
            out[half] = report
    else:
        labels = json.loads((VIGNETTES / "labels.json").read_text())
        encounters, source = load_encounters()
        out, misses = score(encounters, labels)
        out = {"vignettes": out.pop("encounters"), "source": source, **out}
        if args.verbose:
            out["mismatches"] = misses
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
