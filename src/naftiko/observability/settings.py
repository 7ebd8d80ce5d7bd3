"""What a control adapter's ``observability`` block asks for, compiled once at load.

Kept apart from the instrumentation so compiling and validating a file never imports
prometheus-client or the OpenTelemetry SDK.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

PROPAGATIONS = ("w3c", "b3")


@dataclass(frozen=True)
class ObservabilitySettings:
    """``metrics``: collect and serve ``/metrics``; ``traces``: keep completed traces in a
    ring buffer for ``/traces``; ``otlp_endpoint``: export spans there (the file's
    ``exporters.otlp.endpoint``; ``OTEL_EXPORTER_OTLP_*`` variables are read when serving)."""

    metrics: bool = False
    traces: bool = False
    buffer_size: int = 100
    sampling: float = 1.0
    propagation: str = "w3c"
    otlp_endpoint: str | None = None

    def exporter_endpoint(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The OTLP/HTTP traces URL to export to, or None: the file wins over the standard
        variables; ``OTEL_TRACES_EXPORTER=none`` and ``OTEL_SDK_DISABLED=true`` switch export off."""
        env = os.environ if environ is None else environ
        if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            return None
        if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
            return None
        if self.otlp_endpoint:
            return _traces_url(self.otlp_endpoint)
        if env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
            return env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]  # a full URL by definition
        if env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            return _traces_url(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
        return None

    def tracing(self, environ: Mapping[str, str] | None = None) -> bool:
        env = os.environ if environ is None else environ
        if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            return False
        return self.traces or self.exporter_endpoint(env) is not None


def _traces_url(base: str) -> str:
    """A collector base URL (``http://collector:4318``) gets the OTLP/HTTP traces path, as the
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` variable does; a URL that already names it is kept."""
    base = base.rstrip("/")
    return base if base.endswith("/v1/traces") else base + "/v1/traces"


OFF = ObservabilitySettings()
