"""OAuth 2.1 resource server for ``authentication: {type: oauth2}`` (reference §9, EXT).

The adapter accepts JWT access tokens issued by the configured authorization server: keys come
from the server's JWKS (``jwks_uri`` discovered through RFC 8414 or OpenID Connect metadata),
cached and refetched when a token names an unknown ``kid``. Issuer, audience (``audience``, else
``resource``), expiry, not-before and the required ``scopes`` are checked. RFC 9728 protected
resource metadata tells clients where to get a token; every 401 points at it.

Fetches are rare (discovery once, JWKS on rotation), so each one uses a short-lived aiohttp
session and nothing needs closing at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jwt
import orjson
from jwt.algorithms import AllowedPublicKeys
from starlette.types import Scope

log = logging.getLogger("naftiko.auth")

FETCH_TIMEOUT = 10.0
JWKS_MAX_AGE = 3600.0  # refetch keys at least hourly
JWKS_MIN_INTERVAL = 1.0  # a flood of unknown kids refetches at most once a second
LEEWAY = 30  # seconds of clock skew tolerated on exp/nbf/iat
WELL_KNOWN = "/.well-known/oauth-protected-resource"
_HOST = re.compile(r"[A-Za-z0-9.\-]+(:\d+)?|\[[0-9A-Fa-f:.]+\](:\d+)?")
# Asymmetric algorithms only: a JWKS never legitimately carries HMAC secrets, and accepting
# HS*/none would let anyone who knows a public key forge tokens.
_FAMILIES = {
    "RSA": ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    "EC": ("ES256", "ES384", "ES512", "ES256K"),
    "OKP": ("EdDSA",),
}


_Key = tuple[AllowedPublicKeys, tuple[str, ...]]
"""A signing key and the algorithms it may verify."""

Mask = Callable[[str], object]
"""Masks the capability's secrets in a text before it is logged (``Secrets.mask``)."""


def _unmasked(text: str) -> str:
    return text


class Unavailable(Exception):
    """The authorization server's metadata or keys could not be fetched."""


@dataclass(frozen=True, slots=True)
class TokenProblem:
    status: int  # 401 invalid_token, 403 insufficient_scope, 503 keys unavailable
    error: str
    detail: str


def _issuer_metadata_urls(issuer: str) -> list[str]:
    """RFC 8414 (path inserted after the host), then OpenID Connect, then the appended form."""
    parts = urlsplit(issuer)
    origin, path = f"{parts.scheme}://{parts.netloc}", parts.path.rstrip("/")
    urls = [
        f"{origin}/.well-known/oauth-authorization-server{path}",
        f"{issuer.rstrip('/')}/.well-known/openid-configuration",
    ]
    if path:
        urls.append(f"{issuer.rstrip('/')}/.well-known/oauth-authorization-server")
    return urls


async def _get_json(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with session.get(url, headers={"Accept": "application/json"}) as response:
        if response.status != 200:
            raise Unavailable(f"{url} answered {response.status}")
        data = await response.json(content_type=None)
    if not isinstance(data, dict):
        raise Unavailable(f"{url} did not return a JSON object")
    return data


def _parse_keys(jwks: dict[str, Any]) -> dict[str | None, _Key]:
    """kid → (public key, accepted algorithms); unusable entries are skipped."""
    keys: dict[str | None, _Key] = {}
    for entry in jwks.get("keys") or []:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        # A JWKS is untrusted JSON: a non-string kty or kid (RFC 7517 §4.1, §4.5) makes the entry unusable.
        kty, kid = entry.get("kty"), entry.get("kid")
        family = _FAMILIES.get(kty) if isinstance(kty, str) else None
        alg = entry.get("alg")
        if family is None or (alg is not None and alg not in family) or not (kid is None or isinstance(kid, str)):
            continue
        try:
            key = jwt.PyJWK(entry)
        except jwt.PyJWTError:
            continue
        keys[kid] = (key.key, (alg,) if alg else family)
    return keys


class KeySet:
    """The authorization server's signing keys, fetched lazily and cached."""

    def __init__(self, issuer: str, mask: Mask = _unmasked) -> None:
        self.issuer = issuer
        self.mask = mask
        self.issuers = {issuer.rstrip("/"), issuer.rstrip("/") + "/"}
        self.jwks_uri: str | None = None
        self.keys: dict[str | None, _Key] = {}
        self.fetched_at = float("-inf")
        self.attempted_at = float("-inf")
        self.last_error = ""
        self.lock = asyncio.Lock()

    async def key_for(self, kid: str | None) -> _Key | None:
        """The key for ``kid``; refetches on an unknown kid or hourly, at most once a second.
        A failed refetch keeps the keys already known; with none known it is ``Unavailable``."""
        if time.monotonic() - self.fetched_at < JWKS_MAX_AGE and (found := self._find(kid)) is not None:
            return found
        async with self.lock:
            now = time.monotonic()
            found = self._find(kid)
            if found is not None and now - self.fetched_at < JWKS_MAX_AGE:
                return found
            if now - self.attempted_at < JWKS_MIN_INTERVAL:
                if not self.keys:
                    raise Unavailable(self.last_error)
                return found
            self.attempted_at = now
            try:
                await self._refresh()
            except Unavailable as exc:
                self.last_error = str(exc)
                kept = "; keeping the keys fetched before" if self.keys else ""
                log.warning("oauth2: %s%s", self.mask(str(exc)), kept)
                if not self.keys:
                    raise
                return found
            return self._find(kid)

    def _find(self, kid: str | None) -> _Key | None:
        if kid is None and len(self.keys) == 1:
            return next(iter(self.keys.values()))
        return self.keys.get(kid)

    async def _refresh(self) -> None:
        timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                if self.jwks_uri is None:
                    self.jwks_uri = await self._discover(session)
                keys = _parse_keys(await _get_json(session, self.jwks_uri))
        except (TimeoutError, Unavailable, aiohttp.ClientError, ValueError) as exc:
            reason = str(exc) or type(exc).__name__
            raise Unavailable(f"cannot fetch the signing keys of {self.issuer}: {reason}") from None
        if not keys:
            raise Unavailable(f"{self.jwks_uri} holds no usable signing key")
        self.keys = keys
        self.fetched_at = time.monotonic()

    async def _discover(self, session: aiohttp.ClientSession) -> str:
        reasons: list[str] = []
        for url in _issuer_metadata_urls(self.issuer):
            try:
                metadata = await _get_json(session, url)
            except (TimeoutError, Unavailable, aiohttp.ClientError, ValueError) as exc:
                if isinstance(exc, Unavailable):
                    reasons.append(str(exc))
                else:
                    reasons.append(f"{url}: {str(exc) or type(exc).__name__}")
                continue
            jwks_uri = metadata.get("jwks_uri")
            if not isinstance(jwks_uri, str):
                reasons.append(f"{url} has no jwks_uri")
                continue
            issuer = metadata.get("issuer")
            if isinstance(issuer, str):
                self.issuers |= {issuer, issuer.rstrip("/")}
            return jwks_uri
        raise Unavailable("no usable authorization server metadata (" + "; ".join(reasons) + ")")


def _scopes(claims: dict[str, Any]) -> set[str]:
    value = claims.get("scope", claims.get("scp"))
    if isinstance(value, str):
        return set(value.split())
    if isinstance(value, list):
        return {s for s in value if isinstance(s, str)}
    return set()


class ResourceServer:
    """Validates bearer JWTs for one adapter and serves its protected resource metadata."""

    def __init__(
        self,
        issuer: str,
        resource: str,
        audience: str | None,
        scopes: list[str],
        mcp_path: str | None,
        mask: Mask = _unmasked,
    ) -> None:
        self.keys = KeySet(issuer, mask)
        self.resource = resource
        aud = audience or resource
        self.audiences = sorted({aud, aud.rstrip("/")})
        self.scopes = list(scopes)
        metadata: dict[str, object] = {
            "resource": resource,
            "authorization_servers": [issuer],
            "bearer_methods_supported": ["header"],
        }
        if scopes:
            metadata["scopes_supported"] = list(scopes)
        self.metadata = orjson.dumps(metadata)
        # Served at the root well-known URL and, per RFC 9728 §3.1, suffixed with the resource
        # path (e.g. /mcp) — clients try both.
        suffixes = {""}
        if mcp_path:
            suffixes.add(mcp_path.rstrip("/"))
        resource_path = urlsplit(resource).path.rstrip("/")
        if resource_path:
            suffixes.add(resource_path)
        self.metadata_paths = frozenset(WELL_KNOWN + s for s in suffixes)
        self.mcp_path = mcp_path

    def metadata_url(self, scope: Scope) -> str:
        """Where this server's metadata is, as the caller reached it."""
        host = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1")
                break
        if host is None or not _HOST.fullmatch(host):  # never reflect odd Host values into a header
            server = scope.get("server") or ("localhost", None)
            host = f"{server[0]}:{server[1]}" if server[1] else server[0]
        path = scope.get("path", "")
        suffix = self.mcp_path if self.mcp_path and path.startswith(self.mcp_path) else ""
        return f"{scope.get('scheme', 'http')}://{host}{WELL_KNOWN}{suffix}"

    async def verify(self, token: str) -> TokenProblem | None:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return TokenProblem(401, "invalid_token", "the access token is malformed")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            return TokenProblem(401, "invalid_token", "the access token is malformed")
        try:
            found = await self.keys.key_for(kid)
        except Unavailable:
            return TokenProblem(503, "temporarily_unavailable", "the authorization server's keys are unavailable")
        if found is None:
            return TokenProblem(401, "invalid_token", "the access token is signed with an unknown key")
        key, algorithms = found
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=list(algorithms),
                audience=self.audiences,
                issuer=self.keys.issuers,
                leeway=LEEWAY,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            return TokenProblem(401, "invalid_token", "the access token has expired")
        except jwt.ImmatureSignatureError:
            return TokenProblem(401, "invalid_token", "the access token is not valid yet")
        except jwt.InvalidAudienceError:
            return TokenProblem(401, "invalid_token", "the access token was not issued for this resource")
        except jwt.InvalidIssuerError:
            return TokenProblem(
                401, "invalid_token", "the access token was not issued by the trusted authorization server"
            )
        except jwt.PyJWTError:
            return TokenProblem(401, "invalid_token", "the access token is invalid")
        missing = [s for s in self.scopes if s not in _scopes(claims)]
        if missing:
            return TokenProblem(403, "insufficient_scope", f"the access token lacks the scope {' '.join(missing)}")
        return None
