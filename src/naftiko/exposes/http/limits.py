"""Bounds on what a caller may send: body size, JSON nesting depth and size, inbound HTTP limits.

Deeply nested JSON costs recursion in every later step (templates, JSONPath, schema
validation, serialisation) and no real API needs it, so REST bodies and MCP arguments nested
deeper than :data:`MAX_JSON_DEPTH` are refused up front with a clear message. The check runs on
the raw bytes, before parsing, with C-speed bytes operations only (naftiko.jsonio): a
walk over the parsed value in Python takes seconds on a 4 MiB body of ``[{},{},…]`` and blocks
every adapter meanwhile. :func:`loads_bounded` adds a cap on the number of objects and arrays,
which is what a body costs in memory once parsed (about 60 bytes each, against 2 bytes of JSON).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from naftiko import jsonio
from naftiko.jsonio import JsonTooLarge, json_containers, json_too_deep

__all__ = ["JsonTooLarge", "json_containers", "json_too_deep", "loads_bounded", "too_deep"]

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_JSON_DEPTH = 64
MAX_JSON_CONTAINERS = 100_000  # objects + arrays in one body: about 6 MB once parsed

# Inbound HTTP limits (naftiko.runtime.httpserver; flags of the same names, docs/reference.md)
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
    stack: list[tuple[dict[Any, Any] | list[Any], int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def loads_bounded(
    data: bytes | str, *, max_depth: int = MAX_JSON_DEPTH, max_containers: int = MAX_JSON_CONTAINERS
) -> object:
    """A caller's JSON body or arguments within the bounds above (:func:`naftiko.jsonio.loads_bounded`)."""
    return jsonio.loads_bounded(data, max_depth=max_depth, max_containers=max_containers)
