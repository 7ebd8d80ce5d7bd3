"""Compiling an MCP adapter (``type: mcp``) into its :class:`McpAdapterPlan`, through the
compiler's :class:`~naftiko.exposes.registry.CompileContext`: tools here (unit, input and
output schemas, annotations), resources and prompts in :mod:`.catalog`. The capability's
telemetry, when active, goes into the plan so ``build_server`` observes tool calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from naftiko.engine.binding import bind_unit_inputs
from naftiko.engine.pagination import PAGES_ARGUMENT, PAGES_PROPERTY, PAGINATION_OUTPUT, PagedCallUnit
from naftiko.engine.plan import McpAdapterPlan, McpToolPlan
from naftiko.engine.simple import answers_binary
from naftiko.exposes.mcp import KIND

if TYPE_CHECKING:
    from naftiko.document import model as m
    from naftiko.engine.plan import SpecPath
    from naftiko.engine.unit import Unit
    from naftiko.exposes.registry import CompileContext


def compile_mcp(ctx: CompileContext, adapter: m.ExposesMcp, path: SpecPath) -> McpAdapterPlan:
    from naftiko.exposes.mcp.catalog import compile_catalog

    aliases = KIND.aliases | {adapter.namespace}
    ctx.adapter_binary = (ctx.binary_size(adapter.maxBinarySize, (*path, "maxBinarySize")), adapter.namespace)
    tools: list[McpToolPlan] = []
    names: set[str] = set()
    for ti, tool in enumerate(adapter.tools):
        with ctx.unit_scope() as start:
            planned = _tool(ctx, tool, (*path, "tools", ti), names, aliases, start)
            if planned is not None:
                tools.append(planned)
    port = ctx.port(adapter) if adapter.transport == "http" else None
    if adapter.transport == "http" and port is None:
        ctx.error(path, f"mcp adapter '{adapter.namespace}' with transport http needs a 'port'")
    resources, prompts = compile_catalog(ctx, adapter, path, ctx.consumers, aliases, ctx.binds)
    return McpAdapterPlan(
        adapter.namespace,
        ctx.address(adapter),
        port,
        adapter.transport,
        adapter.description,
        tools,
        resources,
        prompts,
        adapter.authentication,
        telemetry=ctx.telemetry if ctx.telemetry.active else None,
        ttl_ms=adapter.ttlMs or 0,
        cache_scope=adapter.cacheScope or "private",
        version=ctx.doc.info.version if ctx.doc.info else None,
    )


def _tool(
    ctx: CompileContext, tool: m.McpTool, tpath: SpecPath, names: set[str], aliases: frozenset[str], start: int
) -> McpToolPlan | None:
    from naftiko.exposes.mcp.schema import annotations_for, input_schema_for, output_schema_for

    resolved, semantics, ref_aliases = ctx.resolve_ref(tool, tpath)
    if resolved is None:
        return None
    tool = resolved
    if not tool.name:
        ctx.error(tpath, "tool has no 'name'")
        return None
    if tool.name in names:
        ctx.error((*tpath, "name"), f"duplicate tool '{tool.name}'")
        return None
    names.add(tool.name)
    unit = ctx.unit(tool.name, tool, tpath, ctx.consumers, aliases | (ref_aliases or frozenset()), ctx.binds)
    if unit is None or len(ctx.errors) != start:
        return None
    input_schema = paged_input_schema(
        input_schema_for(tool, unit, aliases | (ref_aliases or frozenset()), ctx.binds), unit
    )
    bind_unit_inputs(unit, list(input_schema["properties"]), lambda msg: ctx.warn(tpath, msg), closed=True)
    binary = answers_binary(unit)  # images, audio or a blob: no structured content to describe
    return McpToolPlan(
        name=tool.name,
        title=tool.label,
        description=tool.description or tool.label or tool.name,
        input_schema=input_schema,
        annotations=annotations_for(tool, unit, semantics),
        unit=unit,
        output_schema=None if binary else paged_output_schema(output_schema_for(tool, unit), unit),
        declared_inputs=tool.inputParameters is not None,
    )


def paged_input_schema(schema: dict[str, Any], unit: Unit) -> dict[str, Any]:
    """A tool whose list paginates takes an optional ``pages`` argument."""
    if isinstance(unit, PagedCallUnit):
        schema["properties"].setdefault(PAGES_ARGUMENT, PAGES_PROPERTY)
    return schema


def paged_output_schema(schema: dict[str, Any] | None, unit: Unit) -> dict[str, Any] | None:
    if schema is not None and isinstance(unit, PagedCallUnit):
        schema["properties"].setdefault("pagination", PAGINATION_OUTPUT)
    return schema
