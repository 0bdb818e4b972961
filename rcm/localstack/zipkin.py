"""A local trace viewer: Zipkin's server (collector, in-memory storage and UI in one jar).

The executable jar ``io.zipkin:zipkin-server`` (classifier ``exec``) is resolved from Maven
Central with ``mvn`` into the cache once and run with the machine's Java 17, bound to
127.0.0.1. Services export their spans to ``<url>/api/v2/spans`` (OpenTelemetry's Zipkin
exporter, ``shared.telemetry``); the UI is at ``<url>/zipkin/``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from rcm.localstack.kafka import java_command
from rcm.localstack.procs import StackError, free_port, pid_alive, read_pid, stop_pid, wait_until

ZIPKIN_VERSION = "3.5.1"
HEAP = "256m"
# In-memory storage keeps this many spans, dropping the oldest traces beyond it: about 20
# spans an encounter, so the last few thousand encounters stay viewable in a small heap.
MAX_SPANS = 100_000


def jar_path(home: Path) -> Path:
    return home / f"zipkin-{ZIPKIN_VERSION}" / f"zipkin-server-{ZIPKIN_VERSION}-exec.jar"


def ensure_jar(home: Path) -> Path:
    """Resolve Zipkin's executable jar from Maven Central into the cache (once)."""
    jar = jar_path(home)
    if jar.exists():
        return jar
    if not shutil.which("mvn"):
        raise StackError("Zipkin: `mvn` not found on PATH; install Maven to resolve its jar")
    tmp = jar.parent.with_name(jar.parent.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [
        "mvn",
        "-q",
        "-B",
        "dependency:copy",
        f"-Dartifact=io.zipkin:zipkin-server:{ZIPKIN_VERSION}:jar:exec",
        f"-DoutputDirectory={tmp}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0 or not (tmp / jar.name).exists():
        raise StackError(
            f"Zipkin: mvn failed resolving {jar.name}: {proc.stdout[-500:]}{proc.stderr[-500:]}"
        )
    shutil.rmtree(jar.parent, ignore_errors=True)
    tmp.rename(jar.parent)
    return jar


def trace_link(url: str, trace_id: str) -> str:
    """The viewer's page for one trace."""
    return f"{url.rstrip('/')}/zipkin/traces/{trace_id}"


def healthy(url: str, timeout: float = 3) -> bool:
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout) as r:
            return r.status == 200
    except (OSError, urllib.error.URLError):
        return False


class Zipkin:
    def __init__(self, run_dir: Path, home: Path):
        self.dir = run_dir / "zipkin"
        self.home = home
        self.pid_file = self.dir / "zipkin.pid"
        self.state_file = self.dir / "state.json"
        self.log_file = self.dir / "zipkin.log"

    def _port(self) -> int:
        if self.state_file.exists():
            return json.loads(self.state_file.read_text())["port"]
        port = free_port()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps({"port": port}))
        return port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port()}"

    def pid(self) -> int | None:
        pid = read_pid(self.pid_file)
        return pid if pid and pid_alive(pid) else None

    def start(self, timeout: float = 120) -> str:
        """Start (or adopt a running) server; return its base URL."""
        if not self.pid():
            jar = ensure_jar(self.home)
            port = self._port()
            # A clean environment: Zipkin reads KAFKA_BOOTSTRAP_SERVERS, RABBIT_URI, ... as
            # collectors to start; none of the stack's variables are meant for it.
            env = {
                k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "JAVA_HOME")
            }
            env |= {"STORAGE_TYPE": "mem", "MEM_MAX_SPANS": str(MAX_SPANS)}
            cmd = [
                *java_command(HEAP),
                "-jar",
                str(jar),
                # Armeria's server port list, replaced whole: HTTP on loopback only.
                "--armeria.ports[0].ip=127.0.0.1",
                f"--armeria.ports[0].port={port}",
                "--armeria.ports[0].protocols[0]=http",
            ]
            with open(self.log_file, "ab") as log:
                proc = subprocess.Popen(
                    cmd,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # survive the CLI that started it
                )
            self.pid_file.write_text(str(proc.pid))

            def ok() -> bool:
                if proc.poll() is not None:
                    tail = self.log_file.read_text(errors="replace")[-800:]
                    raise StackError(f"Zipkin exited during start (code {proc.returncode}): {tail}")
                return healthy(self.url)

        else:

            def ok() -> bool:
                return healthy(self.url)

        if not wait_until(ok, timeout, interval=0.5):
            raise StackError(
                f"Zipkin not ready on {self.url} after {timeout:.0f}s (log: {self.log_file})"
            )
        return self.url

    def stop(self, timeout: float = 20) -> None:
        pid = self.pid()
        if pid:
            stop_pid(pid, timeout)
        self.pid_file.unlink(missing_ok=True)

    def status(self) -> dict:
        pid = self.pid()
        return {
            "pid": pid,
            "url": f"{self.url}/zipkin/" if pid else None,
            "ready": bool(pid) and healthy(self.url),
        }
