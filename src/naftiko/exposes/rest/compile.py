"""Compiling a REST adapter (``type: rest``) into its :class:`RestAdapterPlan`, through the
compiler's :class:`~naftiko.exposes.registry.CompileContext`.

Resources sharing a path become one route; each operation's unit is compiled and bound to the
route's path variables and declared inputs at load; a ``forward`` gets the target consumes
entry's transport (observed as a forward when telemetry is on).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from naftiko.engine.binding import bind_unit_inputs, route_variables, unit_reads
from naftiko.engine.forward import ForwardPlan, compile_forward
from naftiko.engine.plan import InputSpec, RestAdapterPlan, RestOperation, RestRoute
from naftiko.engine.simple import CallUnit, answers_binary
from naftiko.exposes.rest import KIND

if TYPE_CHECKING:
    from naftiko.document import model as m
    from naftiko.engine.plan import SpecPath
    from naftiko.engine.unit import Unit
    from naftiko.exposes.registry import CompileContext



@dataclass
class _Route:
    """A route while its resources are read (several resources may share a path)."""

    path: str
    operations: dict[str, RestOperation] = field(default_factory=dict)
    forward: ForwardPlan | None = None


def compile_rest(ctx: CompileContext, adapter: m.ExposesRest, path: SpecPath) -> RestAdapterPlan:
    aliases = KIND.aliases | {adapter.namespace}
    ctx.adapter_binary = (ctx.binary_size(adapter.maxBinarySize, (*path, "maxBinarySize")), adapter.namespace)
    routes: dict[str, _Route] = {}  # by path, in the order first seen
    for ri, res in enumerate(adapter.resources):
        rpath = (*path, "resources", ri)
        route = routes.setdefault(res.path, _Route(res.path))
        if res.forward is not None:
            fpath = (*rpath, "forward")
            target = ctx.upstream(res.forward.targetNamespace)
            if target is None:
                known = ", ".join(sorted(ctx.upstream_names())) or "none"
                ctx.error(
                    (*fpath, "targetNamespace"),
                    f"forward.targetNamespace '{res.forward.targetNamespace}': "
                    f"no consumes namespace with that name (known: {known})",
                )
            elif route.forward is not None:
                ctx.error(fpath, f"{res.path} already has a forward")
            else:
                route.forward = compile_forward(
                    res.forward, *target, ctx.binds, ctx.options.timeout, ctx.warner((*fpath, "trustedHeaders"))
                )
        for oi, op in enumerate(res.operations):
            opath = (*rpath, "operations", oi)
            with ctx.unit_scope() as start:
                if op.method in route.operations:
                    ctx.error((*opath, "method"), f"duplicate {op.method} operation on {res.path}")
                    continue
                resolved, _, ref_aliases = ctx.resolve_ref(op, opath)
                if resolved is None:
                    continue
                op = resolved
                name = op.name or f"{op.method.lower()}-{res.name or res.path}"
                unit = ctx.unit(name, op, opath, ctx.consumers, aliases | (ref_aliases or frozenset()), ctx.binds)
                if unit is None or len(ctx.errors) != start:
                    continue
                inputs = [
                    # path inputs are always required; function inputs (no `in`) default to required
                    # as on MCP; query, header and cookie inputs only when declared so
                    InputSpec(
                        p.name,
                        p.in_,
                        p.type,
                        p.in_ == "path" or p.required is True or (p.in_ is None and p.required is not False),
                        p.description,
                        p.pattern,
                        p.value,
                    )
                    for p in [*res.inputParameters, *op.inputParameters]
                ]
                _bind_inputs(ctx, unit, res.path, inputs, opath)
                binary_type = _binary_contract(ctx, op, unit, opath)
                if len(ctx.errors) != start:
                    continue
                route.operations[op.method] = RestOperation(op.method, name, unit, inputs, binary_type)
    port = ctx.port(adapter)
    if port is None:  # the model requires a port; a --port override is an int too
        raise AssertionError(f"rest adapter '{adapter.namespace}' has no port")
    return RestAdapterPlan(
        adapter.namespace,
        ctx.address(adapter),
        port,
        [RestRoute(r.path, r.operations, r.forward) for r in routes.values()],
        adapter.authentication,
    )


def _binary_contract(ctx: CompileContext, op: m.ExposedOperation, unit: Unit, path: SpecPath) -> str | None:
    """A REST operation's binary response contract (beta5 ``responses``/``responseBinary``): its
    media type, checked against the call it runs, which must answer bytes."""
    if op.responses and op.responseBinary is not None:
        ctx.error((*path, "responseBinary"), "'responses' and 'responseBinary' cannot both be declared")
        return None
    for code, response in (op.responses or {}).items():
        for declared in response.content:
            ctx.media_type(declared, (*path, "responses", code, "content", declared))
    if op.responseBinary is not None:
        ctx.media_type(op.responseBinary.mediaType, (*path, "responseBinary", "mediaType"))
    media = op.binary_media_type()
    if media is None:
        return None
    field = "responses" if op.responses else "responseBinary"
    if not answers_binary(unit):
        ctx.error(
            (*path, field),
            f"{field} declares binary content ({media}), which needs a 'call' to a consumed operation "
            "declaring outputRawFormat: binary",
        )
        return None
    return media


def _bind_inputs(ctx: CompileContext, unit: Unit, route: str, inputs: list[InputSpec], path: SpecPath) -> None:
    """Bind the unit's calls to the route's path variables and the declared inputs (at load)."""
    variables = route_variables(route)
    known = [*variables, *(i.name for i in inputs)]
    bind_unit_inputs(unit, list(dict.fromkeys(known)), lambda msg: ctx.warn(path, msg))
    if isinstance(unit, CallUnit):
        read = unit_reads(unit)
        for name in variables:
            if name not in read:
                ctx.warn(path, f"route placeholder '{{{name}}}' feeds nothing in '{unit.call.target.request.target}'")
