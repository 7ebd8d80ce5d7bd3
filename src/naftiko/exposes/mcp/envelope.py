"""The MCP endpoint's HTTP envelope, owned: JSON-RPC framing, protocol versions, CORS, hot methods.

Every request to ``/mcp`` passes here first (docs/reference.md, "MCP adapter"):

- HTTP: Host/Origin checks (DNS rebinding), CORS for allowed origins (preflight included),
  ``405`` with ``Allow`` for GET/DELETE (the server is stateless: no standalone stream, no
  session to end), ``415``/``406``/``413`` for a wrong content type, accept or body size.
- JSON-RPC 2.0 as the MCP revisions require: a body that is not JSON is ``-32700``; one that
  is not a request/notification (``params`` not an object, ``"id": null``, no ``method``…)
  is ``-32600`` echoing the id when it is usable; a batch is served on 2025-03-26 (the only
  revision that has batches) and refused on the others.
- Versions: the ``MCP-Protocol-Version`` header must name a served version (else
  ``UnsupportedProtocolVersion`` listing all of them); when the body's
  ``_meta["io.modelcontextprotocol/protocolVersion"]`` is present the header must equal it,
  and on 2026-07-28 ``Mcp-Method`` / ``Mcp-Name`` must equal the body (``HeaderMismatch``).
- A ``cursor`` on a list method is refused (``-32602``): naftiko lists are never paginated,
  so no cursor it did not issue can be valid.
- ``tools/call``, ``tools/list`` and ``server/discover`` are answered here directly: parsed
  once with orjson, dispatched to the precompiled tool, serialised once; on 2026-07-28 the two
  cacheable ones carry the adapter's ``ttlMs``/``cacheScope`` (never on handshake-era answers,
  never on ``tools/call``). Everything else
  (``initialize``, ``ping``, resources, prompts, notifications) goes to the official SDK with
  the body it already read.

:func:`check_message` holds the JSON-RPC rules shared with stdio (:mod:`.mcp_stdio`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from mcp import MCPError
from mcp.shared.inbound import ERROR_CODE_HTTP_STATUS, decode_header_value, validate_mcp_param_headers
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from starlette.types import Message, Receive, Scope, Send

from naftiko.jsonio import dumps, loads

log = logging.getLogger("naftiko.mcp")

PARSE_ERROR, INVALID_REQUEST, INVALID_PARAMS = -32700, -32600, -32602
HEADER_MISMATCH, UNSUPPORTED_PROTOCOL_VERSION = -32020, -32022
ENVELOPE_ERRORS = frozenset({PARSE_ERROR, INVALID_REQUEST, HEADER_MISMATCH, UNSUPPORTED_PROTOCOL_VERSION})  # HTTP 400
VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
SERVER_INFO_KEY = "io.modelcontextprotocol/serverInfo"
# Newest first: what server/discover and version errors list.
SERVED_VERSIONS: tuple[str, ...] = (*reversed(MODERN_PROTOCOL_VERSIONS), *reversed(HANDSHAKE_PROTOCOL_VERSIONS))
BATCH_VERSION = "2025-03-26"  # the only revision with JSON-RPC batches (removed in 2025-06-18)
DEFAULT_VERSION = "2025-03-26"  # an HTTP request without the header (streamable-http, 2025-06-18 on)
NAME_PARAM = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
LIST_METHODS = frozenset({"tools/list", "resources/list", "resources/templates/list", "prompts/list"})
ALLOW = b"POST, OPTIONS"
STOPPED = "the server is shutting down and stopped this tool call before it finished"
CORS_METHODS = b"POST, OPTIONS"
CORS_EXPOSE = b"mcp-session-id, mcp-protocol-version, www-authenticate"


class RpcError(Exception):
    """A JSON-RPC error answer: ``id`` is echoed when it is a usable request id."""

    def __init__(self, code: int, message: str, rid: object = None, data: object = None):
        super().__init__(message)
        self.code, self.message, self.rid, self.data = code, message, rid, data

    def body(self) -> dict:
        error: dict = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return {"jsonrpc": "2.0", "id": self.rid, "error": error}


def _usable_id(message: dict) -> object:
    rid = message.get("id")
    return rid if (isinstance(rid, str) or (isinstance(rid, int) and not isinstance(rid, bool))) else None


def check_message(message: object) -> tuple[str | None, object, dict | None, bool]:
    """(method, id, params, is_request) of one JSON-RPC message, or :class:`RpcError`.

    ``method`` is ``None`` for a response (a client's answer to a server request). MCP ids are
    strings or integers and never null (basic/index: "the ID MUST NOT be null")."""
    if not isinstance(message, dict):
        raise RpcError(INVALID_REQUEST, "a JSON-RPC message must be an object")
    rid = _usable_id(message)
    if message.get("jsonrpc") != "2.0":
        raise RpcError(INVALID_REQUEST, 'the message must have "jsonrpc": "2.0"', rid)
    has_id = "id" in message
    if has_id and rid is None:
        raise RpcError(INVALID_REQUEST, "the request id must be a string or an integer (MCP ids are never null)")
    method = message.get("method")
    if method is None and has_id and ("result" in message or "error" in message):
        return None, rid, None, False
    if not isinstance(method, str):
        raise RpcError(INVALID_REQUEST, 'the message needs a "method" string', rid)
    params = message.get("params")
    if params is not None and not isinstance(params, dict):
        raise RpcError(INVALID_REQUEST, '"params" must be an object', rid)
    return method, rid, params, has_id


def check_cursor(method: str, params: dict | None, rid: object) -> None:
    """naftiko never paginates a list, so any cursor is one it did not issue (spec: -32602)."""
    if method in LIST_METHODS and params and params.get("cursor") is not None:
        raise RpcError(INVALID_PARAMS, "invalid cursor: this server does not paginate its lists", rid)


def unsupported(requested: object, rid: object) -> RpcError:
    return RpcError(
        UNSUPPORTED_PROTOCOL_VERSION,
        f"unsupported protocol version {requested!r}; this server supports {', '.join(SERVED_VERSIONS)}",
        rid,
        {"supported": list(SERVED_VERSIONS), "requested": requested},
    )


def body_version(params: dict | None) -> object:
    meta = params.get("_meta") if params else None
    return meta.get(VERSION_KEY) if isinstance(meta, dict) else None


def check_modern(method: str, params: dict | None, rid: object, headers: dict[bytes, bytes] | None) -> None:
    """The 2026-07-28 per-request envelope: _meta carries version and client capabilities;
    on HTTP the routing headers must repeat the body (streamable-http "Server Validation")."""
    meta = params.get("_meta") if params else None
    if not isinstance(meta, dict):
        raise RpcError(
            INVALID_PARAMS, f"params._meta must be an object carrying {VERSION_KEY!r} and {CAPABILITIES_KEY!r}", rid
        )
    missing = [key for key in (VERSION_KEY, CAPABILITIES_KEY) if key not in meta]
    if missing:
        raise RpcError(INVALID_PARAMS, f"params._meta is missing the required key(s) {', '.join(missing)}", rid)
    if headers is not None:
        if headers.get(b"mcp-method", b"").decode("latin-1") != method:
            raise RpcError(HEADER_MISMATCH, "the Mcp-Method header does not match the request's method", rid)
        key = NAME_PARAM.get(method)
        value = params.get(key) if key and params else None
        if value is not None:
            header = headers.get(b"mcp-name")
            if decode_header_value(header.decode("latin-1") if header is not None else None) != value:
                raise RpcError(HEADER_MISMATCH, f"the Mcp-Name header does not match the request's {key!r}", rid)
    if not isinstance(meta[VERSION_KEY], str):
        raise RpcError(INVALID_PARAMS, "the protocol version in params._meta must be a string", rid)
    if meta[VERSION_KEY] not in MODERN_PROTOCOL_VERSIONS:
        raise unsupported(meta[VERSION_KEY], rid)


# ------------------------------------------------------------------ HTTP


class Answer:
    """One HTTP answer, built without Starlette's Response machinery."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None):
        self.status, self.body, self.headers = status, body, headers or []


def _json(status: int, payload: object) -> Answer:
    return Answer(status, dumps(payload), [(b"content-type", b"application/json")])


def _accepts_json(accept: bytes) -> bool:
    if not accept:
        return True  # no preference stated: any type is acceptable (RFC 9110 §12.5.1)
    for part in accept.split(b","):
        kind = part.split(b";", 1)[0].strip().lower()
        if kind in (b"application/json", b"application/*", b"*/*"):
            return True
    return False


class Hot:
    """The methods answered without the SDK; set by :func:`naftiko.exposes.mcp.server.build_mcp_app`."""

    def __init__(
        self,
        call: Callable[..., Awaitable[dict]] | None,
        listing: dict | None,
        schemas: dict[str, dict],
        header_tools: frozenset[str],
        cache: dict[str, int | str] | None = None,
    ):
        self.call, self.listing, self.schemas, self.header_tools = call, listing, schemas, header_tools
        # ttlMs/cacheScope of the cacheable results, written on 2026-07-28 answers only (spec defaults)
        self.cache: dict[str, int | str] = cache if cache is not None else {"ttlMs": 0, "cacheScope": "private"}
        self.discover: dict | None = None  # filled at start-up from the SDK's own answer
        self.server_info: dict = {}


class _Scope:
    """What the tool-call observer reads from a request context (``ctx.request.scope``)."""

    __slots__ = ("scope",)

    def __init__(self, scope: Scope):
        self.scope = scope


class HotContext:
    __slots__ = ("meta", "protocol_version", "request")

    def __init__(self, scope: Scope, meta: dict | None, version: str):
        self.request, self.meta, self.protocol_version = _Scope(scope), meta, version


class HotParams:
    __slots__ = ("arguments", "name")

    def __init__(self, name: str, arguments: dict | None):
        self.name, self.arguments = name, arguments


def _call_params(params: dict[str, Any], rid: object) -> tuple[str, dict[str, Any] | None]:
    """``tools/call`` params: a ``name`` string and, if any, an ``arguments`` object."""
    name = params.get("name")
    arguments = params.get("arguments")
    if not isinstance(name, str):
        raise RpcError(INVALID_PARAMS, 'tools/call needs a "name" string', rid)
    if arguments is not None and not isinstance(arguments, dict):
        raise RpcError(INVALID_PARAMS, '"arguments" must be an object', rid)
    return name, arguments


class McpEndpoint:
    """ASGI app for the MCP endpoint; ``sdk`` serves what is not answered here."""

    def __init__(self, sdk, hot: Hot, *, hosts: tuple[str, ...] | None, origins: tuple[str, ...], max_body: int):
        self.sdk, self.hot, self.max_body = sdk, hot, max_body
        self.check_host = hosts is not None
        self.hosts = frozenset(h for h in (hosts or ()) if not h.endswith(":*"))
        self.host_prefixes = tuple(h[:-1] for h in (hosts or ()) if h.endswith(":*"))
        self.origins = frozenset(o for o in origins if not o.endswith(":*"))
        self.origin_prefixes = tuple(o[:-1] for o in origins if o.endswith(":*"))

    def _allowed(self, value: str, exact: frozenset[str], prefixes: tuple[str, ...]) -> bool:
        if value in exact:
            return True
        for prefix in prefixes:  # "name:" + a port
            if value.startswith(prefix) and value[len(prefix) :].isdigit():
                return True
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.sdk(scope, receive, send)
        headers: dict[bytes, bytes] = {}
        duplicated = None
        for name, value in scope["headers"]:
            if name in headers and name in (b"mcp-protocol-version", b"mcp-method", b"mcp-name"):
                duplicated = name.decode()
            headers[name] = value
        origin = headers.get(b"origin", b"").decode("latin-1")
        if self.check_host:
            host = headers.get(b"host", b"").decode("latin-1")
            if not self._allowed(host, self.hosts, self.host_prefixes):
                log.debug("refused Host header %r", host)
                return await self._send(send, Answer(421, b"Invalid Host header", [(b"content-type", b"text/plain")]))
            if origin and not self._allowed(origin, self.origins, self.origin_prefixes):
                log.debug("refused Origin header %r", origin)
                return await self._send(send, Answer(403, b"Invalid Origin header", [(b"content-type", b"text/plain")]))
        cors: list[tuple[bytes, bytes]] = []
        if origin and self._allowed(origin, self.origins, self.origin_prefixes):  # only origins named as allowed
            cors = [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"vary", b"Origin"),
                (b"access-control-expose-headers", CORS_EXPOSE),
            ]
        method = scope["method"]
        if method == "OPTIONS":
            answer = Answer(204, b"", [(b"allow", ALLOW)])
            if cors:
                requested = headers.get(b"access-control-request-headers", b"")
                answer.headers += [(b"access-control-allow-methods", CORS_METHODS), (b"access-control-max-age", b"600")]
                if requested:
                    answer.headers.append((b"access-control-allow-headers", requested))
            return await self._send(send, answer, cors)
        if method != "POST":
            return await self._send(send, Answer(405, b"", [(b"allow", ALLOW)]), cors)
        posted: Answer | None
        try:
            posted = await self._post(scope, receive, send, headers, duplicated, cors)
        except RpcError as exc:
            posted = _json(400, exc.body())
        if posted is not None:
            await self._send(send, posted, cors)

    @staticmethod
    async def _send(send: Send, answer: Answer, extra: list[tuple[bytes, bytes]] | None = None) -> None:
        headers = answer.headers + (extra or [])
        headers.append((b"content-length", str(len(answer.body)).encode()))
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})

    async def _read(self, receive: Receive, headers: dict[bytes, bytes]) -> bytes | None:
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _post(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: dict[bytes, bytes],
        duplicated: str | None,
        cors: list,
    ) -> Answer | None:
        ctype = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
        if ctype != b"application/json":
            return _json(415, RpcError(INVALID_REQUEST, "Content-Type must be application/json").body())
        if not _accepts_json(headers.get(b"accept", b"")):
            return _json(406, RpcError(INVALID_REQUEST, "Accept must allow application/json").body())
        raw = await self._read(receive, headers)
        if raw is None:
            return _json(
                413, RpcError(INVALID_REQUEST, f"the request body is larger than {self.max_body} bytes").body()
            )
        try:
            decoded = loads(raw)
        except orjson.JSONDecodeError:
            return _json(400, RpcError(PARSE_ERROR, "Parse error: the body is not valid JSON").body())
        header = headers.get(b"mcp-protocol-version")
        version = header.decode("latin-1") if header is not None else None
        if isinstance(decoded, list):
            return await self._batch(scope, receive, decoded, version)
        if duplicated is not None:
            rid = _usable_id(decoded) if isinstance(decoded, dict) else None
            raise RpcError(HEADER_MISMATCH, f"the {duplicated} header appears more than once", rid)
        method, rid, params, is_request = check_message(decoded)
        era = self._era(method, rid, params, version, headers)
        if method is None or not is_request or not self._is_hot(method, era):
            if method is not None and is_request:
                check_cursor(method, params, rid)
            await self._to_sdk(scope, raw, receive, send, cors)
            return None
        status, payload = await self._hot(scope, method, rid, params, era)
        return Answer(status, payload, [(b"content-type", b"application/json")])

    def _is_hot(self, method: str, era: str) -> bool:
        """Answered here: the tool methods when tools are declared, server/discover on 2026-07-28."""
        if method == "server/discover":
            return era in MODERN_PROTOCOL_VERSIONS and self.hot.discover is not None
        return method in ("tools/call", "tools/list") and self.hot.call is not None

    def _era(
        self,
        method: str | None,
        rid: object,
        params: dict | None,
        version: str | None,
        headers: dict[bytes, bytes] | None,
    ) -> str:
        """The revision this message is served at, or :class:`RpcError`."""
        stated = body_version(params)
        if version is not None and version not in SERVED_VERSIONS:
            if stated is not None and stated != version:
                raise RpcError(
                    HEADER_MISMATCH,
                    "the MCP-Protocol-Version header does not match params._meta's protocol version",
                    rid,
                )
            raise unsupported(version, rid)
        if stated is not None and stated != version:
            raise RpcError(
                HEADER_MISMATCH, "the MCP-Protocol-Version header does not match params._meta's protocol version", rid
            )
        if version in MODERN_PROTOCOL_VERSIONS:
            if method is not None and rid is not None:
                check_modern(method, params, rid, headers)
            return version
        return version or DEFAULT_VERSION

    async def _hot(self, scope: Scope, method: str, rid: object, params: dict | None, era: str) -> tuple[int, bytes]:
        """(HTTP status, serialised JSON-RPC answer) of a hot method."""
        modern = era in MODERN_PROTOCOL_VERSIONS
        try:
            result = await self.answer(scope, method, rid, params, era)
        except RpcError as exc:
            status = (
                ERROR_CODE_HTTP_STATUS.get(exc.code, 200) if modern else (400 if exc.code in ENVELOPE_ERRORS else 200)
            )
            return status, dumps(exc.body())
        if modern:
            result["resultType"] = "complete"
            result["_meta"] = {SERVER_INFO_KEY: self.hot.server_info}
        try:
            return 200, dumps({"jsonrpc": "2.0", "id": rid, "result": result})
        except (RecursionError, TypeError, ValueError):  # a value no serialiser can write (nested ~1000 deep)
            failed = {
                "content": [{"type": "text", "text": "the result is nested too deeply to be sent"}],
                "isError": True,
            }
            return 200, dumps({"jsonrpc": "2.0", "id": rid, "result": failed})

    async def answer(self, scope: Scope, method: str, rid: object, params: dict | None, era: str) -> dict:
        hot = self.hot
        modern = era in MODERN_PROTOCOL_VERSIONS
        if method == "server/discover":  # only served on 2026-07-28 (_is_hot)
            return {**(hot.discover or {}), **hot.cache}
        assert hot.listing is not None and hot.call is not None  # _is_hot said so
        params = params or {}
        if method == "tools/list":
            check_cursor(method, params, rid)
            return {"tools": hot.listing["tools"], **hot.cache} if modern else {"tools": hot.listing["tools"]}
        name, arguments = _call_params(params, rid)
        if modern:
            self._check_param_headers(scope, name, arguments, rid)
        meta = params.get("_meta")
        ctx = HotContext(scope, meta if isinstance(meta, dict) else None, era)
        try:
            return await hot.call(ctx, HotParams(name, arguments))
        except MCPError as exc:  # an unknown tool
            raise RpcError(exc.error.code, exc.error.message, rid) from None
        except asyncio.CancelledError:
            # Cancelled either because the caller left (the answer then goes nowhere) or because
            # --grace ran out at shutdown: the caller still gets a result saying so, not a bare 500.
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            return {"content": [{"type": "text", "text": STOPPED}], "isError": True}

    def _check_param_headers(self, scope: Scope, name: str, arguments: dict[str, Any] | None, rid: object) -> None:
        """Modern protocol: ``Mcp-Param-*`` headers must agree with the arguments they repeat."""
        hot = self.hot
        if name not in hot.schemas:
            return
        if name not in hot.header_tools and not any(k.startswith(b"mcp-param-") for k, _ in scope["headers"]):
            return
        text_headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        rejection = validate_mcp_param_headers(hot.schemas[name], arguments or {}, text_headers)
        if rejection is not None:
            raise RpcError(rejection.code, rejection.message, rid, rejection.data)

    async def _batch(self, scope: Scope, receive: Receive, batch: list, version: str | None) -> Answer:
        era = version or DEFAULT_VERSION
        if era not in SERVED_VERSIONS:
            raise unsupported(version, None)
        if era != BATCH_VERSION:
            raise RpcError(
                INVALID_REQUEST, f"JSON-RPC batches are not part of protocol version {era} (only {BATCH_VERSION})"
            )
        if not batch:
            raise RpcError(INVALID_REQUEST, "an empty batch")
        replies = []
        for message in batch:
            reply = await self._batch_one(scope, receive, message, era)
            if reply is not None:
                replies.append(reply)
        return _json(200, replies) if replies else Answer(202)

    async def _batch_one(self, scope: Scope, receive: Receive, message: object, era: str) -> dict | None:
        try:
            method, rid, params, is_request = check_message(message)
            if method is None or not is_request:
                return None  # notifications and responses: nothing to answer in a stateless server
            self._era(method, rid, params, era, None)
            check_cursor(method, params, rid)
            if method == "initialize":
                raise RpcError(INVALID_REQUEST, "initialize must not be part of a batch", rid)
            if self._is_hot(method, era):
                return loads((await self._hot(scope, method, rid, params, era))[1])
        except RpcError as exc:
            return exc.body()
        return await self._sdk_one(scope, receive, message)

    async def _to_sdk(self, scope: Scope, raw: bytes, receive: Receive, send: Send, cors: list) -> None:
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()  # after the body: only a disconnect can come

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start" and cors:
                message = {**message, "headers": [*message.get("headers", []), *cors]}
            await send(message)

        await self.sdk(scope, replay, send_with_cors)
        return None

    async def _sdk_one(self, scope: Scope, receive: Receive, message: object) -> dict | None:
        """One message of a batch through the SDK, as if it came alone."""
        raw = dumps(message)
        parts: list[bytes] = []

        async def capture(event: Message) -> None:
            if event["type"] == "http.response.body":
                parts.append(event.get("body", b""))

        headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
        await self._to_sdk(
            {**scope, "headers": [*headers, (b"content-length", str(len(raw)).encode())]}, raw, receive, capture, []
        )
        body = b"".join(parts)
        try:
            reply = loads(body) if body else None
        except orjson.JSONDecodeError:
            return RpcError(-32603, "internal error", _usable_id(message) if isinstance(message, dict) else None).body()
        return reply if isinstance(reply, dict) else None
