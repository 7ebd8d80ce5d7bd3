"""The compiled plan: frozen dataclasses, built once by :mod:`naftiko.engine.compiler`.

A :class:`Plan` holds resolved binds, one transport per consumes entry, the consumed operations
and, per exposed adapter, its adapter plan (:data:`AdapterPlan`) with its units resolved. Every
dataclass here is frozen: what serving needs is decided while compiling, observability
included (the compiler receives the telemetry and builds observed transports and handlers),
so nothing patches a plan afterwards. ``compile_plan`` and ``unknown_overrides`` are still
importable from here (they live in :mod:`naftiko.engine.compiler`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import FrozenInstanceError, dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeAlias

from naftiko.binds.resolve import Binds
from naftiko.binds.secrets import Secrets
from naftiko.consumes.transport import Transport
from naftiko.document import model as m
from naftiko.engine.forward import ForwardPlan
from naftiko.engine.simple import ConsumedOperation
from naftiko.engine.unit import Unit
from naftiko.errors import Diagnostic
from naftiko.exposes.http.limits import DEFAULT_MAX_BODY_BYTES, InboundLimits

if TYPE_CHECKING:
    from naftiko.engine.compiler import compile_plan, unknown_overrides
    from naftiko.exposes.control.router import ControlAdapterPlan
    from naftiko.exposes.mcp.catalog import DynamicResource, PromptPlan, StaticFile
    from naftiko.exposes.skill.router import SkillAdapterPlan
    from naftiko.observability.telemetry import Telemetry

__all__ = [
    "AdapterPlan",
    "Consumers",
    "InputSpec",
    "McpAdapterPlan",
    "McpToolPlan",
    "Options",
    "PathPart",
    "Plan",
    "RestAdapterPlan",
    "RestOperation",
    "RestRoute",
    "SpecPath",
    "compile_plan",
    "unknown_overrides",
]

# A consumed path, split: literal text, or a one-element tuple naming a placeholder.
PathPart = str | tuple[str]
# Where a node is in the file: keys and list indexes from the document root.
SpecPath = tuple[str | int, ...]
# Consumed operations by consumes namespace, then operation name.
Consumers = dict[str, dict[str, ConsumedOperation]]


@dataclass
class Options:
    """How to compile and serve (the command-line flags); an input of the compiler, not part of the plan."""

    dry_run: bool = False
    strict: bool = False
    timeout: float = 30.0
    base_uris: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    address: str | None = None
    env_file: str | None = None
    environ: dict[str, str] | None = None
    # serving limits (docs/resilience.md): inbound body size, MCP Host/Origin allow-lists, drain time
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    grace: float = 10.0
    inbound: InboundLimits = field(default_factory=InboundLimits)  # header/URL/time/connection limits
    consumes_only_ok: bool = False  # validating a shared consumes file (nothing to serve)
    several_files: bool = False  # --base-uri/--port may name namespaces of another file


@dataclass(frozen=True)
class InputSpec:
    """A declared input of an exposed unit."""

    name: str
    location: str | None
    type: str | None
    required: bool
    description: str | None = None
    pattern: str | None = None
    value: object = None  # in: body inputs: a JSONPath into the request body (`$.user.id`)


@dataclass(frozen=True)
class RestOperation:
    method: str
    name: str
    unit: Unit
    inputs: list[InputSpec]
    binary_type: str | None = None  # beta5: the media type its responses/responseBinary declare binary


@dataclass(frozen=True)
class RestRoute:
    path: str
    operations: dict[str, RestOperation]
    forward: ForwardPlan | None = None  # runs when no operation matches the method


@dataclass(frozen=True)
class RestAdapterPlan:
    kind: ClassVar[Literal["rest"]] = "rest"
    url_path: ClassVar[str] = "/"
    namespace: str
    address: str
    port: int
    routes: list[RestRoute]
    authentication: m.Authentication | None = None  # the adapter's inbound auth model, if any

    @property
    def size(self) -> str:
        forwards = sum(r.forward is not None for r in self.routes)
        return f"{sum(len(r.operations) for r in self.routes)} operations" + (
            f", {forwards} forward" if forwards else ""
        )


@dataclass(frozen=True)
class McpToolPlan:
    name: str
    title: str | None
    description: str
    input_schema: dict[str, Any]
    annotations: dict[str, Any]
    unit: Unit
    output_schema: dict[str, Any] | None = None
    declared_inputs: bool = False  # inputParameters declared: arguments outside them are dropped


@dataclass(frozen=True)
class McpAdapterPlan:
    kind: ClassVar[Literal["mcp"]] = "mcp"
    url_path: ClassVar[str] = "/mcp"
    namespace: str
    address: str
    port: int | None
    transport: str
    description: str | None
    tools: list[McpToolPlan]
    resources: list[StaticFile | DynamicResource] = field(default_factory=list)  # exposes.mcp.catalog plans
    prompts: list[PromptPlan] = field(default_factory=list)
    authentication: m.Authentication | None = None
    # the capability's telemetry when it is active, given by the compiler: build_server wraps
    # tool calls with it (observe_tool); None when observability is off (nothing wrapped)
    telemetry: Telemetry | None = None
    ttl_ms: int = 0  # the caching hints of the cacheable results (2026-07-28); spec defaults
    cache_scope: Literal["public", "private"] = "private"
    version: str | None = None  # info.version: the serverInfo.version (naftiko's own when None)

    @property
    def size(self) -> str:
        return f"{len(self.tools)} tools"


# One case per expose kind (exposes/registry.py lists the kinds); narrow with isinstance or ``kind``.
AdapterPlan: TypeAlias = "RestAdapterPlan | McpAdapterPlan | SkillAdapterPlan | ControlAdapterPlan"


@dataclass(frozen=True)
class _PlanFields:
    file: str
    label: str | None
    binds: Binds
    secrets: Secrets
    consumers: dict[str, dict[str, ConsumedOperation]]
    transports: list[Transport]
    adapters: list[AdapterPlan]
    warnings: list[Diagnostic]
    options: Options = field(default_factory=Options)
    # composed by the compiler (inactive when observability is off); None only for plans built by hand
    telemetry: Telemetry | None = None
    left_out: list[Diagnostic] = field(default_factory=list)  # errors of units not served (tolerant mode)


class Plan(_PlanFields):
    """A compiled capability. Frozen: assigning any field raises ``FrozenInstanceError``, except
    re-assigning ``telemetry`` the object it already holds, which changes nothing (code written
    when telemetry was attached after compiling does ``plan.telemetry = start_telemetry(plan)``)."""

    def __setattr__(self, name: str, value: object) -> None:
        if name == "telemetry" and value is self.telemetry:
            return
        raise FrozenInstanceError(f"cannot assign to field {name!r}: a compiled Plan is frozen")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}: a compiled Plan is frozen")

    def with_ports(self, ports: Mapping[str, int]) -> Plan:
        """A copy whose adapters named in ``ports`` listen on those ports (``--workers`` binds
        port 0 once in the parent, then every worker serves the real port); the telemetry
        follows the copy."""
        adapters = [replace(a, port=ports[a.namespace]) if a.namespace in ports else a for a in self.adapters]
        plan = replace(self, adapters=adapters)
        if self.telemetry is not None:
            self.telemetry.attach(plan)
        return plan

    async def aclose(self) -> None:
        for transport in self.transports:
            await transport.aclose()
        if self.telemetry is not None:
            await self.telemetry.aclose()


def __getattr__(name: str) -> object:
    """``compile_plan`` and ``unknown_overrides`` moved to :mod:`naftiko.engine.compiler` (which
    imports this module); they stay importable from here, resolved on first use."""
    if name in ("compile_plan", "unknown_overrides"):
        from naftiko.engine import compiler

        value: object = getattr(compiler, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
