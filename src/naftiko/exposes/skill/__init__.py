"""The skill expose kind (``type: skill``): :data:`KIND`, listed in :mod:`naftiko.exposes.registry`.

``router.py`` compiles the adapter (``compile_skill``) and serves it (``SkillRouter``);
imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from naftiko.document.model import ExposesSkill
    from naftiko.engine.plan import Plan, SpecPath
    from naftiko.exposes.registry import CompileContext
    from naftiko.exposes.skill.router import SkillAdapterPlan
    from naftiko.observability.inbound import Classify
    from naftiko.observability.settings import ObservabilitySettings


class SkillKind:
    type = "skill"
    aliases: frozenset[str] = frozenset()
    compiled_first = False

    def compile(self, model: ExposesSkill, path: SpecPath, ctx: CompileContext) -> SkillAdapterPlan:
        from naftiko.exposes.skill.router import compile_skill

        return compile_skill(ctx, model, path, ctx.binds)

    def observability(self, adapter: SkillAdapterPlan) -> ObservabilitySettings | None:
        return None

    def serves(self, adapter: SkillAdapterPlan) -> bool:
        return bool(adapter.skills)

    def build_app(self, adapter: SkillAdapterPlan, plan: Plan) -> ASGIApp:
        from naftiko.exposes.skill.router import build_skill_app

        return build_skill_app(adapter, plan)

    def classifier(self, app: ASGIApp) -> Classify:
        from naftiko.observability.inbound import skill_classify

        return skill_classify


KIND = SkillKind()
