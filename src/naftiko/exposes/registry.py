"""The expose kinds naftiko serves, and the one interface each implements.

An expose kind (``type: rest`` … in a capability's ``exposes``) is one package under
``naftiko.exposes`` whose ``__init__`` defines ``KIND``, an object satisfying
:class:`ExposeKind`: the ``type`` it answers to, the ``aliases`` its units read in templates,
``compile`` (the adapter's model → its frozen adapter plan, through the narrow
:class:`CompileContext` the compiler gives it), ``serves`` (whether the plan has anything left
to answer with) and ``build_app`` (the plan → its ASGI app). :data:`KINDS` lists them; the
compiler (``engine/compiler.py``) and ``runtime/serve.py`` dispatch through :func:`kind_for`
only, so adding a kind is a package plus one line here (docs/architecture.md, "Extending").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sized
from contextlib import AbstractContextManager
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from naftiko.exposes.control import KIND as CONTROL
from naftiko.exposes.mcp import KIND as MCP
from naftiko.exposes.rest import KIND as REST
from naftiko.exposes.skill import KIND as SKILL

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from naftiko.binds.resolve import Binds
    from naftiko.consumes.auth import OutboundAuth
    from naftiko.consumes.transport import Transport
    from naftiko.document import model as m
    from naftiko.document.source import Source
    from naftiko.engine.plan import Consumers, Options, Plan, SpecPath
    from naftiko.engine.unit import Unit
    from naftiko.observability.inbound import Classify
    from naftiko.observability.settings import ObservabilitySettings
    from naftiko.observability.telemetry import Telemetry

_Model = TypeVar("_Model", contravariant=True)
_Adapter = TypeVar("_Adapter")
_I = TypeVar("_I", bound="m.Invocable")

# A consumes namespace as ``forward`` reaches it: the entry, its base URL, transport and auth.
Upstream = tuple["m.ConsumesHttp", str, "Transport", "OutboundAuth | None"]


class CompileContext(Protocol):
    """What an expose kind may ask of the compiler while compiling its adapter: positioned
    diagnostics, the tolerant unit scope, unit compiling, the adapter's address and port, the
    consumed operations and upstreams (transports already observed when telemetry is on), and
    the telemetry itself for handlers the kind composes. The skill, control and MCP catalog
    modules declare narrower subsets of it (their own ``CompileContext``)."""

    @property
    def doc(self) -> m.Document: ...

    @property
    def source(self) -> Source: ...

    @property
    def options(self) -> Options: ...

    @property
    def aggregates(self) -> Mapping[str, m.AggregateFunction]: ...

    @property
    def errors(self) -> Sized: ...

    @property
    def binds(self) -> Binds: ...

    @property
    def consumers(self) -> Consumers: ...

    @property
    def telemetry(self) -> Telemetry:
        """The capability's telemetry; inactive (``active`` false) when observability is off."""
        ...

    def unit_scope(self) -> AbstractContextManager[int]:
        """Errors inside leave one unit out (tolerant mode); yields the error count at the start."""
        ...

    def error(self, path: SpecPath, message: str) -> None: ...

    def warn(self, path: SpecPath, message: str) -> None: ...

    def warner(self, path: SpecPath) -> Callable[[int, str], None]: ...

    # the adapter whose units are being compiled: its maxBinarySize (beta5) and namespace, which
    # the calls compiled next are capped by; set by a kind before compiling its units
    adapter_binary: tuple[int | None, str]

    def binary_size(self, value: str | int | None, path: SpecPath) -> int | None:
        """A ``maxBinarySize`` in bytes, or None after a positioned error."""
        ...

    def media_type(self, value: str | None, path: SpecPath) -> None:
        """A positioned error when a declared media type could not go in a ``Content-Type``."""
        ...

    def address(self, adapter: m.Exposes) -> str: ...

    def port(self, adapter: m.Exposes) -> int | None: ...

    def upstream(self, namespace: str) -> Upstream | None:
        """The consumes entry ``forward`` reaches by that namespace; its transport observed as a
        forward when telemetry is on. None when no consumes entry has that namespace."""
        ...

    def upstream_names(self) -> list[str]: ...

    def resolve_ref(
        self, spec: _I, path: SpecPath
    ) -> tuple[_I, m.Semantics | None, frozenset[str] | None] | tuple[None, None, None]: ...

    def unit(
        self, name: str, spec: m.Invocable, path: SpecPath, consumers: Consumers, aliases: frozenset[str], binds: Binds
    ) -> Unit | None: ...


class ExposeKind(Protocol[_Model, _Adapter]):
    """One expose kind: how its ``exposes`` entries compile and serve."""

    type: str  # the ``type`` value in the file
    aliases: frozenset[str]  # names its units' templates may read besides the namespace ({{rest.x}}, {{tools.x}})
    # compiled before any consumes entry: its plan configures the telemetry everything else is built with
    compiled_first: bool

    def observability(self, adapter: _Adapter) -> ObservabilitySettings | None:
        """The observability settings this adapter declares (control), None for other kinds."""
        ...

    def compile(self, model: _Model, path: SpecPath, ctx: CompileContext) -> _Adapter | None:
        """The adapter plan, or None when the adapter is not served (a reason was reported)."""
        ...

    def serves(self, adapter: _Adapter) -> bool:
        """Whether the plan has anything left to answer with (tolerant mode may leave units out)."""
        ...

    def build_app(self, adapter: _Adapter, plan: Plan) -> ASGIApp:
        """The adapter's own ASGI app; ``plan`` gives the runtime dependencies (secrets' mask,
        serving options, sibling adapters, telemetry). Inbound auth and the HTTP observer are
        put around it by ``runtime.serve.build_app``."""
        ...

    def classifier(self, app: ASGIApp) -> Classify | None:
        """How the HTTP observer names a request to ``app`` (what :meth:`build_app` returned):
        (operation, route template), both from the file. None when the kind's requests are
        observed elsewhere (MCP: per tool call) or not at all (control)."""
        ...


KINDS: tuple[ExposeKind[Any, Any], ...] = (REST, MCP, SKILL, CONTROL)
BY_TYPE: Mapping[str, ExposeKind[Any, Any]] = MappingProxyType({kind.type: kind for kind in KINDS})


def kind_for(type_: str) -> ExposeKind[Any, Any] | None:
    """The kind serving ``type: <type_>``; None when naftiko has none (the compiler reports it
    at the entry's ``type``)."""
    return BY_TYPE.get(type_)


def known_types() -> list[str]:
    return sorted(BY_TYPE)
