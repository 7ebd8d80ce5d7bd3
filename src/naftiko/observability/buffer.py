"""The local trace ring buffer behind ``/traces``: an OpenTelemetry span processor.

Ended spans wait, grouped by trace id, until their local root (the server span: no parent,
or a parent sent by the caller) ends; the whole trace then enters a bounded deque and the
oldest one drops out. The hot path only appends the finished span objects; turning them
into JSON happens when someone reads ``/traces``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import StatusCode, format_span_id, format_trace_id

# Traces whose root never ends (it always does in naftiko, but a bound costs nothing).
PENDING_PER_SLOT = 10


def _ms(start: int | None, end: int | None) -> float:
    return round(((end or 0) - (start or 0)) / 1e6, 3)


def _iso(ns: int | None) -> str:
    seconds, rest = divmod(ns or 0, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{rest // 1_000_000:03d}Z"


def _status(span: ReadableSpan) -> str:
    return "ERROR" if span.status.status_code is StatusCode.ERROR else "OK"


class _Trace:
    __slots__ = ("root", "spans", "trace_id")

    def __init__(self, trace_id: str, root: ReadableSpan, spans: list[ReadableSpan]) -> None:
        self.trace_id, self.root, self.spans = trace_id, root, spans

    @property
    def operation(self) -> str:
        return str((self.root.attributes or {}).get("naftiko.operation", self.root.name))

    def summary(self) -> dict[str, Any]:
        attributes = self.root.attributes or {}
        return {
            "traceId": self.trace_id,
            "operation": self.operation,
            "name": self.root.name,
            "adapter": attributes.get("naftiko.adapter.type"),
            "namespace": attributes.get("naftiko.namespace"),
            "durationMs": _ms(self.root.start_time, self.root.end_time),
            "status": _status(self.root),
            "spanCount": len(self.spans),
            "timestamp": _iso(self.root.start_time),
        }


def _span(span: ReadableSpan) -> dict[str, Any]:
    out: dict[str, Any] = {"spanId": format_span_id(span.context.span_id)}
    if span.parent is not None:
        out["parentSpanId"] = format_span_id(span.parent.span_id)
        if span.parent.is_remote:
            out["remoteParent"] = True
    out.update(
        name=span.name,
        kind=span.kind.name,
        startTime=_iso(span.start_time),
        durationMs=_ms(span.start_time, span.end_time),
        status=_status(span),
        attributes=dict(span.attributes or {}),
    )
    if span.status.description:
        out["statusMessage"] = span.status.description
    return out


class TraceBuffer(SpanProcessor):
    def __init__(self, capacity: int = 100) -> None:
        self.capacity = capacity
        self._traces: deque[_Trace] = deque(maxlen=capacity)
        self._pending: dict[int, list[ReadableSpan]] = {}
        self._lock = threading.Lock()  # the OTLP exporter and tests may end spans off the loop

    def __len__(self) -> int:
        return len(self._traces)

    def on_end(self, span: ReadableSpan) -> None:
        trace_id = span.context.trace_id
        parent = span.parent
        with self._lock:
            spans = self._pending.get(trace_id)
            if spans is None:
                spans = self._pending[trace_id] = []
                if len(self._pending) > self.capacity * PENDING_PER_SLOT:
                    del self._pending[next(iter(self._pending))]
            spans.append(span)
            if parent is None or parent.is_remote:
                del self._pending[trace_id]
                self._traces.append(_Trace(format_trace_id(trace_id), span, spans))

    def summaries(
        self, *, operation: str | None = None, status: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Newest first. ``operation`` matches part of the operation (or root span) name;
        ``status`` is ``OK`` or ``ERROR``."""
        with self._lock:
            traces = list(self._traces)
        out: list[dict[str, Any]] = []
        for trace in reversed(traces):
            if operation and operation not in trace.operation and operation not in trace.root.name:
                continue
            if status and _status(trace.root) != status.upper():
                continue
            out.append(trace.summary())
            if limit is not None and len(out) >= limit:
                break
        return out

    def detail(self, trace_id: str) -> dict[str, Any] | None:
        """The newest trace with this id, with every span kept for it (a caller that sends
        the same ``traceparent`` twice gets both requests' spans here)."""
        trace_id = trace_id.lower()
        with self._lock:
            found = [t for t in self._traces if t.trace_id == trace_id]
        if not found:
            return None
        body = found[-1].summary()
        spans = sorted((s for t in found for s in t.spans), key=lambda s: s.start_time or 0)
        body["spanCount"] = len(spans)
        body["spans"] = [_span(s) for s in spans]
        return body

    def shutdown(self) -> None:
        with self._lock:
            self._pending.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
