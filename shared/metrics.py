"""Process metrics, exposed on a Prometheus endpoint when ``RCM_METRICS_PORT`` is set."""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram, start_http_server


class Metrics:
    def __init__(self) -> None:
        self.events = Counter("rcm_events_processed_total", "Events applied", ["service", "topic"])
        self.failures = Counter("rcm_events_failed_total", "Batches that failed and were redelivered",
                                ["service"])  # fmt: skip
        self.dead = Counter("rcm_dead_letters_total", "Messages sent to a DLQ", ["service"])
        self.latency = Histogram("rcm_batch_seconds", "Batch handling time", ["service"],
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))  # fmt: skip
        self.gauges: dict[str, Gauge] = {}
        self.started = time.time()

    def processed(self, service: str, records, seconds: float, dead: int = 0) -> None:
        for r in records:
            self.events.labels(service, r.topic).inc()
        self.latency.labels(service).observe(seconds)
        if dead:
            self.dead.labels(service).inc(dead)

    def failed(self, service: str, n: int) -> None:
        self.failures.labels(service).inc()

    def gauge(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        if name not in self.gauges:
            self.gauges[name] = Gauge(name, doc, list(labels))
        return self.gauges[name]

    def serve(self, port: int) -> None:
        start_http_server(port, addr="127.0.0.1")


METRICS = Metrics()
