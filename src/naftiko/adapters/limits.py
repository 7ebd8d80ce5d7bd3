"""Bounds on what a caller may send: body size and JSON nesting depth.

Deeply nested JSON costs recursion in every later step (templates, JSONPath, schema
validation, serialisation) and no real API needs it, so REST bodies and MCP arguments nested
deeper than :data:`MAX_JSON_DEPTH` are refused up front with a clear message.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_JSON_DEPTH = 64

# Inbound HTTP limits (naftiko.httpserver; flags of the same names, docs/reference.md)
DEFAULT_MAX_HEAD_BYTES = 32 * 1024
DEFAULT_MAX_URL_BYTES = 8 * 1024
DEFAULT_MAX_HEADERS = 100
DEFAULT_HEAD_TIMEOUT = 10.0
DEFAULT_BODY_TIMEOUT = 60.0
DEFAULT_KEEPALIVE_TIMEOUT = 5.0
DEFAULT_MAX_CONNECTIONS = 1000


@dataclass(frozen=True, slots=True)
class InboundLimits:
    """What one client may send and for how long (``naftiko-run`` flags of the same names)."""

    max_head_bytes: int = DEFAULT_MAX_HEAD_BYTES
    max_url_bytes: int = DEFAULT_MAX_URL_BYTES
    max_headers: int = DEFAULT_MAX_HEADERS
    head_timeout: float = DEFAULT_HEAD_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS


def too_deep(value: object, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``value`` nests objects/arrays more than ``limit`` levels deep (iterative: no recursion)."""
    if not isinstance(value, (dict, list)):
        return False
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def body_too_deep(data: bytes, value: object, limit: int = MAX_JSON_DEPTH) -> bool:
    """:func:`too_deep` for a parsed body, skipped when the raw bytes cannot hold that many brackets."""
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    return too_deep(value, limit)
