"""One request on an inbound connection and its answer: the ASGI ``receive`` and ``send`` pair.

The connection (:class:`naftiko.runtime.httpserver.HttpProtocol`) parses requests and hands each
one, as an :class:`Exchange`, to the app in a task of its own. The exchange holds the request's
body as it arrives and turns the app's ``http.response.*`` messages into bytes on the wire:

* the status line, the server's default headers (``date``) and the app's headers are written with
  the first body bytes in ONE write (a system call and a TCP segment less per answer than writing
  the head on its own); a HEAD answer is its head alone;
* an answer that declares no ``content-length`` is sent ``transfer-encoding: chunked`` to an
  HTTP/1.1 client, and ends the connection for an HTTP/1.0 one;
* header names and values are refused (the app fails, the caller gets a 500 or a closed
  connection) when they could split the answer: a CR, LF or other control byte in either;
* ``send`` hands back an already-finished awaitable unless the connection's write buffer is full,
  so an answer's two messages cost no coroutine each; the app waits only when the client is slow.

The exchange is also the request's :class:`~naftiko.exposes.http.disconnect.DisconnectSignal`
(the scope's ``naftiko.disconnect`` extension): it fires when the caller hangs up before the
answer is complete.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Generator
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from naftiko.exposes.http.disconnect import DisconnectSignal

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Scope

    from naftiko.runtime.httpserver import HttpProtocol

log = logging.getLogger("naftiko.http")

DISCONNECT: Message = {"type": "http.disconnect"}
_NO_BODY_STATUSES = frozenset({204, 304})
# A control byte other than HT anywhere in a name or value (a CR or LF could start a header of the
# caller's choosing), or a separator in a name. Values are checked together, as the answer's header
# lines: there, CR and LF may appear only as the one line end each line has.
_BAD_IN_LINES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BAD_NAME = re.compile(rb'[\x00-\x20\x7f()<>@,;:\[\]={}\\"/?]')
_GOOD_NAMES: set[bytes] = set()
"""Header names an app has answered with and that passed :data:`_BAD_NAME`: apps answer with a few
names over and over, so each is searched once (up to :data:`_GOOD_NAMES_KEPT` of them)."""
_GOOD_NAMES_KEPT = 512
INTERNAL_ERROR = (  # the default header lines (date) go between the two parts
    b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 21\r\nconnection: close\r\n",
    b"\r\nInternal Server Error",
)


def _status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {status} {phrase}\r\n".encode()


_STATUS_LINES = {status.value: _status_line(status.value) for status in HTTPStatus}


class _Done:
    """An awaitable that has already finished (``await`` gives None at once): what ``send``
    hands back when nothing needs waiting for, instead of a coroutine made and run per message."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return iter(())  # type: ignore[return-value]  # an exhausted iterator: await returns None


DONE = _Done()


class Exchange(DisconnectSignal):
    """A request as it is read and answered (see the module docstring)."""

    __slots__ = (
        "body",
        "body_done",
        "chunked",
        "complete",
        "delivered",
        "expect_100",
        "head",
        "head_only",
        "http11",
        "keep_alive",
        "left",
        "method",
        "path",
        "protocol",
        "started",
        "waiter",
    )

    def __init__(self, protocol: HttpProtocol, scope: Scope, keep_alive: bool, expect_100: bool) -> None:
        super().__init__(protocol.loop)
        self.protocol = protocol
        # What the answer and the logs need of the request. Not the scope itself: the scope holds
        # this exchange (its disconnect signal), and a reference back would make a cycle per request.
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.http11 = scope["http_version"] == "1.1"
        self.keep_alive = keep_alive
        self.expect_100 = expect_100  # the client waits for "100 Continue" before sending its body
        self.head_only = self.method == "HEAD"
        self.body: list[bytes] = []  # received and not yet handed to the app
        self.body_done = False  # the parser has seen the end of the request
        self.delivered = False  # the app has been handed the end of the body
        self.waiter: asyncio.Future[None] | None = None  # a receive() waiting for more
        self.started = False
        self.complete = False
        self.head = b""  # the answer's head, held until the first body bytes
        self.chunked = False
        self.left: int | None = None  # bytes the declared content-length still expects

    # ------------------------------------------------------------------ from the connection

    def feed(self, chunk: bytes) -> None:
        self.body.append(chunk)
        self.wake()

    def end(self) -> None:
        self.body_done = True
        self.wake()

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def caller_gone(self) -> None:
        """The connection closed: a waiting ``receive`` returns ``http.disconnect``, and, when the
        answer was not complete, the signal fires."""
        if not self.complete:
            self.fire()
        self.wake()

    # ------------------------------------------------------------------ ASGI

    async def run(self, app: ASGIApp, scope: Scope) -> None:
        """The app on this request, and what a server owes the caller when it fails: a 500 when no
        answer had started, else a closed connection (a half-sent answer cannot be mended)."""
        try:
            await app(scope, self.receive, self.send)
        except BaseException as exc:
            if not (self.gone and isinstance(exc, asyncio.CancelledError)):  # else: cancelled as its caller left
                log.error("the app failed on %s %s", self.method, self.path, exc_info=exc)
            self._abandon()
            if not isinstance(exc, Exception):
                raise
        else:
            if not self.complete and not self.gone:  # (an answer after the caller left is dropped, not missing)
                log.error("the app returned without %s its answer to %s %s",
                          "completing" if self.started else "starting", self.method, self.path)
                self._abandon()
        finally:
            self.protocol.server_state.tasks.discard(self.task)
            self.task = None

    def _abandon(self) -> None:
        protocol = self.protocol
        if self.complete or self.gone:
            return
        if not self.started or self.head:  # nothing of the answer on the wire yet: a 500 can still be said
            self.started, self.head = True, b""
            protocol.write(INTERNAL_ERROR[0] + protocol.default_head() + INTERNAL_ERROR[1])
        self.keep_alive = False
        self._finish()
        protocol.close()

    async def receive(self) -> Message:
        while True:
            if self.complete or self.gone:
                return DISCONNECT
            if self.expect_100:
                self.expect_100 = False
                if not self.started or self.head:  # never once the answer's bytes are on their way
                    self.protocol.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            if not self.delivered:
                if self.body:
                    body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
                    self.body = []
                    self.delivered = self.body_done
                    self.protocol.body_taken(self)
                    return {"type": "http.request", "body": body, "more_body": not self.body_done}
                if self.body_done:
                    self.delivered = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            # The whole body was handed over (wait for the caller to go or the answer to end), or
            # more of it is on its way.
            waiter = self.waiter = self.protocol.loop.create_future()
            await waiter

    def send(self, message: Message) -> Awaitable[None]:
        """Write what ``message`` adds to the answer; the awaitable it hands back waits only while
        the client reads slower than the server writes."""
        if self.gone:  # the caller left: what follows has nobody to go to
            return DONE
        kind = message["type"]
        if not self.started:
            if kind != "http.response.start":
                raise RuntimeError(f"expected http.response.start, got {kind!r}")
            self._start(message)
            return DONE
        if self.complete or kind != "http.response.body":
            raise RuntimeError(f"unexpected {kind!r} once the answer is {'complete' if self.complete else 'started'}")
        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        if self.head_only:
            out = self.head
        else:
            if self.left is not None:
                self.left -= len(body)
                if self.left < 0 or (not more and self.left):
                    self.keep_alive = False
                    raise RuntimeError("the answer's body does not match its content-length")
            if self.chunked:
                if body:
                    body = b"%x\r\n%b\r\n" % (len(body), body)
                if not more:
                    body += b"0\r\n\r\n"
            out = self.head + body if self.head else body
        if out:
            self.head = b""
            self.protocol.write(out)
        if not more:
            self._finish()
            return DONE
        return self.protocol.drained()

    def _start(self, message: Message) -> None:
        status: int = message["status"]
        protocol = self.protocol
        lines: list[bytes] = []  # the app's header lines
        length: int | None = None
        chunked = closes = False
        for name, value in message.get("headers", ()):
            if name not in _GOOD_NAMES:
                if _BAD_NAME.search(name):
                    raise RuntimeError("a response header name holds a forbidden character")
                if len(_GOOD_NAMES) < _GOOD_NAMES_KEPT:
                    _GOOD_NAMES.add(name)
            lower = name.lower()
            if lower == b"content-length":
                length = int(value)
            elif lower == b"transfer-encoding":
                chunked = value.lower() == b"chunked"
            elif lower == b"connection" and value.lower() == b"close":
                self.keep_alive = False
                closes = True
            lines.append(b"%b: %b\r\n" % (lower, value))
        block = b"".join(lines)
        if _BAD_IN_LINES.search(block) or block.count(b"\n") != len(lines) or block.count(b"\r") != len(lines):
            raise RuntimeError("a response header value holds a forbidden character")
        lines = [_STATUS_LINES.get(status) or _status_line(status), protocol.default_head(), block]
        if status in _NO_BODY_STATUSES:
            self.head_only = True  # a body the app sends is dropped: the client would read it as the next answer
        if not self.head_only and status >= 200:
            if chunked:
                self.chunked = True
            elif length is not None:
                self.left = length
            elif self.http11:
                self.chunked = True
                lines.append(b"transfer-encoding: chunked\r\n")
            else:  # an HTTP/1.0 client reads the body up to the end of the connection
                self.keep_alive = False
        if self.expect_100 and not self.body_done:
            # No 100 (Continue) went out and the body has not come: the client may never send it,
            # and would then have its next request read as this body (RFC 9110 section 10.1.1).
            self.keep_alive = False
        if not self.keep_alive and not closes:
            lines.append(b"connection: close\r\n")
        lines.append(b"\r\n")
        self.head = b"".join(lines)
        self.started = True

    def _finish(self) -> None:
        self.complete = True
        self.wake()  # a receive() waiting for the caller to go returns http.disconnect
        self.protocol.answered(self)
