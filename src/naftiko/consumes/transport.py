"""The outbound HTTP transport: one small interface, an aiohttp implementation, a dry-run one.

Everything above this module speaks :class:`OutboundRequest` and :class:`UpstreamResponse`;
swapping the HTTP library means writing one more class with ``send`` and ``aclose``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re
from collections.abc import Awaitable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from naftiko import __version__, jsonio
from naftiko.consumes.resilience import IDEMPOTENT_METHODS, RetryPolicy, with_retries
from naftiko.errors import EngineError, InvalidInput, UpstreamTimeout, UpstreamUnavailable

if TYPE_CHECKING:  # aiohttp is imported on first use: the CLI's quick paths never load it
    import aiohttp
    from multidict import MultiMapping

    from naftiko.document.model import Resilience


@dataclass(slots=True)
class OutboundRequest:
    method: str
    url: str  # fully encoded; sent as is
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None
    timeout: float = 30.0
    max_response_bytes: int | None = None  # replaces the entry's cap for this call (a binary operation's maxBinarySize)


# Upstream response headers that describe the representation and are relayed with a body that passes
# through, by an operation and a forward alike; everything else (Set-Cookie, Server, internal tracing
# headers…) stays upstream.
RELAYED_RESPONSE_HEADERS = (
    "content-type",
    "content-disposition",
    "etag",
    "cache-control",
    "location",
    "last-modified",
    "retry-after",
)


class ResponseHeaders(Mapping[str, str]):
    """An upstream answer's headers as the rest of naftiko reads them — by lower-case name, a
    repeated header reading as its LAST value — looked up in aiohttp's own (case-insensitive)
    multidict when asked rather than copied into a dict per answer. A relayed call reads five or
    so names; lower-casing all of nginx's 8 into a dict cost more: the view took a call of the bench
    operation from 358k to 350k instructions (callgrind, in process). Lookups ignore case.

    Iteration gives each name once, lower-cased, in order of first appearance (what the dict built
    by ``{k.lower(): v for k, v in headers.items()}`` held)."""

    __slots__ = ("_raw",)

    def __init__(self, raw: MultiMapping[str]) -> None:
        self._raw = raw

    def __getitem__(self, name: str) -> str:
        return self._raw.getall(name)[-1]

    def get(self, name: str, default: Any = None) -> Any:
        values = self._raw.getall(name, None)
        return default if values is None else values[-1]

    def __contains__(self, name: object) -> bool:
        return name in self._raw

    def __iter__(self) -> Iterator[str]:
        return iter({name.lower(): None for name in self._raw})

    def __len__(self) -> int:
        return len({name.lower() for name in self._raw})

    def __repr__(self) -> str:
        return f"ResponseHeaders({dict(self)!r})"

    def pick(self, names: tuple[str, ...]) -> dict[str, str]:
        """``{name: self[name] for name in names if name in self}`` in one frame of ours rather than
        one per name: what :meth:`UpstreamResponse.relayed_headers` asks of every relayed answer."""
        getall = self._raw.getall
        picked = {}
        for name in names:
            values = getall(name, None)
            if values is not None:
                picked[name] = values[-1]
        return picked


@dataclass(slots=True)
class UpstreamResponse:
    status: int
    headers: Mapping[str, str]  # read by lower-case name; a plain dict or a ResponseHeaders
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def relayed_headers(self) -> dict[str, str]:
        """The headers a caller gets back with this response's body (:data:`RELAYED_RESPONSE_HEADERS`)."""
        headers = self.headers
        if type(headers) is ResponseHeaders:  # what the aiohttp transport answers: one frame, not one per name
            return headers.pick(RELAYED_RESPONSE_HEADERS)
        return {name: headers[name] for name in RELAYED_RESPONSE_HEADERS if name in headers}

    @property
    def is_json(self) -> bool:
        return is_json_type(self.headers.get("content-type", ""))


def is_json_type(content_type: str) -> bool:
    """``application/json`` or a ``+json`` type, parameters and case aside."""
    if content_type == "application/json":  # what most APIs send: no parsing
        return True
    ct = content_type.split(";", 1)[0].strip().lower()
    return ct == "application/json" or ct.endswith("+json")


class Transport(Protocol):
    """``send`` may be a coroutine function or a plain method handing back an awaitable (what
    the hot path's layers do, so that awaiting a call does not pass through a frame per layer)."""

    def send(self, request: OutboundRequest) -> Awaitable[UpstreamResponse]: ...

    async def aclose(self) -> None: ...


class UpstreamConnectionError(UpstreamUnavailable):
    """No HTTP answer because of the connection (refused, reset, closed early): retryable."""


class UpstreamConnectTimeout(UpstreamTimeout):
    """The connection was not established in time: nothing was sent, so retryable."""


class UpstreamBusy(EngineError):
    """No concurrency slot for this consumes entry freed up within ``queueTimeout``."""

    status = 503
    title = "Service unavailable"


class ResponseTooLarge(UpstreamUnavailable):
    """The upstream body passed ``maxResponseBytes``; ``partial`` holds the bytes read up to it."""

    def __init__(self, detail: str, *, status: int, partial: bytes, content_type: str):
        super().__init__(detail)
        self.upstream_status = status
        self.partial = partial
        self.content_type = content_type


CONNECTION_ERRORS = (UpstreamConnectionError, UpstreamConnectTimeout)
DEFAULT_POOL_SIZE = 100  # connections per consumes entry (resilience.poolSize)
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024  # decompressed upstream body (resilience.maxResponseBytes)
USER_AGENT = f"naftiko/{__version__}"  # sent upstream unless the capability sets its own
_HEADER_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Limits:
    """The resilience settings of one consumes entry (docs/resilience.md).

    Off by default except the two bounds every entry needs: the pool size and the response size cap.
    """

    connect: float | None = None
    read: float | None = None
    total: float | None = None  # None: each request's own timeout (``--timeout``)
    retry: RetryPolicy | None = None
    max_concurrency: int | None = None
    queue_timeout: float = 5.0
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    pool_size: int = DEFAULT_POOL_SIZE

    @classmethod
    def from_model(cls, resilience: Resilience | None) -> Limits:
        if resilience is None:
            return cls()
        timeouts = resilience.timeouts
        return cls(
            connect=timeouts.connect if timeouts else None,
            read=timeouts.read if timeouts else None,
            total=timeouts.total if timeouts else None,
            retry=RetryPolicy.from_model(resilience.retries) if resilience.retries and resilience.retries.max else None,
            max_concurrency=resilience.maxConcurrency,
            queue_timeout=resilience.queueTimeout or 5.0,
            max_response_bytes=resilience.maxResponseBytes or DEFAULT_MAX_RESPONSE_BYTES,
            pool_size=resilience.poolSize or DEFAULT_POOL_SIZE,
        )


def host_label(url: str) -> str:
    """``host:port`` of a URL, never its userinfo (which may hold a secret): how errors name an upstream."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port}" if port else host


class Slots:
    """A counting semaphore for calls in flight, cheaper than :class:`asyncio.Semaphore` where
    every call takes a slot: a free slot is taken with no coroutine and no scan of the waiters;
    a released slot goes straight to the longest waiter (first come, first served)."""

    __slots__ = ("free", "waiters")

    def __init__(self, count: int) -> None:
        self.free = count
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def take(self) -> bool:
        """Take a free slot if nobody is waiting for one."""
        if self.free > 0 and not self.waiters:
            self.free -= 1
            return True
        return False

    async def wait(self) -> None:
        """Wait to be handed a slot (bound the wait with :func:`asyncio.timeout`)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot just as the wait ended: pass it on
            else:
                waiter.cancel()
                with contextlib.suppress(ValueError):
                    self.waiters.remove(waiter)
            raise

    def release(self) -> None:
        waiters = self.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot changes hands without being freed
                return
        self.free += 1


_AIOHTTP: tuple[Any, Any] | None = None


def _aiohttp() -> tuple[Any, Any]:
    """``(aiohttp, yarl.URL)``, imported on first use (an import statement per call shows in profiles)."""
    global _AIOHTTP
    if _AIOHTTP is None:
        import aiohttp
        from yarl import URL

        _AIOHTTP = (aiohttp, URL)
    return _AIOHTTP


class AiohttpTransport:
    """One pooled aiohttp session per consumes entry, created on first use inside the loop.

    Per call: wait for a slot, send with connect/read/total timeouts, read the body up to the
    size cap, and retry transient failures of idempotent methods within the call's deadline.

    Slots: a call holds one of ``min(maxConcurrency, poolSize)`` slots while it is sent. With a
    slot per pooled connection, a call never waits inside the HTTP client for a connection, where
    the wait could only end as a timeout: waiting here, it ends as "busy" (503), which is what
    it is. The wait is bounded by ``queueTimeout`` when ``maxConcurrency`` is set, else by the
    call's own deadline.
    """

    def __init__(self, *, digest: tuple[str, str] | None = None, limits: Limits | None = None):
        self._digest = digest
        self._limits = limits or Limits()
        self._limit = self._limits.pool_size
        self._total, self._retry = self._limits.total, self._limits.retry  # read by every send
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}  # building a ClientTimeout per call shows in profiles
        bound = self._limits.max_concurrency
        self._slot_count = min(bound, self._limit) if bound else self._limit
        self._slots = Slots(self._slot_count)

    def _open(self) -> aiohttp.ClientSession:
        import aiohttp

        middlewares = (aiohttp.DigestAuthMiddleware(*self._digest, preemptive=False),) if self._digest else ()
        # naftiko names itself (RFC 9110 §10.1.5; some APIs refuse a request without one), unless the
        # capability sends its own User-Agent, which replaces this default. A session default costs
        # nothing per request, where skipping aiohttp's own header (skip_auto_headers) rebuilt a
        # header table on every call.
        # No cookie jar: one session serves every caller of this consumes entry, so a Set-Cookie
        # from one upstream answer would otherwise be replayed on later calls made for OTHER
        # callers. aiohttp's default jar ignores cookies from IP-address hosts, which is why this
        # stays unseen against 127.0.0.1 and shows against a host name. Cookies the capability
        # declares are sent as a Cookie header of the request itself.
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._limit, ttl_dns_cache=300),
            middlewares=middlewares,
            auto_decompress=True,
            headers={"User-Agent": USER_AGENT},
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        self._session = session
        return session

    def _timeout(self, total: float) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(total)
        if timeout is None:
            import aiohttp

            timeout = aiohttp.ClientTimeout(total=total, connect=self._limits.connect, sock_read=self._limits.read)
            if len(self._timeouts) < 64:  # first attempts share one; retries have odd remainders
                self._timeouts[total] = timeout
        return timeout

    def send(self, request: OutboundRequest) -> Awaitable[UpstreamResponse]:
        """The call as one coroutine: a plain method handing back :meth:`_attempt` (or the retry
        loop around it), so awaiting it resumes one frame of ours per suspension, not three."""
        total = self._total or request.timeout
        policy = self._retry
        if policy is None or request.method not in IDEMPOTENT_METHODS:
            return self._attempt(request, None, total)
        clock = asyncio.get_running_loop().time
        return with_retries(
            lambda until: self._attempt(request, until, total), policy, clock() + total, CONNECTION_ERRORS, clock=clock
        )

    async def _attempt(self, request: OutboundRequest, deadline: float | None, total: float) -> UpstreamResponse:
        """One try within ``deadline`` (None: ``total`` from now): a slot, then the request with
        connect/read/total timeouts, its body read up to the size cap.

        The response is awaited and released here rather than through ``async with``, whose four
        coroutines (enter and exit, the request's and the response's) did nothing this does not: the
        body is read whole (or the response closed) before ``release``."""
        slots = self._slots
        if not slots.take():
            if deadline is None:
                deadline = asyncio.get_running_loop().time() + total
            await self._wait_for_slot(request, deadline)
        try:
            session = self._session or self._open()
            aiohttp, URL = _AIOHTTP or _aiohttp()
            left = total if deadline is None else self._time_left(request, deadline, total)
            timeout = self._timeouts.get(left) or self._timeout(left)
            try:
                resp = await session.request(
                    request.method,
                    URL(request.url, encoded=True),
                    headers=request.headers,
                    data=request.body,
                    timeout=timeout,
                    allow_redirects=False,
                )
                try:
                    raw = resp.headers
                    headers = ResponseHeaders(raw)
                    length = resp.content_length
                    cap = request.max_response_bytes or self._limits.max_response_bytes
                    if length is not None and length <= cap and "content-encoding" not in raw:
                        body = await resp.read()  # declared within the cap and not inflated: one read, no chunk loop
                    else:
                        body = await self._read(resp, request, headers)
                    return UpstreamResponse(resp.status, headers, body)
                finally:
                    resp.release()  # the connection back to the pool once the body is read, else closed
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                raise self._failure(exc, request, total) from None
        finally:
            slots.release()

    async def _wait_for_slot(self, request: OutboundRequest, deadline: float) -> None:
        remaining = deadline - asyncio.get_running_loop().time()
        wait = max(min(self._limits.queue_timeout, remaining) if self._limits.max_concurrency else remaining, 0)
        try:
            async with asyncio.timeout(wait):
                await self._slots.wait()
        except TimeoutError:
            if self._limits.max_concurrency and self._limits.max_concurrency <= self._limit:
                why = f"{self._limits.max_concurrency} calls in flight"
            else:
                why = f"all {self._limit} connections of its pool in use (resilience.poolSize)"
            host = host_label(request.url)
            raise UpstreamBusy(f"upstream {host} busy: {why}, no slot within {round(wait, 1):g}s") from None

    @staticmethod
    def _time_left(request: OutboundRequest, deadline: float | None, total: float) -> float:
        """The call's timeout: all of ``total`` for a first try that did not wait for its slot,
        else what is left before ``deadline`` (an :class:`UpstreamTimeout` when nothing is)."""
        if deadline is None:
            return total
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise UpstreamTimeout(f"upstream {host_label(request.url)} did not answer within {total:g}s")
        return total if remaining >= total else round(remaining, 3)

    def _failure(self, exc: Exception, request: OutboundRequest, total: float) -> Exception:
        """The engine's error for what aiohttp raised: which deadline passed, a refused TLS
        certificate, a connection that failed, or a header or URL aiohttp refused (its own text
        may quote the value, so it is never passed on). Order matters: aiohttp's timeouts are
        also ``TimeoutError``s and its ``InvalidURL`` also a ``ValueError``."""
        aiohttp, _ = _aiohttp()
        host = host_label(request.url)
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            return UpstreamConnectTimeout(
                f"upstream {host} did not accept a connection within {self._limits.connect or total:g}s"
            )
        if isinstance(exc, aiohttp.SocketTimeoutError):
            return UpstreamTimeout(f"upstream {host} sent nothing for {self._limits.read or total:g}s")
        if isinstance(exc, TimeoutError):
            return UpstreamTimeout(f"upstream {host} did not answer within {total:g}s")
        if isinstance(exc, aiohttp.ClientConnectorCertificateError):
            reason = getattr(exc.certificate_error, "verify_message", None) or "not trusted"
            return UpstreamUnavailable(f"upstream {host}: its TLS certificate was refused ({reason})")
        if isinstance(exc, aiohttp.ClientConnectorSSLError):
            return UpstreamUnavailable(f"upstream {host}: the TLS handshake failed")
        if isinstance(exc, aiohttp.ClientConnectorError):
            return UpstreamConnectionError(f"upstream {host} refused or could not be reached")
        if isinstance(exc, (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)):
            return UpstreamConnectionError(f"upstream {host} failed: {type(exc).__name__}")
        if isinstance(exc, aiohttp.ClientError):
            return UpstreamUnavailable(f"upstream {host} failed: {type(exc).__name__}")
        # a ValueError: aiohttp refusing a header or yarl the URL
        bad = next((name for name, value in request.headers if _HEADER_FORBIDDEN.search(f"{name}{value}")), None)
        if bad is not None:
            return InvalidInput(f"header '{bad}' would hold a control character, which HTTP does not allow", field=bad)
        return UpstreamUnavailable(f"upstream {host}: the request URL is invalid")

    async def _read(self, resp: aiohttp.ClientResponse, request: OutboundRequest, headers: Mapping[str, str]) -> bytes:
        """The whole body, or :class:`ResponseTooLarge` once it passes ``maxResponseBytes``
        (counted after decompression: aiohttp inflates chunk by chunk, bounded).

        On any failure the chunks read so far are dropped here, so a failed read of a huge body
        is not kept alive by the traceback that refers to this frame.
        """
        cap = request.max_response_bytes or self._limits.max_response_bytes
        chunks: list[bytes] = []
        size = 0
        declared = headers.get("content-length", "")
        compressed = "content-encoding" in headers
        if request.max_response_bytes and declared.isdigit() and int(declared) > cap and not compressed:
            resp.close()  # announced too large (and not compressed): nothing is read
            raise ResponseTooLarge(
                f"upstream {host_label(request.url)} answered HTTP {resp.status} with a body of {declared} bytes, "
                f"larger than {cap}",
                status=resp.status,
                partial=b"",
                content_type=headers.get("content-type", ""),
            )
        try:
            async for chunk in resp.content.iter_any():
                if size + len(chunk) > cap:
                    chunks.append(chunk[: cap - size])
                    resp.close()  # the rest is never read: drop the connection rather than drain it
                    raise ResponseTooLarge(
                        f"upstream {host_label(request.url)} answered HTTP {resp.status} with a body larger than "
                        f"{cap} bytes (resilience.maxResponseBytes)",
                        status=resp.status,
                        partial=b"".join(chunks),
                        content_type=headers.get("content-type", ""),
                    )
                chunks.append(chunk)
                size += len(chunk)
        except BaseException:
            chunks.clear()
            raise
        return b"".join(chunks)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class Mask(Protocol):
    """Hides secrets in a value; a header's value is masked by its name too (:class:`naftiko.binds.secrets.Secrets`)."""

    def __call__(self, value: object, header: str | None = None) -> object: ...


class DryRunTransport:
    """Answers every call with a description of the request that would have been sent."""

    def __init__(self, mask: Mask) -> None:
        self._mask = mask

    async def send(self, request: OutboundRequest) -> UpstreamResponse:
        parts = urlsplit(request.url)
        query: dict[str, object] = {}
        for k, v in parse_qsl(parts.query, keep_blank_values=True):
            seen = query.get(k)
            query[k] = [*seen, v] if isinstance(seen, list) else ([seen, v] if k in query else v)
        headers = {k: self._mask(v, header=k) for k, v in request.headers}
        body: object = None
        if request.body is not None:
            try:
                body = jsonio.loads(request.body)
            except jsonio.JSONDecodeError:
                body = request.body.decode("utf-8", "replace")
        description = {
            "dryRun": True,
            "method": request.method,
            "url": self._mask(request.url),
            "query": {k: self._mask(v) for k, v in query.items()},
            "headers": headers,
            "body": self._mask(body),
        }
        return UpstreamResponse(200, {"content-type": "application/json"}, jsonio.dumps(description))

    async def aclose(self) -> None:
        return None
