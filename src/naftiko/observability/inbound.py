"""Inbound requests, observed: a server span, request metrics and the request log line.

:class:`HttpObserver` wraps a REST or skill adapter's ASGI app (outside its inbound auth, so
refused requests are counted and logged too); :func:`observe_tool` wraps the MCP adapter's
``tools/call`` handler, where the tool name and the ``_meta`` trace context are known. Both
name the operation from the capability file — never from the caller — so metric labels and
trace names stay bounded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any

from mcp import MCPError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from naftiko.exposes.http.asgi import ANSWERED
from naftiko.observability.outbound import UPSTREAM_CALLS
from naftiko.observability.tracing import headers_carrier

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from naftiko.engine.plan import McpAdapterPlan
    from naftiko.exposes.mcp.server import ToolContext, ToolParams
    from naftiko.exposes.rest.router import RestRouter
    from naftiko.observability.telemetry import Telemetry, ToolHandler

Classify = Callable[[Scope], tuple[str, str]]
"""(operation, route template) of an HTTP request, both from the capability file."""


def _http_error(status: int) -> str | None:
    if status < 400:
        return None
    return "client_error" if status < 500 else "server_error"


def _raw_path(scope: Scope) -> str:
    raw: bytes | None = scope.get("raw_path")
    path: str = raw.decode("latin-1").split("?", 1)[0] if raw else scope["path"]
    return path


def rest_classifier(router: RestRouter) -> Classify:
    """(operation, route template) of a REST request, matched like the router does."""

    def classify(scope: Scope) -> tuple[str, str]:
        route, _ = router.match_scope(scope)  # remembered in the scope for the router
        if route is None:
            return "unmatched", "unmatched"
        operation = route.operations.get(scope["method"])
        if operation is not None:
            return operation.name, route.template
        return ("forward" if route.forward is not None else "unmatched"), route.template

    return classify


_SKILL_ROUTES = {
    1: ("catalog", "/skills"),
    2: ("detail", "/skills/{name}"),
}


def skill_classify(scope: Scope) -> tuple[str, str]:
    parts = _raw_path(scope).rstrip("/").split("/")[1:]
    if not parts or parts[0] != "skills":
        return "unmatched", "unmatched"
    if len(parts) in _SKILL_ROUTES:
        return _SKILL_ROUTES[len(parts)]
    if parts[2] == "download" and len(parts) == 3:
        return "download", "/skills/{name}/download"
    if parts[2] == "contents":
        if len(parts) == 3:
            return "contents", "/skills/{name}/contents"
        return "file", "/skills/{name}/contents/{file}"
    return "unmatched", "unmatched"


class HttpObserver:
    """Times, names, counts and logs each HTTP request to ``app``. The status comes from the app
    when it reports it (``reports_status``: noted in the scope under :data:`ANSWERED`), else from
    watching ``send``; the log line takes the raw path as it came and its writer decodes and masks
    it (observability/logs.py): the request pays for neither."""

    __slots__ = ("app", "classify", "kind", "namespace", "reports", "telemetry")

    def __init__(self, app: ASGIApp, telemetry: Telemetry, kind: str, namespace: str, classify: Classify) -> None:
        self.app, self.telemetry, self.kind, self.namespace, self.classify = app, telemetry, kind, namespace, classify
        self.reports: bool = getattr(app, "reports_status", False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = perf_counter()
        telemetry = self.telemetry
        method: str = scope["method"]
        operation, route = self.classify(scope)
        answered = 500  # what uvicorn sends when the app fails before answering
        answer: Send = send
        if not self.reports:

            def watch(message: Message) -> Awaitable[None]:
                """``send``, noting the status on the way. A plain function handing back ``send``'s
                awaitable, not a coroutine of its own: one frame less for each message sent."""
                nonlocal answered
                if message["type"] == "http.response.start":
                    answered = message["status"]
                return send(message)

            answer = watch

        calls = [0]
        calls_token = UPSTREAM_CALLS.set(calls)
        tracing = telemetry.tracing
        span: Span | None = None
        if tracing is not None:
            span, token = tracing.start_server(
                method if route == "unmatched" else f"{method} {route}",
                headers_carrier(scope["headers"]),
                {
                    "naftiko.adapter.type": self.kind,
                    "naftiko.namespace": self.namespace,
                    "naftiko.operation": operation,
                    "http.request.method": method,
                    "http.route": route,
                    "url.path": telemetry.mask(scope["path"]),
                },
            )
        try:
            await self.app(scope, receive, answer)
        finally:
            seconds = perf_counter() - start
            UPSTREAM_CALLS.reset(calls_token)
            if self.reports:
                answered = scope.get(ANSWERED, 500)
            ids = None
            if tracing is not None and span is not None:
                ids = tracing.ids(span)
                failed = f"answered {answered}" if answered >= 500 else None
                tracing.end(span, token, failed, {"http.response.status_code": answered})
            telemetry.finish(
                self.kind, self.namespace, method, scope.get("raw_path") or scope["path"], operation, answered,
                seconds, _http_error(answered) if telemetry.metrics is not None else None, calls[0], ids,
            )


def _mcp_carrier(ctx: object) -> dict[str, str]:
    """Trace context for a tool call: the HTTP headers, overridden by ``params._meta`` (the
    MCP way to carry ``traceparent``, and the only one over stdio)."""
    request = getattr(ctx, "request", None)
    carrier = headers_carrier(request.scope["headers"]) if request is not None else {}
    meta = getattr(ctx, "meta", None)
    if meta:
        carrier.update((k.lower(), v) for k, v in meta.items() if isinstance(v, str))
    return carrier


def observe_tool(telemetry: Telemetry, plan: McpAdapterPlan, call_tool: ToolHandler) -> ToolHandler:
    """``call_tool`` with a server span, metrics and a log line per call."""
    names = frozenset(t.name for t in plan.tools)
    namespace = plan.namespace

    async def observed(ctx: ToolContext, params: ToolParams) -> dict[str, Any]:
        start = perf_counter()
        operation = params.name if params.name in names else "unknown"
        calls = [0]
        calls_token = UPSTREAM_CALLS.set(calls)
        tracing = telemetry.tracing
        span: Span | None = None
        if tracing is not None:
            span, token = tracing.start_server(
                f"tools/call {operation}",
                _mcp_carrier(ctx),
                {
                    "naftiko.adapter.type": "mcp",
                    "naftiko.namespace": namespace,
                    "naftiko.operation": operation,
                    "mcp.method.name": "tools/call",
                    "gen_ai.tool.name": operation,
                },
            )
        status = "error"
        error: str | None = "exception"
        try:
            result = await call_tool(ctx, params)
            if result.get("isError"):
                error = "tool_error"
            else:
                status, error = "ok", None
            return result
        except MCPError:
            error = "protocol_error"
            raise
        finally:
            seconds = perf_counter() - start
            UPSTREAM_CALLS.reset(calls_token)
            ids = None
            if tracing is not None and span is not None:
                ids = tracing.ids(span)
                tracing.end(span, token, error)
            telemetry.finish(
                "mcp", namespace, "tools/call", operation, operation, status, seconds, error, calls[0], ids
            )

    return observed
