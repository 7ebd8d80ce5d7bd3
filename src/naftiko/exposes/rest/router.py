"""The REST adapter: a Starlette app serving a capability's exposed resources.

Routes come from resource paths in any placeholder spelling (``{customer-id}``,
``{{orgId}}``), matched on the raw, still percent-encoded path so a value may hold ``/``,
``?`` or spaces. Every input is collected — path variables, query parameters, headers,
cookies and the JSON body as ``body`` — and handed to the operation's unit. Upstream status
and body pass through; engine errors are problem+json (reference §6). A resource with
``forward`` proxies every method none of its operations takes (reference §8); its last
placeholder may then span several segments.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.datastructures import URL, Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from naftiko.consumes.transport import RELAYED_RESPONSE_HEADERS
from naftiko.engine.binding import FromInput, FromWith
from naftiko.engine.forward import ForwardPlan, safe_response_headers
from naftiko.engine.plan import InputSpec, RestAdapterPlan, RestOperation, RestRoute
from naftiko.engine.result import Empty, Relayed, Result, UpstreamFailure
from naftiko.engine.simple import InputRef
from naftiko.engine.unit import Inputs
from naftiko.errors import EngineError, InvalidInput, PayloadTooLarge
from naftiko.exposes.http.asgi import ANSWERED, serve_lifespan
from naftiko.exposes.http.disconnect import CallerGone, cancel_on_disconnect
from naftiko.exposes.http.limits import DEFAULT_MAX_BODY_BYTES, JsonTooLarge, loads_bounded
from naftiko.exposes.http.problems import problem, problem_from
from naftiko.expressions.jsonpath import JsonPath, is_jsonpath
from naftiko.expressions.template import MISSING, PATH_PLACEHOLDER
from naftiko.jsonio import JSONDecodeError, dumps

log = logging.getLogger("naftiko.rest")
# Bind values masked out of a text. Any: Secrets.mask is typed object -> object (a str in gives a str back).
Mask = Callable[[str], Any]

# Request headers that describe the connection or the caller's credentials, never inputs.
_NOT_INPUTS = frozenset(
    {
        "host", "connection", "keep-alive", "content-length", "content-type", "transfer-encoding", "te",
        "trailer", "upgrade", "authorization", "proxy-authorization", "cookie", "accept-encoding",
    }
)


_MATCHED = "naftiko.rest.match"  # scope key: (router, route, raw path values) once matched


@dataclass(slots=True)
class _Route:
    template: str
    regex: re.Pattern[str] | None
    names: list[str]
    operations: dict[str, RestOperation]
    allow: str
    forward: ForwardPlan | None = None


def _compile_route(r: RestRoute) -> _Route:
    path = r.path if r.path.startswith("/") else "/" + r.path
    found = list(PATH_PLACEHOLDER.finditer(path))
    names: list[str] = []
    pattern = ""
    pos = 0
    for i, m in enumerate(found):
        pattern += re.escape(path[pos : m.start()])
        names.append((m.group(1) or m.group(2)).strip())
        # A forward's last placeholder is the rest of the path: /notion/{path} takes /notion/v1/pages/x.
        group = ".+" if r.forward is not None and i == len(found) - 1 else "[^/]+"
        pattern += f"(?P<p{len(names) - 1}>{group})"
        pos = m.end()
    pattern += re.escape(path[pos:])
    regex = re.compile(pattern + "$") if names else None
    operations = dict(r.operations)
    if "GET" in operations and "HEAD" not in operations:
        operations["HEAD"] = operations["GET"]  # HEAD answers like GET; the server sends no body
    return _Route(path, regex, names, operations, ", ".join(sorted(operations)), r.forward)


@dataclass(frozen=True, slots=True)
class InputPlan:
    """Where one operation's inputs come from, decided at load. Headers and cookies are read only
    for inputs declared ``in: header``/``in: cookie``, consumed header/cookie parameters fed by
    name and names a ``with`` entry references; ``in: body`` inputs from the JSON body."""

    headers: tuple[tuple[str, str], ...]  # (input name, lower-case header name)
    cookies: tuple[str, ...]
    body_fields: tuple[tuple[str, JsonPath | None], ...]  # (input name, JSONPath or None: the field of that name)
    function_inputs: tuple[str, ...]  # declared without `in`: a query parameter or a JSON body field
    declared_elsewhere: frozenset[str]  # names declared in a header, cookie or the body
    # The declared inputs _check_declared looks at: all but those named by a path placeholder as text
    # (string, object or no type). Path values are applied last, so such an input is always there, as
    # the path's text, which is already what its type asks for: checking it could change nothing.
    checked: tuple[InputSpec, ...] = ()


def compile_inputs(operation: RestOperation, route_names: list[str]) -> InputPlan:
    headers: dict[str, str] = {}
    cookies: dict[str, None] = {}
    body_fields: list[tuple[str, JsonPath | None]] = []
    declared = {s.name: s.location for s in operation.inputs}
    for spec in operation.inputs:
        if spec.location == "header":
            headers[spec.name] = spec.name.lower()
        elif spec.location == "cookie":
            cookies[spec.name] = None
        elif spec.location == "body" and spec.name != "body":
            body_fields.append(
                (spec.name, JsonPath(spec.value) if isinstance(spec.value, str) and is_jsonpath(spec.value) else None)
            )
    for call in operation.unit.calls:
        for name, source in call.sources:
            param = call.target.request.params.get(name)
            if isinstance(source, FromInput) and param is not None and param.location in ("header", "cookie"):
                key = source.key
            elif isinstance(source, FromWith) and isinstance(source.compiled, InputRef):
                key = source.compiled.path[0]
            else:
                continue
            if key in route_names or key == "body" or key.lower() in _NOT_INPUTS:
                continue
            if declared.get(key) in ("path", "query", "body"):
                continue
            headers.setdefault(key, key.lower())
            cookies.setdefault(key, None)
    elsewhere = {n for n in headers if n not in route_names} | set(cookies) | {n for n, _ in body_fields}
    elsewhere = {n for n in elsewhere if declared.get(n) in ("header", "cookie", "body")}
    return InputPlan(
        tuple(headers.items()),
        tuple(cookies),
        tuple(body_fields),
        tuple(s.name for s in operation.inputs if s.location is None),
        frozenset(elsewhere),
        tuple(s for s in operation.inputs if not (s.name in route_names and s.type in (None, "string", "object"))),
    )


def _parse_input(spec: InputSpec, value: object) -> object:
    """A query/path/header/form text parsed as its declared type: 400 when it is not (outputs: conform_output)."""
    kind = spec.type
    if kind == "array":
        return value if isinstance(value, list) else [value]
    if isinstance(value, list):
        value = value[-1]
    if not isinstance(value, str) or kind in (None, "string", "object"):
        return value
    try:
        if kind in ("integer", "number"):
            return _decimal(value, integer=kind == "integer")
    except ValueError:
        raise InvalidInput(
            f"'{spec.name}' must be {'an integer' if kind == 'integer' else 'a number'}, got {value!r}", field=spec.name
        ) from None
    if kind == "boolean":
        lowered = value.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise InvalidInput(f"'{spec.name}' must be a boolean, got {value!r}", field=spec.name)
    return value


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}
_ARTICLE = {"integer": "an integer", "array": "an array", "object": "an object"}


def _check_json(spec: InputSpec, value: object) -> object:
    """A JSON body field is already typed: it must be of the declared type (no coercion)."""
    expected = _JSON_TYPES.get(spec.type or "")
    if expected is None or (isinstance(value, expected) and not (isinstance(value, bool) and bool not in expected)):
        return value
    article = _ARTICLE.get(spec.type or "", f"a {spec.type}")
    raise InvalidInput(f"'{spec.name}' must be {article}, got {dumps(value).decode()[:40]}", field=spec.name)


_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def _decimal(value: str, *, integer: bool) -> int | float:
    """ASCII decimal only: Python's ``int``/``float`` also take ``1_000``, surrounding spaces,
    other scripts' digits (``٣``), ``nan`` and ``inf``, none of which a JSON API means."""
    if (_INTEGER if integer else _NUMBER).fullmatch(value) is None:
        raise ValueError(value)
    return int(value) if _INTEGER.fullmatch(value) else float(value)


class RestRouter:
    """ASGI app: route table built once; per request one dict lookup or a few regex matches.
    It notes each answer's status in the scope (:data:`ANSWERED`) for the HTTP observer."""

    reports_status = True

    def __init__(self, plan: RestAdapterPlan, mask: Mask, max_body: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.plan = plan
        self.mask = mask
        self.max_body = max_body
        self.static: dict[str, _Route] = {}
        self.dynamic: list[_Route] = []
        self.input_plans: dict[int, InputPlan] = {}
        for r in plan.routes:
            if not r.operations and r.forward is None:
                continue
            route = _compile_route(r)
            for operation in r.operations.values():
                self.input_plans[id(operation)] = compile_inputs(operation, route.names)
            if route.regex is None:
                self.static[route.template.rstrip("/") or "/"] = route
            else:
                self.dynamic.append(route)
        # Literal paths before templated ones, and longer literals first, so /customers/archive
        # wins over /customers/{id}; at equal length one segment before a forward's many.
        self.dynamic.sort(key=lambda r: (-len(PATH_PLACEHOLDER.sub("", r.template)), r.forward is not None))
        # A placeholder other than a forward's last spans one segment, so a templated route can only match
        # a path with as many '/' as its template: per count, the routes worth trying, in the order above.
        fixed = [r.template.count("/") for r in self.dynamic if r.forward is None]
        self.candidates = [
            [r for r in self.dynamic if r.forward is not None or r.template.count("/") == n]
            for n in range(max(fixed, default=-1) + 1)
        ]
        self.forwards = [r for r in self.dynamic if r.forward is not None]  # for longer paths

    def match(self, raw_path: str) -> tuple[_Route | None, dict[str, str]]:
        """The route and its path values, still percent-encoded."""
        key = raw_path.rstrip("/") or "/"
        # A literal route is matched decoded first, then as sent; most paths have nothing to decode.
        route = (self.static.get(unquote(key)) or self.static.get(key)) if "%" in key else self.static.get(key)
        if route is not None:
            return route, {}
        slashes = key.count("/")
        for route in self.candidates[slashes] if slashes < len(self.candidates) else self.forwards:
            # A forward keeps the caller's trailing '/': some upstreams tell /x from /x/. (Every templated
            # route has a regex, whose only groups are its placeholders, one per name: zip's strict
            # check, which costs a keyword argument parse per request, could never fail.)
            m = route.regex.match(raw_path if route.forward is not None else key)  # type: ignore[union-attr]
            if m:
                return route, dict(zip(route.names, m.groups()))  # noqa: B905
        return None, {}

    def match_scope(self, scope: Scope) -> tuple[_Route | None, dict[str, str]]:
        """:meth:`match` of a request's raw path, remembered in its scope: the observer classifies
        the request (observability/inbound.py) before this router handles it."""
        found = scope.get(_MATCHED)
        if found is None or found[0] is not self:
            raw = scope.get("raw_path")
            if raw:
                raw_path = raw.decode("latin-1")
                if "?" in raw_path:  # ASGI's raw_path is the path alone; some servers keep the query
                    raw_path = raw_path.split("?", 1)[0]
            else:
                raw_path = URL(scope=scope).path
            found = scope[_MATCHED] = (self, *self.match(raw_path))
        return found[1], found[2]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await serve_lifespan(receive, send)
        if scope["type"] != "http":
            return
        try:
            response = await self.handle(scope, receive)
        except CallerGone:
            await _client_gone(scope, send)  # the caller hung up: its upstream call is cancelled
            return
        except Exception:  # a failure outside the handlers (encoding the answer): still a problem document
            log.exception("%s %s failed", scope["method"], scope["path"])
            response = problem(500, "the engine failed to handle this request")
        scope[ANSWERED] = response.status_code
        if isinstance(response, Answer):  # most answers: its two messages, with no call of its own
            await send({"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers})
            await send({"type": "http.response.body", "body": response.body})
        else:
            await response(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive) -> Response | Answer:
        """The answer to one request. A Starlette :class:`Request` is made only for what needs one
        (a body to read, a forward): a plain GET is answered from the scope alone."""
        route, raw_values = self.match_scope(scope)
        method: str = scope["method"]
        if route is None:
            return problem(404, f"no route for {Request(scope).url.path}")
        operation = route.operations.get(method)
        if operation is None:
            if route.forward is not None:
                return await self.forward(Request(scope, receive), route, route.forward, raw_values)
            return problem(405, f"{method} is not allowed on {route.template}", headers={"Allow": route.allow})
        try:
            path_values = raw_values  # never changed: collect copies it into the inputs
            for value in raw_values.values():
                if "%" in value:  # most paths have nothing to decode
                    path_values = {name: unquote(raw) if "%" in raw else raw for name, raw in raw_values.items()}
                    break
            if _has_body(scope):
                inputs = await self.inputs(Request(scope, receive), path_values, operation)
            else:  # nothing to read: no await
                inputs = self.collect(scope, path_values, operation, MISSING)
            with cancel_on_disconnect(scope, receive):
                result = await operation.unit.invoke(inputs)
        except EngineError as exc:
            if exc.status >= 500:
                log.warning("%s %s: %s", method, route.template, self.mask(exc.detail))
            return problem_from(exc, self.mask)
        except Exception:
            log.exception("%s %s failed", method, route.template)
            return problem(500, "the engine failed to handle this request")
        return self.respond(result, operation.binary_type)

    def respond(self, result: Result, binary_type: str | None = None) -> Answer:
        """The one place a unit's :class:`Result` becomes an HTTP response. ``binary_type``: the media
        type the operation's ``responses``/``responseBinary`` declare binary (beta5)."""
        # Plain type tests rather than a match statement: each class pattern there costs an
        # isinstance and an attribute read per sub-pattern, on every request.
        if isinstance(result, (Relayed, UpstreamFailure)):
            status, body = result.status, result.body
            if status < 300 and isinstance(result, Relayed):
                if result.binary:  # beta5 binary content: bytes untouched (never masked), Content-Type by precedence
                    media_type = result.media_type(binary_type) or "application/octet-stream"
                    return Answer(body, status, self.answer_headers({**result.headers, "content-type": media_type}))
                if result.declared_type is not None:  # outputMediaType declared
                    headers = {**result.headers, "content-type": result.declared_type}
                    return Answer(body, status, self.answer_headers(headers))
            # relayed as it came: no charset added, safe headers kept; 3xx and error bodies are masked
            # (they often repeat the Location or echo the key that was rejected)
            raw = self.mask_bytes(body) if status >= 300 else body
            return Answer(raw, status, self.answer_headers(result.headers))
        if isinstance(result, Empty):
            headers = {k: v for k, v in result.headers.items() if k != "content-type"}
            return Answer(b"", result.status, self.answer_headers(headers))
        return Answer(dumps(result.value), result.status, [*_JSON_HEADERS])

    async def forward(
        self, request: Request, route: _Route, plan: ForwardPlan, raw_values: dict[str, str]
    ) -> Response | Answer:
        """Relay the request to the forward's consumes namespace; status, body and safe headers come back."""
        tail = raw_values[route.names[-1]] if route.names else ""
        try:
            body = await self.raw_body(request)
            outbound = plan.build(
                request.method,
                tail,
                request.scope.get("query_string", b"").decode("latin-1"),
                request.scope["headers"],
                body,
            )
            with cancel_on_disconnect(request.scope, request.receive):
                upstream = await plan.send(outbound)
        except EngineError as exc:
            if exc.status >= 500:
                log.warning("%s %s → %s: %s", request.method, route.template, plan.namespace, self.mask(exc.detail))
            return problem_from(exc, self.mask)
        except Exception:
            log.exception("%s %s forward to %s failed", request.method, route.template, plan.namespace)
            return problem(500, "the engine failed to forward this request")
        body = self.mask_bytes(upstream.body) if upstream.status >= 300 else upstream.body
        return Answer(body, upstream.status, self.answer_headers(safe_response_headers(upstream)))

    def mask_bytes(self, raw: bytes) -> bytes:
        """An upstream error body with any bind value masked: some APIs echo the key they rejected."""
        text = raw.decode("utf-8", "surrogateescape")
        masked = self.mask(text)
        return raw if masked is text else masked.encode("utf-8", "surrogateescape")  # same object: nothing found

    def answer_headers(self, headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
        """Headers of an :class:`Answer`: bind values masked (:meth:`mask_headers`), then encoded in
        one pass, the names naftiko relays from a table rather than encoded again per request.

        Values are encoded back the way aiohttp decoded the upstream's (UTF-8, bytes that are not
        UTF-8 kept as surrogates), so a relayed header goes out as the bytes that came in: a UTF-8
        file name in a Content-Disposition is neither re-encoded nor (outside Latin-1) a 500."""
        return [
            (_HEADER_NAMES.get(name) or name.encode("latin-1"), value.encode("utf-8", "surrogateescape"))
            for name, value in self.mask_headers(headers).items()
        ]

    def mask_headers(self, headers: dict[str, str]) -> dict[str, str]:
        """Relayed headers (a Location may carry an API key in its query) with bind values masked:
        ``headers`` itself when none holds one (never change it), else a masked copy. One look at
        all the values together first: most answers hold no bind value at all."""
        joined = "\n".join(headers.values())
        if self.mask(joined) is joined:  # the same object back: nothing was masked
            return headers
        return {k: self.mask(v) for k, v in headers.items()}

    async def raw_body(self, request: Request) -> bytes | None:
        """The request body as sent, within the size limit; None when there is none."""
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body:
            raise PayloadTooLarge(f"request body is larger than {self.max_body} bytes", field="body")
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > self.max_body:
                    raise PayloadTooLarge(f"request body is larger than {self.max_body} bytes", field="body")
                chunks.append(chunk)
        except ClientDisconnect:
            chunks.clear()
            raise CallerGone from None
        return b"".join(chunks) if size else None

    async def inputs(self, request: Request, path_values: dict[str, str], operation: RestOperation) -> Inputs:
        """The unit's inputs, kept apart by location as compiled at load (:class:`InputPlan`):
        declared or bound headers and cookies, then query parameters, then body fields, then the
        path variables, which nothing else can replace."""
        body = await self.body(request) if _has_body(request.scope) else MISSING
        return self.collect(request.scope, path_values, operation, body)

    def collect(self, scope: Scope, path_values: dict[str, str], operation: RestOperation, body: object) -> Inputs:
        """:meth:`inputs` once the body (or MISSING) is read."""
        plan = self.input_plans[id(operation)]
        inputs: Inputs = {}
        if plan.headers or plan.cookies:
            _header_inputs(Headers(scope=scope), plan, inputs)
        query = scope.get("query_string", b"")
        if query:
            inputs.update(_query_inputs(query, plan))
        if body is not MISSING:
            _body_inputs(body, plan, inputs)
        inputs.update(path_values)
        if plan.checked:
            _check_declared(plan.checked, inputs)
        return inputs

    async def body(self, request: Request) -> object:
        data = await self.raw_body(request) or b""
        if not data.strip():
            return MISSING  # no body at all (a JSON null body is None)
        ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if ctype in ("", "application/json") or ctype.endswith("+json"):
            try:
                return _decode_json(data)
            except JSONDecodeError as exc:
                raise InvalidInput(
                    f"request body is not valid JSON: {exc.msg} at position {exc.pos}", field="body"
                ) from None
        if data.lstrip()[:1] in (b"{", b"["):  # JSON sent with another type (curl -d sends a form type)
            try:
                return _decode_json(data)
            except JSONDecodeError:
                pass
        if ctype == "application/x-www-form-urlencoded":
            return dict(parse_qsl(data.decode("utf-8", "replace"), keep_blank_values=True))
        return data.decode("utf-8", "replace")


class Answer:
    """A whole answer whose headers are already final (lower-case names, the content type set or
    deliberately absent): the header list is built in one pass, where Starlette's ``Response``
    re-lowers every name and works out a content type and charset on each request. It has a
    Starlette ``Response``'s attributes ``body``, ``status_code`` and ``raw_headers``, and
    :meth:`RestRouter.__call__` sends it as the same two ASGI messages, with no call of its own."""

    __slots__ = ("body", "raw_headers", "status_code")

    def __init__(self, body: bytes, status: int, raw_headers: list[tuple[bytes, bytes]]) -> None:
        """``raw_headers``: encoded already (:meth:`RestRouter.answer_headers`); the length is added here."""
        self.status_code = status
        self.body = body
        if status >= 200 and status not in (204, 304):  # as Starlette: no length on a 1xx, 204 or 304
            raw_headers.append((b"content-length", str(len(body)).encode("latin-1")))
        self.raw_headers = raw_headers


_HEADER_NAMES = {name: name.encode("latin-1") for name in RELAYED_RESPONSE_HEADERS}
"""The (lower-case) names of the headers relayed with an upstream body, encoded once."""


_JSON_HEADERS = ((b"content-type", b"application/json"),)


def _has_body(scope: Scope) -> bool:
    """Whether a body is to be read: any method but GET, HEAD and DELETE, or one of those with a
    non-empty Content-Length or Transfer-Encoding."""
    if scope["method"] not in ("GET", "HEAD", "DELETE"):
        return True
    for name, value in scope["headers"]:
        if value and name in (b"content-length", b"transfer-encoding"):
            return True
    return False


def _header_inputs(headers: Headers, plan: InputPlan, inputs: Inputs) -> None:
    """Declared or bound headers and cookies."""
    if plan.headers:
        for name, header in plan.headers:
            value = headers.get(header)
            if value is not None:
                inputs[name] = value
    if plan.cookies:
        cookie_header = headers.get("cookie")
        if cookie_header:
            jar = SimpleCookie()
            jar.load(cookie_header)
            for name in plan.cookies:
                if name in jar:
                    inputs[name] = jar[name].value


def _query_inputs(query: bytes, plan: InputPlan) -> Inputs:
    """Query parameters; a repeated one becomes a list."""
    params: Inputs = {}
    for k, v in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if k in plan.declared_elsewhere:
            continue  # declared in a header, cookie or the body: a query parameter cannot stand in
        prev = params.get(k)
        params[k] = v if prev is None else [*prev, v] if isinstance(prev, list) else [prev, v]
    return params


def _body_inputs(body: object, plan: InputPlan, inputs: Inputs) -> None:
    """The body as ``body``, its declared fields, and function inputs sent as JSON body fields."""
    inputs["body"] = body
    for name, path in plan.body_fields:
        if path is not None:
            value = path.find(body)
        else:
            value = body.get(name, MISSING) if isinstance(body, dict) else MISSING
        if value is not MISSING and value is not None:
            inputs[name] = value
    if isinstance(body, dict):
        for name in plan.function_inputs:  # a function input (no `in`) sent as a JSON body field
            if name not in inputs and name in body:
                inputs[name] = body[name]


def _check_declared(specs: tuple[InputSpec, ...], inputs: Inputs) -> None:
    """Required inputs present; query, header, cookie and path values coerced to their declared type."""
    for spec in specs:
        if spec.name not in inputs:
            if spec.required:
                raise InvalidInput(
                    f"missing required {spec.location or 'input'} parameter '{spec.name}'", field=spec.name
                )
            continue
        if spec.location == "body":  # JSON values are typed already; the whole body stays as sent
            if spec.name != "body":
                _check_json(spec, inputs[spec.name])
        else:
            inputs[spec.name] = _parse_input(spec, inputs[spec.name])


def _decode_json(data: bytes) -> object:
    """A JSON body within the depth and size bounds (limits.py), checked on the bytes before parsing."""
    try:
        return loads_bounded(data)
    except JsonTooLarge as exc:
        raise InvalidInput(f"request body {exc}", field="body") from None


async def _client_gone(scope: Scope, send: Send) -> None:
    """Log a caller that hung up (INFO: it is the caller's choice, not a failure) and record a
    499, nginx's "client closed request": uvicorn drops the answer, observability counts it."""
    log.info("%s %s: the client disconnected before the answer", scope["method"], scope["path"])
    scope[ANSWERED] = 499
    await send({"type": "http.response.start", "status": 499, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


def build_rest_app(plan: RestAdapterPlan, mask: Mask, max_body: int = DEFAULT_MAX_BODY_BYTES) -> RestRouter:
    """The router is the whole ASGI app: it already turns every failure into a problem
    document, so Starlette's middleware stack would only add work per request."""
    return RestRouter(plan, mask, max_body)
