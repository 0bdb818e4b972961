"""A local OpenID Connect provider: Keycloak's server distribution, with the rcm realm.

``org.keycloak:keycloak-quarkus-dist`` (tar.gz, ~176 MB) is resolved from Maven Central with
``mvn`` into the cache once, unpacked, and built once (``kc.sh build --db=dev-file
--cache=local --health-enabled=true``). Each start then runs ``kc.sh start --optimized``
on 127.0.0.1 with its H2 database and transaction log under the run directory, importing
``deploy/keycloak/rcm-realm.json`` (realm ``rcm``: the workbench's confidential client with
PKCE, realm roles, the ``sites`` attribute as a claim, the ``rcm`` audience, the demo users).

Why not ``start-dev``: it runs the Quarkus build on every start (60-100 s on two shared
cores, measured), where the cached build leaves 40-60 s, most of it creating the schema and
importing the realm. The options keep what development mode gives (plain HTTP on loopback,
no hostname checks, the file database, a local cache that listens on no port).

Keycloak 26 needs Java 21 or newer: ``RCM_KEYCLOAK_JAVA_HOME``, else the Temurin 25 JDK some
machines carry, else any JDK under /usr/lib/jvm of release 21+. Without one, ``start``
raises ``StackError`` saying so (the browser test that needs Keycloak is then skipped).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from rcm.localstack.procs import (
    StackError,
    free_port,
    pid_alive,
    read_pid,
    repo_root,
    stop_pid,
    wait_until,
)

KEYCLOAK_VERSION = "26.7.3"
ARTIFACT = f"org.keycloak:keycloak-quarkus-dist:{KEYCLOAK_VERSION}:tar.gz"
REALM = "rcm"
# Development only: the realm's client secret (RCM_KEYCLOAK_CLIENT_SECRET overrides it at import).
DEV_CLIENT_SECRET = "rcm-workbench-development-secret"
REALM_FILE = repo_root() / "deploy" / "keycloak" / "rcm-realm.json"
MIN_JAVA = 21
PREFERRED_JDK = Path("/usr/lib/jvm/temurin-25-jdk-amd64")
BUILD_OPTIONS = ("--db=dev-file", "--cache=local", "--health-enabled=true")
HEAP = "-Xms64m -Xmx512m"


def java_release(java_home: Path) -> int | None:
    """The major release of the JDK at ``java_home`` (from its ``release`` file), or None."""
    try:
        text = (java_home / "release").read_text()
    except OSError:
        return None
    m = re.search(r'^JAVA_VERSION="(\d+)', text, re.M)
    return int(m.group(1)) if m and (java_home / "bin" / "java").exists() else None


def find_java(env: dict[str, str] | None = None) -> Path:
    """A JDK Keycloak can run on (21+); StackError naming what was looked for otherwise."""
    env = os.environ if env is None else env
    candidates: list[Path] = []
    if env.get("RCM_KEYCLOAK_JAVA_HOME"):
        candidates.append(Path(env["RCM_KEYCLOAK_JAVA_HOME"]))
    candidates.append(PREFERRED_JDK)
    if env.get("JAVA_HOME"):
        candidates.append(Path(env["JAVA_HOME"]))
    jvm = Path("/usr/lib/jvm")
    if jvm.is_dir():
        candidates += sorted(jvm.iterdir(), reverse=True)
    for c in candidates:
        release = java_release(c)
        if release is not None and release >= MIN_JAVA:
            return c
    raise StackError(
        f"Keycloak {KEYCLOAK_VERSION} needs Java {MIN_JAVA} or newer: none found "
        f"(RCM_KEYCLOAK_JAVA_HOME, {PREFERRED_JDK}, JAVA_HOME, /usr/lib/jvm/*)"
    )


def dist_path(home: Path) -> Path:
    return home / f"keycloak-{KEYCLOAK_VERSION}"


def ensure_dist(home: Path, java_home: Path) -> Path:
    """Download, unpack and build Keycloak into the cache (once); the distribution's path."""
    dist = dist_path(home)
    stamp = dist / ".rcm-built"
    if stamp.exists():
        return dist
    if not dist.exists():
        _download(home, dist)
    proc = subprocess.run(
        [str(dist / "bin" / "kc.sh"), "build", *BUILD_OPTIONS],
        env=_env(java_home),
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:
        raise StackError(f"Keycloak: kc.sh build failed: {(proc.stdout + proc.stderr)[-800:]}")
    stamp.write_text(" ".join(BUILD_OPTIONS))
    return dist


def _download(home: Path, dist: Path) -> None:
    if not shutil.which("mvn"):
        raise StackError("Keycloak: `mvn` not found on PATH; install Maven to resolve it")
    downloads = home / "downloads"
    tarball = downloads / f"keycloak-quarkus-dist-{KEYCLOAK_VERSION}.tar.gz"
    if not tarball.exists():
        cmd = [
            "mvn",
            "-q",
            "-B",
            "dependency:copy",
            f"-Dartifact={ARTIFACT}",
            f"-DoutputDirectory={downloads}",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0 or not tarball.exists():
            raise StackError(
                f"Keycloak: mvn failed resolving {ARTIFACT}: {(proc.stdout + proc.stderr)[-500:]}"
            )
    tmp = home / f".keycloak-{KEYCLOAK_VERSION}.{os.getpid()}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with tarfile.open(tarball) as tar:
        tar.extractall(tmp, filter="data")
    (unpacked,) = list(tmp.iterdir())
    try:
        unpacked.rename(dist)
    except OSError:  # another process unpacked it first
        if not dist.exists():
            raise
    shutil.rmtree(tmp, ignore_errors=True)


def _env(java_home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep}
    return {**env, "JAVA_HOME": str(java_home), **(extra or {})}


def ready(issuer: str, timeout: float = 3) -> bool:
    try:
        url = f"{issuer}/.well-known/openid-configuration"
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status == 200
    except (OSError, urllib.error.URLError):
        return False


class Keycloak:
    """One Keycloak for a run directory: started, adopted when already running, stopped."""

    def __init__(self, run_dir: Path, home: Path):
        self.dir = run_dir / "keycloak"
        self.home = home
        self.pid_file = self.dir / "keycloak.pid"
        self.state_file = self.dir / "state.json"
        self.log_file = self.dir / "keycloak.log"
        self.startup_seconds: float | None = None  # of the last start (None: adopted)

    def _ports(self) -> tuple[int, int]:
        if self.state_file.exists():
            state = json.loads(self.state_file.read_text())
            return state["port"], state["management_port"]
        ports = free_port(), free_port()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps({"port": ports[0], "management_port": ports[1]}))
        return ports

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._ports()[0]}"

    @property
    def issuer(self) -> str:
        return f"{self.url}/realms/{REALM}"

    def pid(self) -> int | None:
        pid = read_pid(self.pid_file)
        return pid if pid and pid_alive(pid) else None

    def start(self, timeout: float = 420, client_secret: str = DEV_CLIENT_SECRET) -> str:
        """Start (or adopt a running) Keycloak with the rcm realm; return the realm's issuer URL."""
        if self.pid() and ready(self.issuer):
            return self.issuer
        java = find_java()
        dist = ensure_dist(self.home, java)
        port, management = self._ports()
        imports = dist / "data" / "import"
        imports.mkdir(parents=True, exist_ok=True)
        realm = REALM_FILE.read_text()
        if (
            not (imports / REALM_FILE.name).exists()
            or (imports / REALM_FILE.name).read_text() != realm
        ):
            tmp = imports / f".{REALM_FILE.name}.{os.getpid()}"
            tmp.write_text(realm)
            tmp.replace(imports / REALM_FILE.name)
        db = self.dir / "h2" / "keycloakdb"
        cmd = [
            str(dist / "bin" / "kc.sh"),
            "start",
            "--optimized",
            "--cache=local",
            "--import-realm",
            "--http-enabled=true",
            "--hostname-strict=false",
            "--http-host=127.0.0.1",
            f"--http-port={port}",
            f"--http-management-port={management}",
            f"--db-url=jdbc:h2:file:{db};NON_KEYWORDS=VALUE",
        ]
        env = _env(
            java,
            {
                "JAVA_OPTS_KC_HEAP": HEAP,
                "JAVA_OPTS_APPEND": (
                    f"-Dquarkus.transaction-manager.object-store.directory={self.dir / 'tx'}"
                ),
                "RCM_KEYCLOAK_CLIENT_SECRET": client_secret,
            },
        )
        started = time.monotonic()
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                cmd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_file.write_text(str(proc.pid))

        def ok() -> bool:
            if proc.poll() is not None:
                tail = self.log_file.read_text(errors="replace")[-800:]
                raise StackError(f"Keycloak exited during start (code {proc.returncode}): {tail}")
            return ready(self.issuer)

        if not wait_until(ok, timeout, interval=0.5):
            self.stop()
            raise StackError(
                f"Keycloak not ready on {self.url} after {timeout:.0f}s (log: {self.log_file})"
            )
        self.startup_seconds = round(time.monotonic() - started, 1)
        return self.issuer

    def stop(self, timeout: float = 30) -> None:
        pid = self.pid()
        if pid is not None:
            try:
                os.killpg(pid, 15)  # kc.sh and the JVM it started: one session, one group
            except (ProcessLookupError, PermissionError):
                pass
            stop_pid(pid, timeout)
        self.pid_file.unlink(missing_ok=True)
