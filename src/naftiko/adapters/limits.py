"""Bounds on what a caller may send: body size, JSON nesting depth and size, inbound HTTP limits.

Deeply nested JSON costs recursion in every later step (templates, JSONPath, schema
validation, serialisation) and no real API needs it, so REST bodies and MCP arguments nested
deeper than :data:`MAX_JSON_DEPTH` are refused up front with a clear message. The check runs on
the raw bytes, before parsing, with C-speed bytes operations only (:func:`json_too_deep`): a
walk over the parsed value in Python takes seconds on a 4 MiB body of ``[{},{},…]`` and blocks
every adapter meanwhile. :func:`loads_bounded` adds a cap on the number of objects and arrays,
which is what a body costs in memory once parsed (about 60 bytes each, against 2 bytes of JSON).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_JSON_DEPTH = 64
MAX_JSON_CONTAINERS = 100_000  # objects + arrays in one body: about 6 MB once parsed

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


_QUOTED = re.compile(rb'"[^"]*"')
_BRACKETS = bytes.maketrans(b"[{]}", b"(())")
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[{]}')
_RUNS = re.compile(rb"\(+|\)+")


class JsonTooLarge(ValueError):
    """A JSON document nests deeper, or holds more objects and arrays, than allowed."""


def _structure(data: bytes) -> bytes:
    """The brackets of the JSON text ``data`` outside strings, as ``(`` and ``)``.

    Escaped backslashes and quotes are dropped first, then everything but quotes and brackets;
    adjacent quotes then always enclose (or separate) text without brackets and go too, which
    leaves only the rare strings holding brackets for a regular expression. C loops only.
    """
    if b"\\" in data:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    data = data.translate(None, _NOT_STRUCTURE)
    if b'"' in data:
        data = data.replace(b'""', b"")
        if b'"' in data:
            data = _QUOTED.sub(b"", data)
    return data.translate(_BRACKETS)


def json_containers(data: bytes) -> int:
    """An upper bound on the objects and arrays in the JSON text ``data`` (brackets in strings count too)."""
    return data.count(b"[") + data.count(b"{")


def json_too_deep(data: bytes, limit: int = MAX_JSON_DEPTH, *, _structure_of: bytes | None = None) -> bool:
    """Whether the JSON text ``data`` nests objects/arrays more than ``limit`` levels, judged from
    the bytes alone, before any parsing. Text that is not JSON may be judged either way: the
    parser refuses it afterwards.

    Two passes strip the innermost pairs (the leaves: most of a wide document) with
    ``bytes.replace``; what is left is walked run by run (``((((`` or ``))``), so the Python
    loop runs once per run of brackets, not once per byte.
    """
    if json_containers(data) <= limit:
        return False
    brackets = _structure(data) if _structure_of is None else _structure_of
    stripped = 0
    while stripped < 2 and b"()" in brackets:
        brackets = brackets.replace(b"()", b"")
        stripped += 1
    depth = deepest = 0
    for run in _RUNS.findall(brackets):
        if run[0] == 40:  # "("
            depth += len(run)
            deepest = max(deepest, depth)
        else:
            depth -= len(run)
    return deepest + stripped > limit


def loads_bounded(data: bytes | str, *, max_depth: int = MAX_JSON_DEPTH, max_containers: int = MAX_JSON_CONTAINERS) -> object:
    """``orjson.loads`` within bounds checked first on the raw text: :class:`JsonTooLarge` when it
    nests deeper than ``max_depth`` or holds more than ``max_containers`` objects and arrays,
    ``orjson.JSONDecodeError`` when it is not JSON. For REST bodies and MCP arguments alike."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if json_containers(raw) > min(max_depth, max_containers):
        structure = _structure(raw)
        if structure.count(b"(") > max_containers:
            raise JsonTooLarge(f"holds more than {max_containers} objects and arrays")
        if json_too_deep(raw, max_depth, _structure_of=structure):
            raise JsonTooLarge(f"nests deeper than {max_depth} levels")
    return orjson.loads(raw)
