"""The REST expose kind (``type: rest``): :data:`KIND`, listed in :mod:`naftiko.exposes.registry`.

``compile.py`` turns the adapter into a :class:`~naftiko.engine.plan.RestAdapterPlan`;
``router.py`` serves it. Both are imported on first use, so listing the kind costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from naftiko.document.model import ExposesRest
    from naftiko.engine.plan import Plan, RestAdapterPlan, SpecPath
    from naftiko.exposes.registry import CompileContext
    from naftiko.observability.inbound import Classify
    from naftiko.observability.settings import ObservabilitySettings


class RestKind:
    type = "rest"
    aliases = frozenset({"rest"})
    compiled_first = False

    def compile(self, model: ExposesRest, path: SpecPath, ctx: CompileContext) -> RestAdapterPlan:
        from naftiko.exposes.rest.compile import compile_rest

        return compile_rest(ctx, model, path)

    def observability(self, adapter: RestAdapterPlan) -> ObservabilitySettings | None:
        return None

    def serves(self, adapter: RestAdapterPlan) -> bool:
        return any(r.operations or r.forward is not None for r in adapter.routes)

    def build_app(self, adapter: RestAdapterPlan, plan: Plan) -> ASGIApp:
        from naftiko.exposes.rest.router import build_rest_app

        return build_rest_app(adapter, plan.secrets.mask, plan.options.max_body_bytes)

    def classifier(self, app: ASGIApp) -> Classify:
        from naftiko.exposes.rest.router import RestRouter
        from naftiko.observability.inbound import rest_classifier

        assert isinstance(app, RestRouter)  # what build_app returns
        return rest_classifier(app)


KIND = RestKind()
