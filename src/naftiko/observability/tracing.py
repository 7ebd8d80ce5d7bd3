"""Distributed tracing with the OpenTelemetry SDK: spans, sampling, propagation, export.

Each served capability gets its own tracer provider (never the process-global one, which the
MCP SDK would otherwise feed with its own spans). Spans go to the local ring buffer behind
``/traces`` and, when an endpoint is configured (the file's ``exporters.otlp.endpoint`` or
the standard ``OTEL_EXPORTER_OTLP_*`` variables), to an OTLP/HTTP exporter in batches — the
exporter is only imported then. Incoming context is read from W3C ``traceparent`` and B3
headers alike; outgoing requests carry the format the file asks for (``propagation``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from contextvars import Token
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import (
    Span,
    SpanKind,
    Status,
    StatusCode,
    format_span_id,
    format_trace_id,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from naftiko import __version__
from naftiko.observability.settings import ObservabilitySettings

if TYPE_CHECKING:
    from opentelemetry.util.types import Attributes

    from naftiko.observability.buffer import TraceBuffer

SERVER, CLIENT, INTERNAL = SpanKind.SERVER, SpanKind.CLIENT, SpanKind.INTERNAL


def _propagators(kind: str) -> tuple[TextMapPropagator, TextMapPropagator]:
    """(inject, extract): inject the configured format; extract both, the configured one last
    so it wins when a caller sends both."""
    from opentelemetry.propagators.b3 import B3MultiFormat

    w3c, b3 = TraceContextTextMapPropagator(), B3MultiFormat()
    if kind == "b3":
        return b3, CompositePropagator([w3c, b3])
    return w3c, CompositePropagator([b3, w3c])


class Tracing:
    def __init__(
        self,
        settings: ObservabilitySettings,
        service_name: str,
        buffer: TraceBuffer | None = None,
        endpoint: str | None = None,
    ) -> None:
        named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
        attributes: dict[str, str] = {} if named else {"service.name": service_name}
        attributes["service.version"] = __version__
        self.provider = TracerProvider(
            sampler=ParentBased(TraceIdRatioBased(settings.sampling)),
            resource=Resource.create(attributes),
            shutdown_on_exit=False,
        )
        if buffer is not None:
            self.provider.add_span_processor(buffer)
        self.exporter: dict[str, str] | None = None
        if endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                OTLPSpanExporter,
            )
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
            self.exporter = {"type": "otlp", "endpoint": endpoint}
        self.tracer = self.provider.get_tracer("naftiko", __version__)
        self.injector, self.extractor = _propagators(settings.propagation)
        self.fields = frozenset(f.lower() for f in self.injector.fields)

    # ---------------------------------------------------------------- server spans

    def start_server(
        self, name: str, carrier: Mapping[str, str], attributes: Attributes
    ) -> tuple[Span, Token[Context]]:
        """A server span continuing the caller's trace (if ``carrier`` holds one), made current.
        Returns the span and the token :meth:`end` needs."""
        parent = self.extractor.extract(carrier) if carrier else None
        span = self.tracer.start_span(name, context=parent, kind=SERVER, attributes=attributes)
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        return span, token

    @staticmethod
    def end(span: Span, token: Token[Context], error: str | None = None, attributes: Attributes = None) -> None:
        if attributes:
            span.set_attributes(attributes)
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end()
        otel_context.detach(token)

    # ---------------------------------------------------------------- client spans

    def start_client(self, name: str, attributes: Attributes) -> Span:
        return self.tracer.start_span(name, kind=CLIENT, attributes=attributes)

    def inject(self, headers: list[tuple[str, str]], span: Span) -> list[tuple[str, str]]:
        """``headers`` without any trace header they had, plus ours naming ``span`` as parent."""
        carrier: dict[str, str] = {}
        self.injector.inject(carrier, context=trace.set_span_in_context(span))
        kept = [(k, v) for k, v in headers if k.lower() not in self.fields]
        kept.extend(carrier.items())
        return kept

    # ---------------------------------------------------------------- helpers

    @staticmethod
    def ids(span: Span) -> tuple[str, str] | None:
        ctx = span.get_span_context()
        if not ctx.is_valid:
            return None
        return format_trace_id(ctx.trace_id), format_span_id(ctx.span_id)

    def shutdown(self) -> None:
        self.provider.shutdown()


def headers_carrier(raw_headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """ASGI ``(bytes, bytes)`` headers as the lower-case dict the propagators read."""
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in raw_headers}
