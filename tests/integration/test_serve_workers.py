"""`rcm serve <service> --workers N`: N processes on one port (SO_REUSEPORT), stopped together.

A real `rcm serve workbench --workers 2` on the session's PostgreSQL: connections are answered
by two distinct worker processes (each connection's server end found in the worker's own
socket table), SIGTERM to the parent stops every worker and exits 0; a worker that dies stops
the others and the parent exits non-zero (docs/workbench.md, Speed).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

from shared.service import run_workers

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(pid: int, port: int) -> bool:
    try:
        return any(
            c.status == psutil.CONN_LISTEN and c.laddr.port == port
            for c in psutil.Process(pid).net_connections(kind="tcp")
        )
    except psutil.NoSuchProcess:
        return False


def _start_workbench(stack_endpoints, tmp_path, port: int, workers: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": stack_endpoints["postgres"],
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",  # the workbench uses no Kafka
        "RCM_RUN_DIR": str(tmp_path),
        "RCM_WORKBENCH_SIGN_IN": "dev",
        "RCM_WORKBENCH_COOKIE_SECURE": "false",
    }
    command = [sys.executable, "-m", "rcm.cli.main", "serve", "workbench"]
    command += ["--http-port", str(port), "--workers", str(workers)]
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        children = psutil.Process(proc.pid).children()
        if len(children) == workers and all(_listening(c.pid, port) for c in children):
            return proc
        time.sleep(0.3)
    proc.kill()
    _, err = proc.communicate(timeout=30)
    raise AssertionError(f"workers did not start: {err.decode()[-2000:]}")


def _health(sock: socket.socket) -> bytes:
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    return sock.recv(4096)


def test_workers_share_the_port_and_stop_on_sigterm(stack_endpoints, tmp_path):
    port = _free_port()
    proc = _start_workbench(stack_endpoints, tmp_path, port, workers=2)
    connections: list[socket.socket] = []
    try:
        workers = {c.pid for c in psutil.Process(proc.pid).children()}
        assert len(workers) == 2 and proc.pid not in workers
        # 24 connections held open: each is accepted by one worker, which answers on it.
        for _ in range(24):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            connections.append(sock)
            assert _health(sock).startswith(b"HTTP/1.1 200")
        answered_by: dict[int, int] = {}  # client port -> worker pid
        for pid in workers:
            for c in psutil.Process(pid).net_connections(kind="tcp"):
                if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port and c.raddr:
                    answered_by[c.raddr.port] = pid
        clients = {s.getsockname()[1] for s in connections}
        assert clients <= answered_by.keys()
        assert {answered_by[p] for p in clients} == workers  # both workers answered
    finally:
        for sock in connections:
            sock.close()
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(timeout=60)
    assert status == 0
    assert not any(psutil.pid_exists(pid) for pid in workers)


def test_a_worker_that_dies_stops_the_others(stack_endpoints, tmp_path):
    port = _free_port()
    proc = _start_workbench(stack_endpoints, tmp_path, port, workers=2)
    try:
        first, second = psutil.Process(proc.pid).children()
        first.kill()
        status = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert status != 0
    assert not psutil.pid_exists(second.pid)
    assert b"worker exited; the others were stopped" in proc.stderr.read()


def test_run_workers_passes_sigterm_on_and_reports_a_crash():
    """The supervisor alone, with two tiny workers: a clean stop is 0, a crash is its status."""
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    crasher = [sys.executable, "-c", "import time; time.sleep(0.5); raise SystemExit(3)"]
    assert run_workers("test", [sleeper, crasher], grace=5) == 3

    def stop_soon(*_):
        os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.signal(signal.SIGALRM, stop_soon)
    signal.setitimer(signal.ITIMER_REAL, 1.0)
    try:
        started = time.monotonic()
        # The sleepers take SIGTERM's default action (exit by the signal): not clean, so 1.
        assert run_workers("test", [sleeper, sleeper], grace=5) == 1
        assert time.monotonic() - started < 10
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
