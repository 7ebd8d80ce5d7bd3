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
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

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


class _OneWriteAnswer:
    """The transport as one request's uvicorn ``RequestResponseCycle`` sees it: the response
    head is held back until the first body write (or the end of the response, or a close), and
    leaves with it in one write. uvicorn writes them apart, which costs a system call and a TCP
    segment more per answer; answers here are whole bodies, so nothing waits on the head.

    Everything else (``100 Continue``, closing, flow control, which keeps the real transport)
    goes through as it is.
    """

    __slots__ = ("_cycle", "_head", "_protocol", "_transport")

    def __init__(self, transport: asyncio.Transport, cycle: Any, protocol: LimitedHttpProtocol) -> None:
        self._transport = transport
        self._cycle = cycle
        self._protocol = protocol
        self._head: bytes | None = None  # b"" once the head has gone out

    def write(self, data: bytes) -> None:
        head = self._head
        if head:  # held: it leaves with this write
            self._head = b""
            self._protocol._holding = None
            if len(data) > 16384:
                self._transport.writelines((head, data))
            else:
                self._transport.write(head + data)
        elif head is None and self._cycle is not None and self._cycle.response_started:  # the head
            self._head = data
            self._protocol._holding = self
        else:
            self._transport.write(data)

    def detach(self) -> None:
        """Forget the cycle and the protocol once the answer is complete. The cycle holds this
        object as its transport, so while this holds the cycle (or the protocol, which holds the
        cycle) the request's objects form a reference cycle that only the garbage collector
        frees: a dozen objects per request, which made the collector run every few requests
        and scan everything alive (measured: 17-30 µs per request with the default threshold)."""
        self._cycle = self._protocol = None  # type: ignore[assignment]

    def flush(self) -> None:
        head = self._head
        if head:
            self._head = b""
            self._protocol._holding = None
            self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()


class LimitedHttpProtocol(HttpToolsProtocol):
    """One inbound HTTP/1.1 connection under :class:`InboundLimits` (see the module docstring).

    Subclassed per listener by :func:`protocol_for`, which sets ``limits`` and ``budget``.
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
        # The head timer is armed once and not cancelled when a head completes: when it fires it
        # checks the head in progress, if any (``_head_since``), and re-arms for what is left. So
        # a kept-alive connection does not create and cancel a timer for every request.
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_since: float | None = None  # when the head being read began (connection or first byte)
        self._body_timer: asyncio.TimerHandle | None = None
        self._holding: _OneWriteAnswer | None = None  # the answer whose head is held back

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
        self._head_since = self.loop.time()
        self._head_timer = self.loop.call_later(self.limits.head_timeout, self._head_timed_out)

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
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None

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
            super().data_received(data)
            return
        room = self.limits.max_head_bytes - self._head_bytes
        if len(data) <= room:
            self._head_bytes += len(data)
            super().data_received(data)
            limits = self.limits
            # _head_refusal's two tests, inline: this runs on every read, and most heads pass both
            if self._in_head and (
                len(self.url) > limits.max_url_bytes or (self.headers and len(self.headers) > limits.max_headers)
            ):
                self._check_head()
            return
        # Feed only what fits the head limit: the parser's cost grows with what it holds.
        self._head_bytes += room
        super().data_received(data[:room])
        if self.transport.is_closing():
            return
        if self._in_head:
            self._refuse_head()
            return
        self.data_received(data[room:])

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
        super().on_message_begin()
        if self._head_since is None:  # else still counting from the connection's opening
            self._head_since = self.loop.time()
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.limits.head_timeout, self._head_timed_out)

    def on_headers_complete(self) -> None:
        # The URL and the header lines are checked per read (data_received) and here, not piece by
        # piece as the parser finds them: the head limit already bounds what can be held, and a
        # check per piece cost a Python call per header line of every request.
        refusal = self._head_refusal()
        if refusal is not None:
            self._refuse(*refusal)
            raise _Refused()
        self._in_head = False
        self._head_bytes = 0
        self._head_since = None  # the head timer, when it fires, finds no head in progress
        super().on_headers_complete()
        if self.cycle is not None and self.cycle.scope is self.scope:  # a new request (not an upgrade)
            # The app learns of a caller that hangs up from this signal (exposes/http/disconnect.py);
            # its task has not started yet, so the scope can still be added to.
            self.scope["extensions"] = {DISCONNECT_EXTENSION: DisconnectSignal(self.loop)}  # type: ignore[dict-item]
            self.cycle.transport = _OneWriteAnswer(self.transport, self.cycle, self)  # type: ignore[assignment]
        if self.cycle is not None and self.cycle.more_body:
            self._body_timer = self.loop.call_later(self.limits.body_timeout, self._body_timed_out)

    def on_message_complete(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        self._in_head = True
        super().on_message_complete()

    def on_response_complete(self) -> None:
        if self._holding is not None:  # a HEAD answer, or one with no body write: its head goes now
            self._holding.flush()
        cycle = self.cycle
        if cycle is not None and type(cycle.transport) is _OneWriteAnswer:
            cycle.transport.detach()
        super().on_response_complete()

    def _head_timed_out(self) -> None:
        self._head_timer = None
        since = self._head_since
        if self.transport.is_closing() or not self._in_head or since is None:
            return
        left = since + self.limits.head_timeout - self.loop.time()
        if left > 0:  # this head began after the timer was armed (for an earlier one): wait for what is left
            self._head_timer = self.loop.call_later(left, self._head_timed_out)
            return
        if self._head_bytes == 0 and not self.url:
            self.transport.close()  # nothing was asked: close quietly, like an idle keep-alive
            return
        self._refuse(408, f"the request line and headers did not arrive within {self.limits.head_timeout:g}s")
        self._answer(*self._refusal)  # type: ignore[misc]

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
