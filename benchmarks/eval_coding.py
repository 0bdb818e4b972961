"""Accuracy of the coding engine on the project's labelled vignettes.

    python benchmarks/eval_coding.py [--verbose]

Reads tests/fixtures/vignettes/*.json (FHIR R4 Bundles) through the FHIR intake
(services.intake.domain.fhir.parse_intake) when it is importable, else builds
the encounters from the compact definitions in build_vignettes.py. Prints JSON:
principal-diagnosis accuracy, diagnosis micro-F1, E/M accuracy, procedure
micro-F1 (E/M excluded), routes, and with --verbose every mismatch.
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


def f1(tp: int, fp: int, fn: int) -> float:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return round(2 * p * r / (p + r), 4) if p + r else 0.0


def is_em(code: str) -> bool:
    return cpt.is_em(code) or code in ("G0438", "G0439")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    labels = json.loads((VIGNETTES / "labels.json").read_text())
    encounters, source = load_encounters()
    n = principal_ok = em_ok = 0
    dx_tp = dx_fp = dx_fn = px_tp = px_fp = px_fn = 0
    routes: dict[str, int] = {}
    misses = []
    started = time.perf_counter()
    for vid, enc in encounters.items():
        lab = labels[vid]
        r = engine.code_encounter(enc)
        n += 1
        routes[r.route] = routes.get(r.route, 0) + 1
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
        if (
            dx[:1] != [lab["principal"]]
            or got_dx != want_dx
            or (ems[0] if ems else None) != lab["em"]
            or px != want_px
        ):
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
                    "mdm": r.mdm,
                }
            )
    report = {
        "vignettes": n,
        "source": source,
        "principal_dx_accuracy": round(principal_ok / n, 4),
        "dx_f1": f1(dx_tp, dx_fp, dx_fn),
        "em_accuracy": round(em_ok / n, 4),
        "procedure_f1": f1(px_tp, px_fp, px_fn),
        "routes": routes,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if args.verbose:
        report["mismatches"] = misses
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
