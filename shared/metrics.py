"""Metrics through OpenTelemetry, exposed as a Prometheus endpoint (``RCM_METRICS_PORT``).

Counters and the batch-latency histogram are recorded as work happens; gauges
(consumer lag, outbox backlog, DLQ count, work-queue depth per site, claims by
state) come from a snapshot refreshed in the background (``gauge_loop``).
"""

from __future__ import annotations

import asyncio
import logging

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from shared.lifecycle import wait_stopped

_log = logging.getLogger("rcm.metrics")


class Metrics:
    def __init__(self) -> None:
        self.snapshot: dict = {}
        self._meter = None

    def _m(self):
        if self._meter is None:
            meter = metrics.get_meter("rcm")
            self.events = meter.create_counter("rcm_events_processed", description="Events applied")
            self.failures = meter.create_counter(
                "rcm_batches_failed", description="Batches redelivered after an error"
            )
            self.dead = meter.create_counter(
                "rcm_dead_letters_written", description="Messages sent to a DLQ"
            )
            self.latency = meter.create_histogram(
                "rcm_batch_seconds", unit="s", description="Batch handling time"
            )
            meter.create_observable_gauge(
                "rcm_consumer_lag", [self._lag], description="Uncommitted messages"
            )
            meter.create_observable_gauge("rcm_outbox_backlog", [self._scalar("outbox_backlog")])
            meter.create_observable_gauge("rcm_dead_letters", [self._scalar("dead_letters")])
            meter.create_observable_gauge(
                "rcm_work_queue_depth", [self._per("work_queue_depth", "site_id")]
            )
            meter.create_observable_gauge("rcm_claims", [self._per("claims_by_state", "state")])
            self._meter = meter
        return self._meter

    def processed(self, service: str, records, seconds: float, dead: int = 0) -> None:
        self._m()
        by_topic: dict[str, int] = {}
        for r in records:
            by_topic[r.topic] = by_topic.get(r.topic, 0) + 1
        for topic, n in by_topic.items():
            self.events.add(n, {"service": service, "topic": topic})
        self.latency.record(seconds, {"service": service})
        if dead:
            self.dead.add(dead, {"service": service})

    def failed(self, service: str, n: int) -> None:
        self._m()
        self.failures.add(1, {"service": service})

    def _scalar(self, key: str):
        def cb(options: CallbackOptions):
            if key in self.snapshot:
                yield Observation(self.snapshot[key], {"service": self.snapshot.get("service", "")})

        return cb

    def _per(self, key: str, label: str):
        def cb(options: CallbackOptions):
            for k, v in (self.snapshot.get(key) or {}).items():
                yield Observation(v, {"service": self.snapshot.get("service", ""), label: k})

        return cb

    def _lag(self, options: CallbackOptions):
        if "consumer_lag" in self.snapshot:
            yield Observation(
                self.snapshot["consumer_lag"], {"group": f"rcm-{self.snapshot.get('service', '')}"}
            )

    def serve(self, port: int, service: str, host: str = "127.0.0.1") -> None:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.resources import Resource
        from prometheus_client import start_http_server

        reader = PrometheusMetricReader()
        metrics.set_meter_provider(
            MeterProvider(
                resource=Resource.create({"service.name": f"rcm-{service}"}),
                metric_readers=[reader],
            )
        )
        self._meter = None
        self._m()
        start_http_server(port, addr=host)


METRICS = Metrics()


async def gauge_loop(
    pool, schema: str, service: str, bootstrap: str, stop: asyncio.Event, every: float = 5
) -> None:
    """Refresh the gauges' snapshot (own schema + own consumer group's lag)."""
    from shared.ops import group_lag, schema_snapshot

    while not stop.is_set():
        try:
            async with pool.acquire() as conn:
                snap = await schema_snapshot(conn, schema)
            snap["consumer_lag"] = (await group_lag(bootstrap, [f"rcm-{service}"]))[
                f"rcm-{service}"
            ]
            snap["service"] = service
            METRICS.snapshot = snap
        except Exception as e:  # an outage: keep the last values
            _log.debug("metrics snapshot failed: %s", type(e).__name__)
        await wait_stopped(stop, every)
