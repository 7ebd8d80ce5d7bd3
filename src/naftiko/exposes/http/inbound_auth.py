"""Inbound authentication for every network adapter (reference §9).

:func:`protect` wraps an adapter's ASGI app in a :class:`Guard` when the adapter declares
``authentication``. Schemes: ``bearer``, ``apikey`` (header or query), ``basic``, ``digest``
(RFC 7616, stateless HMAC-signed nonces) and ``oauth2`` (a JWT resource server, see
:mod:`.oauth_resource`). Secrets are rendered with binds once, at start-up, and compared in
constant time. A failed check is a 401 with ``WWW-Authenticate``, in the adapter's own error
style, and nothing reaches the adapter. On success the credential is removed from the request
before the adapter sees it, so no caller credential can become an input or travel upstream.

A secret whose template cannot be resolved makes the adapter deny every request (FIX), with
one start-up warning that names the field and variable, never a value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard, cast
from urllib.parse import unquote_plus, unquote_to_bytes, urlsplit

import orjson
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from naftiko.exposes.http.asgi import ANSWERED
from naftiko.exposes.http.oauth_resource import ResourceServer
from naftiko.exposes.http.problems import problem
from naftiko.expressions.template import Template, TemplateError

if TYPE_CHECKING:
    from naftiko.document.model import Authentication
    from naftiko.engine.plan import McpAdapterPlan, Plan

log = logging.getLogger("naftiko.auth")

DIGEST_NONCE_SECONDS = 300  # a nonce older than this earns a stale=true challenge


@dataclass(frozen=True, slots=True)
class Denial:
    status: int
    challenges: tuple[str, ...]  # WWW-Authenticate values
    error: str
    detail: str


MISSING_CREDENTIALS = "authentication required"
WRONG_CREDENTIALS = "invalid credentials"


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def _has_prefix(value: bytes | None, prefix: bytes) -> TypeGuard[bytes]:
    return value is not None and value[: len(prefix)].lower() == prefix


class AdapterPlan(Protocol):
    """What the guard reads of an adapter plan (REST, MCP, skill, control)."""

    @property
    def namespace(self) -> str: ...

    @property
    def kind(self) -> str: ...


class Scheme:
    """One compiled inbound check. ``strip_headers``/``strip_query`` name the credential."""

    strip_headers: frozenset[bytes] = frozenset({b"authorization"})
    strip_query: str | None = None

    def public(self, scope: Scope) -> Response | None:
        """A response served without authentication (OAuth metadata), else None."""
        return None

    async def verify(self, scope: Scope) -> Denial | None:
        raise NotImplementedError

    def strip(self, scope: Scope) -> Scope:
        scope = dict(scope)
        scope["headers"] = [h for h in scope["headers"] if h[0] not in self.strip_headers]
        if self.strip_query is not None and scope.get("query_string"):
            scope["query_string"] = _drop_param(scope["query_string"], self.strip_query)
        return scope


def _query_param(query: bytes, name: str) -> bytes | None:
    for part in query.split(b"&"):
        key, _, value = part.partition(b"=")
        if unquote_plus(key.decode("latin-1")) == name:
            return unquote_to_bytes(value.replace(b"+", b" "))
    return None


def _drop_param(query: bytes, name: str) -> bytes:
    return b"&".join(p for p in query.split(b"&") if unquote_plus(p.partition(b"=")[0].decode("latin-1")) != name)


class DenyAll(Scheme):
    """A scheme whose secret could not be resolved: nobody gets in (FIX)."""

    def __init__(self, challenge: str) -> None:
        self.challenge = (challenge,)

    async def verify(self, scope: Scope) -> Denial | None:
        return Denial(401, self.challenge, "unauthorized", MISSING_CREDENTIALS)


class Bearer(Scheme):
    def __init__(self, realm: str, token: str) -> None:
        self.token = token.encode()
        self.missing = Denial(401, (f'Bearer realm="{realm}"',), "unauthorized", MISSING_CREDENTIALS)
        self.wrong = Denial(401, (f'Bearer realm="{realm}", error="invalid_token"',), "unauthorized", WRONG_CREDENTIALS)

    async def verify(self, scope: Scope) -> Denial | None:
        value = _header(scope["headers"], b"authorization")
        if not _has_prefix(value, b"bearer "):
            return self.missing
        return None if hmac.compare_digest(value[7:].strip(), self.token) else self.wrong


class Basic(Scheme):
    def __init__(self, realm: str, username: str, password: str) -> None:
        self.username, self.password = username.encode(), password.encode()
        challenge = (f'Basic realm="{realm}", charset="UTF-8"',)
        self.missing = Denial(401, challenge, "unauthorized", MISSING_CREDENTIALS)
        self.wrong = Denial(401, challenge, "unauthorized", WRONG_CREDENTIALS)

    async def verify(self, scope: Scope) -> Denial | None:
        value = _header(scope["headers"], b"authorization")
        if not _has_prefix(value, b"basic "):
            return self.missing
        try:
            decoded = base64.b64decode(value[6:].strip(), validate=True)
        except (binascii.Error, ValueError):
            return self.wrong
        username, sep, password = decoded.partition(b":")
        # Both comparisons always run: timing tells nothing about which part was wrong.
        ok = hmac.compare_digest(username, self.username) & hmac.compare_digest(password, self.password)
        return None if sep and ok else self.wrong


class ApiKey(Scheme):
    def __init__(self, realm: str, name: str, value: str, placement: str) -> None:
        self.value = value.encode()
        self.in_query = placement == "query"
        if self.in_query:
            self.name = name
            self.strip_query = name
            self.strip_headers = frozenset()
        else:
            self.header = name.lower().encode("latin-1")
            self.strip_headers = frozenset({self.header})
        challenge = (f'ApiKey realm="{realm}", in="{placement}", name="{name}"',)
        self.missing = Denial(401, challenge, "unauthorized", MISSING_CREDENTIALS)
        self.wrong = Denial(401, challenge, "unauthorized", WRONG_CREDENTIALS)

    async def verify(self, scope: Scope) -> Denial | None:
        if self.in_query:
            given = _query_param(scope.get("query_string") or b"", self.name)
        else:
            given = _header(scope["headers"], self.header)
        if given is None:
            return self.missing
        return None if hmac.compare_digest(given, self.value) else self.wrong


def _digest_params(text: str) -> dict[str, str]:
    """``k=v, k="quoted \\" value"`` → dict (keys lower-cased)."""
    params: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " ,\t":
            i += 1
        eq = text.find("=", i)
        if eq < 0:
            break
        key = text[i:eq].strip().lower()
        i = eq + 1
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == '"':
            i += 1
            out: list[str] = []
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                out.append(text[i])
                i += 1
            i += 1
            value = "".join(out)
        else:
            end = text.find(",", i)
            end = n if end < 0 else end
            value = text[i:end].strip()
            i = end
        params[key] = value
    return params


_DIGEST_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


class Digest(Scheme):
    """RFC 7616 server side, qop=auth, MD5 and SHA-256 (and their -sess forms).

    Nonces are ``timestamp + HMAC(timestamp)`` under a per-process key: nothing is stored per
    client, a forged nonce fails the HMAC, and an old one gets ``stale=true`` so clients retry
    with a fresh one without asking the user again. (Replays inside the nonce lifetime are not
    detected: that would need per-nonce state.)
    """

    def __init__(self, realm: str, username: str, password: str) -> None:
        self.realm = realm
        self.username = username.encode()
        self.key = os.urandom(32)
        self.opaque = os.urandom(12).hex()
        self.ha1 = {
            name: fn(f"{username}:{realm}:{password}".encode()).hexdigest() for name, fn in _DIGEST_HASHES.items()
        }

    def _nonce(self) -> str:
        stamp = int(time.time()).to_bytes(8, "big")
        mac = hmac.new(self.key, stamp, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(stamp + mac).decode().rstrip("=")

    def _nonce_age(self, nonce: str) -> float | None:
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (binascii.Error, ValueError):
            return None
        if len(raw) != 24:
            return None
        stamp, mac = raw[:8], raw[8:]
        if not hmac.compare_digest(mac, hmac.new(self.key, stamp, hashlib.sha256).digest()[:16]):
            return None
        return time.time() - int.from_bytes(stamp, "big")

    def _deny(self, detail: str, stale: bool = False) -> Denial:
        nonce = self._nonce()
        extra = ", stale=true" if stale else ""
        challenges = tuple(
            f'Digest realm="{self.realm}", qop="auth", algorithm={alg}, nonce="{nonce}", opaque="{self.opaque}"{extra}'
            for alg in ("SHA-256", "MD5")  # strongest first (RFC 7616 §3.7)
        )
        return Denial(401, challenges, "unauthorized", detail)

    async def verify(self, scope: Scope) -> Denial | None:
        value = _header(scope["headers"], b"authorization")
        if not _has_prefix(value, b"digest "):
            return self._deny(MISSING_CREDENTIALS)
        p = _digest_params(value[7:].decode("latin-1"))
        algorithm = p.get("algorithm", "MD5").upper()
        sess = algorithm.endswith("-SESS")
        hash_fn = _DIGEST_HASHES.get(algorithm[:-5] if sess else algorithm)
        required = ("username", "realm", "nonce", "uri", "response", "nc", "cnonce")
        if hash_fn is None or p.get("qop") != "auth" or any(k not in p for k in required):
            return self._deny(WRONG_CREDENTIALS)
        target: bytes = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        if p["realm"] != self.realm or p["uri"].encode("latin-1") != target:
            return self._deny(WRONG_CREDENTIALS)
        age = self._nonce_age(p["nonce"])
        if age is None:
            return self._deny(WRONG_CREDENTIALS)

        def h(text: str) -> str:
            return hash_fn(text.encode("latin-1")).hexdigest()

        ha1 = self.ha1[algorithm[:-5] if sess else algorithm]
        if sess:
            ha1 = h(f"{ha1}:{p['nonce']}:{p['cnonce']}")
        ha2 = h(f"{scope['method']}:{p['uri']}")
        expected = h(f"{ha1}:{p['nonce']}:{p['nc']}:{p['cnonce']}:auth:{ha2}")
        ok = hmac.compare_digest(expected.encode(), p["response"].lower().encode("latin-1")) & hmac.compare_digest(
            p["username"].encode("latin-1"), self.username
        )
        if not ok:
            return self._deny(WRONG_CREDENTIALS)
        if age > DIGEST_NONCE_SECONDS:
            return self._deny("the nonce has expired", stale=True)
        return None


_OAUTH_CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET, OPTIONS"}


class OAuth2(Scheme):
    """Bearer JWTs checked by a :class:`ResourceServer`; serves its RFC 9728 metadata."""

    def __init__(self, server: ResourceServer) -> None:
        self.server = server
        self.scope_hint = f', scope="{" ".join(server.scopes)}"' if server.scopes else ""

    def public(self, scope: Scope) -> Response | None:
        if scope["path"] not in self.server.metadata_paths:
            return None
        if scope["method"] == "OPTIONS":
            return Response(status_code=204, headers=_OAUTH_CORS)
        if scope["method"] in ("GET", "HEAD"):
            return Response(
                self.server.metadata,
                media_type="application/json",
                headers={**_OAUTH_CORS, "Cache-Control": "public, max-age=3600"},
            )
        return None

    async def verify(self, scope: Scope) -> Denial | None:
        value = _header(scope["headers"], b"authorization")
        metadata = f'resource_metadata="{self.server.metadata_url(scope)}"'
        if not _has_prefix(value, b"bearer "):
            # RFC 6750 §3.1: no error code when the request carried no token at all.
            return Denial(401, (f"Bearer {metadata}{self.scope_hint}",), "invalid_token", "an access token is required")
        found = await self.server.verify(value[7:].strip().decode("latin-1"))
        if found is None:
            return None
        if found.status == 503:
            return Denial(503, (), found.error, found.detail)
        challenge = f'Bearer error="{found.error}", error_description="{found.detail}", {metadata}{self.scope_hint}'
        return Denial(found.status, (challenge,), found.error, found.detail)


# ------------------------------------------------------------------ compiling


class _Secrets:
    """Renders auth fields with binds, collecting why any cannot be used (never the value)."""

    def __init__(self, auth: Authentication, binds: dict[str, dict[str, str]]) -> None:
        self.auth, self.binds = auth, binds
        self.problems: list[str] = []
        self.hidden: list[str] = []  # secret values, to mask wherever they might show

    def __call__(self, field: str, default: str | None = None, *, hidden: bool = False) -> str:
        raw = getattr(self.auth, field, None)
        if raw is None or raw == "":
            if default is not None:
                return default
            self.problems.append(f"'{field}' is not set")
            return ""
        try:
            bound = Template(str(raw)).bind(self.binds)
        except TemplateError:
            self.problems.append(f"'{field}' is not a valid template")
            return ""
        if not bound.constant:
            names = ", ".join(sorted({"{{" + v.name + "}}" for v in bound.variables()}))
            self.problems.append(f"'{field}' refers to {names}, which no bind provides")
            return ""
        value = bound.render_constant()
        if not value:
            self.problems.append(f"'{field}' is empty")
        if hidden:
            self.hidden.append(value)
        return value


_CHALLENGE_WORD = {"bearer": "Bearer", "basic": "Basic", "digest": "Digest", "apikey": "ApiKey", "oauth2": "Bearer"}


def compile_scheme(auth: Authentication, adapter: AdapterPlan, plan: Plan) -> Scheme:
    realm = adapter.namespace
    secret = _Secrets(auth, plan.binds)
    kind = auth.type
    scheme: Scheme | None = None
    if auth.type == "bearer":
        scheme = Bearer(realm, secret("token", hidden=True))
    elif auth.type == "basic":
        scheme = Basic(realm, secret("username"), secret("password", hidden=True))
    elif auth.type == "digest":
        scheme = Digest(realm, secret("username"), secret("password", hidden=True))
    elif auth.type == "apikey":
        scheme = ApiKey(realm, secret("key", "X-API-Key"), secret("value", hidden=True), auth.placement)
    elif auth.type == "oauth2":
        issuer, resource = secret("authorizationServerUri"), secret("resource")
        audience = secret("audience", "") or None
        for name, url in (("authorizationServerUri", issuer), ("resource", resource)):
            if url and urlsplit(url).scheme not in ("http", "https"):
                secret.problems.append(f"'{name}' must be an http(s) URL")
        if auth.tokenValidation != "jwks":
            secret.problems.append("only tokenValidation: jwks is supported")
        if not secret.problems:
            mcp_path = cast("McpAdapterPlan", adapter).url_path if adapter.kind == "mcp" else None
            scheme = OAuth2(ResourceServer(issuer, resource, audience, auth.scopes, mcp_path, plan.secrets.mask))
    else:
        secret.problems.append(f"unknown authentication type '{kind}'")
    if secret.problems or scheme is None:
        log.warning(
            "adapter '%s': inbound %s authentication cannot be checked (%s); every request will be denied",
            realm,
            kind,
            plan.secrets.mask("; ".join(secret.problems)),
        )
        return DenyAll(f'{_CHALLENGE_WORD.get(kind, "Bearer")} realm="{realm}"')
    for value in secret.hidden:  # literal secrets in the file are masked like bind values
        plan.secrets.add(value)
    return scheme


# ------------------------------------------------------------------ the guard

_TITLES = {401: "Unauthorized", 403: "Forbidden", 503: "Service unavailable"}


def _deny_response(kind: str, denial: Denial, oauth: bool) -> Response:
    if kind in ("rest", "control"):
        response = problem(denial.status, denial.detail, title=_TITLES.get(denial.status))
    else:
        if oauth:
            body: dict[str, Any] = {"error": denial.error, "error_description": denial.detail}
        elif kind == "mcp":
            # The HTTP status and WWW-Authenticate are what a client acts on; MCP defines no JSON-RPC
            # code for them (-32001 is the SDKs' request timeout), so the body says "invalid request".
            error = {"code": -32600, "message": f"Unauthorized: {denial.detail}"}
            body = {"jsonrpc": "2.0", "id": None, "error": error}
        else:
            body = {"error": denial.error, "detail": denial.detail}
        response = Response(orjson.dumps(body), denial.status, media_type="application/json")
    for challenge in denial.challenges:
        response.raw_headers.append((b"www-authenticate", challenge.encode("latin-1")))
    return response


class Guard:
    """ASGI wrapper: check the credential, strip it, then hand over to the adapter."""

    def __init__(self, app: ASGIApp, scheme: Scheme, kind: str) -> None:
        self.app, self.scheme, self.kind = app, scheme, kind
        self.oauth = isinstance(scheme, OAuth2)
        # It reports its answers' status (asgi.ANSWERED) when the app behind it does: it notes its own refusals.
        self.reports_status: bool = getattr(app, "reports_status", False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":  # no adapter serves websockets: never let one through
                await send({"type": "websocket.close", "code": 1008})
            else:  # lifespan
                await self.app(scope, receive, send)
            return
        if self.kind == "mcp" and scope["method"] == "OPTIONS":  # a CORS preflight carries no credentials
            await self.app(scope, receive, send)  # the MCP endpoint answers it without serving anything
            return
        answer = self.scheme.public(scope)
        if answer is None:
            denial = await self.scheme.verify(scope)
            if denial is None:
                inner = self.scheme.strip(scope)  # a copy: what the app notes in it is copied back
                await self.app(inner, receive, send)
                if ANSWERED in inner:
                    scope[ANSWERED] = inner[ANSWERED]
                return
            answer = _deny_response(self.kind, denial, self.oauth)
        scope[ANSWERED] = answer.status_code
        await answer(scope, receive, send)


def protect(app: ASGIApp, adapter: AdapterPlan, plan: Plan) -> ASGIApp:
    """Return ``app`` guarded by ``adapter.authentication`` (unchanged when there is none)."""
    auth = getattr(adapter, "authentication", None)
    if auth is None:
        return app
    return Guard(app, compile_scheme(auth, adapter, plan), getattr(adapter, "kind", "rest"))
