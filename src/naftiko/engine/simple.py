"""Running an exposed unit (REST operation, MCP tool): inputs in, :class:`Result` out.

This module holds simple mode: ``call`` + ``with`` + output shaping (reference §3, §4). The
parts are compiled at load so a request only resolves values, builds one outbound request
and shapes the answer.

Binary content (beta5, docs/reference.md "Binary content"): a call to an operation declaring
``outputRawFormat: binary`` reads at most its ``maxBinarySize`` (operation, else exposing adapter,
else 10 MiB; it replaces ``resilience.maxResponseBytes`` for that call), is never decoded or shaped,
and answers :class:`Relayed` with ``binary=True``; a larger body is :class:`BinaryTooLarge` (502),
raised before anything is sent to the caller.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from naftiko.consumes.formats import BINARY, DEFAULT_MAX_BINARY_BYTES, decode, format_size
from naftiko.consumes.request import RequestPlan, UrlSlot, render_value
from naftiko.consumes.transport import OutboundRequest, ResponseTooLarge, Transport, UpstreamResponse, is_json_type
from naftiko.engine.binding import Fixed, FromInput, Source, compile_sources
from naftiko.engine.result import Empty, JsonAnswer, Relayed, Result, UpstreamFailure
from naftiko.engine.shaping import Shape
from naftiko.engine.unit import Binds, Inputs
from naftiko.errors import UpstreamUnavailable
from naftiko.expressions.jsonpath import JsonPath, is_jsonpath
from naftiko.expressions.template import MISSING, THIS, Scope, Template, flatten_binds

if TYPE_CHECKING:
    from naftiko.engine.pagination import Paging

# A dotted path into an input (rest.body.items); any other text after the alias is one input name.
_PLAIN = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_*-]+)*$")


@dataclass(frozen=True, slots=True)
class InputRef:
    """``ns.name`` in ``with``: the unit's input ``name`` (never the literal text). The name is
    matched exactly: tolerant spellings are resolved at load (:mod:`.binding`)."""

    path: tuple[str, ...]

    def resolve(self, inputs: Inputs) -> object:
        head = self.path[0]
        if head in inputs:
            value = inputs[head]
            rest = self.path[1:]
        else:
            whole = ".".join(self.path)  # an input whose name has dots: tools.a.b for input "a.b"
            if whole not in inputs:
                return MISSING
            return inputs[whole]
        for part in rest:
            if not isinstance(value, dict) or part not in value:
                return MISSING
            value = value[part]
        return value


def compile_with_value(value: object, aliases: frozenset[str]) -> object:
    """``ns.name`` (or ``$this.ns.name``) → :class:`InputRef`; ``$…`` → JSONPath; ``{{…}}`` →
    template; else literal. ``name`` may be any parameter name (``$top``, ``filter[state]``)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith(THIS):
            text = text[len(THIS) :]
        ns, dot, name = text.partition(".")
        if dot and name and ns in aliases and "{{" not in text:
            return InputRef(tuple(name.split(".")) if _PLAIN.match(name) else (name,))
        if is_jsonpath(value):
            try:
                return JsonPath(value)
            except ValueError:  # JsonPathError; REF: a `with` string is a template first
                if "{{" not in value:  # ("$this.ns.{{x}}" in naftiko 0.5 examples renders as text)
                    raise
        if "{{" in value:
            return Template(value)
    return value


def resolve_with_value(compiled: object, inputs: Inputs, scope: Scope) -> object:
    if isinstance(compiled, InputRef):
        return compiled.resolve(inputs)
    if isinstance(compiled, JsonPath):
        return compiled.find(scope.document if scope.document is not MISSING else inputs)
    if isinstance(compiled, Template):
        var = compiled.single_var
        if var is not None:  # "{{x}}" alone keeps x's type
            return scope.resolve(var)
        return compiled.render(scope)
    return compiled


@dataclass(slots=True)
class ConsumedOperation:
    """A consumed operation ready to call: its request plan, transport and output shape."""

    request: RequestPlan
    transport: Transport
    shape: Shape
    output_raw_format: str = "json"
    output_schema: str | None = None
    paging: Paging | None = None  # when the operation declares `pagination`
    output_media_type: str | None = None  # beta5 outputMediaType
    max_binary_bytes: int | None = None  # beta5 maxBinarySize of the operation, parsed
    dry_run: bool = False  # answers are request descriptions (JSON): never relayed as binary or relabelled
    # outputRawFormat is binary: a field set here, read twice per call (Call.send, CallUnit.invoke)
    binary: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.binary = self.output_raw_format.lower() == BINARY

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def label(self) -> str:
        return f"{self.request.namespace}.{self.request.operation}"


def answers_binary(unit: object) -> bool:
    """The unit is a simple call to an operation declaring ``outputRawFormat: binary``."""
    return isinstance(unit, CallUnit) and unit.call.target.binary


class BinaryTooLarge(UpstreamUnavailable):
    """A binary operation's body passed its ``maxBinarySize``: nothing of it is relayed (502)."""


@dataclass(slots=True)
class Call:
    """One consumed call with its ``with`` entries: used by simple mode and by call steps.
    ``sources`` is its compiled binding: one source per consumed parameter (:mod:`.binding`)."""

    target: ConsumedOperation
    with_: list[tuple[str, object]]
    sources: list[tuple[str, Source]] = field(default_factory=list)
    binary_cap: int = DEFAULT_MAX_BINARY_BYTES  # a binary target's maxBinarySize, as resolved
    binary_cap_source: str = "the default maxBinarySize"
    scope_free: bool = field(init=False, default=False, repr=False, compare=False)  # see _settle
    path_slots: tuple[UrlSlot, ...] | None = field(init=False, default=None, repr=False, compare=False)  # see _settle

    def __post_init__(self) -> None:
        if not self.sources:
            self.sources = compile_sources(self.target.request.params, self.with_)
        self._settle()
        self.set_adapter_binary_cap(None, "")

    def _settle(self) -> None:
        """``scope_free``: every parameter is fed by an input and goes into the path, so the call's
        arguments are inputs looked up by key and its request is built the path-only way
        (:meth:`RequestPlan.build`): neither reads the scope, which the unit then need not build.
        ``path_slots``: for such a call whose every placeholder is fed, the URL's slots reading each
        value straight from the inputs by the key chosen at load (:meth:`RequestPlan.build_path`),
        so a request makes no arguments dict; None otherwise."""
        request = self.target.request
        path_only = request.path_only
        self.scope_free = path_only is not None and all(
            isinstance(source, FromInput) and name in path_only for name, source in self.sources
        )
        keys = {name: source.key for name, source in self.sources if isinstance(source, FromInput)}
        self.path_slots = request.slots_for(keys) if self.scope_free else None

    def set_adapter_binary_cap(self, size: int | None, adapter: str) -> None:
        """The cap for a binary target: the operation's ``maxBinarySize``, else the exposing adapter's
        (``size``), else 10 MiB — the reference engine's order (at load)."""
        if self.target.max_binary_bytes:
            self.binary_cap, self.binary_cap_source = self.target.max_binary_bytes, "the operation's maxBinarySize"
        elif size:
            self.binary_cap, self.binary_cap_source = size, f"the maxBinarySize of adapter '{adapter}'"
        else:
            self.binary_cap, self.binary_cap_source = DEFAULT_MAX_BINARY_BYTES, "the default maxBinarySize"

    def bind_inputs(
        self, known: Collection[str], warn: Callable[[str], None] | None = None, *, closed: bool = False
    ) -> None:
        """Recompile the binding against the input names the exposing adapter offers (at load)."""
        self.sources = compile_sources(self.target.request.params, self.with_, known, warn, closed=closed)
        self._settle()

    def arguments(self, inputs: Inputs, scope: Scope) -> dict[str, object]:
        """A value per consumed parameter, each from its one compiled source: ``with`` entries
        (evaluated against the inputs as they were — FIX), values fixed by the file (never
        replaced by an input), then inputs by the key chosen at load."""
        args: dict[str, object] = {}
        for name, source in self.sources:
            if isinstance(source, FromInput):
                value = inputs.get(source.key, MISSING)
            elif isinstance(source, Fixed):
                value = render_value(source.value, scope)
            else:
                value = resolve_with_value(source.compiled, inputs, scope)
            if value is not MISSING:
                args[name] = value
        return args

    def send(self, inputs: Inputs, scope: Scope) -> Awaitable[UpstreamResponse]:
        """The outbound request, built now, and the transport's awaitable for it. A plain method:
        awaiting a call resumes no frame of this one (a binary target's cap check needs one)."""
        target = self.target
        slots = self.path_slots
        if slots is not None:  # every argument is a path input: read where it goes, no arguments dict
            request = target.request.build_path(inputs, slots)
        else:
            request = target.request.build(self.arguments(inputs, scope), scope)
        if not target.binary:
            return target.transport.send(request)
        request.max_response_bytes = self.binary_cap
        return self._send_binary(request)

    async def _send_binary(self, request: OutboundRequest) -> UpstreamResponse:
        try:
            return await self.target.transport.send(request)
        except ResponseTooLarge as exc:
            cap = self.binary_cap
            raise BinaryTooLarge(
                f"consumed operation '{self.target.label}' answered HTTP {exc.upstream_status} with a binary body "
                f"larger than {format_size(cap)} ({cap} bytes, {self.binary_cap_source}); nothing was relayed"
            ) from None


OFF_LOOP_BYTES = 256 * 1024


async def decode_off_loop(response: UpstreamResponse, target: ConsumedOperation) -> object:
    """Decode the body; large non-JSON bodies are parsed in a worker thread so one slow parse
    does not hold every other request."""
    if target.output_raw_format != "json" and len(response.body) > OFF_LOOP_BYTES:
        return await asyncio.to_thread(decode, response, target.output_raw_format, target.output_schema)
    return decode(response, target.output_raw_format, target.output_schema)


def upstream_failure(response: UpstreamResponse) -> UpstreamFailure:
    return UpstreamFailure(response.status, response.body, response.content_type, response.relayed_headers())


# What a scope-free call (Call.scope_free) is handed: it never reads it
UNREAD_SCOPE = Scope()


@dataclass(slots=True)
class CallUnit:
    """Simple mode: one consumed call, its answer shaped by the unit's outputs (reference §3, §4)."""

    name: str
    call: Call
    shape: Shape
    passthrough: bool
    aliases: frozenset[str]
    binds: Binds
    mapped: bool = False  # outputs declared (a whole-document mapping): the answer must be what they say
    media_type: str | None = None  # beta5 outputMediaType of the aggregate flow it comes from
    # the binds visible unqualified, flattened once here rather than by every request's Scope
    flat_binds: dict[str, object] = field(init=False, repr=False, compare=False)
    # Decided here from the fields above and the call's target, not by every request: the
    # outputMediaType a relayed answer is served with (the flow's, else the operation's; none for
    # dry-run answers, which describe the request), and whether answers are relayed as binary
    declared_type: str | None = field(init=False, repr=False, compare=False)
    relays_binary: bool = field(init=False, repr=False, compare=False)

    @property
    def calls(self) -> list[Call]:
        return [self.call]

    def __post_init__(self) -> None:
        self.flat_binds = flatten_binds(self.binds)
        target = self.call.target
        self.declared_type = None if target.dry_run else self.media_type or target.output_media_type
        self.relays_binary = target.binary and not target.dry_run

    async def invoke(self, inputs: Inputs) -> Result:
        call = self.call
        if call.scope_free:
            scope = UNREAD_SCOPE
        else:
            scope = Scope(inputs, aliases=self.aliases, binds=self.binds, flat_binds=self.flat_binds)
        response = await call.send(inputs, scope)
        status = response.status
        if status >= 400:
            return upstream_failure(response)
        body = response.body
        if self.relays_binary:  # bytes as they came, never shaped (outputs warned about at load)
            if not body:
                return Empty(status, response.relayed_headers())
            return Relayed(status, body, response.content_type, response.relayed_headers(), True, self.declared_type)
        if not body or body.isspace():  # blank (ASCII whitespace, what bytes.strip() removes)
            return Empty(status, response.relayed_headers())
        target = call.target
        if self.passthrough:
            headers = response.relayed_headers()  # the content type among them: read from there, not looked up again
            content_type = headers.get("content-type", "")
            if not self.mapped or (target.output_raw_format == "json" and is_json_type(content_type)):
                return Relayed(status, body, content_type, headers, False, self.declared_type)
        # A mapped answer that is not declared JSON is decoded: a 502 naming its type when it is not what was declared
        document = await decode_off_loop(response, target)
        return JsonAnswer(status, self.shape(document))
