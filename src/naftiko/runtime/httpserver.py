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
* the body must arrive within ``body_timeout`` of the end of the head (408);
* at most ``max_connections`` connections are open at once in one :class:`ConnectionBudget`
  (the data adapters of a process share one; the control adapter has its own so that health
  probes keep answering): beyond it a connection gets a 503 at once and is closed.

Every refusal is a problem+json answer with ``Connection: close``; refusals are logged at INFO,
at most once a second per kind, so an attack cannot flood the log either. Upgrade requests
(WebSocket) are answered as plain HTTP, which nothing here refuses, and logged at INFO.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
import urllib.parse
from collections.abc import Awaitable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import httptools
import orjson
from uvicorn._types import ASGI3Application, ASGISendEvent, HTTPResponseStartEvent
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

from naftiko.exposes.http.disconnect import DISCONNECT_EXTENSION, DisconnectSignal
from naftiko.exposes.http.limits import DEFAULT_MAX_CONNECTIONS, InboundLimits

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


def _problem_bytes(status: int, detail: str, extra_headers: tuple[tuple[bytes, bytes], ...] = ()) -> bytes:
    phrase = HTTPStatus(status).phrase
    body = orjson.dumps({"type": "about:blank", "title": phrase, "status": status, "detail": detail})
    head = [f"HTTP/1.1 {status} {phrase}".encode(), b"content-type: application/problem+json",
            b"content-length: " + str(len(body)).encode(), b"connection: close"]
    head.extend(name + b": " + value for name, value in extra_headers)
    return b"\r\n".join(head) + b"\r\n\r\n" + body


class _Refused(Exception):
    """Raised from a parser callback to stop parsing; the protocol answers ``status``."""


class _Cycle(RequestResponseCycle):
    """uvicorn's request/response cycle with a cheaper answer.

    * The response head is held back until the first body write (or the end of the response, or
      a close) and leaves with it in one write. uvicorn writes them apart, which costs a system
      call and a TCP segment more per answer; answers here are whole bodies, so nothing waits on
      the head. A whole body of the declared length (the common answer) is written here; every
      other message goes through uvicorn's ``send`` once the held head has gone out.
    * uvicorn checks every response header with two regular expressions, one search each for its
      name and its value: with the date header and a REST answer's own that was six to ten searches
      per request, about 6,000 instructions (measured in process with three headers). The characters they
      refuse are single characters, so searching all names joined, then all values joined, finds
      a bad header exactly when one of the separate searches would; only then are the headers gone
      through one by one, in uvicorn's order, for uvicorn's error.
    * ``send`` is a plain function handing back what the app awaits: for the messages handled
      here, a finished future (``done``, the protocol's: the bytes are written at once, so there
      is nothing to wait for) rather than a coroutine, which costs a coroutine object and a frame.

    Anything unusual (writing paused, a caller gone) goes through uvicorn's ``send`` as it is.
    """

    done: asyncio.Future[None]  # set by the protocol: a finished future, shared by its requests
    signal: DisconnectSignal  # set by the protocol: the request's, also in its scope
    held = b""  # the response head, until the first body write

    def send(self, message: ASGISendEvent) -> Awaitable[None]:  # type: ignore[override]
        if message["type"] == "http.response.start":
            self.signal.status = message["status"]  # for the observer, also when the caller has gone
            if not (self.response_started or self.flow.write_paused or self.disconnected):
                self._start(message)
                return self.done
        elif (
            self.held and self.chunked_encoding is False and not message.get("more_body", False)
            and message["type"] == "http.response.body" and self.scope["method"] != "HEAD"
            and len(body := message.get("body", b"")) == self.expected_content_length
            and not (self.flow.write_paused or self.disconnected)
        ):  # the whole body, as declared: uvicorn's last body write, with the head
            head, self.held = self.held, b""
            if len(body) > 16384:
                self.transport.writelines((head, body))  # no copy of a large body
            else:
                self.transport.write(head + body)
            self.expected_content_length = 0
            self.response_complete = True
            self.message_event.set()
            if not self.keep_alive:
                self.transport.close()
            self.on_response()
            return self.done
        self.flush()
        return RequestResponseCycle.send(self, message)  # the base class named: no super() object per call

    def flush(self) -> None:
        """Write the held response head, if any."""
        if self.held and not self.disconnected:
            head, self.held = self.held, b""
            self.transport.write(head)

    async def run_asgi(self, app: ASGI3Application) -> None:
        """uvicorn 0.55's, with the held head written before each close (as uvicorn would have
        written it already): an app that fails after starting its answer leaves the caller the
        same truncated answer as under uvicorn. At the end, the signal's ``when_done``."""
        try:
            result = await app(self.scope, self.receive, self.send)  # type: ignore[func-returns-value]
        except BaseException as exc:
            self.logger.error("Exception in ASGI application\n", exc_info=exc)
            if not self.response_started:
                await self.send_500_response()
            else:
                self.flush()
                self.transport.close()
        else:
            if result is not None:
                self.logger.error("ASGI callable should return None, but returned '%s'.", result)
                self.flush()
                self.transport.close()
            elif not self.response_started and not self.disconnected:
                self.logger.error("ASGI callable returned without starting response.")
                await self.send_500_response()
            elif not self.response_complete and not self.disconnected:
                self.logger.error("ASGI callable returned without completing response.")
                self.flush()
                self.transport.close()
        finally:
            self.on_response = lambda: None
            done, self.signal.when_done = self.signal.when_done, None
            if done is not None:
                done()

    def _start(self, message: HTTPResponseStartEvent) -> None:
        """uvicorn 0.55's ``send`` for ``http.response.start``, with the header checks joined."""
        self.response_started = True
        self.waiting_for_100_continue = False
        status_code = message["status"]
        headers = self.default_headers + list(message.get("headers", []))
        if self.access_log:
            self.access_logger.info(
                '%s - "%s %s HTTP/%s" %d', get_client_addr(self.scope), self.scope["method"],
                get_path_with_query_string(self.scope), self.scope["http_version"], status_code,
            )
        names = values = b""  # joined by a loop: two list comprehensions and joins measured 2,200 instructions more
        for name, value in headers:
            names += name
            values += value
        if HEADER_RE.search(names) or HEADER_VALUE_RE.search(values):
            for name, value in headers:  # uvicorn's checks, for its error on the first bad header
                if HEADER_RE.search(name):
                    raise RuntimeError("Invalid HTTP header name.")
                if HEADER_VALUE_RE.search(value):
                    raise RuntimeError("Invalid HTTP header value.")
        content = [STATUS_LINE[status_code]]
        has_connection_close = False
        for name, value in headers:
            name = name.lower()
            if name == b"content-length" and self.chunked_encoding is None:
                self.expected_content_length = int(value.decode())
                self.chunked_encoding = False
            elif name == b"transfer-encoding" and value.lower() == b"chunked":
                self.expected_content_length = 0
                self.chunked_encoding = True
            elif name == b"connection":
                connection = [token.lower().strip() for token in value.split(b",")]
                if b"close" in connection:
                    self.keep_alive = False
                    has_connection_close = True
            content.extend([name, b": ", value, b"\r\n"])
        if not self.keep_alive and not has_connection_close:
            content.append(b"connection: close\r\n")
        if self.chunked_encoding is None and self.scope["method"] != "HEAD" and status_code not in (204, 304):
            self.chunked_encoding = True  # neither content-length nor transfer-encoding given
            content.append(b"transfer-encoding: chunked\r\n")
        content.append(b"\r\n")
        self.held = b"".join(content)  # written with the body (send), or by flush


class LimitedHttpProtocol(HttpToolsProtocol):
    """One inbound HTTP/1.1 connection under :class:`InboundLimits` (see the module docstring).

    Subclassed per listener by :func:`protocol_for`, which sets ``limits`` and ``budget``.

    The parser callbacks that run for every request (``on_message_begin``, ``on_headers_complete``,
    ``on_message_complete``, ``on_response_complete``, ``data_received``) are uvicorn 0.55's with
    the limits' own work inline, rather than the limits' work plus a call to uvicorn's: a Python
    call and a ``super()`` lookup each, five times per request. What uvicorn does in them is
    kept, line for line, except where a comment says otherwise (its keep-alive timer, below).

    One timer per connection (``_timer``, due at ``_timer_at``) keeps both the head timeout and
    the keep-alive timeout. uvicorn arms a keep-alive timer when an answer is complete and cancels
    it when the next request's bytes arrive: a timer made and cancelled per request, about 5,800
    instructions (measured). Here the timer is only moved when it would fire too late for the
    deadline now due; when it fires it looks at what is in progress (a head since ``_head_since``,
    an idle connection since ``_idle_since``) and either acts or waits for what is left.
    """

    limits: InboundLimits = InboundLimits()
    budget: ConnectionBudget = ConnectionBudget(DEFAULT_MAX_CONNECTIONS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._counted = False
        self._in_head = True
        self._head_bytes = 0
        self.url = b""  # uvicorn's, set per message: read by the limit checks before the first one begins
        self._refusal: tuple[int, str] | None = None
        self._lingering = False
        self._linger_counted = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0  # when _timer is due (loop time)
        self._head_since: float | None = None  # when the head being read began (connection or first byte)
        self._idle_since: float | None = None  # when the last answer completed, none being read since
        self._body_timer: asyncio.TimerHandle | None = None
        self._done: asyncio.Future[None] | None = None  # a finished future for _Cycle.send

    # ------------------------------------------------------------------ connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.budget.active >= self.budget.limit:
            _throttled.info("connections", "connection refused with 503: %d connections open (--max-connections)",
                            self.budget.active)
            # Refused connections keep a descriptor while they linger: only LINGER_SLOTS of them at
            # once, the rest are closed right after the answer (a client still sending may then miss it).
            linger = self.budget.lingering < LINGER_SLOTS
            self._answer(503, f"too many connections: this server accepts {self.budget.limit} at once; retry shortly",
                         ((b"retry-after", b"1"),), linger=linger)
            if linger:
                self.budget.lingering += 1
                self._linger_counted = True
            return
        self.budget.active += 1
        self._counted = True
        self._done = self.loop.create_future()
        self._done.set_result(None)
        self._head_since = self.loop.time()
        self._wake_by(self._head_since + self.limits.head_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._linger_counted:
            self.budget.lingering -= 1
            self._linger_counted = False
        if self._counted:
            self.budget.active -= 1
            self._counted = False
        self._cancel_timers()
        cycle = self.cycle
        super().connection_lost(exc)
        if cycle is not None and cycle.disconnected:
            _caller_gone(cycle)

    def _cancel_timers(self) -> None:
        for timer in (self._timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._body_timer = None

    def _wake_by(self, deadline: float) -> None:
        """Have the connection's timer fire no later than ``deadline`` (loop time)."""
        if self._timer is None or self._timer_at > deadline:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = deadline
            self._timer = self.loop.call_at(deadline, self._timer_fired)

    def _timer_fired(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        now = self.loop.time()
        since = self._head_since
        if since is not None and self._in_head:  # a head is being read (or awaited on a new connection)
            due = since + self.limits.head_timeout
            if due > now:
                self._wake_by(due)
            elif self._head_bytes == 0 and not self.url:
                self.transport.close()  # nothing was asked: close quietly, like an idle keep-alive
            else:
                self._refuse(408, f"the request line and headers did not arrive within {self.limits.head_timeout:g}s")
                self._answer(*self._refusal)  # type: ignore[misc]
        elif self._idle_since is not None:  # uvicorn's keep-alive timeout
            due = self._idle_since + self.timeout_keep_alive
            if due > now:
                self._wake_by(due)
            else:
                self.transport.close()
        # else a request is being served: on_response_complete or on_message_begin sets the timer again

    def _answer(
        self, status: int, detail: str, extra: tuple[tuple[bytes, bytes], ...] = (), *, linger: bool = True
    ) -> None:
        """Answer ``status`` as problem+json and close, unless an answer is on its way already.

        While reading a head, ``self.cycle`` is the previous request on the connection: the
        refusal is written only once that one is answered (else it would land inside its
        answer). While reading a body, it is the request being read: written if not answered yet.
        """
        self._cancel_timers()
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or cycle.response_complete or (not self._in_head and not cycle.response_started):
            self.transport.write(_problem_bytes(status, detail, extra))
        if cycle is not None and not cycle.response_complete:  # the application sees a disconnect
            cycle.disconnected = True
            cycle.message_event.set()
            _caller_gone(cycle)
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
        self._lingering = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_SECONDS, self.transport.close)
        else:  # pragma: no cover - TLS transports cannot half-close
            self.transport.close()

    # ------------------------------------------------------------------ reading

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # answered already: what follows is dropped unread
        if not self._in_head or self._refusal is not None:
            self._feed(data)
            return
        room = self.limits.max_head_bytes - self._head_bytes
        if len(data) <= room:
            self._head_bytes += len(data)
            self._feed(data)
            limits = self.limits
            # _head_refusal's two tests, inline: this runs on every read, and most heads pass both
            if self._in_head and (
                len(self.url) > limits.max_url_bytes or (self.headers and len(self.headers) > limits.max_headers)
            ):
                self._check_head()
            return
        # Feed only what fits the head limit: the parser's cost grows with what it holds.
        self._head_bytes += room
        self._feed(data[:room])
        if self.transport.is_closing():
            return
        if self._in_head:
            self._refuse_head()
            return
        self.data_received(data[room:])

    def _feed(self, data: bytes) -> None:
        """uvicorn's ``data_received`` (its keep-alive timer is the connection's, see the class
        docstring), then the body timer when a body is still to come."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        # Armed here rather than at the end of the head: most requests have no body, and their
        # message is complete by now, so no timer is made and cancelled for them.
        if not self._in_head and self._body_timer is None and self.cycle is not None and self.cycle.more_body:
            self._body_timer = self.loop.call_later(self.limits.body_timeout, self._body_timed_out)

    def _refuse_head(self) -> None:
        if not self.headers and len(self.url) >= self.limits.max_url_bytes // 2:
            self._refuse(*self._url_refusal())
        else:
            self._refuse(431, f"the request line and headers are larger than {self.limits.max_head_bytes} bytes")
        self._answer(*self._refusal)  # type: ignore[misc]

    def _head_refusal(self) -> tuple[int, str] | None:
        """What is wrong with the head read so far, if anything: its URL or its count of lines."""
        if len(self.url) > self.limits.max_url_bytes:
            return self._url_refusal()
        if self.headers and len(self.headers) > self.limits.max_headers:
            return 431, f"the request has more than {self.limits.max_headers} header lines"
        return None

    def _url_refusal(self) -> tuple[int, str]:
        return 414, f"the request URL is longer than {self.limits.max_url_bytes} bytes"

    def _check_head(self) -> None:
        refusal = self._head_refusal()
        if refusal is not None and self._refusal is None and not self.transport.is_closing():
            self._refuse(*refusal)
            self._answer(*refusal)

    def _refuse(self, status: int, detail: str) -> None:
        self._refusal = (status, detail)
        _throttled.info(f"refused-{status}", "request refused with %d: %s", status, detail)

    def send_400_response(self, msg: str) -> None:
        """A parse failure: our own refusal when a callback raised it, else a 400 problem."""
        if self._refusal is not None:
            self._answer(*self._refusal)
            return
        self._answer(400, "the request is not valid HTTP/1.1")

    def on_message_begin(self) -> None:
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        self.scope = {  # type: ignore[typeddict-item]
            "type": "http",
            "asgi": {"version": self.asgi_version, "spec_version": "2.3"},
            "http_version": "1.1",
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,  # type: ignore[typeddict-item]
            "root_path": self.root_path,
            "headers": self.headers,
            "state": self.app_state.copy(),
        }
        self._idle_since = None
        if self._head_since is None:  # else still counting from the connection's opening
            self._head_since = self.loop.time()
        deadline = self._head_since + self.limits.head_timeout
        if self._timer is None or self._timer_at > deadline:  # _wake_by's test inline: true once in a while
            self._wake_by(deadline)

    def on_headers_complete(self) -> None:
        # The URL and the header lines are checked per read (data_received) and here, not piece by
        # piece as the parser finds them: the head limit already bounds what can be held, and a
        # check per piece cost a Python call per header line of every request.
        limits = self.limits
        if len(self.url) > limits.max_url_bytes or len(self.headers) > limits.max_headers:  # _head_refusal's tests
            self._refuse(*self._head_refusal())  # type: ignore[misc]
            raise _Refused()
        self._in_head = False
        self._head_bytes = 0
        self._head_since = None  # the timer, when it fires, finds no head in progress
        # uvicorn's on_headers_complete from here, with naftiko's cycle, transport and extension
        parser, scope = self.parser, self.scope
        http_version = parser.get_http_version()
        scope["method"] = parser.get_method().decode("ascii")
        if http_version != "1.1":
            scope["http_version"] = http_version
        if parser.should_upgrade() and self._should_upgrade():
            return
        parsed_url = httptools.parse_url(self.url)
        raw_path = parsed_url.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        scope["path"] = self.root_path + path
        scope["raw_path"] = self.root_path.encode("ascii") + raw_path
        scope["query_string"] = parsed_url.query or b""
        if self.limit_concurrency is not None and (
            len(self.connections) >= self.limit_concurrency or len(self.tasks) >= self.limit_concurrency
        ):
            app = service_unavailable
            self.logger.warning("Exceeded concurrency limit.")
        else:
            app = self.app
        # The app learns of a caller that hangs up from this signal (exposes/http/disconnect.py).
        signal = DisconnectSignal(self.loop, True)
        scope["extensions"] = {DISCONNECT_EXTENSION: signal}  # type: ignore[dict-item]
        existing_cycle = self.cycle
        self.cycle = cycle = _Cycle(  # uvicorn's arguments, by position (measured: cheaper than by keyword)
            scope, self.transport, self.flow, self.logger, self.access_logger, self.access_log,
            self.server_state.default_headers, asyncio.Event(), self.expect_100_continue,
            http_version != "1.0" and parser.should_keep_alive(), self.on_response_complete,
        )
        cycle.done = self._done  # type: ignore[assignment]
        cycle.signal = signal
        if existing_cycle is None or existing_cycle.response_complete:
            self._start_asgi_task(cycle, app)
        else:  # pipelined: queued until the answers before it are complete
            self.flow.pause_reading()
            self.pipeline.appendleft((cycle, app))

    def on_message_complete(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        self._in_head = True
        cycle = self.cycle
        if (self.parser.should_upgrade() and self._should_upgrade()) or cycle.response_complete:
            return
        cycle.more_body = False
        cycle.message_event.set()

    def on_response_complete(self) -> None:
        # uvicorn's on_response_complete from here, with the connection's timer for its keep-alive one
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        elif self._head_since is None:  # idle until the next request begins (else the head timeout applies)
            self._idle_since = now = self.loop.time()
            if self._timer is None or self._timer_at > now + self.timeout_keep_alive:  # _wake_by's test inline
                self._wake_by(now + self.timeout_keep_alive)

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if self.transport.is_closing():
            return
        self._refuse(408, f"the request body did not arrive within {self.limits.body_timeout:g}s")
        self._answer(*self._refusal)  # type: ignore[misc]

    def _unsupported_upgrade_warning(self) -> None:
        upgrade = (self._get_upgrade() or b"?").decode("latin-1")
        _throttled.info("upgrade", "upgrade to %r not supported: answered as plain HTTP", upgrade)
        if self.cycle is not None:
            self.cycle.keep_alive = False  # what follows on this connection is not HTTP/1.1


def _caller_gone(cycle: Any) -> None:
    """Fire the request's :class:`DisconnectSignal` (uvicorn has just marked it disconnected)."""
    signal = cycle.scope.get("extensions", {}).get(DISCONNECT_EXTENSION)
    if signal is not None:
        signal.fire()


def protocol_for(limits: InboundLimits, budget: ConnectionBudget) -> type[LimitedHttpProtocol]:
    """A protocol class bound to one listener's limits and connection budget (uvicorn's ``http=``)."""
    return type("LimitedHttpProtocol", (LimitedHttpProtocol,), {"limits": limits, "budget": budget})


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
