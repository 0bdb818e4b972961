"""`rcm bench --review-after-auto`: CPU split at the moment the coders start, and the table."""

from __future__ import annotations

import json
from pathlib import Path

from rcm.bench.bench import phase_split, render
from rcm.cli.main import main

RESULT = json.loads((Path(__file__).parent / "bench_result.json").read_text())

BOUNDARY = {
    "at": 1030.0,
    "cpu": {"coding-0": 6.0, "billing-0": 1.0, "postgres": 3.0},
    "load_generator": 1.5,
    "settled": 400,
}
END = {
    "at": 1090.0,
    "cpu": {"coding-0": 14.0, "billing-0": 9.0, "postgres": 13.0, "kafka": 2.0},
    "load_generator": 6.5,
    "settled": 3000,
}


def test_the_cpu_before_the_coders_is_per_encounter_and_after_per_reviewed_encounter() -> None:
    ph = phase_split(BOUNDARY, END, started=1000.0, routes={"auto": 400, "review": 2600})
    a, r = ph["auto_path"], ph["review_path"]
    assert a["seconds"] == 30.0 and a["auto_coded"] == 400 and a["settled"] == 400
    # 10 CPU seconds over the 3000 encounters the engine coded
    assert a["cpu_ms_per_encounter"] == 3.33
    assert r["settled"] == 2600 and r["seconds"] == 60.0
    # what the second phase used, a process first seen in it included in full
    assert r["cpu_seconds"] == {"billing-0": 8.0, "coding-0": 8.0, "kafka": 2.0, "postgres": 10.0}
    assert r["cpu_ms_per_encounter"] == round(1000 * 28.0 / 2600, 2)
    assert r["load_generator_cpu_seconds"] == 5.0


def test_the_table_shows_both_paths() -> None:
    ph = phase_split(BOUNDARY, END, started=1000.0, routes={"auto": 400, "review": 2600})
    text = render({**RESULT, "phases": ph})
    assert "auto path (coders held back; the engine coded every encounter, 400 auto;" in text
    assert "3.33 ms CPU per encounter" in text
    assert "review path (2600 reviewed encounters settled in 60.0 s)" in text
    assert "review path" not in render(RESULT)


def test_the_flag_reaches_the_run(monkeypatch) -> None:
    import rcm.bench.bench as bench

    seen = {}

    async def fake_run(**kwargs):
        seen.update(kwargs)
        return 0

    monkeypatch.setattr(bench, "run_bench", fake_run)
    assert main(["bench", "-n", "5", "--review-after-auto"]) == 0
    assert seen["review_after_auto"] is True
    assert main(["bench", "-n", "5"]) == 0
    assert seen["review_after_auto"] is False
