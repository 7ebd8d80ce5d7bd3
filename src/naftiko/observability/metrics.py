"""Request, step and upstream-call metrics, exposed in the Prometheus format on ``/metrics``.

One :class:`prometheus_client.CollectorRegistry` per served capability (never the library's
global one), so two capabilities in one process keep separate numbers and nothing else in
the process can add series to ours. Names follow the reference engine in Prometheus
spelling; counters gain ``_total`` in the exposition (so ``naftiko_request_errors`` is
scraped as ``naftiko_request_errors_total``). Every label value comes from the capability
file or a small fixed set, never from the caller, so the number of series stays bounded.
"""

from __future__ import annotations

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder

# The `_created` companion series double the exposition for little use here.
prometheus_client.disable_created_metrics()

REQUEST_LABELS = ("adapter", "namespace", "operation")


class Metrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "naftiko_request_total", "Requests handled, by adapter, operation and status",
            [*REQUEST_LABELS, "status"], registry=registry,
        )
        self.request_seconds = Histogram(
            "naftiko_request_duration_seconds", "Time to answer a request, in seconds",
            REQUEST_LABELS, registry=registry,
        )
        self.errors = Counter(
            "naftiko_request_errors", "Requests that ended in an error, by kind of error",
            [*REQUEST_LABELS, "type"], registry=registry,
        )
        self.step_seconds = Histogram(
            "naftiko_step_duration_seconds", "Time to run one orchestration step, in seconds",
            ("operation", "step", "type"), registry=registry,
        )
        self.client_calls = Counter(
            "naftiko_http_client_total", "Upstream HTTP calls, by consumes namespace, host, method and status",
            ("namespace", "host", "method", "status"), registry=registry,
        )
        self.client_seconds = Histogram(
            "naftiko_http_client_duration_seconds", "Time for an upstream HTTP call to answer, in seconds",
            ("namespace", "host"), registry=registry,
        )

    def request(
        self, adapter: str, namespace: str, operation: str, status: str, seconds: float, error: str | None
    ) -> None:
        self.requests.labels(adapter, namespace, operation, status).inc()
        self.request_seconds.labels(adapter, namespace, operation).observe(seconds)
        if error is not None:
            self.errors.labels(adapter, namespace, operation, error).inc()

    def step(self, operation: str, step: str, kind: str, seconds: float) -> None:
        self.step_seconds.labels(operation, step, kind).observe(seconds)

    def client(self, namespace: str, host: str, method: str, status: str, seconds: float) -> None:
        self.client_calls.labels(namespace, host, method, status).inc()
        self.client_seconds.labels(namespace, host).observe(seconds)

    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The registry as text: Prometheus by default, OpenMetrics when ``Accept`` asks for it."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type
