"""What a unit answers: one case per outcome, so each adapter matches once instead of re-classifying.

- :class:`JsonAnswer` — a JSON value the engine built (shaped, mocked, orchestrated, paged);
- :class:`Relayed` — upstream bytes passed through untouched, with the safe headers kept (``binary``
  when the consumed operation declares ``outputRawFormat: binary``: never read as text);
- :class:`Empty` — a success with no body (an upstream 204, an orchestration that maps nothing);
- :class:`UpstreamFailure` — the upstream answered 4xx/5xx: its status and body reported faithfully.

How REST and MCP render each case: docs/reference.md, "exposes: rest" and "exposes: mcp" ("Tools",
"Resources", "Prompts"). Each adapter turns a Result into its answer in one place: ``RestRouter.respond``,
``McpTools.call``/``success``, ``catalog._contents`` and ``McpCatalog.prompt_result``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from naftiko.consumes.formats import binary_media_type
from naftiko.jsonio import JSONDecodeError, loads


@dataclass(frozen=True, slots=True)
class JsonAnswer:
    """A JSON value (``application/json``) built by the engine."""

    status: int
    value: object


@dataclass(frozen=True, slots=True, init=False)
class Relayed:
    """An upstream body passed through as it came (never blank: a blank body is :class:`Empty`).

    ``content_type`` is the upstream's; ``declared_type`` the ``outputMediaType`` the file declares
    (flow, else consumed operation), which wins over it. ``binary``: the consumed operation declares
    ``outputRawFormat: binary`` — the bytes are never decoded, masked or sniffed, and are already
    within its ``maxBinarySize``."""

    status: int
    body: bytes
    content_type: str | None
    headers: dict[str, str] = field(default_factory=dict)
    binary: bool = False
    declared_type: str | None = None

    def __init__(
        self,
        status: int,
        body: bytes,
        content_type: str | None,
        headers: dict[str, str] | None = None,
        binary: bool = False,
        declared_type: str | None = None,
    ) -> None:
        """The dataclass's own ``__init__``, each slot set through its descriptor: the generated one of
        a frozen dataclass calls ``object.__setattr__`` per field, which cost 2.5 times as much and
        more than the rest of a relayed answer's own work. Still frozen: assignment afterwards raises."""
        _set_status(self, status)
        _set_body(self, body)
        _set_content_type(self, content_type)
        _set_headers(self, {} if headers is None else headers)
        _set_binary(self, binary)
        _set_declared_type(self, declared_type)

    def media_type(self, contract: str | None = None) -> str | None:
        """The type to serve the body with: declared, then ``contract`` (a REST ``binary: true``
        media type, binary bodies only), then the upstream's; ``application/octet-stream`` for
        binary bodies without any (docs/reference.md, "Binary content")."""
        if self.binary:
            return binary_media_type(self.declared_type, contract, self.content_type)
        return self.declared_type or self.content_type

    def json(self) -> tuple[bool, object]:
        """``(True, value)`` when the body is JSON, ``(False, None)`` otherwise."""
        try:
            return True, loads(self.body)
        except JSONDecodeError:
            return False, None


(_set_status, _set_body, _set_content_type, _set_headers, _set_binary, _set_declared_type) = (
    getattr(Relayed, name).__set__
    for name in ("status", "body", "content_type", "headers", "binary", "declared_type")
)


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
