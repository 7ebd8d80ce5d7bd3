"""JSON encoding of values that came from callers or upstreams.

orjson is fast but refuses integers beyond 64 bits, which JSON allows and callers can send;
those values fall back to the standard library instead of failing the request.
"""

from __future__ import annotations

import json

import orjson


def dumps(value: object) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError: a >64-bit integer, most likely
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode()
