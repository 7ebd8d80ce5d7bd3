"""The control expose kind (``type: control``): :data:`KIND`, listed in :mod:`naftiko.exposes.registry`.

``router.py`` compiles the adapter (``compile_control``: management switches, observability
settings) and serves it (``ControlRouter``); ``client.py`` is the ``naftiko health …``
commands' client. Imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from naftiko.document.model import ExposesControl
    from naftiko.engine.plan import Plan, SpecPath
    from naftiko.exposes.control.router import ControlAdapterPlan
    from naftiko.exposes.registry import CompileContext
    from naftiko.observability.settings import ObservabilitySettings


class ControlKind:
    type = "control"
    aliases: frozenset[str] = frozenset()
    compiled_first = True  # the capability's telemetry is built from its observability settings

    def observability(self, adapter: ControlAdapterPlan) -> ObservabilitySettings:
        return adapter.settings

    def compile(self, model: ExposesControl, path: SpecPath, ctx: CompileContext) -> ControlAdapterPlan | None:
        """None when its ``observability`` block has errors (reported)."""
        from naftiko.exposes.control.router import compile_control

        return compile_control(ctx, model, path, ctx.binds)

    def serves(self, adapter: ControlAdapterPlan) -> bool:
        return True  # engine-provided endpoints: never empty

    def build_app(self, adapter: ControlAdapterPlan, plan: Plan) -> ASGIApp:
        from naftiko.exposes.control.router import build_control_app

        return build_control_app(adapter, plan)

    def classifier(self, app: ASGIApp) -> None:
        """None: probes, metrics and traces are not requests to observe."""
        return None


KIND = ControlKind()
