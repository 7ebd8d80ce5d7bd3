"""The outbound HTTP transport: one small interface, an aiohttp implementation, a dry-run one.

Everything above this module speaks :class:`OutboundRequest` and :class:`UpstreamResponse`;
swapping the HTTP library means writing one more class with ``send`` and ``aclose``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import parse_qsl, urlsplit

import orjson

from ..errors import UpstreamTimeout, UpstreamUnavailable


@dataclass(slots=True)
class OutboundRequest:
    method: str
    url: str  # fully encoded; sent as is
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None
    timeout: float = 30.0


@dataclass(slots=True)
class UpstreamResponse:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    @property
    def is_json(self) -> bool:
        ct = self.content_type.split(";", 1)[0].strip().lower()
        return ct == "application/json" or ct.endswith("+json")


class Transport(Protocol):
    async def send(self, request: OutboundRequest) -> UpstreamResponse: ...

    async def aclose(self) -> None: ...


class AiohttpTransport:
    """One pooled aiohttp session per consumes entry, created on first use inside the loop."""

    def __init__(self, *, digest: tuple[str, str] | None = None, limit: int = 100):
        self._digest = digest
        self._limit = limit
        self._session = None
        self._timeouts: dict[float, object] = {}  # building a ClientTimeout per call shows in profiles

    def _open(self):
        import aiohttp

        middlewares = (aiohttp.DigestAuthMiddleware(*self._digest, preemptive=False),) if self._digest else ()
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._limit, ttl_dns_cache=300),
            middlewares=middlewares,
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
        )
        return self._session

    async def send(self, request: OutboundRequest) -> UpstreamResponse:
        import aiohttp
        from yarl import URL

        session = self._session or self._open()
        timeout = self._timeouts.get(request.timeout)
        if timeout is None:
            timeout = self._timeouts[request.timeout] = aiohttp.ClientTimeout(total=request.timeout)
        try:
            async with session.request(
                request.method,
                URL(request.url, encoded=True),
                headers=request.headers,
                data=request.body,
                timeout=timeout,
                allow_redirects=False,
            ) as resp:
                body = await resp.read()
                headers = {k.lower(): v for k, v in resp.headers.items()}
                return UpstreamResponse(resp.status, headers, body)
        except asyncio.TimeoutError:
            host = urlsplit(request.url).netloc
            raise UpstreamTimeout(f"upstream {host} did not answer within {request.timeout:g}s") from None
        except aiohttp.ClientConnectorError:
            host = urlsplit(request.url).netloc
            raise UpstreamUnavailable(f"upstream {host} refused or could not be reached") from None
        except aiohttp.ClientError as exc:
            host = urlsplit(request.url).netloc
            raise UpstreamUnavailable(f"upstream {host} failed: {type(exc).__name__}") from None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class DryRunTransport:
    """Answers every call with a description of the request that would have been sent."""

    def __init__(self, mask):
        self._mask = mask

    async def send(self, request: OutboundRequest) -> UpstreamResponse:
        parts = urlsplit(request.url)
        query: dict[str, object] = {}
        for k, v in parse_qsl(parts.query, keep_blank_values=True):
            query[k] = [*query[k], v] if isinstance(query.get(k), list) else ([query[k], v] if k in query else v)
        headers = {k: self._mask(v, header=k) for k, v in request.headers}
        body: object = None
        if request.body is not None:
            try:
                body = orjson.loads(request.body)
            except orjson.JSONDecodeError:
                body = request.body.decode("utf-8", "replace")
        description = {
            "dryRun": True,
            "method": request.method,
            "url": self._mask(request.url),
            "query": {k: self._mask(v) for k, v in query.items()},
            "headers": headers,
            "body": self._mask(body),
        }
        return UpstreamResponse(200, {"content-type": "application/json"}, orjson.dumps(description))

    async def aclose(self) -> None:
        return None
