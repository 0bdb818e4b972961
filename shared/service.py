"""Running one service process: the composition every service shares.

A service describes itself with a ``ServiceSpec`` (schema, consumed topics,
batch handler, HTTP API, background loops); ``run`` builds the resources in
order (telemetry, pool + migrations, topics, producer, relay, broker, HTTP) and
tears them down on SIGTERM/SIGINT. Nothing connects at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import asyncpg

from shared import db, kafka, logs, messaging, telemetry
from shared.consumer import BatchApplier, Handler
from shared.lifecycle import wait_stopped
from shared.metrics import METRICS, gauge_loop
from shared.relay import OutboxRelay
from shared.settings import ServiceSettings

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


async def run(
    spec: ServiceSpec, settings: ServiceSettings, ready: asyncio.Event | None = None
) -> None:
    profiler = _start_profiler(spec.name)
    try:
        await _run(spec, settings, ready)
    finally:
        if profiler is not None:
            _write_profile(profiler, spec.name, settings)


def _start_profiler(name: str):
    """A statistical profile of this process when RCM_PROFILE_SERVICES names it (pyinstrument, dev extra)."""
    import os

    if name not in os.environ.get("RCM_PROFILE_SERVICES", "").split(","):
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
    spec: ServiceSpec, settings: ServiceSettings, ready: asyncio.Event | None = None
) -> None:
    logs.configure(spec.name, settings.telemetry.rcm_log_level)
    provider = telemetry.setup_tracing(
        spec.name,
        otlp_endpoint=settings.telemetry.otel_exporter_otlp_endpoint,
        jsonl_path=settings.traces_file,
    )
    if settings.telemetry.rcm_metrics_port:
        METRICS.serve(settings.telemetry.rcm_metrics_port, spec.name)
    pool = await db.create_pool(settings.dsn, max_size=spec.pool_size)
    stop = asyncio.Event()
    producer = None
    broker = None
    tasks: list[asyncio.Task] = []
    try:
        async with pool.acquire() as conn:
            await db.migrate(conn, spec.schema, spec.package_dir)
        bootstrap = settings.kafka_servers
        await kafka.ensure_topics(bootstrap, partitions=settings.consumer.partitions)
        producer = await kafka.start_producer(bootstrap)
        relay = OutboxRelay(pool, spec.schema, producer)
        rt = Runtime(settings=settings, pool=pool, relay=relay, stop=stop, on_commit=[relay.notify])
        if spec.build_context:
            rt.context = await spec.build_context(rt)
        _settle_heap()
        tasks.append(asyncio.create_task(relay.run(stop), name="outbox-relay"))
        if settings.telemetry.rcm_metrics_port:
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
            broker = kafka.make_broker(bootstrap, client_id=f"rcm-{spec.name}")
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
            server = _http_server(spec.api(rt), settings)
            tasks.append(asyncio.create_task(server.serve(), name="http"))
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


def _http_server(app, settings: ServiceSettings):
    import uvicorn

    from shared import http

    config = uvicorn.Config(
        http.harden(app, settings),  # access log, body limit, value-free 4xx/5xx, docs policy
        host=settings.http.host,
        port=settings.http.port,
        log_level="warning",
        lifespan="off",
        access_log=False,  # shared.http's JSON access log replaces uvicorn's
        log_config=None,  # uvicorn's own error lines go through the JSON log, not raw tracebacks
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # we own SIGTERM/SIGINT
    return server


def _install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
