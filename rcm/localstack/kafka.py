"""A real Apache Kafka (KRaft) on this machine, run from Maven-resolved jars: one node, or a
replicated cluster of several (``rcm stack up --brokers 3``).

Each node is one JVM with the broker and controller roles; the nodes of a cluster are the
voters of its metadata quorum, so with three of them one may die and the other two keep the
quorum and, with replication factor 3 and ``min.insync.replicas=2``, every partition
writable. Ports are chosen free on first start and then kept in ``state.json`` so a
restarted node (chaos runs, `rcm stack up` after a crash) comes back on the same address and
the same data directory. A single node keeps the original layout (``kafka/data``); the nodes
of a cluster live in ``kafka/node-<id>/``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from rcm.localstack.procs import (
    StackError,
    free_port,
    pid_alive,
    read_pid,
    repo_root,
    stop_pid,
    wait_until,
)
from shared.topics import replication

KAFKA_VERSION = "4.4.0"
# A cluster's nodes share 2 cores and the memory with every service: a small heap each.
SINGLE_HEAP = "512m"
CLUSTER_HEAP = "384m"


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


def java_command(heap: str) -> list[str]:
    """The JVM and its flags for a local stack component.

    A one-machine stack sharing 2 cores with every service: the serial collector and the C1
    compiler only. With G1 and C2, GC and JIT threads were about half the broker's CPU in a
    bench run (12-18 s against 7-8 s for 3,000 encounters); a production cluster has its own
    machines and keeps the JVM defaults.
    """
    java = shutil.which("java")
    if not java:
        raise StackError("`java` not found on PATH (Java 17 required)")
    return [
        java,
        f"-Xmx{heap}",
        f"-Xms{heap}",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-Djava.awt.headless=true",
    ]


@dataclass(frozen=True)
class SecureListener:
    """An extra listener for clients: TLS (``SSL``) or TLS + SCRAM (``SASL_SSL``).

    ``keystore_pem`` holds the broker's private key (unencrypted PKCS#8) and certificate chain;
    ``scram_users`` (SASL_SSL) are made when the storage is formatted (KRaft keeps SCRAM
    credentials in its metadata). A single node only; the PLAINTEXT listener stays for the
    node's own readiness checks on 127.0.0.1.
    """

    protocol: Literal["SSL", "SASL_SSL"]
    keystore_pem: Path
    scram_users: dict[str, str] = field(default_factory=dict)
    mechanism: str = "SCRAM-SHA-512"
    # Kafka's StandardAuthorizer: a principal may do only what an ACL allows
    # (``rcm.localstack.kafka_acls``). The PLAINTEXT and controller listeners (127.0.0.1, the
    # node's own) are ANONYMOUS, a super user, so the stack and its readiness checks go on.
    acls: bool = False


def _cluster_id() -> str:
    """16 random bytes, base64url without padding; never starting with '-' (read as an option)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


class KafkaNode:
    """One KRaft process of the local cluster: broker and controller roles."""

    def __init__(self, cluster: KafkaCluster, node_id: int, port: int, controller_port: int):
        self.cluster = cluster
        self.node_id = node_id
        self.port = port
        self.controller_port = controller_port
        self.dir = cluster.dir if cluster.size == 1 else cluster.dir / f"node-{node_id}"
        self.data = self.dir / "data"
        self.pid_file = self.dir / "kafka.pid"
        self.log_file = self.dir / "kafka.log"
        self.config_file = self.dir / "server.properties"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def pid(self) -> int | None:
        pid = read_pid(self.pid_file)
        return pid if pid and pid_alive(pid) else None

    @property
    def secure_address(self) -> str | None:
        port = self.cluster.secure_port
        return f"127.0.0.1:{port}" if port else None

    def _secure_props(self) -> dict[str, str]:
        sl = self.cluster.secure
        if sl is None:
            return {}
        name = sl.protocol
        props = {
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},"
            f"CONTROLLER://127.0.0.1:{self.controller_port},{name}://{self.secure_address}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port},{name}://{self.secure_address}",
            "listener.security.protocol.map": f"PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,{name}:{name}",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(sl.keystore_pem),
            "ssl.client.auth": "none",
        }
        if sl.acls:
            props |= {
                "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                "super.users": "User:ANONYMOUS",
                "allow.everyone.if.no.acl.found": "false",
            }
        if name == "SASL_SSL":
            mech = sl.mechanism.lower()
            props |= {
                "sasl.enabled.mechanisms": sl.mechanism,
                f"listener.name.sasl_ssl.{mech}.sasl.jaas.config": (
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                ),
            }
        return props

    def write_config(self) -> None:
        c = self.cluster
        rf, min_isr = replication(c.size)
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": ",".join(
                f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in c.nodes
            ),
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data),
            "num.partitions": "4",
            # Internal topics and topics created without settings: as many copies as the
            # cluster holds, up to 3, and a write needs 2 of them (1 below 3 nodes).
            "default.replication.factor": str(rf),
            "min.insync.replicas": str(min_isr),
            "offsets.topic.replication.factor": str(rf),
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": str(rf),
            "transaction.state.log.min.isr": str(min_isr),
            "share.coordinator.state.topic.replication.factor": str(rf),
            "share.coordinator.state.topic.min.isr": str(min_isr),
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
            "unclean.leader.election.enable": "false",
            "log.retention.hours": "168",
            "log.segment.bytes": str(64 * 1024 * 1024),
        }
        props |= self._secure_props()
        if c.size > 1:
            props |= {
                # A dead node is fenced (its partitions get new leaders, it leaves every ISR)
                # once it has missed heartbeats this long: the partitions it led pause that
                # long. Kafka's 9 s default is for a network that may hiccup; loopback does not.
                "broker.heartbeat.interval.ms": "1000",
                "broker.session.timeout.ms": "5000",
                # A restarted node gets its preferred leaderships back soon, not after 5 min.
                "leader.imbalance.check.interval.seconds": "30",
            }
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text("".join(f"{k}={v}\n" for k, v in props.items()))

    def launch(self, libs: Path) -> subprocess.Popen:
        """Format the data directory on first start, then start the JVM (not waiting for it)."""
        self.write_config()
        log4j = repo_root() / "deploy" / "local" / "log4j2.yaml"
        jvm = [
            *java_command(self.cluster.heap),
            f"-Dlog4j2.configurationFile={log4j}",
            "-cp",
            f"{libs}/*",
        ]
        if not (self.data / "meta.properties").exists():
            self.data.mkdir(parents=True, exist_ok=True)
            fmt = subprocess.run(
                [
                    *jvm,
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    self.cluster.cluster_id,
                    "-c",
                    str(self.config_file),
                    *self._scram_args(),
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
            if fmt.returncode != 0:
                raise StackError(
                    f"Kafka node {self.node_id}: storage format failed: "
                    f"{fmt.stderr[-400:] or fmt.stdout[-400:]}"
                )
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                [*jvm, "kafka.Kafka", str(self.config_file)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # survive the CLI that started it
            )
        self.pid_file.write_text(str(proc.pid))
        return proc

    def _scram_args(self) -> list[str]:
        sl = self.cluster.secure
        if sl is None or sl.protocol != "SASL_SSL":
            return []
        return [
            a
            for user, pw in sl.scram_users.items()
            for a in ("--add-scram", f"{sl.mechanism}=[name={user},password={pw}]")
        ]

    def kill(self) -> None:
        """SIGKILL the node (chaos); its data stays for a restart."""
        pid = self.pid()
        if pid:
            stop_pid(pid, 0, hard=True)

    def stop(self, timeout: float) -> None:
        pid = self.pid()
        if pid:
            stop_pid(pid, timeout)
        self.pid_file.unlink(missing_ok=True)


class KafkaCluster:
    """The local Kafka: ``brokers`` KRaft nodes (None: as many as the run dir already holds, else 1)."""

    def __init__(
        self,
        run_dir: Path,
        home: Path,
        brokers: int | None = None,
        secure: SecureListener | None = None,
    ):
        if brokers is not None and brokers < 1:
            raise StackError("Kafka: the number of brokers must be at least 1")
        if secure is not None and (brokers or 1) != 1:
            raise StackError("Kafka: a secure listener is for a single broker")
        self.secure = secure
        self.dir = run_dir / "kafka"
        self.home = home
        self.state_file = self.dir / "state.json"
        state = self._load_state()
        if state is None:
            state = self._new_state(brokers or 1)
        elif brokers is not None and brokers != len(state["nodes"]):
            raise StackError(
                f"Kafka: {self.dir} holds a {len(state['nodes'])}-broker cluster, not {brokers}; "
                f"use --brokers {len(state['nodes'])}, or `rcm stack down` and remove {self.dir}"
            )
        self._state = state
        self.cluster_id: str = state["cluster_id"]
        self.size = len(state["nodes"])
        self.heap = SINGLE_HEAP if self.size == 1 else CLUSTER_HEAP
        self.nodes = [
            KafkaNode(self, n["id"], n["port"], n["controller_port"]) for n in state["nodes"]
        ]
        if secure is not None and "secure_port" not in state:
            state["secure_port"] = free_port()
        self.secure_port: int | None = state.get("secure_port") if secure is not None else None

    # -- state ----------------------------------------------------------------

    def _load_state(self) -> dict | None:
        if not self.state_file.exists():
            return None
        state = json.loads(self.state_file.read_text())
        if "nodes" not in state:  # a single broker's state from before clusters
            state = {
                "cluster_id": state["cluster_id"],
                "nodes": [
                    {"id": 1, "port": state["port"], "controller_port": state["controller_port"]}
                ],
            }
        return state

    def _new_state(self, size: int) -> dict:
        return {
            # Kafka cluster ids are 16 random bytes, base64url without padding.
            "cluster_id": _cluster_id(),
            "nodes": [
                {"id": i, "port": free_port(), "controller_port": free_port()}
                for i in range(1, size + 1)
            ],
        }

    def _save_state(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(self._state))

    @property
    def bootstrap(self) -> str:
        """Every node's address: a client reaches the cluster while any one of them is up."""
        return ",".join(n.address for n in self.nodes)

    @property
    def secure_bootstrap(self) -> str | None:
        """The secure listener's address (None without one)."""
        return self.nodes[0].secure_address if self.secure is not None else None

    def node(self, node_id: int) -> KafkaNode:
        for n in self.nodes:
            if n.node_id == node_id:
                return n
        raise StackError(f"Kafka: no node {node_id} (nodes: {[n.node_id for n in self.nodes]})")

    def pid(self) -> int | None:
        """The first running node's pid (None when no node runs)."""
        return next((p for p in (n.pid() for n in self.nodes) if p), None)

    # -- lifecycle ------------------------------------------------------------

    def start(self, timeout: float = 120) -> str:
        """Start every node not running (adopting those that are); return the bootstrap list.

        The nodes start together: a node waits for a quorum of voters before it serves.
        """
        self._save_state()
        libs = ensure_jars(self.home)
        procs = {n.node_id: n.launch(libs) for n in self.nodes if not n.pid()}
        self.wait_ready(timeout, procs)
        return self.bootstrap

    def start_node(self, node_id: int, timeout: float = 120) -> None:
        """Restart one node on its data directory; return once the cluster counts it again."""
        node = self.node(node_id)
        if not node.pid():
            proc = node.launch(ensure_jars(self.home))
            self.wait_ready(timeout, {node_id: proc})

    def wait_ready(self, timeout: float, procs: dict[int, subprocess.Popen] | None = None) -> None:
        """Ready = every node answers a metadata request and the cluster counts all its brokers."""
        procs = procs or {}

        def ok() -> bool:
            for node_id, proc in procs.items():
                if proc.poll() is not None:
                    node = self.node(node_id)
                    tail = node.log_file.read_text(errors="replace")[-800:]
                    raise StackError(
                        f"Kafka node {node_id} exited during start (code {proc.returncode}): {tail}"
                    )
            return all(metadata_ok(n.address, brokers=self.size) for n in self.nodes)

        if not wait_until(ok, timeout, interval=0.5):
            logs = ", ".join(str(n.log_file) for n in self.nodes)
            raise StackError(
                f"Kafka not ready on {self.bootstrap} after {timeout:.0f}s (logs: {logs})"
            )

    def stop(self, timeout: float = 30) -> None:
        """Stop every node in turn. The last of a cluster has no quorum left to shut down
        cleanly with and would wait for one: it gets a few seconds, then SIGKILL (its log is
        recovered at the next start)."""
        for n in self.nodes:
            n.stop(timeout if n is not self.nodes[-1] or self.size == 1 else 4)

    def kill(self, node_id: int | None = None) -> None:
        """SIGKILL one node, or every node (None); data stays for a restart."""
        for n in self.nodes if node_id is None else [self.node(node_id)]:
            n.kill()

    def status(self) -> dict:
        """Per node: id, address, pid, and whether it answers with the whole cluster registered."""
        nodes = []
        for n in self.nodes:
            pid = n.pid()
            nodes.append(
                {
                    "node_id": n.node_id,
                    "address": n.address,
                    "pid": pid,
                    "ready": bool(pid) and metadata_ok(n.address, timeout=3, brokers=self.size),
                }
            )
        return {
            "bootstrap": self.bootstrap if any(x["pid"] for x in nodes) else None,
            "brokers": nodes,
            "ready": all(x["ready"] for x in nodes),
        }


async def cluster_metadata(bootstrap: str, timeout: float = 5) -> dict:
    """The cluster's brokers and controller as one node sees them (``describe_cluster``)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout)
        return await asyncio.wait_for(admin.describe_cluster(), timeout)
    finally:
        try:
            await admin.close()
        except Exception:
            pass


def metadata_ok(bootstrap: str, timeout: float = 5, brokers: int = 1) -> bool:
    """Whether ``bootstrap`` answers a metadata request that lists at least ``brokers`` brokers."""

    async def probe() -> bool:
        try:
            meta = await cluster_metadata(bootstrap, timeout)
        except Exception:
            return False
        return len(meta.get("brokers", ())) >= brokers

    # Silence aiokafka's connection-refused noise while the broker boots.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        return asyncio.run(probe())
    finally:
        logging.getLogger("aiokafka").setLevel(logging.WARNING)
