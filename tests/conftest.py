"""Shared fixtures: the real local stack (Kafka + PostgreSQL) and the running services.

The stack is started once per test session in its own run directory
(``RCM_TEST_RUN_DIR`` or a temporary one), unless KAFKA_BOOTSTRAP_SERVERS and
DATABASE_URL point at existing ones. With ``RCM_TEST_STACK=containers`` and a
reachable Docker engine, testcontainers' Kafka and Postgres are used instead.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"


def _run_dir() -> Path:
    path = os.environ.get("RCM_TEST_RUN_DIR")
    if path:
        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        return p
    return Path(tempfile.mkdtemp(prefix="rcm-test-"))


@pytest.fixture(scope="session")
def run_dir() -> Path:
    return _run_dir()


def _containers():  # pragma: no cover - only where a Docker engine exists
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    kafka = KafkaContainer().start()
    pg = PostgresContainer("postgres:18").start()
    dsn = pg.get_connection_url().replace("postgresql+psycopg2", "postgresql")
    return {"kafka": kafka.get_bootstrap_server(), "postgres": dsn}, lambda: (
        kafka.stop(),
        pg.stop(),
    )


@pytest.fixture(scope="session")
def stack_endpoints(run_dir: Path):
    """Endpoints of a real Kafka broker and PostgreSQL for this session."""
    from rcm import localstack as stack
    from shared.settings import ConnectionSettings, RuntimeSettings, ServiceSettings

    if os.environ.get("RCM_TEST_STACK") == "containers":
        endpoints, stop = _containers()
        yield endpoints
        stop()
        return
    settings = ServiceSettings(
        runtime=RuntimeSettings(run_dir=run_dir), connections=ConnectionSettings()
    )
    endpoints = stack.up(settings)
    yield endpoints
    stack.down(settings)


def stack_settings(run_dir: Path, endpoints: dict):
    """Settings of the services on a stack: its broker and database, mailboxes in ``run_dir``."""
    from shared.settings import (
        ConnectionSettings,
        MailboxSettings,
        RuntimeSettings,
        ServiceSettings,
    )

    return ServiceSettings(
        runtime=RuntimeSettings(run_dir=run_dir),
        connections=ConnectionSettings(
            kafka_bootstrap_servers=endpoints["kafka"],
            database_url=endpoints["postgres"],
        ),
        mailbox=MailboxSettings(
            outbound=run_dir / "mailbox" / "outbound",
            inbound=run_dir / "mailbox" / "inbound",
            poll_seconds=0.2,
        ),
    )


@pytest.fixture(scope="session")
def settings(run_dir: Path, stack_endpoints):
    return stack_settings(run_dir, stack_endpoints)


class Pipeline:
    """The service processes running against the session's stack."""

    def __init__(self, settings, endpoints, supervisor):
        self.settings = settings
        self.endpoints = endpoints
        self.supervisor = supervisor
        coding = supervisor.by_name("coding")[0]
        self.coding_url = f"http://127.0.0.1:{coding.http_port}"
        self.intake_url = f"http://127.0.0.1:{supervisor.by_name('intake')[0].http_port}"
        self.billing_url = f"http://127.0.0.1:{supervisor.by_name('billing')[0].http_port}"
        self.payments_url = f"http://127.0.0.1:{supervisor.by_name('payments')[0].http_port}"
        self.dsn = endpoints["postgres"]

    def token(self, user="tester", role="coder", sites=("*",)) -> str:
        from shared.auth import issue

        return issue(self.settings.auth.token_secret, user, role, list(sites))

    @property
    def intake_headers(self) -> dict[str, str]:
        """What an EHR feed (an integration identity of every site) sends with its encounters."""
        return {"authorization": f"Bearer {self.token('ehr-feed', 'integration')}"}


@contextmanager
def running_pipeline(settings, endpoints: dict, extra_env: dict[str, str] | None = None):
    """Every service and the payer simulator on the stack, healthy; stopped on exit."""
    import asyncio

    from rcm.cli.demo import start_services, wait_http
    from shared.kafka import ensure_topics

    asyncio.run(ensure_topics(endpoints["kafka"]))
    sup = start_services(
        settings, endpoints, extra_env={"RCM_LOG_LEVEL": "INFO", **(extra_env or {})}
    )
    try:
        p = Pipeline(settings, endpoints, sup)
        for url in (p.intake_url, p.coding_url, p.billing_url, p.payments_url):
            asyncio.run(wait_http(url + "/health", sup))
        yield p
    finally:
        sup.stop_all()


@pytest.fixture(scope="session")
def pipeline(settings, stack_endpoints):
    with running_pipeline(settings, stack_endpoints) as p:
        yield p
