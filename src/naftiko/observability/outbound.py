"""Upstream calls, observed: a client span, the trace headers, metrics, the per-request count.

:class:`ObservedTransport` wraps the transport of one consumed operation (or one forward) when
telemetry is on, so the call sites (``Call.send``, ``ForwardPlan.send``) stay as they are and
pay nothing when it is off. The names used in spans and metrics are fixed at wrap time.
"""

from __future__ import annotations

from collections.abc import Awaitable
from contextvars import ContextVar
from time import perf_counter
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from opentelemetry.trace import Span, Status, StatusCode

from naftiko.consumes.transport import OutboundRequest, Transport, UpstreamResponse

if TYPE_CHECKING:
    from naftiko.observability.telemetry import Telemetry

# The current request's upstream call counter (a one-item list), set by the inbound observers.
UPSTREAM_CALLS: ContextVar[list[int] | None] = ContextVar("naftiko_upstream_calls", default=None)


class ObservedTransport:
    __slots__ = ("host", "inner", "namespace", "operation", "port", "quiet", "telemetry")

    def __init__(self, inner: Transport, telemetry: Telemetry, namespace: str, operation: str, base_url: str) -> None:
        self.inner = inner
        self.telemetry = telemetry
        # neither tracing nor metrics: a telemetry's parts are set when it is built, never after
        self.quiet = telemetry.tracing is None and telemetry.metrics is None
        self.namespace = namespace
        self.operation = operation  # consumed operation name, or "forward"
        parts = urlsplit(base_url)
        self.host = parts.hostname or parts.netloc
        self.port = parts.port or (443 if parts.scheme == "https" else 80)

    def send(self, request: OutboundRequest) -> Awaitable[UpstreamResponse]:
        """Counts the call for the request log; with neither tracing nor metrics on, hands back the
        inner transport's own awaitable (no coroutine of ours in between), else :meth:`_observed`."""
        calls = UPSTREAM_CALLS.get()
        if calls is not None:
            calls[0] += 1
        if self.quiet:
            return self.inner.send(request)
        return self._observed(request)

    async def _observed(self, request: OutboundRequest) -> UpstreamResponse:
        """The call with its client span, trace headers and metrics."""
        telemetry = self.telemetry
        tracing, metrics = telemetry.tracing, telemetry.metrics
        span: Span | None = None
        if tracing is not None:
            span = tracing.start_client(
                f"{request.method} {self.namespace}.{self.operation}",
                {
                    "http.request.method": request.method,
                    "url.full": telemetry.mask(request.url),
                    "server.address": self.host,
                    "server.port": self.port,
                    "naftiko.namespace": self.namespace,
                    "naftiko.operation": self.operation,
                },
            )
            request.headers = tracing.inject(request.headers, span)
        status = "error"
        error: str | None = None
        start = perf_counter()
        try:
            response = await self.inner.send(request)
            status = str(response.status)
            if response.status >= 400:
                error = f"upstream answered {response.status}"
            return response
        except Exception as exc:
            error = telemetry.mask(str(exc)) or type(exc).__name__
            raise
        finally:
            if metrics is not None:
                metrics.client(self.namespace, self.host, request.method, status, perf_counter() - start)
            if span is not None:
                if status != "error":
                    span.set_attribute("http.response.status_code", int(status))
                if error is not None:
                    span.set_status(Status(StatusCode.ERROR, error))
                span.end()

    async def aclose(self) -> None:
        await self.inner.aclose()
