"""`rcm stack up|down` on a fresh run directory: real processes start, restart on the same data, and all stop."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psutil
import pytest

pytestmark = pytest.mark.integration


def _rcm(run_dir, *args, timeout=240):
    env = {
        k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
    }
    env["RCM_RUN_DIR"] = str(run_dir)
    return subprocess.run(
        [sys.executable, "-m", "rcm.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _stack_processes(run_dir) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if any(str(run_dir) in part for part in proc.info["cmdline"] or ()):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


@pytest.mark.skipif(os.environ.get("RCM_TEST_STACK") == "containers", reason="local stack only")
def test_stack_up_down_leaves_no_process(tmp_path):
    run_dir = tmp_path / "run"
    up = _rcm(run_dir, "stack", "up")
    assert up.returncode == 0, up.stderr
    endpoints = json.loads(up.stdout)
    assert endpoints["kafka"].startswith("127.0.0.1:") and endpoints["postgres"].startswith(
        "postgresql://"
    )
    status = json.loads(_rcm(run_dir, "stack", "status").stdout)
    assert status["kafka"]["ready"] and status["postgres"]["ready"]
    assert len(_stack_processes(run_dir)) >= 2  # the broker JVM and the postmaster (+ its workers)
    # A second `up` adopts the running stack: same endpoints, no second broker.
    again = _rcm(run_dir, "stack", "up")
    assert json.loads(again.stdout) == endpoints
    down = _rcm(run_dir, "stack", "down")
    assert down.returncode == 0, down.stderr
    assert _stack_processes(run_dir) == []
    status = json.loads(_rcm(run_dir, "stack", "status").stdout)
    assert status["kafka"]["pid"] is None and status["postgres"]["pid"] is None


def test_service_without_database_fails_with_one_line(tmp_path):
    env_overrides = {
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
    }
    env = {**os.environ, **env_overrides, "RCM_RUN_DIR": str(tmp_path)}
    r = subprocess.run(
        [sys.executable, "-m", "rcm.cli.main", "serve", "followup"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith("{")]
    assert (
        lines == [lines[0]]
        and "Postgres unreachable at postgresql://nobody@127.0.0.1:1/none" in lines[0]
    )
    assert "Traceback" not in r.stderr
