"""The skill adapter (``type: skill``): serves agent skills over HTTP."""

from __future__ import annotations


def compile_skill(compiler, adapter, path: tuple, binds):
    """Compile a skill adapter into its plan, or warn and return None when it cannot be served."""
    compiler.warn(path + ("type",), "'skill' adapters are not served yet; skipped")
    return None


def build_skill_app(adapter, plan):
    raise NotImplementedError
