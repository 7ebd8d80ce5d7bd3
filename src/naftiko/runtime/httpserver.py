"""The inbound HTTP/1.1 protocol: uvicorn's httptools protocol plus the limits it lacks.

uvicorn bounds neither the size nor the number of request header lines, nor the time a client
may take to send them or its body, and it accepts every connection the kernel hands it. One
client can therefore stall the shared event loop (an endless header value is re-concatenated on
every read), fill memory (endless header lines) or use up the process's file descriptors (slow
connections), taking every adapter down with it (health probes included). This module adds,
per connection, what nginx and Envoy apply by default (defaults in docs/reference.md,
"Inbound limits"):

* the request line plus headers (the *head*) may not pass ``max_head_bytes`` (431), the URL
  ``max_url_bytes`` (414), the header count ``max_headers`` (431);
* the head must arrive within ``head_timeout`` of its first byte, or of the connection's
  opening (408, or a silent close when nothing was sent);
* the body must arrive within ``body_timeout`` of the end of the head (408), not counting time
  the server itself does not read (the timer restarts when reading resumes);
* at most ``max_connections`` connections are open at once in one :class:`ConnectionBudget`
  (the data adapters of a process share one; the control adapter has its own so that health
  probes keep answering): beyond it a connection gets a 503 at once and is closed.

Every refusal is a problem+json answer with ``Connection: close``; refusals are logged at INFO,
at most once a second per kind, so an attack cannot flood the log either. Upgrade requests
(WebSocket) are answered as plain HTTP, which nothing here refuses, and logged at INFO.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import resource
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import httptools
import orjson

from naftiko.exposes.http.disconnect import DISCONNECT_EXTENSION
from naftiko.exposes.http.limits import DEFAULT_MAX_CONNECTIONS, InboundLimits
from naftiko.runtime.exchange import DONE, Exchange

if TYPE_CHECKING:
    import uvicorn
    from starlette.types import Scope
    from uvicorn.server import ServerState

log = logging.getLogger("naftiko.http")

LINGER_SECONDS = 1.0
LINGER_SLOTS = 64  # connections refused beyond --max-connections that may linger at once
CONTROL_CONNECTIONS = 64  # the control adapter's own budget: probes, metrics, traces


@dataclass(slots=True)
class ConnectionBudget:
    """Open connections shared by several listeners, refused beyond ``limit``."""

    limit: int
    active: int = 0
    lingering: int = 0  # refused beyond the limit and still open for the client to read its 503


def raise_fd_limit() -> int:
    """Raise the soft open-file limit to the hard one (as Go and many servers do); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):  # pragma: no cover - some sandboxes refuse
            pass
    return soft


def connection_cap(requested: int, fd_limit: int) -> int:
    """The connection budget that fits the open-file limit.

    Each inbound request may hold an upstream connection too, and the control adapter and the
    process itself need descriptors, so inbound connections get at most half of the limit
    (less the control adapter's share): past the limit ``accept`` would fail and every
    listener, probes included, would stop answering.
    """
    return max(1, min(requested, (fd_limit - CONTROL_CONNECTIONS) // 2))


class _Throttled:
    """Log one line per kind at most once a second, with how many were left out."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def info(self, kind: str, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last.get(kind, -2.0) < 1.0:
            self._skipped[kind] = self._skipped.get(kind, 0) + 1
            return
        skipped = self._skipped.pop(kind, 0)
        self._last[kind] = now
        suffix = f" ({skipped} more since the last such line)" if skipped else ""
        log.info(message + suffix, *args)


_throttled = _Throttled()


def _problem_bytes(
    status: int, detail: str, extra_headers: tuple[tuple[bytes, bytes], ...] = (), defaults: bytes = b""
) -> bytes:
    """A refusal as problem+json, closing the connection; ``defaults`` are the server's default header lines (date)."""
    phrase = HTTPStatus(status).phrase
    body = orjson.dumps({"type": "about:blank", "title": phrase, "status": status, "detail": detail})
    head = [f"HTTP/1.1 {status} {phrase}".encode(), b"content-type: application/problem+json",
            b"content-length: " + str(len(body)).encode(), b"connection: close"]
    head.extend(name + b": " + value for name, value in extra_headers)
    return b"\r\n".join(head) + b"\r\n" + defaults + b"\r\n" + body


class _Refused(Exception):
    """Raised from a parser callback to stop parsing; the protocol answers the refusal it noted."""


BODY_HIGH_WATER = 64 * 1024  # request body bytes held for the app before reading from the client pauses
# Pipelined requests held waiting their turn: reading pauses at the first, but one read (256 KiB)
# of tiny requests would otherwise queue ~10 000 of them (~12 MB) per connection. Past this many
# the last one held is answered with ``connection: close`` and the rest is dropped unread (a
# pipelining client retries what was not answered, RFC 9112 section 9.3.2).
MAX_PIPELINED = 32


class HttpProtocol(asyncio.Protocol):
    """One inbound HTTP/1.1 connection under :class:`InboundLimits` (see the module docstring).

    uvicorn's server runs it (``uvicorn.Config(http=...)``: sockets, start-up, lifespan, the
    graceful drain through :meth:`shutdown`, the ``date`` header it refreshes every second);
    :func:`protocol_for` subclasses it per listener with that listener's ``limits`` and ``budget``.
    Requests are parsed by httptools; each becomes an :class:`~naftiko.runtime.exchange.Exchange`
    answered by the app in a task of its own, one at a time and in order (pipelined requests wait).

    One timer per connection, armed when the connection opens and re-armed when it fires (moved
    earlier only when a shorter wait begins, see :meth:`_wait`), enforces both the head timeout and
    the keep-alive timeout: ``since`` and ``limit`` say what is
    being waited for (``limit`` is None while the app answers), so a kept-alive connection makes and
    cancels no timer per request.
    """

    limits: InboundLimits = InboundLimits()
    budget: ConnectionBudget = ConnectionBudget(DEFAULT_MAX_CONNECTIONS)

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.app = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.server_state = server_state  # uvicorn's: connections, tasks, default headers, request count
        self.app_state = app_state  # what the lifespan put in its state: each request gets a copy
        self.root_path: str = config.root_path
        self.asgi = {"version": config.asgi_version, "spec_version": "2.3"}
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set by connection_made
        self.client: tuple[str, int] | None = None
        self.server: tuple[str, int | None] | None = None
        # the head being read
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.expect_100 = False
        self.in_head = True
        self.head_bytes = 0
        self.refusal: tuple[int, str] | None = None
        # requests: the one whose body is being read, the one being answered, those waiting their turn
        self.reading: Exchange | None = None
        self.current: Exchange | None = None
        self.waiting: collections.deque[tuple[Exchange, Scope]] = collections.deque()
        self.last: Exchange | None = None  # the latest request read, for an upgrade noticed after it
        self.buffered = 0  # body bytes of ``reading`` not yet taken by the app
        self.reading_paused = False
        self.write_paused = False
        self.drain: asyncio.Future[None] | None = None
        # the connection's one timer (see the class docstring)
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0  # when it fires (loop time)
        self.since = 0.0
        self.limit: float | None = None
        self.quiet = True  # nothing of a request has arrived since the last answer (or the opening)
        self.kept = False  # waiting after an answer: the next head is timed from its own first byte
        self.body_timer: asyncio.TimerHandle | None = None
        self.counted = False
        self.lingering = False
        self.linger_counted = False
        self.ignoring = False  # after an upgrade request: what follows is not HTTP/1.1 and is dropped
        self.defaults_from: list[tuple[bytes, bytes]] | None = None
        self.defaults = b""

    # ------------------------------------------------------------------ connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server_state.connections.add(self)  # type: ignore[arg-type]  # typed for uvicorn's own protocols; any with shutdown() is drained
        peer = transport.get_extra_info("peername")
        self.client = (str(peer[0]), int(peer[1])) if isinstance(peer, (tuple, list)) else None
        local = transport.get_extra_info("sockname")
        if isinstance(local, (tuple, list)):
            self.server = (str(local[0]), int(local[1]))
        elif isinstance(local, str):
            self.server = (local, None)
        budget = self.budget
        if budget.active >= budget.limit:
            _throttled.info("connections", "connection refused with 503: %d connections open (--max-connections)",
                            budget.active)
            # Refused connections keep a descriptor while they linger: only LINGER_SLOTS of them at
            # once, the rest are closed right after the answer (a client still sending may then miss it).
            linger = budget.lingering < LINGER_SLOTS
            self._answer(503, f"too many connections: this server accepts {budget.limit} at once; retry shortly",
                         ((b"retry-after", b"1"),), linger=linger)
            if linger:
                budget.lingering += 1
                self.linger_counted = True
            return
        budget.active += 1
        self.counted = True
        self.since = self.loop.time()
        self._wait(self.limits.head_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server_state.connections.discard(self)
        if self.linger_counted:
            self.budget.lingering -= 1
            self.linger_counted = False
        if self.counted:
            self.budget.active -= 1
            self.counted = False
        self._cancel_timers()
        self._drop_requests()
        self._drained()
        # The parser holds this protocol (its callbacks) and the protocol the parser: a reference
        # cycle that, left alone, keeps the connection's objects (a refused head's bytes among them)
        # until the collector runs, which while serving is rarely (runtime/serve.py).
        self.parser = None  # type: ignore[assignment]
        self.last = None

    def _drop_requests(self) -> None:
        """Every request of this connection learns its caller is gone."""
        for exchange in (self.current, *(waiting for waiting, _ in self.waiting), self.reading):
            if exchange is not None:
                exchange.caller_gone()
        self.waiting.clear()
        self.reading = None

    def shutdown(self) -> None:
        """uvicorn's graceful drain: an idle connection closes now, a busy one after its answer."""
        if self.current is None:
            self.transport.close()
        else:
            self.current.keep_alive = False
            for exchange, _ in self.waiting:
                exchange.keep_alive = False

    def _wait(self, limit: float) -> None:
        """Time the wait that begins now (``since``), making sure the timer fires by its end: it
        is only moved when it would fire later (so rarely, under load, as it normally fires first)."""
        self.limit = limit
        deadline = self.since + limit
        if self.timer is not None:
            if self.timer_at <= deadline:
                return
            self.timer.cancel()
        self.timer_at = deadline
        self.timer = self.loop.call_at(deadline, self._tick)

    def _keep_alive(self) -> None:
        """Wait for the next request, idle: closed quietly after ``keepalive_timeout``."""
        self.since = self.loop.time()
        self.quiet = self.kept = True
        self._wait(self.limits.keepalive_timeout)

    def _cancel_timers(self) -> None:
        for timer in (self.timer, self.body_timer):
            if timer is not None:
                timer.cancel()
        self.timer = self.body_timer = None

    # ------------------------------------------------------------------ writing

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    def close(self) -> None:
        self.transport.close()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._drained()

    def _drained(self) -> None:
        drain, self.drain = self.drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    def drained(self) -> Awaitable[None]:
        """What a writer awaits before writing more: done, unless the client's buffer is full."""
        if not self.write_paused or self.transport.is_closing():
            return DONE
        if self.drain is None:
            self.drain = self.loop.create_future()
        return self.drain

    def default_head(self) -> bytes:
        """The server's default header lines (``date``, refreshed by uvicorn every second), encoded once per change."""
        defaults = self.server_state.default_headers
        if defaults is not self.defaults_from:
            self.defaults_from = defaults
            self.defaults = b"".join(b"%b: %b\r\n" % (name, value) for name, value in defaults)
        return self.defaults

    def answered(self, exchange: Exchange) -> None:
        """``exchange``'s answer is complete: close, start the next waiting request, or wait for one."""
        self.server_state.total_requests += 1
        if exchange is self.current:
            self.current = None
        if exchange is self.last:  # the exchange refers to this protocol: no cycle once it is answered
            self.last = None
        if not exchange.keep_alive or self.transport.is_closing():
            still_sending = self.reading is not None  # a request body still arriving
            self._drop_requests()
            if still_sending and not self.transport.is_closing():
                self._linger()  # closing now could reset the connection and lose the answer
            else:
                self.transport.close()
            return
        if self.waiting:
            self._run(*self.waiting.popleft())
            if not self.waiting:
                self._flow()
            return
        if exchange is self.reading:  # answered before its body ended: the rest is read and dropped (on_body)
            self.buffered = 0
            if self.reading_paused:
                self._flow()
        if self.in_head and self.head_bytes == 0:  # nothing of the next request yet
            self._keep_alive()

    def _run(self, exchange: Exchange, scope: Scope) -> None:
        self.current = exchange
        task = self.loop.create_task(exchange.run(self.app, scope))
        exchange.task = task
        self.server_state.tasks.add(task)

    # ------------------------------------------------------------------ reading

    def data_received(self, data: bytes) -> None:
        if self.lingering or self.ignoring:
            return  # answered already (or no longer HTTP): what follows is dropped unread
        if not self.in_head or self.refusal is not None:
            self._feed(data)
        else:
            room = self.limits.max_head_bytes - self.head_bytes
            if len(data) <= room:
                self.head_bytes += len(data)
                self._feed(data)
                limits = self.limits
                # _head_refusal's two tests, inline: this runs on every read, and most heads pass both
                if self.in_head and (len(self.url) > limits.max_url_bytes or len(self.headers) > limits.max_headers):
                    self._check_head()
            else:
                # Feed only what fits the head limit: the parser's cost grows with what it holds.
                self.head_bytes += room
                self._feed(data[:room])
                if self.transport.is_closing():
                    return
                if self.in_head and self.head_bytes == self.limits.max_head_bytes:  # the same head: over the limit
                    self._refuse_head()
                    return
                # A head ended within what was fed (on_headers_complete set head_bytes to 0): the rest
                # is read on, the next head counted from there (so a head that began in the part fed
                # holds at most twice max_head_bytes).
                self.data_received(data[room:])
                return
        if self.reading is not None and self.body_timer is None and not self.reading_paused \
                and not self.transport.is_closing():
            # a body still on its way: it must all arrive within body_timeout of the end of the head
            # (or of the moment the server read again after holding the client back, see _flow)
            self.body_timer = self.loop.call_later(self.limits.body_timeout, self._body_timed_out)

    def _feed(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._upgrade()
        except httptools.HttpParserError:
            if self.last is not None and not self.last.keep_alive and self.in_head:
                # bytes after a request that ends the connection (HTTP/1.0, Connection: close): never read
                self.ignoring = True
                return
            if self.refusal is None:
                _throttled.info("refused-400", "request refused with 400: not valid HTTP/1.1")
                self.refusal = (400, "the request is not valid HTTP/1.1")
            self._answer(*self.refusal)

    def _upgrade(self) -> None:
        """A request asking to switch protocols (WebSocket): answered as plain HTTP by the app, then
        the connection closes, since what the client sends next is not HTTP/1.1."""
        self.ignoring = True
        exchange = self.last
        if exchange is not None:
            exchange.keep_alive = False
            _throttled.info("upgrade", "%s %s asks to switch protocols, which naftiko does not: answered as plain HTTP",
                            exchange.method, exchange.path)
        if self.reading is not None:
            self.on_message_complete()

    def _flow(self) -> None:
        """Read from the client only while there is room: no request waiting its turn, and less than
        :data:`BODY_HIGH_WATER` of body held for the app."""
        pause = bool(self.waiting) or self.buffered > BODY_HIGH_WATER
        if pause != self.reading_paused and not self.transport.is_closing():
            self.reading_paused = pause
            # Time the server does not read is not the client's: no body timer runs meanwhile, it
            # restarts when reading resumes; a head begun before the pause is timed from then too.
            if pause:
                self.transport.pause_reading()
                if self.body_timer is not None:
                    self.body_timer.cancel()
                    self.body_timer = None
            else:
                self.transport.resume_reading()
                if self.reading is not None:
                    self.body_timer = self.loop.call_later(self.limits.body_timeout, self._body_timed_out)
                elif self.in_head and not self.quiet:
                    self.since = self.loop.time()

    def body_taken(self, exchange: Exchange) -> None:
        """The app took what was held of ``exchange``'s body."""
        if exchange is self.reading:
            self.buffered = 0
            if self.reading_paused:
                self._flow()

    # parser callbacks (httptools calls them by name)

    def on_message_begin(self) -> None:
        if self.waiting and len(self.waiting) >= MAX_PIPELINED:
            self.last.keep_alive = False  # type: ignore[union-attr]  # (waiting: a request was read)
            raise _Refused()  # _feed then ignores the rest, as after any request that ends the connection
        self.url = b""
        self.headers = []
        self.expect_100 = False
        if self.kept or self.current is not None:  # after an answer, or pipelined: timed from its first byte
            self.since = self.loop.time()
            self.kept = False
        self.quiet = False
        self._wait(self.limits.head_timeout)

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        value = value.rstrip(b" \t")  # llhttp keeps trailing whitespace, which is not part of a value (RFC 9110 §5.5)
        self.headers.append((name, value))
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100 = True

    def on_headers_complete(self) -> None:
        # The URL and the header lines are checked per read (data_received) and here, not piece by
        # piece as the parser finds them: the head limit already bounds what can be held.
        refusal = self._head_refusal()
        if refusal is not None:
            self._refuse(*refusal)
            raise _Refused()
        self.in_head = False
        self.head_bytes = 0
        self.limit = None  # the app's turn: no head or keep-alive wait until the answer
        parser = self.parser
        version = parser.get_http_version()
        url = httptools.parse_url(self.url)
        raw_path: bytes = url.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = unquote(path)
        scope: Scope = {
            "type": "http",
            "asgi": self.asgi,
            "http_version": version,
            "server": self.server,
            "client": self.client,
            "scheme": "http",
            "method": parser.get_method().decode("ascii"),
            "root_path": self.root_path,
            "path": self.root_path + path,
            "raw_path": self.root_path.encode("ascii") + raw_path if self.root_path else raw_path,
            "query_string": url.query or b"",
            "headers": self.headers,
            "state": self.app_state.copy(),
        }
        keep_alive = version != "1.0" and parser.should_keep_alive()
        exchange = self.reading = self.last = Exchange(self, scope, keep_alive, self.expect_100)
        self.buffered = 0
        # The app learns of a caller that hangs up from this signal (exposes/http/disconnect.py).
        scope["extensions"] = {DISCONNECT_EXTENSION: exchange}
        self.headers = []  # a chunked body's trailer lines land here, never in the scope's headers
        if self.current is None:
            self._run(exchange, scope)
        else:  # pipelined: answered after the ones before it; read no more meanwhile
            self.waiting.append((exchange, scope))
            self._flow()

    def on_body(self, body: bytes) -> None:
        exchange = self.reading
        if exchange is not None and not exchange.complete:  # else answered already: the rest is dropped
            exchange.feed(body)
            self.buffered += len(body)
            if self.buffered > BODY_HIGH_WATER and not self.reading_paused:
                self._flow()

    def on_message_complete(self) -> None:
        if self.body_timer is not None:
            self.body_timer.cancel()
            self.body_timer = None
        self.in_head = True
        exchange, self.reading = self.reading, None
        self.buffered = 0  # nothing more comes for it: what it holds no longer stops reading
        if self.reading_paused:
            self._flow()
        if exchange is not None:
            exchange.end()
            if exchange.complete and self.current is None and not self.transport.is_closing():
                self._keep_alive()  # answered before its body ended: answered() could not begin the wait

    # ------------------------------------------------------------------ limits

    def _refuse_head(self) -> None:
        if not self.headers and len(self.url) >= self.limits.max_url_bytes // 2:
            self._refuse(*self._url_refusal())
        else:
            self._refuse(431, f"the request line and headers are larger than {self.limits.max_head_bytes} bytes")
        self._answer(*self.refusal)  # type: ignore[misc]

    def _head_refusal(self) -> tuple[int, str] | None:
        """What is wrong with the head read so far, if anything: its URL or its count of lines."""
        if len(self.url) > self.limits.max_url_bytes:
            return self._url_refusal()
        if len(self.headers) > self.limits.max_headers:
            return 431, f"the request has more than {self.limits.max_headers} header lines"
        return None

    def _url_refusal(self) -> tuple[int, str]:
        return 414, f"the request URL is longer than {self.limits.max_url_bytes} bytes"

    def _check_head(self) -> None:
        refusal = self._head_refusal()
        if refusal is not None and self.refusal is None and not self.transport.is_closing():
            self._refuse(*refusal)
            self._answer(*refusal)

    def _refuse(self, status: int, detail: str) -> None:
        self.refusal = (status, detail)
        _throttled.info(f"refused-{status}", "request refused with %d: %s", status, detail)

    def _answer(
        self, status: int, detail: str, extra: tuple[tuple[bytes, bytes], ...] = (), *, linger: bool = True
    ) -> None:
        """Answer ``status`` as problem+json and close, unless an answer is on its way already.

        A refused head may follow a request still being answered: then nothing is written (the
        refusal would land inside that answer, or be taken for it). A refused body is answered when
        its own request's answer has not started. Every request of the connection sees its caller go.
        """
        self._cancel_timers()
        if self.transport.is_closing():
            return
        current = self.current
        if current is None or (not self.in_head and current is self.reading and not current.started):
            self.transport.write(_problem_bytes(status, detail, extra, self.default_head()))
        self._drop_requests()
        if linger:
            self._linger()
        else:
            self.transport.close()

    def _linger(self) -> None:
        """Close after the client had a chance to read the answer (nginx's lingering close).

        Closing at once while the client is still sending makes the kernel reset the connection,
        and a reset discards the answer before the client reads it; so the sending side is shut,
        what still arrives is dropped unread, and the connection closes within :data:`LINGER_SECONDS`.
        """
        self.lingering = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_SECONDS, self.transport.close)
        else:  # pragma: no cover - TLS transports cannot half-close
            self.transport.close()

    def _tick(self) -> None:
        """The connection's timer: close a connection idle too long, refuse a head too slow (408)."""
        self.timer = None
        limit = self.limit
        if limit is None or self.transport.is_closing():
            return  # the app is answering: the next wait arms the timer again
        if self.reading_paused:  # the server holds the client back (pipelining): not the client's time
            self.since = self.loop.time()
        deadline = self.since + limit
        if deadline > self.loop.time():  # the wait began after the timer was armed: wait for what is left
            self.timer_at = deadline
            self.timer = self.loop.call_at(deadline, self._tick)
            return
        if self.quiet:
            self.transport.close()  # nothing was asked: close quietly, like an idle keep-alive
            return
        self._refuse(408, f"the request line and headers did not arrive within {self.limits.head_timeout:g}s")
        self._answer(*self.refusal)  # type: ignore[misc]

    def _body_timed_out(self) -> None:
        self.body_timer = None
        if self.transport.is_closing():
            return
        if self.reading is not None and self.reading.complete:
            self.transport.close()  # answered already: a 408 now would be taken for the next request's answer
            return
        self._refuse(408, f"the request body did not arrive within {self.limits.body_timeout:g}s")
        self._answer(*self.refusal)  # type: ignore[misc]


def protocol_for(limits: InboundLimits, budget: ConnectionBudget) -> type[HttpProtocol]:
    """A protocol class bound to one listener's limits and connection budget (uvicorn's ``http=``)."""
    return type("HttpProtocol", (HttpProtocol,), {"limits": limits, "budget": budget})


@dataclass
class Budgets:
    """The connection budgets of one process: data adapters share one, the control adapter has its own."""

    data: ConnectionBudget
    control: ConnectionBudget = field(default_factory=lambda: ConnectionBudget(CONTROL_CONNECTIONS))

    @classmethod
    def for_limits(cls, limits: InboundLimits) -> Budgets:
        return cls(ConnectionBudget(connection_cap(limits.max_connections, raise_fd_limit())))

    def for_kind(self, kind: str) -> ConnectionBudget:
        return self.control if kind == "control" else self.data
