"""The local stack: a real Kafka broker and a real PostgreSQL, for demo, tests and bench.

``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL`` override each; an overridden
component is used as is and nothing local starts for it. The endpoints in use
are written to ``<run dir>/stack.json`` so service processes find them.
"""

from __future__ import annotations

import json

from rcm.localstack.kafka import KafkaBroker, metadata_ok
from rcm.localstack.postgres import Postgres
from rcm.localstack.procs import StackError
from shared.settings import ServiceSettings

__all__ = ["StackError", "up", "down", "status", "KafkaBroker", "Postgres"]


def _components(s: ServiceSettings) -> tuple[KafkaBroker, Postgres]:
    return KafkaBroker(s.run_path, s.runtime.home), Postgres(s.run_path)


def up(s: ServiceSettings) -> dict:
    """Start whatever is not overridden; return {'kafka': ..., 'postgres': ...}."""
    s.run_path.mkdir(parents=True, exist_ok=True)
    kafka, pg = _components(s)
    endpoints = {
        "kafka": s.connections.kafka_bootstrap_servers or kafka.start(),
        "postgres": s.connections.database_url or pg.start(),
    }
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
    kafka, pg = _components(s)
    errors = []
    for name, stop in (("kafka", kafka.stop), ("postgres", pg.stop)):
        try:
            stop()
        except StackError as e:  # stop the other one all the same
            errors.append(f"{name}: {e}")
    s.stack_file().unlink(missing_ok=True)
    if errors:
        raise StackError("; ".join(errors))


def status(s: ServiceSettings) -> dict:
    kafka, pg = _components(s)
    out = {}
    if s.connections.kafka_bootstrap_servers:
        out["kafka"] = {"external": s.connections.kafka_bootstrap_servers}
    else:
        pid = kafka.pid()
        out["kafka"] = {
            "pid": pid,
            "bootstrap": kafka.bootstrap if pid else None,
            "ready": bool(pid) and metadata_ok(kafka.bootstrap, timeout=3),
        }
    if s.connections.database_url:
        out["postgres"] = {"external": "DATABASE_URL"}
    else:
        pid = pg.pid()
        out["postgres"] = {"pid": pid, "dsn": pg.dsn if pid else None, "ready": bool(pid)}
    return out
