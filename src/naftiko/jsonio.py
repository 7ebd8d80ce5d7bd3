"""JSON encoding and decoding of values that came from callers or upstreams: one codec.

orjson is fast but refuses to encode integers beyond 64 bits, which JSON allows and callers can
send, and decodes them as floats (``99999999999999999999999`` → ``1e+23``), silently corrupting
identifiers and amounts. Those documents go through the standard library instead, which keeps
integers exact both ways.
"""

from __future__ import annotations

import json

import orjson

JSONDecodeError = json.JSONDecodeError  # orjson.JSONDecodeError subclasses it
# A run of 19+ digits may be an integer orjson would turn into a float (2**63 has 19 digits). Found
# by mapping every digit to "0" and everything else to "." and searching for 19 zeros: both run in C
# (about 3 ns a byte, under orjson's own parse time), where a regex scan costs several times more.
_DIGITS_AS_ZERO = bytes(48 if 48 <= i <= 57 else 46 for i in range(256))
_LONG_RUN = b"0" * 19


def loads(data: bytes | str) -> object:
    """Parse JSON, keeping every integer exact."""
    raw = data.encode() if isinstance(data, str) else data
    if _LONG_RUN not in raw.translate(_DIGITS_AS_ZERO):
        return orjson.loads(raw)
    orjson.loads(raw)  # validation with orjson's error messages and limits first
    try:
        return json.loads(raw)
    except RecursionError:
        raise orjson.JSONDecodeError("nested too deeply", "", 0) from None


def dumps(value: object) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError: a >64-bit integer, most likely
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode()
