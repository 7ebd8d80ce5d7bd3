"""Outbound authentication, rendered with binds once at load (contract §9).

Bearer, API key (header or query) and basic add a header or query pair per request; digest
needs a challenge/response round trip, so it is handled by the transport (aiohttp's
``DigestAuthMiddleware``) and only its credentials live here.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from ..expressions.template import Template


@dataclass(frozen=True, slots=True)
class OutboundAuth:
    kind: str  # bearer | apikey | basic | digest
    header: tuple[str, str] | None = None
    query: tuple[str, str] | None = None
    digest: tuple[str, str] | None = None

    def apply(self, headers: list[tuple[str, str]], query: list[tuple[str, str]]) -> None:
        if self.header is not None:
            headers.append(self.header)
        if self.query is not None:
            query.append(self.query)


def _render(value: str | None, binds) -> str:
    if not value:
        return ""
    return Template(value).bind(binds).render_constant()


def compile_auth(auth, binds) -> OutboundAuth | None:
    """``auth`` is a model from :mod:`naftiko.spec.model` (or None)."""
    if auth is None:
        return None
    if auth.type == "bearer":
        return OutboundAuth("bearer", header=("Authorization", f"Bearer {_render(auth.token, binds)}"))
    if auth.type == "apikey":
        key, value = _render(auth.key, binds) or "X-API-Key", _render(auth.value, binds)
        if auth.placement == "query":
            return OutboundAuth("apikey", query=(key, value))
        return OutboundAuth("apikey", header=(key, value))
    if auth.type == "basic":
        pair = f"{_render(auth.username, binds)}:{_render(auth.password, binds)}".encode()
        return OutboundAuth("basic", header=("Authorization", "Basic " + base64.b64encode(pair).decode()))
    if auth.type == "digest":
        return OutboundAuth("digest", digest=(_render(auth.username, binds), _render(auth.password, binds)))
    return None  # oauth2 is an inbound (resource-server) scheme only
