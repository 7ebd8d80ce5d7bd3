"""Outbound tokens that naftiko obtains and refreshes itself (docs/reference.md, "Outbound OAuth2").

A consumes entry with ``authentication: {type: oauth2, ...}`` or ``{type: custom-token, ...}``
gets a :class:`TokenSource` and its transport is wrapped in a :class:`TokenAuthTransport`, so
every path that sends through that entry (simple calls, call steps, forwards, pages of a
paginated list) carries a fresh token without knowing about it.

The lifecycle, per consumes entry:

- **lazy, single-flight**: the first call acquires the token; calls arriving meanwhile await the
  same acquisition, so N concurrent first calls make one token request;
- **proactive refresh**: a token is refreshed ``safetyMargin`` seconds before its ``expires_in``
  runs out (at most half its lifetime early, so a short-lived token is not refreshed per call);
- **reactive refresh**: an upstream ``401`` discards the token that was used, acquires a new one
  and retries the call once; a second ``401`` is relayed as the upstream's answer;
- **rotation**: a ``refresh_token`` in the token response replaces the one in use;
- **failures**: anything wrong at the token endpoint is one :class:`TokenEndpointError` (502)
  naming the endpoint and its status, shared by every call that was waiting for it; a failed
  acquisition is not cached, so the next call tries again;
- **masking**: every token and refresh token obtained is added to the capability's ``Secrets``.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import re
import time
from collections.abc import Callable
from urllib.parse import quote, quote_plus, unquote_plus, urlencode, urlsplit

from naftiko import jsonio
from naftiko.binds.secrets import MASK, Secrets
from naftiko.consumes.transport import OutboundRequest, Transport, UpstreamResponse, host_label
from naftiko.errors import EngineError, UpstreamTimeout, UpstreamUnavailable
from naftiko.expressions.jsonpath import JsonPath

GRANT_TYPES = {"client-credentials": "client_credentials", "refresh-token": "refresh_token"}
TOKEN_RESPONSE_CAP = 64 * 1024  # a token response is a few hundred bytes; anything far larger is not one
_ERROR_CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")  # RFC 6749 §5.2 error codes: safe to quote


class TokenEndpointError(UpstreamUnavailable):
    """The token could not be obtained: a 502 problem (REST) or an ``isError`` result (MCP)."""


def endpoint_label(url: str) -> str:
    """``scheme://host[:port]/path`` of an endpoint: never its userinfo or query, which may hold secrets."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{host_label(url)}{parts.path}"


@dataclasses.dataclass(slots=True)
class Token:
    value: str
    refresh_at: float | None  # monotonic time to refresh from; None: until an upstream 401
    expires_at: float | None  # past this the token is not used even when a refresh fails


class TokenSource:
    """The cache and single-flight logic shared by both kinds; subclasses say how to acquire."""

    label: str  # names the token source in errors

    def __init__(self, *, safety_margin: float, secrets: Secrets, clock: Callable[[], float] = time.monotonic):
        self._margin = safety_margin
        self._secrets = secrets
        self._clock = clock
        self._token: Token | None = None
        self._inflight: asyncio.Future[str] | None = None
        self.acquisitions = 0  # token requests made, for tests and the control adapter

    async def token(self) -> str:
        cached = self._token
        if cached is not None and (cached.refresh_at is None or self._clock() < cached.refresh_at):
            return cached.value
        task = self._inflight
        if task is None:
            task = asyncio.ensure_future(self._refresh())
            self._inflight = task
            task.add_done_callback(self._settled)
        try:
            return await asyncio.shield(task)  # a caller hanging up does not cancel everyone's acquisition
        except TokenEndpointError:
            if cached is not None and cached.expires_at is not None and self._clock() < cached.expires_at:
                return cached.value  # refreshing early failed; the token in hand is still good
            raise

    def _settled(self, task: asyncio.Future[str]) -> None:
        self._inflight = None
        if not task.cancelled():
            task.exception()  # retrieved here so a failure nobody awaited is not reported as lost

    def invalidate(self, used: str) -> None:
        """The upstream refused ``used`` (401): drop it unless a newer token already replaced it."""
        if self._token is not None and self._token.value == used:
            self._token = None

    async def _refresh(self) -> str:
        self.acquisitions += 1
        value, expires_in = await self.acquire()
        self._secrets.add(value)
        now = self._clock()
        if expires_in is None or expires_in <= 0:
            self._token = Token(value, None, None)
        else:
            early = min(self._margin, expires_in / 2)
            self._token = Token(value, now + expires_in - early, now + expires_in)
        return value

    async def acquire(self) -> tuple[str, float | None]:  # pragma: no cover - abstract
        raise NotImplementedError

    def request(self) -> OutboundRequest:  # pragma: no cover - abstract
        """The token request the next acquisition would send (shown by ``--dry-run``)."""
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


def _seconds(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


class OAuth2TokenSource(TokenSource):
    """RFC 6749 client credentials (§4.4) or refresh token (§6) against a token endpoint."""

    def __init__(
        self,
        *,
        endpoint: str,
        grant: str,
        client_id: str,
        client_secret: str | None,
        refresh_token: str | None,
        scope: str | None,
        audience: str | None,
        client_auth: str,
        transport: Transport,
        timeout: float,
        safety_margin: float,
        secrets: Secrets,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__(safety_margin=safety_margin, secrets=secrets, clock=clock)
        self.endpoint = endpoint
        self.label = f"token endpoint {endpoint_label(endpoint)}"
        self._grant = GRANT_TYPES[grant]
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self._scope = scope
        self._audience = audience
        self._client_auth = client_auth
        self._transport = transport
        self._timeout = timeout

    def request(self) -> OutboundRequest:
        form: list[tuple[str, str]] = [("grant_type", self._grant)]
        if self._grant == "refresh_token" and self._refresh_token:
            form.append(("refresh_token", self._refresh_token))
        if self._scope:
            form.append(("scope", self._scope))
        if self._audience:
            form.append(("audience", self._audience))
        headers = [("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json")]
        if self._client_auth == "basic":  # RFC 6749 §2.3.1: each part form-encoded, then base64
            pair = f"{quote_plus(self._client_id)}:{quote_plus(self._client_secret or '')}".encode()
            headers.append(("Authorization", "Basic " + base64.b64encode(pair).decode()))
        else:
            form.append(("client_id", self._client_id))
            if self._client_secret:
                form.append(("client_secret", self._client_secret))
        return OutboundRequest("POST", self.endpoint, headers, urlencode(form).encode(), self._timeout)

    async def acquire(self) -> tuple[str, float | None]:
        try:
            response = await self._transport.send(self.request())
        except UpstreamTimeout:
            raise TokenEndpointError(f"{self.label} did not answer within {self._timeout:g}s") from None
        except EngineError:
            raise TokenEndpointError(f"{self.label} could not be reached or its answer was too large") from None
        document = self._document(response)
        token = document.get("access_token")
        if not isinstance(token, str) or not token:
            raise TokenEndpointError(f"{self.label} answered HTTP {response.status} without an access_token")
        rotated = document.get("refresh_token")
        if isinstance(rotated, str) and rotated and self._grant == "refresh_token":
            self._secrets.add(rotated)
            self._refresh_token = rotated
        return token, _seconds(document.get("expires_in"))

    def _document(self, response: UpstreamResponse) -> dict[str, object]:
        try:
            document = jsonio.loads(response.body) if response.body.strip() else None
        except jsonio.JSONDecodeError:
            document = None
        if response.status >= 300:
            code = document.get("error") if isinstance(document, dict) else None
            reason = f" ({code})" if isinstance(code, str) and _ERROR_CODE.match(code) else ""
            raise TokenEndpointError(f"{self.label} answered HTTP {response.status}{reason}")
        if not isinstance(document, dict):
            raise TokenEndpointError(
                f"{self.label} answered HTTP {response.status} with a body that is not a JSON object"
            )
        return document

    async def aclose(self) -> None:
        await self._transport.aclose()


class CustomTokenSource(TokenSource):
    """The token is a field of another consumed operation's answer (``acquire.call``)."""

    def __init__(
        self,
        *,
        call: str,
        arguments: dict[str, object],
        token_field: JsonPath,
        expires_field: JsonPath | None,
        safety_margin: float,
        secrets: Secrets,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__(safety_margin=safety_margin, secrets=secrets, clock=clock)
        self.label = f"token call {call}"
        self._arguments = arguments
        self._token_field = token_field
        self._expires_field = expires_field
        self._build: Callable[[dict[str, object]], OutboundRequest] | None = None
        self._transport: Transport | None = None

    def attach(self, build: Callable[[dict[str, object]], OutboundRequest], transport: Transport) -> None:
        """Resolved once every consumes entry is compiled (the called entry may come later in the file)."""
        self._build = build
        self._transport = transport

    def request(self) -> OutboundRequest:
        assert self._build is not None
        return self._build(self._arguments)

    async def acquire(self) -> tuple[str, float | None]:
        assert self._transport is not None
        try:
            response = await self._transport.send(self.request())
        except EngineError as exc:
            raise TokenEndpointError(f"{self.label} failed: {exc.detail}") from None
        if response.status >= 300:
            raise TokenEndpointError(f"{self.label} answered HTTP {response.status}")
        try:
            document = jsonio.loads(response.body)
        except jsonio.JSONDecodeError:
            raise TokenEndpointError(
                f"{self.label} answered HTTP {response.status} with a body that is not JSON"
            ) from None
        token = self._token_field.find(document)
        if isinstance(token, (int, float)) and not isinstance(token, bool):
            token = str(token)
        if not isinstance(token, str) or not token:
            raise TokenEndpointError(f"{self.label} answered without a token at {self._token_field.source}")
        expires = _seconds(self._expires_field.find(document)) if self._expires_field is not None else None
        return token, expires


@dataclasses.dataclass(frozen=True, slots=True)
class Placement:
    """Where the token goes: a header (with a prefix such as ``Bearer ``) or a query parameter."""

    where: str  # header | query
    name: str
    prefix: str = ""

    def apply(self, request: OutboundRequest, token: str) -> OutboundRequest:
        if self.where == "header":
            lowered = self.name.lower()
            headers = [(k, v) for k, v in request.headers if k.lower() != lowered]  # the file's token wins
            headers.append((self.name, self.prefix + token))
            return dataclasses.replace(request, headers=headers)
        base, sep, query = request.url.partition("?")
        pairs = [p for p in query.split("&") if p and unquote_plus(p.split("=", 1)[0]) != self.name] if sep else []
        pairs.append(f"{quote(self.name, safe='')}={quote(token, safe='')}")
        return dataclasses.replace(request, url=base + "?" + "&".join(pairs))


BEARER = Placement("header", "Authorization", "Bearer ")


class TokenAuthTransport:
    """Adds the current token to each request; on a 401, refreshes once and retries once."""

    def __init__(self, inner: Transport, source: TokenSource, placement: Placement = BEARER):
        self.inner = inner
        self.source = source
        self.placement = placement

    async def send(self, request: OutboundRequest) -> UpstreamResponse:
        token = await self.source.token()
        response = await self.inner.send(self.placement.apply(request, token))
        if response.status != 401:
            return response
        self.source.invalidate(token)
        fresh = await self.source.token()
        return await self.inner.send(self.placement.apply(request, fresh))

    async def aclose(self) -> None:
        await self.source.aclose()  # the inner transport is closed by the plan with the others


class DryRunTokenTransport:
    """Under ``--dry-run``: no token is requested; the description of each call gains
    ``tokenRequest``, the masked token request naftiko would make first."""

    def __init__(self, inner: Transport, source: TokenSource, placement: Placement = BEARER):
        self.inner = inner
        self.source = source
        self.placement = placement

    async def send(self, request: OutboundRequest) -> UpstreamResponse:
        described = await self.inner.send(self.placement.apply(request, MASK))
        token_request = await self.inner.send(self.source.request())
        document = jsonio.loads(described.body)
        if isinstance(document, dict):  # the dry-run description: an object
            document["tokenRequest"] = jsonio.loads(token_request.body)
        return UpstreamResponse(described.status, described.headers, jsonio.dumps(document))

    async def aclose(self) -> None:
        return None
