"""The MCP expose kind (``type: mcp``): :data:`KIND`, listed in :mod:`naftiko.exposes.registry`.

``compile.py`` (tools) and ``catalog.py`` (resources, prompts) build the
:class:`~naftiko.engine.plan.McpAdapterPlan`; ``server.py`` assembles the HTTP app
(``envelope.py`` in front of the SDK) and ``stdio.py`` the stdio front. Imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from naftiko.document.model import ExposesMcp
    from naftiko.engine.plan import McpAdapterPlan, Plan, SpecPath
    from naftiko.exposes.registry import CompileContext
    from naftiko.observability.settings import ObservabilitySettings


class McpKind:
    type = "mcp"
    aliases = frozenset({"tools", "mcp"})
    compiled_first = False

    def compile(self, model: ExposesMcp, path: SpecPath, ctx: CompileContext) -> McpAdapterPlan:
        from naftiko.exposes.mcp.compile import compile_mcp

        return compile_mcp(ctx, model, path)

    def observability(self, adapter: McpAdapterPlan) -> ObservabilitySettings | None:
        return None

    def serves(self, adapter: McpAdapterPlan) -> bool:
        return bool(adapter.tools or adapter.resources or adapter.prompts)

    def build_app(self, adapter: McpAdapterPlan, plan: Plan) -> ASGIApp:
        """The HTTP app; an adapter on ``transport: stdio`` is served by ``runtime.serve`` on
        the process's stdin/stdout instead (:func:`naftiko.exposes.mcp.stdio.serve_stdio`)."""
        from naftiko.exposes.mcp.server import build_mcp_app

        return build_mcp_app(adapter, plan.secrets.mask, plan.options)

    def classifier(self, app: ASGIApp) -> None:
        """None: tool calls are observed per call, where the tool and its trace context are known."""
        return None


KIND = McpKind()
