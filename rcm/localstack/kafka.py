"""A real single-node Apache Kafka broker (KRaft) run from Maven-resolved jars.

Ports are chosen free on first start and then kept in ``state.json`` so a
restarted broker (chaos runs, `rcm stack up` after a crash) comes back on the
same address and the same data directory.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import uuid
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

KAFKA_VERSION = "4.4.0"


def jar_dir(home: Path) -> Path:
    return home / f"kafka-{KAFKA_VERSION}" / "libs"


def ensure_jars(home: Path) -> Path:
    """Resolve the broker's jars from Maven Central into the cache (once)."""
    libs = jar_dir(home)
    if (libs / f"kafka_2.13-{KAFKA_VERSION}.jar").exists():
        return libs
    pom = repo_root() / "deploy" / "local" / "pom.xml"
    if not pom.exists():
        raise StackError(f"Kafka: {pom} not found; cannot resolve broker jars")
    if not shutil.which("mvn"):
        raise StackError("Kafka: `mvn` not found on PATH; install Maven to resolve the broker jars")
    tmp = libs.with_name("libs.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [
        "mvn",
        "-q",
        "-B",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={tmp}",
        "-DincludeScope=runtime",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise StackError(
            f"Kafka: mvn failed resolving jars: {proc.stdout[-500:]}{proc.stderr[-500:]}"
        )
    shutil.rmtree(libs, ignore_errors=True)
    tmp.rename(libs)
    return libs


def _cluster_id() -> str:
    """16 random bytes, base64url without padding; never starting with '-' (read as an option)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


class KafkaBroker:
    def __init__(self, run_dir: Path, home: Path, heap: str = "512m"):
        self.dir = run_dir / "kafka"
        self.data = self.dir / "data"
        self.home = home
        self.heap = heap
        self.pid_file = self.dir / "kafka.pid"
        self.state_file = self.dir / "state.json"
        self.log_file = self.dir / "kafka.log"

    # -- state ----------------------------------------------------------------

    def _state(self) -> dict:
        if self.state_file.exists():
            return json.loads(self.state_file.read_text())
        state = {
            "port": free_port(),
            "controller_port": free_port(),
            # Kafka cluster ids are 16 random bytes, base64url without padding.
            "cluster_id": _cluster_id(),
        }
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(state))
        return state

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self._state()['port']}"

    def pid(self) -> int | None:
        pid = read_pid(self.pid_file)
        return pid if pid and pid_alive(pid) else None

    def _write_config(self, state: dict) -> Path:
        port, cport = state["port"], state["controller_port"]
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{cport}",
            "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data),
            "num.partitions": "4",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
            "log.retention.hours": "168",
            "log.segment.bytes": str(64 * 1024 * 1024),
        }
        path = self.dir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        return path

    # -- lifecycle ------------------------------------------------------------

    def start(self, timeout: float = 90) -> str:
        """Start (or adopt a running) broker; return its bootstrap address."""
        if self.pid():
            self.wait_ready(timeout)
            return self.bootstrap
        libs = ensure_jars(self.home)
        java = shutil.which("java")
        if not java:
            raise StackError("Kafka: `java` not found on PATH (Java 17 required)")
        state = self._state()
        config = self._write_config(state)
        classpath = f"{libs}/*"
        log4j = repo_root() / "deploy" / "local" / "log4j2.yaml"
        # A one-machine stack sharing 2 cores with every service: the serial collector and the
        # C1 compiler only. With G1 and C2, GC and JIT threads were about half the broker's CPU
        # in a bench run (12-18 s against 7-8 s for 3,000 encounters); a production cluster
        # has its own machines and keeps the JVM defaults.
        jvm = [
            java,
            f"-Xmx{self.heap}",
            f"-Xms{self.heap}",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}",
            "-cp",
            classpath,
        ]
        if not (self.data / "meta.properties").exists():
            self.data.mkdir(parents=True, exist_ok=True)
            fmt = subprocess.run(
                [
                    *jvm,
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    state["cluster_id"],
                    "-c",
                    str(config),
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
            if fmt.returncode != 0:
                raise StackError(
                    f"Kafka: storage format failed: {fmt.stderr[-400:] or fmt.stdout[-400:]}"
                )
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                [*jvm, "kafka.Kafka", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # survive the CLI that started it
            )
        self.pid_file.write_text(str(proc.pid))
        self.wait_ready(timeout, proc)
        return self.bootstrap

    def wait_ready(self, timeout: float, proc: subprocess.Popen | None = None) -> None:
        """Ready = a metadata request succeeds."""

        def ok() -> bool:
            if proc is not None and proc.poll() is not None:
                tail = self.log_file.read_text(errors="replace")[-800:]
                raise StackError(f"Kafka exited during start (code {proc.returncode}): {tail}")
            return metadata_ok(self.bootstrap)

        if not wait_until(ok, timeout, interval=0.5):
            raise StackError(
                f"Kafka not ready on {self.bootstrap} after {timeout:.0f}s (log: {self.log_file})"
            )

    def stop(self, timeout: float = 30) -> None:
        pid = self.pid()
        if pid:
            stop_pid(pid, timeout)
        self.pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL the broker (chaos); data stays for a restart."""
        pid = self.pid()
        if pid:
            stop_pid(pid, 0, hard=True)


def metadata_ok(bootstrap: str, timeout: float = 5) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    async def probe() -> bool:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000)
        )
        try:
            await asyncio.wait_for(admin.start(), timeout)
            await asyncio.wait_for(admin.list_topics(), timeout)
            return True
        except Exception:
            return False
        finally:
            try:
                await admin.close()
            except Exception:
                pass

    # Silence aiokafka's connection-refused noise while the broker boots.
    import logging

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        return asyncio.run(probe())
    finally:
        logging.getLogger("aiokafka").setLevel(logging.WARNING)
