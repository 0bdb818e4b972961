"""The offline benchmark scripts stay runnable: each runs tiny and its output is checked.

They are not imported by anything else, so without this a renamed module breaks them
silently (bench_837 once imported a helper that no longer existed).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_bench_837_builds_clean_claims_that_pyx12_accepts():
    out = _run("bench_837.py", "--claims", "30", "--batch", "30")
    assert out["claims"] == 30
    # The synthetic visits are billable codes on a date inside the code set's window.
    assert out["scrub_findings"] == 0
    assert out["pyx12_valid"] is True
    assert out["pyx12_claims_validated"] == 30


def test_bench_835_parses_what_pyx12_accepts():
    out = _run("bench_835.py", "--claims", "30", "--repeat", "1")
    for shape in ("typical", "heavy"):
        assert out[shape]["claims"] == 30
        assert out[shape]["pyx12_valid"] is True


def test_bench_coding_codes_every_vignette():
    out = _run("bench_coding.py", "--rounds", "1")
    assert out["code_set_version"] == "2026-04"
    assert out["encounters"] > 0
