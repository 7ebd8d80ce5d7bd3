"""The contract every exposed unit keeps, whatever its mode (docs/reference.md: "exposes: rest",
"exposes: mcp", "Orchestration: steps and mappings", "Mock mode", "Pagination (EXT)").

Simple (:class:`~naftiko.engine.simple.CallUnit`), orchestrated
(:class:`~naftiko.engine.orchestrated.StepsUnit`), mock (:class:`~naftiko.engine.mock.MockUnit`)
and the paginated wrapper (:class:`~naftiko.engine.pagination.PagedCallUnit`) all offer what is
below, and the adapters (REST routes, MCP tools, resources and prompts), the input binding and
MCP schema inference use nothing else of a unit without first matching its class.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from naftiko.engine.result import Result
    from naftiko.engine.simple import Call

# A unit's inputs: names as the exposing adapter collected them, JSON-like values.
Inputs = dict[str, object]
# Bind values by namespace: ``{namespace: {variable: value}}``.
Binds = Mapping[str, Mapping[str, object]]


class Unit(Protocol):
    """An exposed unit: inputs in, one :class:`~naftiko.engine.result.Result` out."""

    @property
    def name(self) -> str: ...

    @property
    def aliases(self) -> frozenset[str]:
        """Names that refer to the inputs themselves (``rest``, ``tools``, the adapter namespace)."""
        ...

    @property
    def binds(self) -> Binds: ...

    @property
    def calls(self) -> list[Call]:
        """The consumed calls the unit may send (empty for a mock): read at load to bind inputs and infer schemas."""
        ...

    @property
    def passthrough(self) -> bool:
        """True when a success relays the upstream body unshaped (so a too-large text body may be cut)."""
        ...

    async def invoke(self, inputs: Inputs) -> Result: ...
