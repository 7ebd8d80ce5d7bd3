"""JSON encoding and decoding of values that came from callers or upstreams: one codec.

orjson is fast but refuses to encode integers beyond 64 bits, which JSON allows and callers can
send, and decodes them as floats (``99999999999999999999999`` → ``1e+23``), silently corrupting
identifiers and amounts. Those documents go through the standard library instead, which keeps
integers exact both ways.

Bounded decoding: how deep a document nests and how many objects and arrays it holds are judged
on the raw bytes before parsing, with C-speed bytes operations only (:func:`json_too_deep`,
:func:`loads_bounded`). A walk over the parsed value in Python takes seconds on a 4 MiB body
of ``[{},{},…]`` and blocks every adapter meanwhile; parsed, each object costs about 60 bytes
against 2 bytes of JSON.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

JSONDecodeError = json.JSONDecodeError  # orjson.JSONDecodeError subclasses it
# A run of 19+ digits may be an integer orjson would turn into a float (2**63 has 19 digits). Found
# by mapping every digit to "0" and everything else to "." and searching for 19 zeros: both run in C
# (about 3 ns a byte, under orjson's own parse time), where a regex scan costs several times more.
_DIGITS_AS_ZERO = bytes(48 if 48 <= i <= 57 else 46 for i in range(256))
_LONG_RUN = b"0" * 19


def loads(data: bytes | str) -> Any:
    """Parse JSON, keeping every integer exact.

    The result is ``Any``, as for ``json.loads`` and ``orjson.loads``, which this replaces at call sites
    that index a document whose shape the protocol fixes (a JSON-RPC message); callers reading a
    caller's or an upstream's document narrow it with ``isinstance`` first."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data  # lone surrogates: invalid JSON
    if _LONG_RUN not in raw.translate(_DIGITS_AS_ZERO):
        return orjson.loads(raw)
    orjson.loads(raw)  # validation with orjson's error messages and limits first
    try:
        return json.loads(raw)
    except RecursionError:
        raise orjson.JSONDecodeError("nested too deeply", "", 0) from None


def dumps(value: object) -> bytes:
    """Serialise to compact UTF-8 JSON, integers beyond 64 bits included (orjson refuses them)."""
    try:
        return orjson.dumps(value)
    except TypeError as exc:  # orjson.JSONEncodeError: a >64-bit integer, most likely
        try:
            return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode()
        except UnicodeEncodeError:  # a lone surrogate: no UTF-8 for it, refused as orjson refused it
            raise exc from None


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


def _more_openers_than(data: bytes, n: int) -> bool:
    """Whether ``data`` holds more than ``n`` ``[`` and ``{`` together: at most ``n + 1`` memchr
    searches per bracket, so a big body with few brackets costs microseconds, not a full count."""
    found = 0
    for opener in (b"[", b"{"):
        at = data.find(opener)
        while at != -1:
            found += 1
            if found > n:
                return True
            at = data.find(opener, at + 1)
    return False


def json_containers(data: bytes) -> int:
    """An upper bound on the objects and arrays in the JSON text ``data`` (brackets in strings count too)."""
    return data.count(b"[") + data.count(b"{")


def json_too_deep(data: bytes, limit: int, *, _structure_of: bytes | None = None) -> bool:
    """Whether the JSON text ``data`` nests objects/arrays more than ``limit`` levels, judged from
    the bytes alone, before any parsing. Text that is not JSON may be judged either way: the
    parser refuses it afterwards.

    Two passes strip the innermost pairs (the leaves: most of a wide document) with
    ``bytes.replace``; what is left is walked run by run (``((((`` or ``))``), so the Python
    loop runs once per run of brackets, not once per byte.
    """
    if not _more_openers_than(data, limit):
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


def loads_bounded(data: bytes | str, *, max_depth: int, max_containers: int) -> object:
    """``orjson.loads`` within bounds checked first on the raw text: :class:`JsonTooLarge` when it
    nests deeper than ``max_depth`` or holds more than ``max_containers`` objects and arrays,
    :data:`JSONDecodeError` when it is not JSON; integers stay exact as with :func:`loads`."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if _more_openers_than(raw, min(max_depth, max_containers)):
        structure = _structure(raw)
        if structure.count(b"(") > max_containers:
            raise JsonTooLarge(f"holds more than {max_containers} objects and arrays")
        if json_too_deep(raw, max_depth, _structure_of=structure):
            raise JsonTooLarge(f"nests deeper than {max_depth} levels")
    return loads(raw)
