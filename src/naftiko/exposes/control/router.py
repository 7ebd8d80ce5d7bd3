"""The control adapter (``type: control``): the management plane of a running capability.

Engine-provided endpoints, nothing user-defined. Each group can be switched off in the file
and then answers 404:

- ``GET /health/live`` → ``{"status": "UP"}`` (``management.health``, default on)
- ``GET /health/ready`` → ``{"status": "UP"|"DEGRADED", "adapters": [{type, namespace, port,
  state}]}``, 503 when a business adapter is not serving (``management.health``)
- ``GET /status`` → capability label, spec version, engine version, uptime, adapters,
  observability (``management.info``, default off: it tells a visitor what runs here)
- ``GET /metrics`` → Prometheus text (or OpenMetrics when asked for in ``Accept``)
  (``observability.metrics.local.enabled``)
- ``GET /traces`` (``?operation=…&status=OK|ERROR&limit=N``) and ``GET /traces/{traceId}`` →
  completed traces from an in-memory ring buffer (``observability.traces.local``)

Without an ``observability`` block metrics and local traces are on, as in the reference;
``observability.enabled: false`` switches both off. The default bind address is loopback
(the schema's ``localhost``); ``--address`` moves it like every other adapter's.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sized
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol
from urllib.parse import parse_qsl, unquote

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from naftiko import __version__
from naftiko.exposes.http.asgi import serve_lifespan
from naftiko.exposes.http.problems import problem
from naftiko.expressions.template import Template, TemplateError
from naftiko.observability.settings import OFF, PROPAGATIONS, ObservabilitySettings
from naftiko.observability.telemetry import telemetry_for

if TYPE_CHECKING:
    from naftiko.document.model import Authentication, Document, ExposesControl, ObservabilitySpec
    from naftiko.engine.plan import Options, Plan
    from naftiko.observability.telemetry import Telemetry

SpecPath = tuple[str | int, ...]
"""Where a value sits in the capability file, for diagnostics."""


class CompileContext(Protocol):
    """What compiling a control adapter needs from the plan compiler."""

    @property
    def doc(self) -> Document: ...

    @property
    def options(self) -> Options: ...

    @property
    def errors(self) -> Sized: ...

    def error(self, path: SpecPath, message: str) -> None: ...

    def warn(self, path: SpecPath, message: str) -> None: ...

    def address(self, adapter: ExposesControl) -> str: ...

    def port(self, adapter: ExposesControl) -> int | None: ...

ALLOW = "GET, HEAD"
UNSERVED_MANAGEMENT = (("reload", "POST /config/reload"), ("validate_", "POST /config/validate"), ("logs", "/logs"))


@dataclass(frozen=True)
class ControlAdapterPlan:
    kind: ClassVar[Literal["control"]] = "control"
    url_path: ClassVar[str] = "/"
    namespace: str
    address: str
    port: int
    health: bool
    info: bool
    settings: ObservabilitySettings
    spec_version: str | None
    authentication: Authentication | None = None

    @property
    def endpoints(self) -> list[str]:
        out: list[str] = []
        if self.health:
            out += ["/health/live", "/health/ready"]
        if self.info:
            out.append("/status")
        if self.settings.metrics:
            out.append("/metrics")
        if self.settings.traces:
            out += ["/traces", "/traces/{traceId}"]
        return out

    @property
    def size(self) -> str:
        return f"{len(self.endpoints)} endpoints"


# ------------------------------------------------------------------ compile


def compile_control(
    compiler: CompileContext, adapter: ExposesControl, path: SpecPath, binds: dict[str, dict[str, str]]
) -> ControlAdapterPlan | None:
    management = adapter.management
    if management is not None:
        for attr, endpoint in UNSERVED_MANAGEMENT:
            if getattr(management, attr):
                name = attr.rstrip("_")
                message = f"management.{name}: {endpoint} is not served by naftiko; ignored"
                compiler.warn((*path, "management", name), message)
    settings = _settings(compiler, adapter.observability, (*path, "observability"), binds)
    if settings is None:
        return None
    address = compiler.address(adapter)
    port = compiler.port(adapter)
    return ControlAdapterPlan(
        namespace=adapter.namespace,
        address="127.0.0.1" if address == "localhost" else address,
        port=adapter.port if port is None else port,  # the model requires a port
        health=management.health if management is not None else True,
        info=management.info if management is not None else False,
        settings=settings,
        spec_version=compiler.doc.naftiko,
        authentication=adapter.authentication,
    )


def _section(compiler: CompileContext, data: object, path: SpecPath, name: str) -> dict[str, Any]:
    value = data.get(name) if isinstance(data, dict) else None
    if value is None:
        return {}
    if not isinstance(value, dict):
        compiler.error((*path, name), f"'{name}' must be an object")
        return {}
    return value


def _enabled(compiler: CompileContext, data: dict[str, Any], path: SpecPath) -> bool:
    value = data.get("enabled", True)
    if not isinstance(value, bool):
        compiler.error((*path, "enabled"), f"'enabled' must be true or false, got {value!r}")
        return False
    return value


def _settings(
    compiler: CompileContext, obs: ObservabilitySpec | None, path: SpecPath, binds: dict[str, dict[str, str]]
) -> ObservabilitySettings | None:
    """The ``observability`` block, checked value by value (the model keeps it as plain
    mappings, so a wrong value is reported here with its position)."""
    if obs is None:
        return ObservabilitySettings(metrics=True, traces=True)
    if not obs.enabled:
        return OFF
    errors = len(compiler.errors)
    metrics_local = _section(compiler, obs.metrics, (*path, "metrics"), "local")
    metrics = _enabled(compiler, metrics_local, (*path, "metrics", "local"))
    traces = obs.traces or {}
    tpath = (*path, "traces")
    sampling = traces.get("sampling", 1.0)
    if isinstance(sampling, bool) or not isinstance(sampling, (int, float)) or not 0 <= sampling <= 1:
        compiler.error((*tpath, "sampling"), f"traces.sampling must be a number from 0 to 1, got {sampling!r}")
    propagation = traces.get("propagation", "w3c")
    if propagation not in PROPAGATIONS:
        allowed = ", ".join(PROPAGATIONS)
        compiler.error((*tpath, "propagation"), f"traces.propagation must be one of {allowed}, got {propagation!r}")
    traces_local = _section(compiler, traces, tpath, "local")
    local = _enabled(compiler, traces_local, (*tpath, "local"))
    size = traces_local.get("buffer-size", 100)
    if isinstance(size, bool) or not isinstance(size, int) or not 10 <= size <= 10000:
        compiler.error(
            (*tpath, "local", "buffer-size"),
            f"traces.local.buffer-size must be an integer from 10 to 10000, got {size!r}",
        )
    otlp = _section(compiler, obs.exporters, (*path, "exporters"), "otlp")
    endpoint = None
    if obs.exporters and "otlp" in obs.exporters:
        endpoint = _endpoint(compiler, otlp, (*path, "exporters", "otlp"), binds)
    if len(compiler.errors) > errors:
        return None
    return ObservabilitySettings(
        metrics=metrics,
        traces=local,
        buffer_size=size,
        sampling=float(sampling),
        propagation=propagation,
        otlp_endpoint=endpoint,
    )


def _endpoint(
    compiler: CompileContext, otlp: dict[str, Any], path: SpecPath, binds: dict[str, dict[str, str]]
) -> str | None:
    raw = otlp.get("endpoint")
    if not isinstance(raw, str) or not raw.strip():
        compiler.error((*path, "endpoint"), "exporters.otlp.endpoint must be a URL")
        return None
    try:
        bound = Template(raw).bind(binds)
    except TemplateError as exc:
        compiler.error((*path, "endpoint"), f"exporters.otlp.endpoint: {exc}")
        return None
    if not bound.constant:
        names = ", ".join(sorted({"{{" + v.name + "}}" for v in bound.variables()}))
        compiler.error((*path, "endpoint"), f"exporters.otlp.endpoint refers to {names}, which no bind provides")
        return None
    url = bound.render_constant().strip()
    if not url.startswith(("http://", "https://")) and compiler.options.dry_run and "{{" in raw:
        return None  # a bind placeholder (validate, --dry-run without the variable): nothing to export to
    if not url.startswith(("http://", "https://")):
        compiler.error((*path, "endpoint"), "exporters.otlp.endpoint must be an http(s) URL (OTLP over HTTP)")
        return None
    return url


# ------------------------------------------------------------------ the app


def _json(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


def _iso_duration(seconds: float) -> str:
    """``PT1H2M3.5S``, the ISO 8601 form the reference engine reports."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    out = "PT"
    if hours:
        out += f"{int(hours)}H"
    if minutes:
        out += f"{int(minutes)}M"
    return out + f"{secs:.3f}".rstrip("0").rstrip(".") + "S"


class ControlRouter:
    """ASGI app: a handful of fixed routes, each reading the live runtime state."""

    def __init__(self, adapter: ControlAdapterPlan, plan: Plan) -> None:
        self.adapter = adapter
        self.plan = plan
        self.routes: dict[str, Callable[[Scope], Response] | None] = {
            "/health/live": self.live if adapter.health else None,
            "/health/ready": self.ready if adapter.health else None,
            "/status": self.status if adapter.info else None,
            "/metrics": self.metrics if adapter.settings.metrics else None,
            "/traces": self.traces if adapter.settings.traces else None,
        }

    @property
    def telemetry(self) -> Telemetry:
        """The capability's telemetry, composed when the plan was compiled."""
        return telemetry_for(self.plan)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await serve_lifespan(receive, send)
        if scope["type"] != "http":
            return
        response = self.handle(scope)
        await response(scope, receive, send)

    def handle(self, scope: Scope) -> Response:
        path: str = scope["path"].rstrip("/") or "/"
        trace_id: str | None = None
        if path.startswith("/traces/"):
            path, trace_id = "/traces", unquote(path[len("/traces/") :])
        handler = self.routes.get(path)
        if handler is None:
            return problem(404, f"no route for {scope['path']} on the control port")
        if scope["method"] not in ("GET", "HEAD"):
            return problem(405, f"{scope['method']} is not allowed on {scope['path']}", headers={"Allow": ALLOW})
        if trace_id is not None:
            return self.trace(trace_id)
        return handler(scope)

    def live(self, scope: Scope) -> Response:
        return _json({"status": "UP"})

    def ready(self, scope: Scope) -> Response:
        ready = self.telemetry.ready()
        body = {"status": "UP" if ready else "DEGRADED", "adapters": self.telemetry.adapter_states()}
        return _json(body, 200 if ready else 503)

    def status(self, scope: Scope) -> Response:
        telemetry = self.telemetry
        settings = self.adapter.settings
        uptime = telemetry.uptime()
        body = {
            "capability": {"label": self.plan.label, "specVersion": self.adapter.spec_version},
            "engine": {"name": "naftiko", "version": __version__, "python": platform.python_version()},
            "startedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(telemetry.started_at)),
            "uptime": _iso_duration(uptime),
            "uptimeSeconds": round(uptime, 3),
            "status": "UP" if telemetry.ready() else "DEGRADED",
            "adapters": telemetry.adapter_states(),
            "observability": {
                "metrics": telemetry.metrics is not None,
                "traces": telemetry.buffer is not None,
                "tracing": telemetry.tracing is not None,
                "exporter": telemetry.tracing.exporter if telemetry.tracing is not None else None,
                "sampling": settings.sampling,
                "propagation": settings.propagation,
            },
        }
        return _json(body)

    def metrics(self, scope: Scope) -> Response:
        accept = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"accept"), "")
        metrics = self.telemetry.metrics
        if metrics is None:
            return problem(404, "metrics are not collected in this process")
        body, content_type = metrics.exposition(accept)
        return Response(body, 200, headers={"Content-Type": content_type})

    def traces(self, scope: Scope) -> Response:
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        limit = query.get("limit")
        if limit is not None and not limit.isdigit():
            return problem(400, f"'limit' must be a positive integer, got {limit!r}", field="limit")
        status = query.get("status")
        if status is not None and status.upper() not in ("OK", "ERROR"):
            return problem(400, f"'status' must be OK or ERROR, got {status!r}", field="status")
        buffer = self.telemetry.buffer
        if buffer is None:
            return problem(404, "tracing is switched off in this process (OTEL_SDK_DISABLED)")
        traces = buffer.summaries(operation=query.get("operation"), status=status, limit=int(limit) if limit else None)
        return _json({"traces": traces, "bufferSize": buffer.capacity, "bufferUsed": len(buffer)})

    def trace(self, trace_id: str) -> Response:
        buffer = self.telemetry.buffer
        if buffer is None:
            return problem(404, "tracing is switched off in this process (OTEL_SDK_DISABLED)")
        found = buffer.detail(trace_id)
        if found is None:
            detail = f"trace '{trace_id}' is not in the buffer (it may be unknown or already evicted)"
            return problem(404, detail, field="traceId")
        return _json(found)


def build_control_app(adapter: ControlAdapterPlan, plan: Plan) -> ControlRouter:
    return ControlRouter(adapter, plan)
