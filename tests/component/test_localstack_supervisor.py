"""The supervisor never leaves a process behind, even when two restarters race."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from rcm.localstack.supervisor import ServiceProcess


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])


def test_start_kills_a_process_a_racing_restart_left_running(tmp_path: Path, monkeypatch) -> None:
    sp = ServiceProcess("payer_sim", 0, {}, tmp_path / "logs" / "payer_sim-0.log")
    # What the race left: the bench's watch loop restarted the slot (first), then chaos
    # restarts it again; the first must not survive as an orphan.
    first = _sleeper()
    sp.proc, sp.started = first, [first]
    second = _sleeper()
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: second)
    try:
        sp.start()
        assert first.poll() is not None, "the earlier process of the slot is still running"
        assert sp.proc is second and second.poll() is None
        sp.stop(timeout=5)
        assert second.poll() is not None
        assert not sp.pid_file.exists()
    finally:
        for p in (first, second):
            if p.poll() is None:
                p.kill()
                p.wait()
