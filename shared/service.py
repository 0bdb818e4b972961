"""Running one service process: the composition every service shares.

A service describes itself with a ``ServiceSpec`` (schema, consumed topics,
batch handler, HTTP API, background loops); ``run`` builds the resources in
order (telemetry, pool + migrations, topics unless RCM_KAFKA_CREATE_TOPICS=false, producer,
relay, broker, HTTP) and tears them down on SIGTERM/SIGINT. Nothing connects at import time.

Access (docs/security.md): one ``Authenticator`` per process (``Runtime.auth``)
verifies every request's bearer token; routes declare their roles with
``requires(...)``; ``Runtime.identity`` is the token this service sends when it
calls another rcm service (role ``service``); ``audit_router`` answers auditors.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import asyncpg
import httpx
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request

from shared import audit, db, kafka, logs, messaging, telemetry
from shared.auth import ROLES, Authenticator, DevSigner, Principal
from shared.consumer import BatchApplier, Handler
from shared.lifecycle import wait_stopped
from shared.metrics import METRICS, gauge_loop
from shared.relay import OutboxRelay
from shared.settings import (
    ConfigurationError,
    ServiceIdentitySettings,
    ServiceSettings,
    is_secure_url,
)

_log = logging.getLogger("rcm.service")


C = TypeVar("C")


@dataclass
class Runtime(Generic[C]):
    """Resources built at start-up and handed to handlers, APIs and loops.

    ``context`` is the service's own typed context (reference data, wake-up events), built once
    by its spec's ``build_context``; ``None`` for a service that needs none.
    """

    settings: ServiceSettings
    pool: asyncpg.Pool
    relay: OutboxRelay
    stop: asyncio.Event
    context: C = None  # type: ignore[assignment]
    # Called after each consumed batch commits (the relay publishes the new outbox
    # rows; billing's file writer writes the new 837s) instead of waiting for a poll.
    on_commit: list[Callable[[], None]] = field(default_factory=list)
    # Verifies bearer tokens: one per process, so its key cache and revocation list are shared
    # by every route. Built from ``settings`` when not given.
    auth: Authenticator = None  # type: ignore[assignment]
    # The token this service sends when it calls another rcm service. Built from ``settings``.
    identity: ServiceIdentity = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.settings is None:
            return
        if self.auth is None:
            self.auth = Authenticator.from_settings(self.settings)
        if self.identity is None:
            self.identity = ServiceIdentity.build(self.settings)

    def committed(self) -> None:
        for hook in self.on_commit:
            hook()


@dataclass
class ServiceSpec:
    name: str
    schema: str
    package_dir: Path  # holds migrations/
    settings: type[ServiceSettings] = (
        ServiceSettings  # the class `rcm serve` reads the environment with
    )
    topics: list[str] = field(default_factory=list)
    handler: Callable[[Runtime], Handler] | None = None  # built once the runtime exists
    api: Callable[[Runtime], Any] | None = None  # returns a FastAPI app
    loops: list[Callable[[Runtime], Awaitable[None]]] = field(default_factory=list)
    # Builds the runtime's typed context after the pool and relay exist, before anything consumes.
    build_context: Callable[[Runtime], Awaitable[Any]] | None = None
    pool_size: int = 5
    # Records per micro-batch: bigger amortises transactions, smaller bounds latency
    # for CPU-heavy handlers (coding). RCM_CONSUMER_MAX_RECORDS overrides it.
    max_records: int = 500
    # False for a service that neither consumes nor emits events (the workbench): no topics
    # checked, no producer, no outbox relay, no /ops/status (it has no pipeline state).
    kafka: bool = True


async def run(
    spec: ServiceSpec,
    settings: ServiceSettings,
    ready: asyncio.Event | None = None,
    *,
    reuse_port: bool = False,
) -> None:
    """Serve until SIGTERM/SIGINT. ``reuse_port``: bind the HTTP port with SO_REUSEPORT, as one
    of ``run_workers``' processes sharing it (the kernel spreads connections among them)."""
    profiler = _start_profiler(spec.name, settings)
    try:
        await _run(spec, settings, ready, reuse_port)
    finally:
        if profiler is not None:
            _write_profile(profiler, spec.name, settings)


def _start_profiler(name: str, settings: ServiceSettings):
    """A statistical profile of this process when RCM_PROFILE_SERVICES names it (pyinstrument, dev extra)."""
    if not settings.runtime.profiles(name):
        return None
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.002, async_mode="disabled")
    profiler.start()
    return profiler


def _write_profile(profiler, name: str, settings: ServiceSettings) -> None:
    import os

    profiler.stop()
    out = settings.run_path / "profiles" / f"{name}-{os.getpid()}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(profiler.output_text(show_all=False))


async def _run(
    spec: ServiceSpec,
    settings: ServiceSettings,
    ready: asyncio.Event | None = None,
    reuse_port: bool = False,
) -> None:
    logs.configure(spec.name, settings.telemetry.rcm_log_level)
    provider = telemetry.setup_tracing(
        spec.name,
        otlp_endpoint=settings.telemetry.otel_exporter_otlp_endpoint,
        jsonl_path=settings.traces_file,
        zipkin_endpoint=settings.zipkin_endpoint,
    )
    if settings.telemetry.rcm_metrics_port:
        METRICS.serve(
            settings.telemetry.rcm_metrics_port, spec.name, settings.telemetry.rcm_metrics_host
        )
    # Token checks first: an unusable key or revocation setting stops the start, naming it.
    authenticator = Authenticator.from_settings(settings)
    identity = ServiceIdentity.build(settings)
    # Migrations first, as the schema's owner when one is configured (RCM_DB_OWNER_URL); it
    # grants the tables to the service's own role, which everything else connects as.
    await db.migrate_as_owner(settings.owner_dsn, settings.dsn, spec.schema, spec.package_dir)
    pool = await db.create_pool(settings.dsn, max_size=spec.pool_size)
    # PHI reads' audit records: group commit on a connection of its own (shared.audit.read)
    appender = audit.start_appender(spec.schema, lambda: db.connect(settings.dsn))
    stop = asyncio.Event()
    producer = None
    broker = None
    tasks: list[asyncio.Task] = []
    try:
        if spec.topics and not spec.kafka:
            raise ValueError(f"{spec.name} consumes topics but says it uses no Kafka")
        bootstrap = settings.kafka_servers if spec.kafka else ""
        if spec.kafka and settings.kafka_topics.create_topics:
            await kafka.ensure_topics(
                bootstrap, partitions=settings.consumer.partitions, security=settings.kafka
            )
        # RCM_KAFKA_CREATE_TOPICS=false: the platform owns the topics (Helm: Strimzi KafkaTopics).
        if spec.kafka:
            producer = await kafka.start_producer(bootstrap, security=settings.kafka)
        relay = OutboxRelay(pool, spec.schema, producer)  # type: ignore[arg-type]
        rt = Runtime(
            settings=settings,
            pool=pool,
            relay=relay,
            stop=stop,
            on_commit=[relay.notify],
            auth=authenticator,
            identity=identity,
        )
        if spec.build_context:
            rt.context = await spec.build_context(rt)
        _settle_heap()
        if spec.kafka:
            tasks.append(asyncio.create_task(relay.run(stop), name="outbox-relay"))
        if settings.telemetry.rcm_metrics_port and spec.kafka:
            tasks.append(
                asyncio.create_task(
                    gauge_loop(pool, spec.schema, spec.name, bootstrap, stop), name="gauges"
                )
            )
        if spec.topics:
            tasks.append(
                asyncio.create_task(
                    _inbox_pruning(pool, spec.schema, settings.consumer.inbox_retention_days, stop),
                    name="inbox-pruning",
                )
            )
        for loop in spec.loops:
            tasks.append(
                asyncio.create_task(
                    _guarded(loop, rt, stop), name=getattr(loop, "__name__", "loop")
                )
            )
        if spec.topics and spec.handler is not None:
            handler = spec.handler(rt)
            broker = kafka.make_broker(
                bootstrap, client_id=f"rcm-{spec.name}", security=settings.kafka
            )
            applier = BatchApplier(
                service=spec.name,
                schema=spec.schema,
                pool=pool,
                handler=handler,
                on_commit=rt.committed,
            )
            kafka.subscribe_batch(
                broker,
                spec.topics,
                group_id=f"rcm-{spec.name}",
                handler=applier,
                max_records=settings.consumer.max_records or spec.max_records,
                batch_timeout_ms=settings.consumer.batch_timeout_ms,
                fetch_min_bytes=settings.consumer.fetch_min_bytes,
                fetch_max_wait_ms=settings.consumer.fetch_max_wait_ms,
            )
            await broker.start()
        server = None
        if spec.api is not None and settings.http.port is not None:
            server = _http_server(http_app(spec, rt), settings)
            sockets = (
                [shared_port_socket(settings.http.host, settings.http.port)] if reuse_port else None
            )
            tasks.append(asyncio.create_task(server.serve(sockets=sockets), name="http"))
        _install_signal_handlers(stop)
        logs.log(_log, logging.INFO, "service started", service=spec.name)
        if ready is not None:
            ready.set()
        await stop.wait()
        if server is not None:
            server.should_exit = True
    finally:
        stop.set()
        if broker is not None:
            with contextlib.suppress(Exception):
                await broker.stop()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()
        await audit.stop_appender(appender)
        await pool.close()
        provider.shutdown()


async def _inbox_pruning(
    pool: asyncpg.Pool,
    schema: str,
    retention_days: int,
    stop: asyncio.Event,
    every: float = 3600,
    first: float = 60,
) -> None:
    """Hourly (a minute after start), delete inbox rows past their retention, a chunk per transaction."""
    wait = first
    while not await wait_stopped(stop, wait):
        wait = every
        try:
            while not stop.is_set():
                async with pool.acquire() as conn:
                    if await messaging.prune_inbox(conn, schema, retention_days) == 0:
                        break
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:  # try again next time
            logs.log(
                _log,
                logging.WARNING,
                "inbox pruning failed",
                error_type=type(e).__name__,
                component=schema,
            )


def _settle_heap() -> None:
    """Keep the cyclic garbage collector off the hot path.

    What start-up built (modules, code sets, the coding engine's term index: hundreds of
    thousands of objects) lives as long as the process; frozen, full collections stop
    walking it. A consumed batch allocates thousands of short-lived objects, so young
    collections run every 10,000 allocations instead of every 700.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


async def _guarded(loop, rt: Runtime, stop: asyncio.Event) -> None:
    """Keep a background loop alive across transient failures."""
    while not stop.is_set():
        try:
            await loop(rt)
            return
        except asyncio.CancelledError:
            raise
        except Exception as e:
            logs.log(
                _log,
                logging.WARNING,
                "background loop failed; restarting",
                component=getattr(loop, "__name__", "loop"),
                error_type=type(e).__name__,
            )
            await asyncio.sleep(1)


def http_app(spec: ServiceSpec, rt: Runtime) -> FastAPI:
    """The service's HTTP app as it is served: its routes, hardened (access log, body limit,
    value-free 4xx/5xx, no docs in production)."""
    from shared import http, ops

    if spec.api is None:
        raise ValueError(f"{spec.name} has no HTTP API")
    app = spec.api(rt)
    if spec.kafka:  # GET /ops/status: lag, dead letters, backlogs of this service
        status = ops.OpsStatus(
            spec.name, spec.schema, rt.pool, rt.settings, consumes=bool(spec.topics)
        )
        app.include_router(ops.ops_router(status, rt.auth))
    return http.harden(app, rt.settings)


def _http_server(app, settings: ServiceSettings):
    import ssl

    import uvicorn

    cert, key = settings.http.tls_cert_file, settings.http.tls_key_file
    if cert is not None and key is not None:  # refused at start, naming the setting
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(str(cert), str(key))
        except (OSError, ssl.SSLError) as e:
            raise ConfigurationError(
                f"RCM_HTTP_TLS_CERT_FILE / RCM_HTTP_TLS_KEY_FILE unusable ({type(e).__name__})"
            ) from e

    config = uvicorn.Config(
        app,
        host=settings.http.host,
        port=settings.http.port,
        log_level="warning",
        lifespan="off",
        access_log=False,  # shared.http's JSON access log replaces uvicorn's
        log_config=None,  # uvicorn's own error lines go through the JSON log, not raw tracebacks
        # HTTPS when RCM_HTTP_TLS_CERT_FILE / RCM_HTTP_TLS_KEY_FILE are set (both or neither).
        ssl_certfile=str(settings.http.tls_cert_file) if settings.http.tls_cert_file else None,
        ssl_keyfile=str(settings.http.tls_key_file) if settings.http.tls_key_file else None,
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # we own SIGTERM/SIGINT
    return server


def shared_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound with SO_REUSEPORT: every worker binds its own, and Linux hands each
    new connection to one of the listening workers (evenly, by the connection's addresses)."""
    if not sys.platform.startswith("linux"):  # elsewhere the option exists but does not balance
        raise ConfigurationError("RCM_HTTP_WORKERS above 1 needs Linux (SO_REUSEPORT)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


WORKER_STOP_GRACE_SECONDS = 30.0


def run_workers(
    name: str, commands: list[list[str]], grace: float = WORKER_STOP_GRACE_SECONDS
) -> int:
    """Run one process per command (each a full copy of the service) until SIGTERM/SIGINT.

    SIGTERM/SIGINT is passed on as SIGTERM to every worker, which stops as a single process
    does; one still running after ``grace`` seconds is killed. A worker that exits on its own
    (a crash, a failed start) is logged, the others are stopped, and this returns non-zero: the
    supervisor (systemd, Kubernetes, compose) restarts the whole unit and counts the restart,
    as it would for a single process; restarting workers here would hide a crash loop. The
    exit status is 0 only when every worker stopped cleanly after a signal.
    """
    stopping = False

    def stop(*_) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    workers: list[subprocess.Popen] = []
    died: tuple[int, int] | None = None
    try:
        for command in commands:
            if stopping:
                break
            workers.append(subprocess.Popen(command))  # noqa: S603 - our own interpreter and argv
        logs.log(_log, logging.INFO, "workers started", service=name, count=len(workers))
        while not stopping and died is None:
            for index, worker in enumerate(workers):
                if worker.poll() is not None:
                    died = (index, worker.returncode)
                    break
            else:
                time.sleep(0.2)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for worker in workers:
            try:
                worker.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if died is not None and not stopping:  # (a worker stopped by the same Ctrl-C is no crash)
        index, status = died
        logs.log(
            _log,
            logging.ERROR,
            "worker exited; the others were stopped",
            service=name,
            instance=index,
            status=status,
        )
        return status if status > 0 else 1
    return 0 if all(w.returncode == 0 for w in workers) else 1


def _install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


# --------------------------------------------------------------------------- HTTP access


def service_app(rt: Runtime, title: str) -> FastAPI:
    """A service's FastAPI app: ``/health`` (the only route open without a token) and the
    runtime, which ``requires`` and ``audit_router`` take the authenticator and pool from."""
    from shared.http import TELEMETRY, add_health

    app = FastAPI(title=title, version="1", telemetry=TELEMETRY)
    app.state.rcm_runtime = rt
    add_health(app, rt.pool)
    return app


def requires(*roles: str) -> Any:
    """FastAPI dependency of a route: the caller, if one of ``roles`` (401 without a valid
    token, 403 for another role). ``rt.auth.require(*roles)`` of the app's runtime, for
    routers declared at module level."""
    if not roles:
        raise ValueError("name the roles a route is for")
    if unknown := set(roles) - set(ROLES):
        raise ValueError(f"unknown roles: {sorted(unknown)}")
    checks: dict[int, Callable[[Request], Awaitable[Principal]]] = {}

    async def caller(request: Request) -> Principal:
        auth: Authenticator = request.app.state.rcm_runtime.auth
        check = checks.get(id(auth))
        if check is None:
            check = checks[id(auth)] = auth.require(*roles).dependency
        return await check(request)

    return Depends(caller)


def audit_router(schema: str) -> APIRouter:
    """``GET /audit``: the service's audit records for auditors, itself recorded.

    Filters as ``rcm audit query`` (user, account, since; one at least). An auditor of some
    sites sees the records of those sites only (a page may then hold fewer than ``limit``).
    """
    router = APIRouter()

    @router.get("/audit")
    async def audit_records(
        request: Request,
        p: Principal = requires("auditor"),
        user: str | None = Query(None, max_length=200),
        account: str | None = Query(None, max_length=200),
        since: datetime | None = None,
        limit: int = Query(100, gt=0, le=1000),
    ):
        if not (user or account or since):
            raise HTTPException(422, "give user, account or since")
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)  # as rcm audit query reads it
        filters = [
            f"{name}={value.isoformat() if isinstance(value, datetime) else value}"
            for name, value in (("user", user), ("account", account), ("since", since))
            if value
        ]
        pool: asyncpg.Pool = request.app.state.rcm_runtime.pool
        async with pool.acquire() as conn, conn.transaction():
            rows = await audit.query(
                conn, schema, user=user, account=account, since=since, limit=limit
            )
            await audit.record(conn, schema, request, p, "read", "audit_record", filters)
        shown = [r for r in rows if p.all_sites or r["site_id"] in p.sites]
        return [
            {k: v.isoformat() if isinstance(v, datetime) else v for k, v in r.items()}
            | {"resource_ids": list(r["resource_ids"])}
            for r in shown
        ]

    return router


# --------------------------------------------------------------------------- service identity


class ServiceCredentialsError(RuntimeError):
    """No token for calling another service; the message names the settings (no secrets)."""


REFRESH_MARGIN_SECONDS = 60.0  # a token is replaced this long before it expires
DEV_SERVICE_TOKEN_SECONDS = 600


class ServiceIdentity:
    """The bearer token of ``service:<name>`` (role ``service``, every site), kept fresh."""

    def __init__(
        self,
        subject: str,
        settings: ServiceSettings,
        credentials: ServiceIdentitySettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.subject = subject
        self.settings = settings
        self.credentials = credentials
        self.transport = transport
        self._token: str | None = None
        self._until = 0.0  # time.time() after which the token is replaced
        self._file_stamp: tuple | None = None
        self._lock: asyncio.Lock | None = None

    @classmethod
    def build(cls, settings: ServiceSettings, **kw) -> ServiceIdentity:
        credentials = ServiceIdentitySettings()
        if credentials.client_id and credentials.client_secret is None:
            raise ConfigurationError(
                "RCM_SERVICE_CLIENT_ID is set without RCM_SERVICE_CLIENT_SECRET"
            )
        if credentials.token_url and not is_secure_url(credentials.token_url):
            raise ConfigurationError("RCM_SERVICE_TOKEN_URL must be an https URL")
        return cls(f"service:{settings.service_name}", settings, credentials, **kw)

    async def headers(self, request_id: str | None = None) -> dict[str, str]:
        """Authorization (and the caller's request id, so both access logs name one request)."""
        out = {"authorization": f"Bearer {await self.token()}"}
        if request_id:
            out["x-request-id"] = request_id
        return out

    async def token(self) -> str:
        """A token valid for at least another minute; ServiceCredentialsError without a source."""
        c = self.credentials
        if c.token_file is not None:
            return self._from_file(c.token_file)
        if self._token is not None and time.time() < self._until:
            return self._token
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._token is None or time.time() >= self._until:
                if c.client_id:
                    self._token, lifetime = await self._client_credentials()
                elif self.settings.runtime.env != "production":
                    self._token, lifetime = self._development(), DEV_SERVICE_TOKEN_SECONDS
                else:
                    raise ServiceCredentialsError(
                        f"{self.subject} has no credentials for calling other services: set "
                        "RCM_SERVICE_CLIENT_ID and RCM_SERVICE_CLIENT_SECRET, or RCM_SERVICE_TOKEN_FILE"
                    )
                self._until = time.time() + max(lifetime - REFRESH_MARGIN_SECONDS, lifetime / 2)
            return self._token

    def _development(self) -> str:
        signer = DevSigner.build(self.settings.auth, self.settings.runtime)
        return signer.sign(self.subject, ["service"], ["*"], DEV_SERVICE_TOKEN_SECONDS)

    def _from_file(self, path: Path) -> str:
        try:
            st = path.stat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            if stamp != self._file_stamp or self._token is None:
                self._token = path.read_text().strip() or None
                self._file_stamp = stamp
        except (OSError, UnicodeDecodeError) as e:
            raise ServiceCredentialsError(
                f"RCM_SERVICE_TOKEN_FILE unreadable ({type(e).__name__})"
            ) from e
        if self._token is None:
            raise ServiceCredentialsError("RCM_SERVICE_TOKEN_FILE is empty")
        return self._token

    async def _client_credentials(self) -> tuple[str, float]:
        """An access token from the issuer (client_secret_basic); its lifetime in seconds."""
        c = self.credentials
        secret = c.client_secret.get_secret_value() if c.client_secret else ""
        try:
            async with httpx.AsyncClient(
                timeout=10, follow_redirects=False, transport=self.transport
            ) as client:
                url = c.token_url or await self._token_endpoint(client)
                form = {"grant_type": "client_credentials"}
                if c.scope:
                    form["scope"] = c.scope
                r = await client.post(url, data=form, auth=(c.client_id or "", secret))
                r.raise_for_status()
                body = r.json()
                return str(body["access_token"]), float(body.get("expires_in", 300))
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as e:
            raise ServiceCredentialsError(
                f"no service token from the identity provider ({type(e).__name__})"
            ) from e

    async def _token_endpoint(self, client: httpx.AsyncClient) -> str:
        issuer = self.settings.auth.issuer.rstrip("/")
        r = await client.get(issuer + "/.well-known/openid-configuration")
        r.raise_for_status()
        url = str(r.json()["token_endpoint"])
        if not is_secure_url(url):
            raise ValueError("token_endpoint is not https")
        return url
