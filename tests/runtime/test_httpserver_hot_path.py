"""The per-request shortcuts of naftiko's HTTP protocol (runtime/httpserver.py), in memory and on
loopback with raw sockets: an answer's head leaves with its body in one write, a HEAD answer and
keep-alive still work, each request carries a disconnect signal that fires when its caller hangs
up, and the head timer armed once per connection still times each head from its own first byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import types
from collections.abc import AsyncIterator

import pytest
from uvicorn.server import ServerState

from loopback import with_limits
from naftiko.exposes.http.disconnect import DISCONNECT_EXTENSION, DisconnectSignal, disconnect_signal
from naftiko.exposes.http.limits import InboundLimits
from naftiko.runtime.httpserver import ConnectionBudget, HttpProtocol, protocol_for

LIMITS = InboundLimits(head_timeout=0.5, body_timeout=0.5, keepalive_timeout=2.0, max_connections=8)
BODY = b'{"ok":true}'
signals: list[DisconnectSignal | None] = []
hung_up = asyncio.Event()


async def _app(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    signal = disconnect_signal(scope)
    signals.append(signal)
    if scope["path"] == "/slow-body":  # the head is sent, the body a moment later
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(BODY)).encode())]})
        await asyncio.sleep(0.3)
        await send({"type": "http.response.body", "body": BODY})
        return
    if scope["path"] == "/hang":  # never answers; notices the caller leaving through the signal
        assert signal is not None
        signal.on_disconnect(hung_up.set)
        with contextlib.suppress(TimeoutError):  # returns once the caller left (the server waits for it)
            await asyncio.wait_for(hung_up.wait(), 10)
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]})
    await send({"type": "http.response.body", "body": BODY})


@contextlib.asynccontextmanager
async def _server(limits: InboundLimits = LIMITS) -> AsyncIterator[int]:
    async with with_limits(_app, limits, ConnectionBudget(limits.max_connections)) as port:
        yield port


async def _answer(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One answer on a kept-alive connection: (head, body) read by its Content-Length."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
    length = next((int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
                   if line.startswith(b"content-length:")), 0)
    return head, await asyncio.wait_for(reader.readexactly(length), 3) if length else b""


class _Recorder:
    """A transport that records what the protocol writes, for a connection driven in memory."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 5555), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def can_write_eof(self) -> bool:
        return False

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


def _in_memory(app, limits: InboundLimits = LIMITS) -> tuple[HttpProtocol, _Recorder, ServerState]:
    """naftiko's protocol on a recording transport, as uvicorn's server would make it."""
    state = ServerState()
    config = types.SimpleNamespace(loaded_app=app, root_path="", asgi_version="3.0")
    protocol = protocol_for(limits, ConnectionBudget(8))(config, state, {}, asyncio.get_running_loop())
    transport = _Recorder()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport, state


async def _settle(state: ServerState) -> None:
    while state.tasks:  # noqa: ASYNC110  # the server state has no event for "every request done"
        await asyncio.sleep(0)


async def test_an_answer_leaves_in_one_write_and_a_streamed_one_in_chunks():
    protocol, transport, state = _in_memory(_app)
    protocol.data_received(b"GET /x HTTP/1.1\r\nhost: t\r\n\r\n")
    await _settle(state)
    assert len(transport.writes) == 1  # head and body together: one system call, one segment
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and transport.writes[0].endswith(b"\r\n\r\n" + BODY)

    async def streamed(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ab", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": True})
        await send({"type": "http.response.body", "body": b"cde"})

    protocol, transport, state = _in_memory(streamed)
    protocol.data_received(b"GET /s HTTP/1.1\r\nhost: t\r\n\r\n")
    await _settle(state)
    head, _, first = transport.writes[0].partition(b"\r\n\r\n")
    assert b"\r\ntransfer-encoding: chunked" in head and first == b"2\r\nab\r\n"  # the head left with the first bytes
    assert transport.writes[1:] == [b"3\r\ncde\r\n0\r\n\r\n"]  # an empty part writes nothing
    assert not transport.closed  # kept alive


async def test_a_head_answer_is_its_head_alone_in_one_write():
    protocol, transport, state = _in_memory(_app)
    protocol.data_received(b"HEAD /x HTTP/1.1\r\nhost: t\r\n\r\n")
    await _settle(state)
    assert len(transport.writes) == 1 and transport.writes[0].endswith(b"content-length: 11\r\n\r\n")


async def test_answers_head_and_body_in_one_piece_and_keep_alive_works():
    async with _server() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(3):  # the same connection, three answers
            writer.write(b"GET /x HTTP/1.1\r\nhost: t\r\n\r\n")
            head, body = await _answer(reader)
            assert head.startswith(b"HTTP/1.1 200 ") and body == BODY
        writer.write(b"HEAD /x HTTP/1.1\r\nhost: t\r\n\r\n")  # no body write at all: the head still goes
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
        assert head.startswith(b"HTTP/1.1 200 ") and b"content-length: 11" in head.lower()
        writer.write(b"GET /x HTTP/1.1\r\nhost: t\r\n\r\n")  # and nothing of a body came after it
        head, body = await _answer(reader)
        assert head.startswith(b"HTTP/1.1 200 ") and body == BODY
        writer.close()


async def test_a_head_is_held_until_its_body_is_sent():
    async with _server() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /slow-body HTTP/1.1\r\nhost: t\r\n\r\n")
        with pytest.raises(TimeoutError):  # the head was written by the app, but waits for the body
            await asyncio.wait_for(reader.read(1), 0.15)
        head, body = await _answer(reader)
        assert head.startswith(b"HTTP/1.1 200 ") and body == BODY
        writer.close()


async def test_each_request_has_a_disconnect_signal_that_fires_when_the_caller_hangs_up():
    signals.clear()
    hung_up.clear()
    async with _server() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /x HTTP/1.1\r\nhost: t\r\n\r\n")
        await _answer(reader)
        writer.write(b"GET /hang HTTP/1.1\r\nhost: t\r\n\r\n")
        await asyncio.sleep(0.1)
        writer.close()
        await asyncio.wait_for(hung_up.wait(), 2)  # the callback ran: the app could cancel its work
    assert len(signals) == 2 and signals[0] is not signals[1]  # one per request
    assert signals[0] is not None and not signals[0].gone  # answered in full: never fired
    assert signals[1] is not None and signals[1].gone
    # The server's loop rides along, so the app finds its task without a running-loop lookup
    # (on Python 3.11 that costs a getpid() system call per request).
    assert signals[0].loop is asyncio.get_running_loop()


def test_a_signal_calls_a_callback_registered_after_it_fired_and_only_once():
    signal = DisconnectSignal()
    calls: list[str] = []
    signal.on_disconnect(lambda: calls.append("a"))
    signal.on_disconnect(None)  # no longer interested
    signal.fire()
    assert calls == []
    signal.on_disconnect(lambda: calls.append("late"))
    signal.fire()
    assert calls == ["late"] and signal.gone
    assert disconnect_signal({"extensions": {DISCONNECT_EXTENSION: signal}}) is signal
    assert disconnect_signal({}) is None


async def test_each_head_on_a_kept_alive_connection_is_timed_from_its_own_first_byte():
    """The head timer is armed once per connection; a second head that starts later than the
    timer's first expiry still gets its full head_timeout, and no more."""
    async with _server() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /x HTTP/1.1\r\nhost: t\r\n\r\n")
        await _answer(reader)
        await asyncio.sleep(0.3)  # the timer armed at the connection's opening fires meanwhile
        writer.write(b"GET /x HTTP/1.1\r\nhost: t\r\n")  # a head that never ends
        started = time.monotonic()
        raw = await asyncio.wait_for(reader.read(), 3)
        waited = time.monotonic() - started
        assert raw.startswith(b"HTTP/1.1 408 "), raw
        assert 0.4 <= waited < 1.5, waited


async def test_answered_requests_leave_no_reference_cycle_for_the_collector():
    """A request's objects (its exchange, which is also its disconnect signal, its task, its scope)
    are freed by reference counting once it is answered: a cycle among them left a dozen objects
    per request for the garbage collector, which then ran every few requests and scanned
    everything alive."""
    import gc

    async with _server() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /x HTTP/1.1\r\nhost: t\r\n\r\n")  # warm: the connection's own objects exist
        await _answer(reader)
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector finds is kept in gc.garbage, not freed
        try:
            for _ in range(50):
                writer.write(b"GET /x HTTP/1.1\r\nhost: t\r\n\r\n")
                head, body = await _answer(reader)
                assert head.startswith(b"HTTP/1.1 200 ") and body == BODY
            gc.collect()
            found = [type(o).__name__ for o in gc.garbage]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
        writer.close()
    assert found.count("Exchange") == 0 and found.count("Task") == 0, found[:20]
    assert len(found) < 50, found[:20]  # nothing left per request


async def test_a_closed_connection_is_freed_without_the_collector():
    """Once a connection is lost, its protocol (and whatever its parser holds: a refused head's
    bytes) is freed by reference counting; a cycle between the two kept 26 MB alive under the
    endless-header attack of bench/attacks.py until the collector ran."""
    import gc
    import weakref

    from naftiko.runtime.exchange import Exchange

    def exchanges() -> int:
        return sum(type(o) is Exchange for o in gc.get_objects())

    async def answer(scope, receive, send) -> None:  # keeps nothing of the request (the module's _app does)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    gc.collect()
    before = exchanges()
    gc.disable()
    try:
        for data in (b"GET /x HTTP/1.1\r\nhost: t\r\n\r\n", b"GET /x HTTP/1.1\r\nx-a: " + b"v" * 40_000):
            protocol, _, state = _in_memory(answer)
            protocol.data_received(data)
            await _settle(state)
            # an answered request is freed at once, the connection still open (no exchange-scope cycle)
            assert exchanges() == before
            protocol.connection_lost(None)
            gone = weakref.ref(protocol)
            del protocol
            assert gone() is None, gc.get_referrers(gone())
    finally:
        gc.enable()
