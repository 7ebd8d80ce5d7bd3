"""naftiko — serve Naftiko capability files as REST and MCP in front of existing HTTP APIs.

Used as a library: :func:`load` reads a capability file of any published version into a checked
document (:class:`Loaded`), or raises :class:`LoadError` whose ``diagnostics`` (:class:`Diagnostic`)
each say ``file:line:col: what is wrong``; :func:`compile_plan` turns it into the frozen
:class:`Plan` under :class:`Options` (base URIs, ports, limits, dry run); :func:`serve` runs the
plans' adapters until stopped. A request that cannot be served raises an :class:`EngineError`,
which the adapters turn into a problem+json body (REST) or an ``isError`` result (MCP). Importing
``naftiko`` stays cheap (no parser, pydantic or server stack): each name is imported from its
module on first use. docs/reference.md says what every part does.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads this name the same way)

__version__ = "0.1.0"

# public name -> the module that defines it (imported on first use, see __getattr__)
_EXPORTS: dict[str, str] = {
    "load": "naftiko.document.loader",
    "Loaded": "naftiko.document.loader",
    "compile_plan": "naftiko.engine.plan",
    "Options": "naftiko.engine.plan",
    "Plan": "naftiko.engine.plan",
    "serve": "naftiko.runtime.serve",
    "Diagnostic": "naftiko.errors",
    "LoadError": "naftiko.errors",
    "EngineError": "naftiko.errors",
}

__all__ = [
    "Diagnostic",
    "EngineError",
    "LoadError",
    "Loaded",
    "Options",
    "Plan",
    "__version__",
    "compile_plan",
    "load",
    "serve",
]

if TYPE_CHECKING:
    from naftiko.document.loader import Loaded, load
    from naftiko.engine.plan import Options, Plan, compile_plan
    from naftiko.errors import Diagnostic, EngineError, LoadError
    from naftiko.runtime.serve import serve


def __getattr__(name: str) -> object:
    """Import a public name from its module on first access (PEP 562), then keep it here."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value: object = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
