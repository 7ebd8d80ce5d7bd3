"""Turning a consumed operation plus argument values into one outbound HTTP request.

A :class:`RequestPlan` is built once per consumed operation at load: the base URL with binds
applied, the path split into literal and placeholder segments, each parameter's location,
the authentication step. :meth:`RequestPlan.build` then does only the per-call work:
encoding values where they go (reference §3).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote
from xml.sax.saxutils import escape as xml_escape

from naftiko.consumes import styles
from naftiko.consumes.auth import OutboundAuth
from naftiko.consumes.transport import OutboundRequest
from naftiko.errors import EngineError, InvalidInput
from naftiko.expressions.template import MISSING, PATH_PLACEHOLDER, Scope, Template, to_json_fragment, to_text
from naftiko.jsonio import dumps

_CRLF = re.compile(r"[\r\n\x00]")
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")  # RFC 3986 unreserved: what quote(text, safe="") leaves as is
# A path value sent as it is: unreserved characters only, neither empty nor a dot segment (what
# RequestPlan._url refuses or encodes), so one match decides the common id (c-1, 42, a_b.json)
_PLAIN_SEGMENT = re.compile(r"(?!\.\.?\Z)[A-Za-z0-9_.~-]+")

# One URL placeholder as compiled at load: the key its value is read by (the parameter's name in an
# arguments dict, or the input that feeds it: RequestPlan.slots_for), the parameter's name, the
# OpenAPI style it declares (None: one percent-encoded segment) with its explode flag, and the
# literal that follows it
UrlSlot = tuple[str, str, str | None, bool | None, str]

BODY_CONTENT_TYPES = {
    "json": "application/json",
    "text": "text/plain; charset=utf-8",
    "xml": "application/xml",
    "sparql": "application/sparql-query",
    "formUrlEncoded": "application/x-www-form-urlencoded",
}


@dataclass(slots=True)
class ParamSpec:
    """One consumed parameter after merging the consumes, resource and operation levels."""

    name: str
    location: str  # path | query | header | cookie | body
    type: str | None = None
    required: bool = False
    description: str | None = None
    value: Template | object = MISSING  # a default/fixed value, maybe a template
    style: str | None = None  # EXT: OpenAPI serialisation style (consumer/styles.py)
    explode: bool | None = None


def split_path(path: str) -> tuple[list[str | tuple[str]], list[str]]:
    """``/a/{x}/b{{y}}`` → parts (literals, ``(name,)`` placeholders) and placeholder names."""
    parts: list[str | tuple[str]] = []
    names: list[str] = []
    pos = 0
    for m in PATH_PLACEHOLDER.finditer(path):
        if m.start() > pos:
            parts.append(path[pos : m.start()])
        name = (m.group(1) or m.group(2)).strip()
        parts.append((name,))
        names.append(name)
        pos = m.end()
    if pos < len(path):
        parts.append(path[pos:])
    return parts, names


def _cookie_pair(name: str, text: str) -> str:
    if _CRLF.search(text) or ";" in text:
        raise InvalidInput(f"cookie value for '{name}' contains a forbidden character", field=name)
    return f"{name}={quote(text, safe='')}"


def _check_header_value(name: str, value: str) -> str:
    if _CRLF.search(value):
        raise InvalidInput(f"header value for '{name}' contains a line break", field=name)
    return value


def _query_pairs(name: str, value: object) -> list[tuple[str, str]]:
    if value is None or value is MISSING:
        return []
    if isinstance(value, list):
        return [(name, to_text(v)) for v in value if v is not None]
    return [(name, to_text(value))]


@dataclass(slots=True)
class BodyPlan:
    """A consumed ``body:`` — a string template or ``{type, data}`` (reference §3).

    Text data is a template whose values are encoded for where they land: JSON-escaped in
    JSON, XML-escaped in XML, percent-encoded in a form. Structured data (objects, lists)
    renders value by value, keeping types, then is serialised per ``type``."""

    kind: str  # json | text | xml | sparql | formUrlEncoded | multipartForm | template
    data: object
    bare: frozenset[int] = frozenset()  # JSON templates: variables standing alone as values
    # EXT: form fields written with an OpenAPI style ({field: (style, explode)}), and a
    # Content-Type that replaces the kind's own (binary or vendor media types sent as text)
    encoding: dict[str, tuple[str, bool | None]] = field(default_factory=dict)
    content_type: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.data, str):
            self.data = Template(self.data)
        if isinstance(self.data, Template) and self.kind == "template":
            self.kind = "json" if self.data.source.lstrip()[:1] in ("{", "[") else "text"
        if isinstance(self.data, Template) and self.kind == "json":
            self.bare = self.data.bare_json_slots()

    def render(self, scope: Scope) -> tuple[bytes, str]:
        if isinstance(self.data, Template):
            if self.kind == "json":  # a missing value standing alone is null: the JSON stays valid
                rendered = self.data.render_json(scope, self.bare).encode()
                return rendered, self.content_type or BODY_CONTENT_TYPES["json"]
            text = self.data.render(scope, _TEXT_ENCODERS.get(self.kind, to_text))
            return text.encode(), self.content_type or BODY_CONTENT_TYPES[self.kind]
        value = render_value(self.data, scope)
        if self.kind == "multipartForm":
            value = value or []
            if not isinstance(value, list) or not all(isinstance(part, dict) for part in value):
                raise EngineError("the capability's multipartForm body data must be a list of {name, value} parts")
            return _multipart(value)
        if self.kind == "formUrlEncoded":
            value = value or {}
            if not isinstance(value, dict):
                raise EngineError("the capability's formUrlEncoded body data must be an object of fields")
            pairs: list[tuple[str, str]] = []
            for k, v in value.items():
                style = self.encoding.get(k)
                pairs.extend(styles.query_pairs(k, v, style[0], style[1]) if style else _query_pairs(k, v))
            form = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)
            return form.encode(), BODY_CONTENT_TYPES[self.kind]
        if self.kind == "json":
            return dumps(value), self.content_type or BODY_CONTENT_TYPES["json"]
        return to_text(value).encode(), self.content_type or BODY_CONTENT_TYPES[self.kind]


_TEXT_ENCODERS = {
    "json": to_json_fragment,
    "xml": lambda value: xml_escape(to_text(value), {'"': "&quot;", "'": "&apos;"}),
    "formUrlEncoded": lambda value: quote(to_text(value), safe=""),
    # SPARQL string literal escapes, so a value cannot close its quotes and add clauses
    "sparql": lambda value: to_text(value).translate({92: "\\\\", 34: '\\"', 39: "\\'", 10: "\\n", 13: "\\r"}),
}


def _quoted(text: str) -> str:
    return text.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")  # as browsers do


def _multipart(parts: list[dict[str, object]]) -> tuple[bytes, str]:
    """RFC 7578 ``multipart/form-data`` from rendered ``{name, value, filename?, contentType?}``."""
    boundary = uuid.uuid4().hex
    out = bytearray()
    for part in parts:
        if part.get("value") is None:
            continue  # an optional part the call did not fill
        out += f"--{boundary}\r\n".encode()
        disposition = f'form-data; name="{_quoted(str(part.get("name", "")))}"'
        if part.get("filename"):
            disposition += f'; filename="{_quoted(str(part["filename"]))}"'
        out += f"Content-Disposition: {disposition}\r\n".encode()
        if part.get("contentType"):
            out += f"Content-Type: {_quoted(str(part['contentType']))}\r\n".encode()
        value = part.get("value")
        out += b"\r\n" + (value if isinstance(value, bytes) else to_text(value).encode()) + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def compile_value(value: object) -> object:
    """Compile every string inside a literal structure into a :class:`Template`."""
    if isinstance(value, str):
        return Template(value) if "{{" in value else value
    if isinstance(value, dict):
        return {k: compile_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [compile_value(v) for v in value]
    return value


def render_value(value: object, scope: Scope) -> object:
    """Render a compiled structure. ``"{{x}}"`` alone keeps x's type (a list stays a list)."""
    if isinstance(value, Template):
        var = value.single_var
        if var is not None:
            resolved = scope.resolve(var)
            return None if resolved is MISSING else resolved
        return value.render(scope)
    if isinstance(value, dict):
        return {k: render_value(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, scope) for v in value]
    return value


@dataclass(slots=True)
class RequestPlan:
    namespace: str
    operation: str
    method: str
    base_url: str
    path_parts: list[str | tuple[str]]
    params: dict[str, ParamSpec]
    auth: OutboundAuth | None = None
    body: BodyPlan | None = None
    headers: list[tuple[str, Template]] = field(default_factory=list)
    timeout: float = 30.0
    body_object: bool = False  # several `in: body` parameters declared: always a JSON object of them
    # Compiled by __post_init__ for the common call whose arguments all go into the path (see build)
    path_only: frozenset[str] | None = field(init=False, default=None, repr=False, compare=False)
    fixed_headers: tuple[tuple[str, str], ...] = field(init=False, default=(), repr=False, compare=False)

    # The URL as compiled by __post_init__: base URL and leading literal, then a slot per
    # placeholder (UrlSlot), each read from the arguments by its parameter's name
    url_prefix: str = field(init=False, default="", repr=False, compare=False)
    url_slots: tuple[UrlSlot, ...] = field(init=False, default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        self._compile_url()
        self._compile_fixed()

    def _compile_url(self) -> None:
        prefix = self.base_url
        slots: list[UrlSlot] = []
        for part in self.path_parts:
            if isinstance(part, str):
                if slots:
                    key, name, style, explode, after = slots[-1]
                    slots[-1] = (key, name, style, explode, after + part)
                else:
                    prefix += part
                continue
            name = part[0]
            spec = self.params.get(name)
            style, explode = (spec.style, spec.explode) if spec is not None else (None, None)
            slots.append((name, name, style, explode, ""))
        self.url_prefix, self.url_slots = prefix, tuple(slots)

    def _compile_fixed(self) -> None:
        """When nothing but the path varies between calls — no body, constant headers, no auth pair
        in the query — the headers are rendered here once and :meth:`build` only encodes the path
        (``path_only``: the parameter names that go into it). Otherwise ``path_only`` stays None."""
        if self.body is not None or (self.auth is not None and self.auth.query is not None):
            return
        fixed: list[tuple[str, str]] = []
        for name, template in self.headers:
            text = template.render(Scope()) if template.constant else ""
            if not template.constant or _CRLF.search(text):
                return  # rendered per call, where a bad value is refused as the request's own error
            fixed.append((name, text))
        if self.auth is not None and self.auth.header is not None:
            fixed.append(self.auth.header)
        self.fixed_headers = tuple(fixed)
        self.path_only = frozenset(name for name, spec in self.params.items() if spec.location == "path")

    @property
    def target(self) -> str:
        return f"{self.namespace}.{self.operation}"

    def slots_for(self, keys: Mapping[str, str]) -> tuple[UrlSlot, ...] | None:
        """The URL's slots with each placeholder read by the key ``keys`` gives its parameter (at
        load, for :meth:`build_path`); None when a placeholder has none."""
        slots: list[UrlSlot] = []
        for _, name, style, explode, after in self.url_slots:
            key = keys.get(name)
            if key is None:
                return None
            slots.append((key, name, style, explode, after))
        return tuple(slots)

    def build_path(self, values: Mapping[str, object], slots: tuple[UrlSlot, ...]) -> OutboundRequest:
        """What :meth:`build` gives a ``path_only`` plan for arguments that all go into the path,
        each read here from ``values`` by its slot's key (:meth:`slots_for`) rather than first
        copied into an arguments dict: the request of a call whose parameters are all path inputs
        (``Call.path_slots``). A missing value or a dot segment is refused as :meth:`build` does."""
        return OutboundRequest(self.method, self._url(values, slots), list(self.fixed_headers), None, self.timeout)

    def build(self, args: dict[str, object], scope: Scope) -> OutboundRequest:
        """``args`` holds a value per consumed parameter name (already resolved from inputs)."""
        if self.path_only is not None and args.keys() <= self.path_only:
            # only path values: what the general way below would add is the fixed headers, in this order
            return self.build_path(args, self.url_slots)
        url = self._url(args, self.url_slots)
        query: list[tuple[str, str]] = []
        headers: list[tuple[str, str]] = []
        body_values, cookies = self._place(args, query, headers)
        for name, template in self.headers:
            headers.append((name, _check_header_value(name, template.render(scope))))
        if cookies:
            headers.append(("Cookie", "; ".join(cookies)))
        data = self._body(args, scope, body_values, headers)
        if self.auth is not None:
            self.auth.apply(headers, query)
        if query:
            url += "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query)
        return OutboundRequest(self.method, url, headers, data, self.timeout)

    def _url(self, values: Mapping[str, object], slots: tuple[UrlSlot, ...]) -> str:
        """The base URL and the path, each placeholder's value (read from ``values`` by its slot's
        key) encoded as one segment; a missing value or a dot segment is refused before anything
        is sent."""
        url = self.url_prefix
        for key, name, style, explode, after in slots:
            value = values.get(key, MISSING)
            if style is None and type(value) is str and _PLAIN_SEGMENT.fullmatch(value):
                url += value + after  # the common id: nothing to refuse or encode
                continue
            if value is MISSING or value is None or value == "":
                raise InvalidInput(f"missing required path parameter '{name}'", field=name)
            text = value if value.__class__ is str else to_text(value)
            if text in (".", ".."):  # would move up the upstream's path once normalised
                raise InvalidInput(f"path parameter '{name}' cannot be {text!r}", field=name)
            if style is not None:
                url += styles.path_segment(name, value, style, explode) + after
            else:
                url += (text if _UNRESERVED.fullmatch(text) else quote(text, safe="")) + after
        return url

    def _place(
        self, args: dict[str, object], query: list[tuple[str, str]], headers: list[tuple[str, str]]
    ) -> tuple[dict[str, object], list[str]]:
        """Each argument into the query or a header as its parameter declares; returns the cookie
        pairs and the values that form the body when the operation has no ``body:`` of its own."""
        cookies: list[str] = []
        body_values: dict[str, object] = {}
        for name, value in args.items():
            spec = self.params.get(name)
            if spec is None and self.body is not None:
                continue  # an undeclared argument of an operation with a body: a body variable
            where = spec.location if spec else ("body" if name == "body" else "query")
            if value is MISSING or (value is None and not (where == "body" and self.body_object)):
                continue  # an explicit null is kept only as a field of a body object (clearing a field)
            style = spec.style if spec is not None else None  # EXT: OpenAPI serialisation (consumes/styles.py)
            explode = spec.explode if spec is not None else None
            if where == "query":
                query.extend(styles.query_pairs(name, value, style, explode) if style else _query_pairs(name, value))
            elif where == "header":
                text = styles.header_value(value, explode) if style else to_text(value)
                headers.append((name, _check_header_value(name, text)))
            elif where == "cookie":
                cookies.append(_cookie_pair(name, styles.cookie_value(value) if style else to_text(value)))
            elif where == "body":
                body_values[name] = value
        return body_values, cookies

    def _body(
        self, args: dict[str, object], scope: Scope, body_values: dict[str, object], headers: list[tuple[str, str]]
    ) -> bytes | None:
        """The request body: the operation's ``body:`` rendered, else the ``in: body`` values (one
        bare value, or an object of them). A ``Content-Type`` the file declares governs."""
        if self.body is None and not body_values:
            return None
        declared_type = any(name.lower() == "content-type" for name, _ in headers)
        if self.body is not None:  # the body sees the call's arguments over the unit's inputs
            data, ctype = self.body.render(scope.layered(args))
            if not declared_type:
                headers.append(("Content-Type", ctype))
            return data
        if len(body_values) == 1 and not self.body_object:
            (payload,) = body_values.values()
        else:
            payload = body_values
        if declared_type and isinstance(payload, str):
            return payload.encode()  # a string body under a declared type is sent as is, not JSON-quoted
        if not declared_type:
            headers.append(("Content-Type", "application/json"))
        return dumps(payload)
