"""`rcm bench`'s report: the table, or JSON alone on stdout; the results file; the exit status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rcm.bench.bench import report

# A result as BenchRun and run_bench leave it (the bench run in tests/ produced this shape).
RESULT = json.loads((Path(__file__).parent / "bench_result.json").read_text())


def test_json_goes_alone_to_stdout_and_the_table_to_stderr(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert report(RESULT, as_json=True, out=out) == 0
    printed = capsys.readouterr()
    assert json.loads(printed.out) == RESULT  # pipes into jq as it is
    assert "encounters/s end to end" in printed.err
    assert json.loads(out.read_text()) == RESULT


def test_the_table_on_stdout_without_json(tmp_path, capsys):
    assert report(RESULT, as_json=False, out=tmp_path / "r.json") == 0
    printed = capsys.readouterr().out
    assert f"settled {RESULT['settled']} (unsettled 0)" in printed
    assert "rcm-coding" in printed  # max lag per group
    assert "{" not in printed.splitlines()[0]


CHAOS = {
    "seed": 11,
    "faults": 55,
    "by_kind": {"service_kill": 50, "broker_kill": 3, "postgres_stop": 2},
    "poison_injected": 6,
    "violations": [],
}


def test_a_clean_chaos_run_passes(tmp_path, capsys):
    assert report({**RESULT, "chaos": CHAOS}, as_json=False, out=tmp_path / "r.json") == 0
    assert "chaos: 55 faults; violations: 0" in capsys.readouterr().out


@pytest.mark.parametrize(
    "change",
    [
        {"unsettled": 3, "settled": RESULT["settled"] - 3},
        {"chaos": {**CHAOS, "violations": ["claim C1 sent in more than one 837"]}},
    ],
)
def test_unsettled_encounters_or_a_chaos_violation_fail_the_run(tmp_path, capsys, change):
    assert report({**RESULT, **change}, as_json=False, out=tmp_path / "r.json") == 1
