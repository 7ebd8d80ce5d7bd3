"""The one object the serving code talks to about observability: :class:`Telemetry`.

Built per capability when serving starts (:func:`telemetry_for`), from the control adapter's
``observability`` settings and the log level. It has three optional parts — metrics,
tracing (with the local trace buffer) and the request log — and when all three are off it is
inactive: adapters are not wrapped, transports and steps are not instrumented, and the hot
path runs exactly as without this package.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any, Protocol, cast

from naftiko.observability.logs import RequestLog, request_logging_enabled
from naftiko.observability.settings import OFF

if TYPE_CHECKING:
    import uvicorn
    from starlette.types import ASGIApp

    from naftiko.engine.plan import McpAdapterPlan, Plan
    from naftiko.exposes.mcp.server import ToolContext, ToolParams
    from naftiko.exposes.rest.router import RestRouter
    from naftiko.expressions.template import Scope
    from naftiko.observability.buffer import TraceBuffer
    from naftiko.observability.metrics import Metrics
    from naftiko.observability.tracing import Tracing

    # What the MCP adapter registers for tools/call: the SDK's context/params or the envelope's.
    ToolHandler = Callable[[ToolContext, ToolParams], Awaitable[dict[str, Any]]]


class AdapterPlan(Protocol):
    """What telemetry reads of any adapter plan (REST, MCP, skill, control)."""

    @property
    def kind(self) -> str: ...

    @property
    def namespace(self) -> str: ...


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
        plan: Plan,
        *,
        metrics: Metrics | None = None,
        tracing: Tracing | None = None,
        buffer: TraceBuffer | None = None,
        request_log: RequestLog | None = None,
    ) -> None:
        self.plan = plan
        self.metrics = metrics
        self.tracing = tracing
        self.buffer = buffer
        self.request_log = request_log
        self.started_at = time.time()
        self._started = time.monotonic()

    def mask(self, text: str) -> str:
        """``text`` with the capability's secrets masked (``Secrets.mask`` maps text to text)."""
        return cast(str, self.plan.secrets.mask(text))

    @property
    def active(self) -> bool:
        return self.metrics is not None or self.tracing is not None or self.request_log is not None

    def uptime(self) -> float:
        return time.monotonic() - self._started

    # ---------------------------------------------------------------- runtime state

    def adapter_states(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for adapter in self.plan.adapters:
            listener = _LISTENERS.get((adapter.kind, adapter.namespace))
            port = adapter.port if listener is None else listener[0]
            entry: dict[str, Any] = {"type": adapter.kind, "namespace": adapter.namespace}
            if port:
                entry["port"] = port
            if getattr(adapter, "transport", None) == "stdio":
                entry["transport"] = "stdio"
            entry["state"] = "stopped" if listener is None else _state(listener[1])
            out.append(entry)
        return out

    def ready(self) -> bool:
        """Every business adapter serves (the control adapter answering says nothing more)."""
        return all(a["state"] == "started" for a in self.adapter_states() if a["type"] != "control")

    # ---------------------------------------------------------------- wrapping

    def observe_app(self, app: ASGIApp, inner: ASGIApp, adapter: AdapterPlan) -> ASGIApp:
        """``app`` (the adapter's app behind its inbound auth) observed; unchanged when
        inactive or for adapters observed elsewhere (MCP: per tool call) or not at all (control)."""
        if not self.active or adapter.kind not in ("rest", "skill"):
            return app
        from naftiko.observability.inbound import HttpObserver, rest_classifier, skill_classify

        # a REST adapter's inner app is its router (serve.build_app)
        classify = rest_classifier(cast("RestRouter", inner)) if adapter.kind == "rest" else skill_classify
        return HttpObserver(app, self, adapter.kind, adapter.namespace, classify)

    def observe_tool(self, plan: McpAdapterPlan, call_tool: ToolHandler) -> ToolHandler:
        if not self.active:
            return call_tool
        from naftiko.observability.inbound import observe_tool

        return observe_tool(self, plan, call_tool)

    def instrument(self) -> None:
        """Wrap every consumed operation's and forward's transport, and hook every orchestrated
        unit's steps. Done once, before serving; nothing is instrumented when inactive."""
        if not self.active:
            return
        from naftiko.engine.orchestrated import StepsUnit
        from naftiko.observability.outbound import ObservedTransport

        for namespace, operations in self.plan.consumers.items():
            for name, operation in operations.items():
                if not isinstance(operation.transport, ObservedTransport):
                    operation.transport = ObservedTransport(
                        operation.transport, self, namespace, name, operation.request.base_url
                    )
        timed = self.metrics is not None or self.tracing is not None
        for adapter in self.plan.adapters:
            if adapter.kind == "mcp":
                adapter.telemetry = self  # read by adapters.mcp.build_server
            for unit in _units(adapter) if timed else ():
                if isinstance(unit, StepsUnit):
                    unit.telemetry = self
            for route in getattr(adapter, "routes", ()):
                forward = route.forward
                if forward is not None and not isinstance(forward.transport, ObservedTransport):
                    forward.transport = ObservedTransport(
                        forward.transport, self, forward.namespace, "forward", forward.base_url
                    )

    # ---------------------------------------------------------------- hot path

    def finish(
        self,
        adapter: str,
        namespace: str,
        method: str,
        target: str,
        operation: str,
        status: str,
        seconds: float,
        error: str | None,
        calls: int,
        ids: tuple[str, str] | None,
    ) -> None:
        """A request is answered: count it and write its log line."""
        if self.metrics is not None:
            self.metrics.request(adapter, namespace, operation, status, seconds, error)
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


def _units(adapter: Any) -> Iterator[object]:
    """Every unit an adapter runs: REST operations, MCP tools, dynamic resources and prompts."""
    for route in getattr(adapter, "routes", ()):
        for operation in route.operations.values():
            yield operation.unit
    for group in ("tools", "resources", "prompts"):
        for item in getattr(adapter, group, ()) or ():
            unit = getattr(item, "unit", None)
            if unit is not None:
                yield unit


def start_telemetry(plan: Plan, environ: Mapping[str, str] | None = None) -> Telemetry:
    """Build the capability's telemetry from its control adapter and the log level, and
    instrument the plan with it."""
    env = os.environ if environ is None else environ
    control = next((a for a in plan.adapters if a.kind == "control"), None)
    settings = control.settings if control is not None else OFF
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
        service = plan.label or Path(plan.file).stem
        tracing = Tracing(settings, service, buffer, settings.exporter_endpoint(env))
    request_log = RequestLog(plan.secrets.mask) if request_logging_enabled() else None
    telemetry = Telemetry(plan, metrics=metrics, tracing=tracing, buffer=buffer, request_log=request_log)
    telemetry.instrument()
    return telemetry


def telemetry_for(plan: Plan) -> Telemetry:
    """The plan's telemetry, started on first use (serving, or a hot reload of the plan)."""
    telemetry = getattr(plan, "telemetry", None)
    if telemetry is None:
        telemetry = plan.telemetry = start_telemetry(plan)
    return telemetry
