"""`rcm bench` with bad arguments: one clear line and exit 2, before any stack is started."""

from __future__ import annotations

import pytest

from rcm.cli.main import main


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["-n", "0"], "--encounters"),
        (["--instances", "0"], "--instances"),
        (["--rate", "-3"], "--rate"),
        (["--rate", "0"], "--rate"),
        (["--rate", "nan"], "--rate"),
        (["--partitions", "0"], "--partitions"),
        (["--timeout", "0"], "--timeout"),
    ],
)
def test_bad_bench_arguments_are_one_line_and_exit_2(argv, names, capsys, monkeypatch) -> None:
    import rcm.bench.bench as bench

    async def must_not_run(**kwargs):  # validation comes first: no stack, no run
        raise AssertionError("bench started despite bad arguments")

    monkeypatch.setattr(bench, "run_bench", must_not_run)
    assert main(["bench", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rcm: bench: ") and names in err and "\n" not in err
