"""Starts service processes (each its own OS process) and stops them; used by demo, tests and bench."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from rcm.localstack.procs import free_port, pid_alive, stop_pid


@dataclass
class ServiceProcess:
    name: str
    instance: int
    env: dict[str, str]
    log_path: Path
    http_port: int | None = None
    proc: subprocess.Popen | None = None
    restarts: int = 0
    # Every process this slot ever started: stopping checks them all, so a restart
    # racing a kill can never leave an orphan running against a torn-down stack.
    started: list[subprocess.Popen] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.name}-{self.instance}"

    def start(self) -> None:
        self._reap()
        cmd = [sys.executable, "-m", "rcm.cli.main", "serve", self.name]
        if self.http_port:
            cmd += ["--http-port", str(self.http_port)]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.started.append(self.proc)
        # `rcm stack down` stops whatever a crashed demo or bench left running.
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.write_text(str(self.proc.pid))

    def _reap(self) -> None:
        """SIGKILL every process of this slot still running (called before a start and after a stop)."""
        for p in self.started:
            if p.poll() is None:
                p.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(10)
        self.started = [p for p in self.started if p.poll() is None]

    @property
    def pid_file(self) -> Path:
        return self.log_path.parent.parent / "services" / f"{self.label}.pid"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL (chaos): no shutdown code runs."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 20) -> None:
        if self.proc is not None and pid_alive(self.proc.pid):
            stop_pid(self.proc.pid, timeout)
        if self.proc is not None:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self._reap()
        self.pid_file.unlink(missing_ok=True)


@dataclass
class Supervisor:
    run_dir: Path
    base_env: dict[str, str]
    processes: list[ServiceProcess] = field(default_factory=list)

    def add(
        self,
        name: str,
        *,
        instance: int = 0,
        http: bool = False,
        extra_env: dict[str, str] | None = None,
    ) -> ServiceProcess:
        env = {**os.environ, **self.base_env, **(extra_env or {})}
        env |= self._role_env(name, env)
        port = free_port() if http else None
        sp = ServiceProcess(
            name, instance, env, self.run_dir / "logs" / f"{name}-{instance}.log", port
        )
        self.processes.append(sp)
        return sp

    def _role_env(self, name: str, env: dict[str, str]) -> dict[str, str]:
        """The service's own database roles when it runs against this run dir's Postgres as the
        superuser: DATABASE_URL its login role, RCM_DB_OWNER_URL its schema's owner (migrations).
        RCM_DB_SERVICE_ROLES=0 keeps the superuser (docs/security.md "Database roles")."""
        import json

        from rcm.localstack.postgres import Postgres

        if env.get("RCM_DB_SERVICE_ROLES", "1") == "0" or "RCM_DB_OWNER_URL" in env:
            return {}
        pg = Postgres(self.run_dir)
        try:
            roles = json.loads(pg.roles_file.read_text())
            if env.get("DATABASE_URL") != pg.dsn:
                return {}
            dsns = roles["services"][name]
        except (OSError, ValueError, KeyError):
            return {}
        return {"DATABASE_URL": dsns["login"], "RCM_DB_OWNER_URL": dsns["owner"]}

    def start_all(self) -> None:
        for sp in self.processes:
            sp.start()

    def by_name(self, name: str) -> list[ServiceProcess]:
        return [p for p in self.processes if p.name == name]

    def dead(self) -> list[ServiceProcess]:
        return [p for p in self.processes if not p.alive()]

    def stop_all(self) -> None:
        for sp in self.processes:
            if sp.alive():
                sp.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for sp in self.processes:
            if sp.proc is None:
                continue
            try:
                sp.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                sp.proc.kill()
                sp.proc.wait(5)
            sp._reap()
            sp.pid_file.unlink(missing_ok=True)
