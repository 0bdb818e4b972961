"""The local stack: a real Kafka (one broker, or a replicated cluster) and a real PostgreSQL,
for demo, tests and bench; optionally a trace viewer (Zipkin).

``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL`` override each; an overridden
component is used as is and nothing local starts for it. The endpoints in use
are written to ``<run dir>/stack.json`` so service processes find them:
``kafka`` (the bootstrap list of every broker), ``postgres`` and, when the viewer
runs, ``zipkin`` (its base URL).
"""

from __future__ import annotations

import json

from rcm.localstack.kafka import KafkaCluster
from rcm.localstack.postgres import Postgres
from rcm.localstack.procs import StackError
from rcm.localstack.zipkin import Zipkin
from shared.settings import ServiceSettings

__all__ = ["StackError", "up", "down", "status", "KafkaCluster", "Postgres", "Zipkin"]


def kafka_cluster(s: ServiceSettings, brokers: int | None = None) -> KafkaCluster:
    """The run dir's Kafka; ``brokers`` None: as many brokers as it already holds, else 1."""
    return KafkaCluster(s.run_path, s.runtime.home, brokers)


def up(s: ServiceSettings, brokers: int | None = None, traces: bool = False) -> dict:
    """Start whatever is not overridden; return {'kafka': ..., 'postgres': ...[, 'zipkin': ...]}.

    ``brokers``: Kafka nodes (3 for a replicated cluster); ``traces``: start the trace viewer.
    A viewer already running for this run dir is kept and listed.
    """
    s.run_path.mkdir(parents=True, exist_ok=True)
    if brokers is not None and s.connections.kafka_bootstrap_servers:
        raise StackError(
            "--brokers sets up the local Kafka; KAFKA_BOOTSTRAP_SERVERS points elsewhere"
        )
    pg, zipkin = Postgres(s.run_path), Zipkin(s.run_path, s.runtime.home)
    kafka = None if s.connections.kafka_bootstrap_servers else kafka_cluster(s, brokers)
    endpoints = {
        "kafka": s.connections.kafka_bootstrap_servers or kafka.start(),
        "postgres": s.connections.database_url or pg.start(),
    }
    if traces or zipkin.pid():
        endpoints["zipkin"] = zipkin.start()
    s.stack_file().write_text(json.dumps(endpoints))
    return endpoints


def stop_services(s: ServiceSettings) -> int:
    """Stop service processes started for this run dir (demo, bench) that outlived their starter."""
    from rcm.localstack.procs import pid_alive, read_pid, stop_pid

    stopped = 0
    for pid_file in sorted((s.run_path / "services").glob("*.pid")):
        pid = read_pid(pid_file)
        if pid and pid_alive(pid):
            stop_pid(pid, 20)
            stopped += 1
        pid_file.unlink(missing_ok=True)
    return stopped


def down(s: ServiceSettings) -> None:
    stop_services(s)
    errors = []
    for name, component in (
        ("kafka", kafka_cluster(s)),
        ("postgres", Postgres(s.run_path)),
        ("zipkin", Zipkin(s.run_path, s.runtime.home)),
    ):
        try:
            component.stop()
        except StackError as e:  # stop the others all the same
            errors.append(f"{name}: {e}")
    s.stack_file().unlink(missing_ok=True)
    if errors:
        raise StackError("; ".join(errors))


def status(s: ServiceSettings) -> dict:
    """Each component: pid(s), address and readiness; Kafka per broker."""
    out = {}
    if s.connections.kafka_bootstrap_servers:
        out["kafka"] = {"external": s.connections.kafka_bootstrap_servers}
    else:
        kafka = kafka_cluster(s)
        out["kafka"] = {"pid": kafka.pid(), **kafka.status()}
    if s.connections.database_url:
        out["postgres"] = {"external": "DATABASE_URL"}
    else:
        pg = Postgres(s.run_path)
        pid = pg.pid()
        out["postgres"] = {"pid": pid, "dsn": pg.dsn if pid else None, "ready": bool(pid)}
    zipkin = Zipkin(s.run_path, s.runtime.home)
    if zipkin.pid():
        out["zipkin"] = zipkin.status()
    return out
