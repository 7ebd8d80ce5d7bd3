"""Upstream bodies as MCP content: text when they are text, base64 otherwise.

Shared by tool results and resource reads. A body is text when its media type is textual (or
absent) and it decodes in its charset; anything else travels base64-encoded, capped at
:data:`MAX_BINARY_BYTES` so one large download cannot balloon a JSON-RPC message.

A body from an operation declaring ``outputRawFormat: binary`` (``Relayed.binary``) is never
tried as text: it is always :func:`binary_block` / :func:`blob_contents`, typed by
``Relayed.media_type()``, and its cap is the operation's ``maxBinarySize`` (enforced while
reading, engine/simple.py) instead of :data:`MAX_BINARY_BYTES`.
"""

from __future__ import annotations

import base64
import codecs
from collections.abc import Callable
from typing import Any

import mcp_types as types

from naftiko.engine.result import UpstreamFailure

# Bind values masked out of a text. Any: Secrets.mask is typed object -> object (a str in gives a str
# back); overloads there would make this Callable[[str], str].
Mask = Callable[[str], Any]

MAX_BINARY_BYTES = 5 * 1024 * 1024
ERROR_BODY_LIMIT = 2000
_TEXT_TYPES = frozenset(
    {
        "application/json",
        "application/xml",
        "application/yaml",
        "application/x-yaml",
        "application/toml",
        "application/javascript",
        "application/ecmascript",
        "application/sql",
        "application/graphql",
        "application/x-ndjson",
        "application/x-www-form-urlencoded",
        "image/svg+xml",
    }
)


def content_type_essence(content_type: str | None) -> str:
    """``text/plain; charset=utf-8`` → ``text/plain``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def _charset(content_type: str | None) -> str:
    for param in (content_type or "").split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            name = value.strip().strip('"')
            try:
                return codecs.lookup(name).name
            except LookupError:
                break
    return "utf-8"


def is_textual(mime: str) -> bool:
    return mime.startswith("text/") or mime in _TEXT_TYPES or mime.endswith(("+json", "+xml", "+yaml"))


def is_media(mime: str) -> bool:
    """Images and audio have their own MCP content blocks, whatever their encoding."""
    return mime.startswith(("image/", "audio/"))


def as_text(raw: bytes, content_type: str | None) -> str | None:
    """The body as text, or ``None`` when it is binary (by type, or by bytes that do not decode)."""
    mime = content_type_essence(content_type)
    if mime and (is_media(mime) or not is_textual(mime)):
        return None
    try:
        return raw.decode(_charset(content_type))
    except UnicodeDecodeError:
        return None


def too_large(raw: bytes) -> str:
    return f"the upstream body is too large for an MCP result ({len(raw)} bytes; the limit is {MAX_BINARY_BYTES})"


def binary_block(raw: bytes, content_type: str | None, uri: str):
    """A tool result block: image and audio by type, any other binary as an embedded blob."""
    mime = content_type_essence(content_type) or "application/octet-stream"
    data = base64.b64encode(raw).decode("ascii")
    if mime.startswith("image/"):
        return types.ImageContent(data=data, mime_type=mime)
    if mime.startswith("audio/"):
        return types.AudioContent(data=data, mime_type=mime)
    return types.EmbeddedResource(resource=types.BlobResourceContents(uri=uri, mime_type=mime, blob=data))


def blob_contents(uri: str, raw: bytes, mime: str | None) -> types.BlobResourceContents:
    blob = base64.b64encode(raw).decode("ascii")
    return types.BlobResourceContents(uri=uri, mime_type=mime or "application/octet-stream", blob=blob)


def upstream_error_text(result: UpstreamFailure, mask: Mask) -> str:
    """``upstream returned HTTP 404: <trimmed body>``, secrets masked."""
    body = result.body.decode("utf-8", "replace").strip()
    text = f"upstream returned HTTP {result.status}"
    if not body:
        return mask(text)
    # mask first, then cut: a secret straddling the cut would otherwise leave all but its tail
    masked = mask(f"{text}: {body}")
    limit = len(text) + 2 + ERROR_BODY_LIMIT
    return masked if len(masked) <= limit else masked[:limit] + "… (truncated)"
