"""The MCP adapter, on the official SDK's low-level server (reference §7).

Streamable HTTP at ``/mcp`` and ``/``, sessionless with JSON responses, so both protocol eras
(the ``initialize`` handshake versions and the 2026-07-28 envelope) are served on one
endpoint by any worker. Tools, their schemas and annotations are built once at start-up;
a call validates the arguments, runs the tool's unit and turns the result into text plus
``structuredContent``; a non-JSON body stays text when it is text and otherwise becomes an
image, audio or embedded blob block. Upstream failures and bad arguments are ``isError``
results. Resources and prompts live in :mod:`.mcp_catalog`; only declared groups are served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, get_args

import mcp_types as types
import orjson
from jsonschema import Draft202012Validator
from mcp import MCPError
from mcp.server import CacheHint, Server, ServerRequestContext
from mcp.server.caching import CacheableMethod
from mcp.server.streamable_http_manager import (
    StreamableHTTPASGIApp,
    StreamableHTTPSessionManager,
)
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.routing import Route

from naftiko import __version__
from naftiko.consumes.transport import ResponseTooLarge
from naftiko.engine.plan import McpAdapterPlan, McpToolPlan, Options
from naftiko.engine.result import Empty, JsonAnswer, Relayed, UpstreamFailure
from naftiko.errors import EngineError
from naftiko.exposes.http.disconnect import CancelOnDisconnect
from naftiko.exposes.http.limits import DEFAULT_MAX_BODY_BYTES, MAX_JSON_DEPTH, too_deep
from naftiko.exposes.mcp.catalog import McpCatalog
from naftiko.exposes.mcp.content import (
    MAX_BINARY_BYTES,
    Mask,
    as_text,
    binary_block,
    content_type_essence,
    is_media,
    is_textual,
    too_large,
    upstream_error_text,
)
from naftiko.exposes.mcp.envelope import (
    CAPABILITIES_KEY,
    SERVED_VERSIONS,
    SERVER_INFO_KEY,
    VERSION_KEY,
    Hot,
    McpEndpoint,
)
from naftiko.jsonio import dumps, loads

log = logging.getLogger("naftiko.mcp")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ToolContext(Protocol):
    """What :meth:`McpTools.call` reads of a request context (the SDK's, or the envelope's ``HotContext``)."""

    @property
    def protocol_version(self) -> str | None: ...


class ToolParams(Protocol):
    """What :meth:`McpTools.call` reads of ``tools/call`` params (the SDK's, or the envelope's ``HotParams``)."""

    @property
    def name(self) -> str: ...

    @property
    def arguments(self) -> dict[str, Any] | None: ...


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _error(text: str) -> dict[str, Any]:
    return {"content": [_text(text)], "isError": True}


def _dump(block: BaseModel) -> dict[str, Any]:
    return block.model_dump(mode="json", by_alias=True, exclude_none=True)


def _argument_error(tool: McpToolPlan, validator: Draft202012Validator, arguments: dict[str, Any]) -> str | None:
    errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    parts = []
    for err in errors[:5]:
        where = ".".join(str(p) for p in err.absolute_path)
        parts.append(f"'{where}': {err.message}" if where else err.message)
    return f"invalid arguments for tool '{tool.name}': " + "; ".join(parts)


def _conforming(schema: dict[str, Any]) -> dict[str, Any]:
    """A tool that declares an ``outputSchema`` always returns ``structuredContent`` matching it
    (docs/reference.md): every declared property null (each is nullable)."""
    value = {name: None for name in schema.get("properties", {})}
    return {"content": [_text(dumps(value).decode())], "isError": False, "structuredContent": value}


class McpTools:
    """The tool table. :meth:`call` answers a ``tools/call`` as the JSON ``CallToolResult``
    object (a dict, serialised once by the envelope); :meth:`call_tool` is the SDK's handler
    (stdio) around it."""

    def __init__(self, plan: McpAdapterPlan, mask: Mask) -> None:
        self.mask = mask
        self.namespace = plan.namespace
        self.tools = {t.name: t for t in plan.tools}
        self.validators = {t.name: Draft202012Validator(t.input_schema) for t in plan.tools}
        # tools with declared inputs take only those: an undeclared argument never reaches the unit
        self.accepts = {t.name: frozenset(t.input_schema["properties"]) for t in plan.tools if t.declared_inputs}
        self.listing = types.ListToolsResult(
            tools=[
                types.Tool(
                    name=t.name,
                    title=t.title,
                    description=t.description,
                    input_schema=t.input_schema,
                    output_schema=t.output_schema,
                    annotations=types.ToolAnnotations(
                        read_only_hint=t.annotations.get("readOnlyHint"),
                        destructive_hint=t.annotations.get("destructiveHint"),
                        idempotent_hint=t.annotations.get("idempotentHint"),
                        open_world_hint=t.annotations.get("openWorldHint"),
                    ),
                )
                for t in plan.tools
            ]
        )
        # replaced by the telemetry's observer when it is on
        self.call_observed: Callable[[ToolContext, ToolParams], Awaitable[dict[str, Any]]] = self.call

    def input_schema(self, name: str) -> dict[str, Any] | None:
        tool = self.tools.get(name)
        return tool.input_schema if tool else None

    async def list_tools(self, ctx: ServerRequestContext, params: object) -> types.ListToolsResult:
        return self.listing

    async def call_tool(self, ctx: ServerRequestContext, params: types.CallToolRequestParams) -> types.CallToolResult:
        return types.CallToolResult.model_validate(await self.call_observed(ctx, params))

    async def call(self, ctx: ToolContext, params: ToolParams) -> dict[str, Any]:
        """``ctx`` gives ``protocol_version``; ``params`` gives ``name`` and ``arguments``."""
        tool = self.tools.get(params.name)
        if tool is None:  # a protocol error, not a tool result (and counted as one)
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {params.name}")
        arguments = params.arguments or {}
        if too_deep(arguments, MAX_JSON_DEPTH):
            return _error(f"invalid arguments for tool '{tool.name}': nested deeper than {MAX_JSON_DEPTH} levels")
        problem = _argument_error(tool, self.validators[tool.name], arguments)
        if problem:
            return _error(problem)
        accepted = self.accepts.get(tool.name)
        inputs = dict(arguments) if accepted is None else {k: v for k, v in arguments.items() if k in accepted}
        try:
            result = await tool.unit.invoke(inputs)
        except ResponseTooLarge as exc:
            return self.truncated(exc, tool)
        except EngineError as exc:
            return _error(self.mask(exc.detail))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("tool %s failed", tool.name)
            return _error("the engine failed to run this tool")
        if isinstance(result, UpstreamFailure):
            return _error(upstream_error_text(result, self.mask))
        try:
            answer = self.success(result, ctx.protocol_version in MODERN_PROTOCOL_VERSIONS, tool.name)
        except RecursionError:  # an upstream document nested deeper than a serialiser goes
            return _error(f"tool '{tool.name}': the upstream response is nested too deeply to be relayed")
        structured = answer.get("structuredContent")
        if tool.output_schema is not None and not answer["isError"] and not isinstance(structured, dict):
            return _conforming(tool.output_schema)  # a null or empty result: the declared object with null fields
        return answer

    def success(self, result: JsonAnswer | Relayed | Empty, modern: bool, tool: str = "") -> dict[str, Any]:
        """The one place a successful :class:`Result` becomes tool content."""
        match result:
            case Empty():
                return {"content": [], "isError": False}
            case Relayed(binary=True):
                return self.raw_content(result, tool)
            case Relayed(body=body, content_type=content_type):
                if not body.strip():
                    return {"content": [], "isError": False}
                mime = content_type_essence(content_type)
                if mime and (is_media(mime) or not is_textual(mime)):
                    return self.raw_content(result, tool)
                is_json, value = result.json()
                if not is_json:  # a non-JSON body: text as it came, or a binary block
                    return self.raw_content(result, tool)
            case JsonAnswer(value=value):
                pass
        text = dumps(value).decode()
        if modern or isinstance(value, dict):
            return {"content": [_text(text)], "isError": False, "structuredContent": value}
        return {"content": [_text(text)], "isError": False}

    def truncated(self, exc: ResponseTooLarge, tool: McpToolPlan) -> dict[str, Any]:
        """A text body over ``maxResponseBytes`` that the tool relays unshaped: its first bytes
        plus a note saying so. Shaped, binary or error bodies cannot be cut meaningfully: isError."""
        text = None
        if getattr(tool.unit, "passthrough", False) and exc.upstream_status < 400:
            for cut in range(4):  # the cap may split a multi-byte character
                text = as_text(exc.partial[: len(exc.partial) - cut], exc.content_type)
                if text is not None:
                    break
        if text is None:
            return _error(self.mask(exc.detail))
        note = f"[truncated: the upstream response is larger than {len(exc.partial)} bytes; this is its beginning]"
        return {"content": [_text(text), _text(note)], "isError": False}

    def raw_content(self, result: Relayed, tool: str) -> dict[str, Any]:
        """Text bodies as text; images and audio as their own blocks; other bytes as an
        embedded blob resource (its uri names the tool; it is not listed or readable)."""
        raw = result.body
        uri = f"naftiko://{self.namespace}/tools/{tool}/result"
        if result.binary:  # declared binary (beta5): never text, already within its maxBinarySize
            return {"content": [_dump(binary_block(raw, result.media_type(), uri))], "isError": False}
        text = as_text(raw, result.content_type)
        if text is not None:
            return {"content": [_text(text)], "isError": False}
        if len(raw) > MAX_BINARY_BYTES:
            return _error(too_large(raw))
        return {"content": [_dump(binary_block(raw, result.content_type, uri))], "isError": False}


def server_version(plan: McpAdapterPlan) -> str:
    """``serverInfo.version``: the capability's ``info.version`` when declared, else naftiko's own."""
    return plan.version if plan.version is not None else __version__


def cache_hints(plan: McpAdapterPlan) -> dict[CacheableMethod, CacheHint]:
    """The adapter's ``ttlMs``/``cacheScope`` on every cacheable result (docs/reference.md,
    "Caching hints"). The SDK writes them only on 2026-07-28 results: its per-version sieve
    drops them from handshake-era answers, whose schema has no such fields."""
    hint = CacheHint(ttl_ms=plan.ttl_ms, scope=plan.cache_scope)
    return {method: hint for method in get_args(CacheableMethod)}


def build_server(plan: McpAdapterPlan, mask: Mask) -> tuple[Server, McpTools]:
    """Handlers are registered only for the declared groups, so the advertised capabilities
    (derived by the SDK from the registered handlers) name exactly tools/resources/prompts
    that exist."""
    tools = McpTools(plan, mask)
    handlers = McpCatalog(plan, mask).handlers()
    if plan.tools:
        if plan.telemetry is not None:
            tools.call_observed = plan.telemetry.observe_tool(plan, tools.call)
        handlers.update(
            get_tool_input_schema=tools.input_schema, on_list_tools=tools.list_tools, on_call_tool=tools.call_tool
        )
    server = Server(
        plan.namespace,
        version=server_version(plan),
        instructions=plan.description,
        cache_hints=cache_hints(plan),
        **handlers,
    )
    server.middleware.clear()  # no per-message tracing spans unless observability asks for them
    return server, tools


WILDCARD_ADDRESSES = ("0.0.0.0", "::", "")


def _host_name(name: str) -> str:
    """A bare IPv6 address as it appears in a Host header: bracketed."""
    return f"[{name}]" if ":" in name and not name.startswith("[") else name


def _has_port(host: str) -> bool:
    return host.rpartition("]")[2].count(":") == 1 if host.startswith("[") else host.count(":") == 1


def security_settings(address: str, allowed_hosts=(), allowed_origins=()) -> TransportSecuritySettings | None:
    """DNS-rebinding protection, on for every bind (docs/resilience.md): the Host header must be
    a loopback name, the bound address or one given with ``--allowed-host`` (any port unless
    one is given); a browser's Origin must be one of those hosts or an ``--allowed-origin``.
    ``--allowed-host '*'`` turns both checks off, for deployments that check Host in front."""
    if "*" in allowed_hosts:
        return None
    names = ["127.0.0.1", "localhost", "[::1]"]
    if address not in LOOPBACK and address not in WILDCARD_ADDRESSES:
        names.append(_host_name(address))
    names.extend(_host_name(h.strip().lower()) for h in allowed_hosts if h.strip())
    hosts: list[str] = []
    origins: list[str] = [o.strip().rstrip("/") for o in allowed_origins if o.strip()]
    for name in dict.fromkeys(names):
        hosts.extend([name] if _has_port(name) else [name, f"{name}:*"])
        for scheme in ("http", "https"):
            origins.extend(
                [f"{scheme}://{name}"] if _has_port(name) else [f"{scheme}://{name}", f"{scheme}://{name}:*"]
            )
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


def _has_header_param(schema: object) -> bool:
    """Whether an input schema marks a property with ``x-mcp-header`` (then Mcp-Param-* headers are checked)."""
    return isinstance(schema, dict) and "x-mcp-header" in dumps(schema).decode()


async def _discover(sdk, server_info: dict[str, str]) -> dict:
    """The SDK's own ``server/discover`` result (capabilities, instructions, server info), asked
    once at start-up; the envelope serves it with every version this server speaks."""
    meta = {VERSION_KEY: MODERN_PROTOCOL_VERSIONS[-1], CAPABILITIES_KEY: {}}
    body = dumps({"jsonrpc": "2.0", "id": 0, "method": "server/discover", "params": {"_meta": meta}})
    version = MODERN_PROTOCOL_VERSIONS[-1].encode()
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/mcp",
        "raw_path": b"/mcp",
        "query_string": b"",
        "root_path": "",
        "scheme": "http",
        "http_version": "1.1",
        "server": ("127.0.0.1", 0),
        "client": ("127.0.0.1", 0),
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"accept", b"application/json"),
            (b"mcp-protocol-version", version),
            (b"mcp-method", b"server/discover"),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    parts: list[bytes] = []
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # never: the SDK does not wait for more
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.body":
            parts.append(message.get("body", b""))

    await sdk(scope, receive, send)
    try:
        result = loads(b"".join(parts))["result"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise RuntimeError(f"the MCP SDK did not answer server/discover: {b''.join(parts)[:200]!r}") from None
    result.pop("resultType", None)
    info = result.pop("_meta", {}).get(SERVER_INFO_KEY) or server_info
    result["supportedVersions"] = list(SERVED_VERSIONS)
    return {"result": result, "server_info": info}


def build_mcp_app(plan: McpAdapterPlan, mask: Mask, options: Options | None = None) -> Starlette:
    """``options`` (engine.plan.Options) brings the body limit and the Host/Origin allow-lists.
    The envelope (:mod:`.mcp_envelope`) answers the hot methods and hands the rest to the SDK."""
    server, tools = build_server(plan, mask)
    allowed_hosts = tuple(getattr(options, "allowed_hosts", ()))
    if plan.address not in LOOPBACK and not allowed_hosts:
        log.warning(
            "mcp adapter '%s' listens on %s but accepts only Host headers naming %s; "
            "pass --allowed-host NAME for each name clients use (or --allowed-host '*' to accept any)",
            plan.namespace,
            plan.address,
            "loopback" if plan.address in WILDCARD_ADDRESSES else f"loopback or {plan.address}",
        )
    settings = security_settings(plan.address, allowed_hosts, tuple(getattr(options, "allowed_origins", ())))
    max_body = getattr(options, "max_body_bytes", DEFAULT_MAX_BODY_BYTES)
    manager = StreamableHTTPSessionManager(
        app=server,
        json_response=True,
        stateless=True,
        security_settings=settings,
        # The envelope enforces --max-body-bytes before the SDK sees a body; this is only a backstop
        # that the start-up server/discover request (about 200 bytes) must always pass.
        max_request_body_size=max(max_body, 64 * 1024),
    )
    sdk = StreamableHTTPASGIApp(manager)
    hot = Hot(
        tools.call_observed if plan.tools else None,
        _dump(tools.listing) if plan.tools else None,
        {name: tool.input_schema for name, tool in tools.tools.items()},
        frozenset(name for name, tool in tools.tools.items() if _has_header_param(tool.input_schema)),
        {"ttlMs": plan.ttl_ms, "cacheScope": plan.cache_scope},
    )
    endpoint = McpEndpoint(
        sdk,
        hot,
        hosts=tuple(settings.allowed_hosts) if settings is not None else None,
        # CORS is granted to these origins; with --allowed-host '*' only to the --allowed-origin ones
        origins=tuple(settings.allowed_origins)
        if settings is not None
        else tuple(getattr(options, "allowed_origins", ())),
        max_body=max_body,
    )
    app = CancelOnDisconnect(endpoint)  # an abandoned call stops its upstream call

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with manager.run():
            found = await _discover(sdk, {"name": plan.namespace, "version": server_version(plan)})
            hot.discover, hot.server_info = found["result"], found["server_info"]
            yield

    return Starlette(routes=[Route("/mcp", endpoint=app), Route("/", endpoint=app)], lifespan=lifespan)
