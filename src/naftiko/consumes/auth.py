"""Outbound authentication, rendered with binds once at load (reference §9).

Bearer, API key (header or query) and basic add a header or query pair per request; digest
needs a challenge/response round trip, so it is handled by the transport (aiohttp's
``DigestAuthMiddleware``) and only its credentials live here.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from naftiko import jsonio
from naftiko.consumes.transport import OutboundRequest, Transport, UpstreamResponse
from naftiko.document.model import ConsumesAuthentication
from naftiko.errors import EngineError
from naftiko.expressions.template import Template

Binds = Mapping[str, Mapping[str, str]]
"""Bind namespace → variable → value, as resolved at load."""


@dataclass(frozen=True, slots=True)
class OutboundAuth:
    kind: str  # bearer | apikey | basic | digest
    header: tuple[str, str] | None = None
    query: tuple[str, str] | None = None
    digest: tuple[str, str] | None = None
    body: tuple[str, str] | None = None  # apikey placement body (EXT)

    def apply(self, headers: list[tuple[str, str]], query: list[tuple[str, str]]) -> None:
        if self.header is not None:
            headers.append(self.header)
        if self.query is not None:
            query.append(self.query)


def _render(value: str | None, binds: Binds) -> str:
    if not value:
        return ""
    return Template(value).bind(binds).render_constant()


def compile_auth(auth: ConsumesAuthentication | None, binds: Binds) -> OutboundAuth | None:
    """``auth`` is a model from :mod:`naftiko.document.model` (or None)."""
    if auth is None:
        return None
    if auth.type == "bearer":
        return OutboundAuth("bearer", header=("Authorization", f"Bearer {_render(auth.token, binds)}"))
    if auth.type == "apikey":
        key, value = _render(auth.key, binds) or "X-API-Key", _render(auth.value, binds)
        if auth.placement == "query":
            return OutboundAuth("apikey", query=(key, value))
        if auth.placement == "body":  # added by BodyFieldTransport, which can see the body
            return OutboundAuth("apikey", body=(key, value))
        return OutboundAuth("apikey", header=(key, value))
    if auth.type == "basic":
        pair = f"{_render(auth.username, binds)}:{_render(auth.password, binds)}".encode()
        return OutboundAuth("basic", header=("Authorization", "Basic " + base64.b64encode(pair).decode()))
    if auth.type == "digest":
        return OutboundAuth("digest", digest=(_render(auth.username, binds), _render(auth.password, binds)))
    return None  # oauth2 is an inbound (resource-server) scheme only


class BodyFieldTransport:
    """``apikey`` with ``placement: body`` (EXT, docs/reference.md "Authentication"): the key becomes
    a field of the request's JSON object or form body; a request without a body gets a JSON object
    holding only the key. Any other body has no field to add it to: a 500 problem, nothing sent."""

    def __init__(self, inner: Transport, key: str, value: str) -> None:
        self.inner = inner
        self.key = key
        self.value = value

    async def send(self, request: OutboundRequest) -> UpstreamResponse:
        ctype = next((v for k, v in request.headers if k.lower() == "content-type"), "")
        body = request.body
        headers = request.headers
        if body is None or not body.strip():
            body = jsonio.dumps({self.key: self.value})
            headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
            headers.append(("Content-Type", "application/json"))
        elif "json" in ctype:
            try:
                document = jsonio.loads(body)
            except jsonio.JSONDecodeError:
                document = None
            if not isinstance(document, dict):
                raise EngineError(
                    "the capability's apikey (placement body) cannot be added to a JSON body that is not an object"
                )
            body = jsonio.dumps({**document, self.key: self.value})
        elif "x-www-form-urlencoded" in ctype:
            body = body + b"&" + urlencode([(self.key, self.value)]).encode()
        else:
            raise EngineError(
                "the capability's apikey (placement body) cannot be added to a body that is not JSON or a form"
            )
        return await self.inner.send(dataclasses.replace(request, body=body, headers=headers))

    async def aclose(self) -> None:
        return None  # the inner transport is closed with the plan's others

