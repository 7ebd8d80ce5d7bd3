"""What a unit answers: one case per outcome, so each adapter matches once instead of re-classifying.

- :class:`JsonAnswer` — a JSON value the engine built (shaped, mocked, orchestrated, paged);
- :class:`Relayed` — upstream bytes passed through untouched, with the safe headers kept;
- :class:`Empty` — a success with no body (an upstream 204, an orchestration that maps nothing);
- :class:`UpstreamFailure` — the upstream answered 4xx/5xx: its status and body reported faithfully.

How REST and MCP render each case: docs/reference.md, "exposes: rest" and "exposes: mcp" ("Tools",
"Resources", "Prompts"). Each adapter turns a Result into its answer in one place: ``RestRouter.respond``,
``McpTools.call``/``success``, ``catalog._contents`` and ``McpCatalog.prompt_result``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from naftiko.jsonio import JSONDecodeError, loads


@dataclass(frozen=True, slots=True)
class JsonAnswer:
    """A JSON value (``application/json``) built by the engine."""

    status: int
    value: object


@dataclass(frozen=True, slots=True)
class Relayed:
    """An upstream body passed through as it came (never blank: a blank body is :class:`Empty`)."""

    status: int
    body: bytes
    content_type: str | None
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> tuple[bool, object]:
        """``(True, value)`` when the body is JSON, ``(False, None)`` otherwise."""
        try:
            return True, loads(self.body)
        except JSONDecodeError:
            return False, None


@dataclass(frozen=True, slots=True)
class Empty:
    """A success without a body; the upstream's safe headers are kept."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UpstreamFailure:
    """The upstream answered with an error status (>= 400): relayed, never reinterpreted."""

    status: int
    body: bytes
    content_type: str | None
    headers: dict[str, str] = field(default_factory=dict)


Result = JsonAnswer | Relayed | Empty | UpstreamFailure
