"""The one object the serving code talks to about observability: :class:`Telemetry`.

Built per capability by the compiler (:func:`start_telemetry`, from the control adapter's
``observability`` settings and the log level) *before* the plan, which is built with it:
consumed operations' and forwards' transports are observed ones from the start
(:meth:`Telemetry.observe_transport`), orchestrated units time their steps, MCP adapter plans
carry it for tool calls, and ``runtime.serve`` observes REST and skill apps. It has three
optional parts — metrics, tracing (with the local trace buffer) and the request log — and when
all three are off it is inactive: nothing is wrapped and the hot path runs exactly as without
this package. Nothing changes a plan after it is compiled.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from time import perf_counter
from typing import TYPE_CHECKING, Any, Protocol, cast

from naftiko.observability.logs import RequestLog, request_logging_enabled
from naftiko.observability.settings import ObservabilitySettings

if TYPE_CHECKING:
    import uvicorn
    from starlette.types import ASGIApp

    from naftiko.binds.secrets import Secrets
    from naftiko.consumes.transport import Transport
    from naftiko.engine.plan import AdapterPlan, McpAdapterPlan, Plan
    from naftiko.exposes.mcp.server import ToolContext, ToolParams
    from naftiko.expressions.template import Scope
    from naftiko.observability.buffer import TraceBuffer
    from naftiko.observability.inbound import Classify
    from naftiko.observability.metrics import Metrics
    from naftiko.observability.tracing import Tracing

    # What the MCP adapter registers for tools/call: the SDK's context/params or the envelope's.
    ToolHandler = Callable[[ToolContext, ToolParams], Awaitable[dict[str, Any]]]


class Step(Protocol):
    """One orchestration step as :meth:`Telemetry.run_step` runs it (engine.steps)."""

    @property
    def name(self) -> str: ...

    async def run(self, inputs: dict[str, Any], scope: Scope) -> object: ...

STEP_KINDS = {"CallStep": "call", "LookupStep": "lookup", "ScriptStep": "script"}

# (kind, namespace) → (port, uvicorn server or None for stdio): the listeners of this process,
# recorded by serve.py. Kept per process rather than per plan so a hot-reloaded version of a
# capability reports the listeners it inherits.
_LISTENERS: dict[tuple[str, str], tuple[int | None, uvicorn.Server | None]] = {}


def track(adapter: AdapterPlan, port: int | None, server: uvicorn.Server | None) -> None:
    _LISTENERS[(adapter.kind, adapter.namespace)] = (port, server)


def _state(server: uvicorn.Server | None) -> str:
    if server is None:
        return "started"  # stdio: served for as long as the process runs
    if getattr(server, "should_exit", False):
        return "stopping"
    return "started" if getattr(server, "started", False) else "starting"


class Telemetry:
    def __init__(
        self,
        secrets: Secrets | None = None,
        *,
        metrics: Metrics | None = None,
        tracing: Tracing | None = None,
        buffer: TraceBuffer | None = None,
        request_log: RequestLog | None = None,
    ) -> None:
        self.secrets = secrets
        self.plan: Plan | None = None  # the plan built with it (attach), for the runtime state
        self.metrics = metrics
        self.tracing = tracing
        self.buffer = buffer
        self.request_log = request_log
        self.started_at = time.time()
        self._started = time.monotonic()

    def attach(self, plan: Plan) -> None:
        """The plan compiled with this telemetry (called once, by the compiler): read for the
        adapters' states and the capability's label. The plan itself is not changed."""
        self.plan = plan

    def mask(self, text: str) -> str:
        """``text`` with the capability's secrets masked (``Secrets.mask`` maps text to text)."""
        return text if self.secrets is None else cast(str, self.secrets.mask(text))

    @property
    def active(self) -> bool:
        return self.metrics is not None or self.tracing is not None or self.request_log is not None

    def uptime(self) -> float:
        return time.monotonic() - self._started

    # ---------------------------------------------------------------- runtime state

    def adapter_states(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for adapter in self.plan.adapters if self.plan is not None else ():
            listener = _LISTENERS.get((adapter.kind, adapter.namespace))
            port = adapter.port if listener is None else listener[0]
            entry: dict[str, Any] = {"type": adapter.kind, "namespace": adapter.namespace}
            if port:
                entry["port"] = port
            if adapter.kind == "mcp" and adapter.transport == "stdio":
                entry["transport"] = "stdio"
            entry["state"] = "stopped" if listener is None else _state(listener[1])
            out.append(entry)
        return out

    def ready(self) -> bool:
        """Every business adapter serves (the control adapter answering says nothing more)."""
        return all(a["state"] == "started" for a in self.adapter_states() if a["type"] != "control")

    # ---------------------------------------------------------------- wrapping

    def observe_app(self, app: ASGIApp, adapter: AdapterPlan, classify: Classify | None) -> ASGIApp:
        """``app`` (the adapter's app behind its inbound auth) observed, its requests named by
        ``classify`` (the kind's, :meth:`naftiko.exposes.registry.ExposeKind.classifier`);
        unchanged when inactive or when the kind has none (observed elsewhere, or not at all)."""
        if not self.active or classify is None:
            return app
        from naftiko.observability.inbound import HttpObserver

        return HttpObserver(app, self, adapter.kind, adapter.namespace, classify)

    def observe_tool(self, plan: McpAdapterPlan, call_tool: ToolHandler) -> ToolHandler:
        if not self.active:
            return call_tool
        from naftiko.observability.inbound import observe_tool

        return observe_tool(self, plan, call_tool)

    def observe_transport(self, transport: Transport, namespace: str, operation: str, base_url: str) -> Transport:
        """``transport`` as the compiler puts it in the plan: an :class:`ObservedTransport` for
        this consumed operation (or ``"forward"``) when active, else unchanged (no wrapper, no
        per-request cost)."""
        if not self.active:
            return transport
        from naftiko.observability.outbound import ObservedTransport

        return ObservedTransport(transport, self, namespace, operation, base_url)

    # ---------------------------------------------------------------- hot path

    def finish(
        self,
        adapter: str,
        namespace: str,
        method: str,
        target: str | bytes,
        operation: str,
        status: int | str,
        seconds: float,
        error: str | None,
        calls: int,
        ids: tuple[str, str] | None,
    ) -> None:
        """A request is answered: count it and write its log line. ``target`` and ``status`` as
        :meth:`RequestLog.write <naftiko.observability.logs.RequestLog.write>` takes them (an HTTP
        request's raw path and status code, spelled out by the log's writer, not here)."""
        if self.metrics is not None:
            self.metrics.request(adapter, namespace, operation, str(status), seconds, error)
        if self.request_log is not None:
            self.request_log.write(adapter, namespace, method, target, operation, status, seconds, calls, ids)

    async def run_step(self, operation: str, step: Step, inputs: dict[str, Any], scope: Scope) -> object:
        """Run one orchestration step inside its own span, timing it."""
        kind = STEP_KINDS.get(type(step).__name__, "step")
        tracing = self.tracing
        start = perf_counter()
        try:
            if tracing is None:
                return await step.run(inputs, scope)
            attributes = {"naftiko.operation": operation, "naftiko.step.name": step.name, "naftiko.step.type": kind}
            with tracing.tracer.start_as_current_span(
                f"step {step.name}", attributes=attributes, record_exception=False, set_status_on_exception=False
            ) as span:
                try:
                    return await step.run(inputs, scope)
                except Exception as exc:
                    from opentelemetry.trace import Status, StatusCode

                    span.set_status(Status(StatusCode.ERROR, self.mask(str(exc)) or type(exc).__name__))
                    raise
        finally:
            if self.metrics is not None:
                self.metrics.step(operation, step.name, kind, perf_counter() - start)

    def shutdown(self) -> None:
        """Write the queued request log lines, flush and stop the exporter (if any); blocking."""
        if self.request_log is not None:
            self.request_log.close()
        if self.tracing is not None:
            self.tracing.shutdown()

    async def aclose(self) -> None:
        """:meth:`shutdown` off the event loop (an exporter flush may wait on the network)."""
        if self.request_log is not None or self.tracing is not None:
            await asyncio.to_thread(self.shutdown)


def inactive_telemetry(secrets: Secrets | None = None) -> Telemetry:
    """A telemetry with every part off: what a plan compiled without observing is built with."""
    return Telemetry(secrets)


def start_telemetry(
    settings: ObservabilitySettings | Plan,
    secrets: Secrets | None = None,
    service: str = "naftiko",
    environ: Mapping[str, str] | None = None,
) -> Telemetry:
    """The capability's telemetry, built by the compiler before the plan: ``settings`` are the
    control adapter's (:data:`~naftiko.observability.settings.OFF` without one), ``service`` the
    trace service name; the request log is on when the ``naftiko.request`` logger is enabled at
    INFO now. Given a compiled plan instead (as before observability was composed at compile
    time), it returns the telemetry that plan was built with."""
    if not isinstance(settings, ObservabilitySettings):
        return telemetry_for(settings)
    env = os.environ if environ is None else environ
    metrics: Metrics | None = None
    tracing: Tracing | None = None
    buffer: TraceBuffer | None = None
    if settings.metrics:
        from naftiko.observability.metrics import Metrics

        metrics = Metrics()
    if settings.tracing(env):
        from naftiko.observability.buffer import TraceBuffer
        from naftiko.observability.tracing import Tracing

        buffer = TraceBuffer(settings.buffer_size) if settings.traces else None
        tracing = Tracing(settings, service, buffer, settings.exporter_endpoint(env))
    request_log = RequestLog(secrets.mask if secrets is not None else str) if request_logging_enabled() else None
    return Telemetry(secrets, metrics=metrics, tracing=tracing, buffer=buffer, request_log=request_log)


def telemetry_for(plan: Plan) -> Telemetry:
    """The telemetry the plan was compiled with (an inactive one for a plan built by hand)."""
    return plan.telemetry if plan.telemetry is not None else inactive_telemetry(plan.secrets)
