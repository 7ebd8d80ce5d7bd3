"""naftiko's HTTP protocol does per request what uvicorn's httptools protocol does, with less
work (runtime/httpserver.py): the response head it writes is uvicorn's byte for byte (the header
checks are joined, not one per header), uvicorn's errors for bad headers are kept, and the one
connection timer that replaced uvicorn's per-request keep-alive timer still closes a connection
idle for ``keepalive_timeout`` after its *last* answer. Checked in process and over raw sockets
on loopback: Expect: 100-continue, pipelining, HEAD, 204/304 and chunked answers, bodies in
pieces.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from loopback import with_limits
from naftiko.exposes.http.disconnect import DisconnectSignal
from naftiko.exposes.http.limits import InboundLimits
from naftiko.runtime.httpserver import ConnectionBudget, _Cycle

DATE = [(b"date", b"Mon, 07 Dec 2026 18:00:00 GMT")]


class _Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False


class _Flow:
    write_paused = False


def _cycle(cls: type[RequestResponseCycle], method: str, keep_alive: bool) -> tuple[RequestResponseCycle, _Recorder]:
    transport = _Recorder()
    cycle = cls(
        scope={"method": method}, transport=transport, flow=_Flow(), logger=None, access_logger=None,  # type: ignore[arg-type]
        access_log=False, default_headers=DATE, message_event=asyncio.Event(), expect_100_continue=False,
        keep_alive=keep_alive, on_response=lambda: None,
    )
    if cls is _Cycle:
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        cycle.done = done  # type: ignore[attr-defined]
        cycle.signal = DisconnectSignal(None, True)  # type: ignore[attr-defined]
    return cycle, transport


async def _send_all(cls: type[RequestResponseCycle], method: str, keep_alive: bool,
                    messages: list[dict[str, Any]]) -> tuple[bytes, dict[str, Any]]:
    cycle, transport = _cycle(cls, method, keep_alive)
    for message in messages:
        await cycle.send(message)  # type: ignore[arg-type]
    state = {k: getattr(cycle, k) for k in ("keep_alive", "chunked_encoding", "expected_content_length",
                                               "response_complete", "response_started")}
    return b"".join(transport.writes), state


ANSWERS = [
    (200, [(b"Content-Type", b"application/json"), (b"content-length", b"2")], [b"{}"]),
    (200, [(b"content-type", b"text/plain")], [b"chunk", b""]),  # no length: chunked
    (200, [(b"transfer-encoding", b"Chunked"), (b"x-a", b"1")], [b"ab"]),
    (204, [], [b""]),
    (304, [(b"etag", b'"x"')], [b""]),
    (200, [(b"connection", b"keep-alive, Close"), (b"content-length", b"0")], [b""]),
    (404, [(b"content-length", b"3"), (b"content-length", b"3"), (b"x-tab", b"a\tb")], [b"abc"]),
    (599, [(b"content-length", b"0")], [b""]),  # a status without a phrase
]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("keep_alive", [True, False])
@pytest.mark.parametrize(("status", "headers", "bodies"), ANSWERS)
async def test_the_response_head_and_state_are_uvicorns(method, keep_alive, status, headers, bodies):
    messages: list[dict[str, Any]] = [{"type": "http.response.start", "status": status, "headers": headers}]
    messages += [{"type": "http.response.body", "body": b, "more_body": i < len(bodies) - 1} for i, b in enumerate(bodies)]
    ours = await _send_all(_Cycle, method, keep_alive, messages)
    theirs = await _send_all(RequestResponseCycle, method, keep_alive, messages)
    assert ours == theirs
    assert ours[0].startswith(b"HTTP/1.1 %d" % status)


BAD = [
    [(b"bad name", b"1")],
    [(b"x", b"a\r\nb")],
    [(b"x", b"a\x00")],
    [(b"ok", b"bad\nvalue"), (b"bad(name)", b"1")],  # uvicorn reports the first bad header: its value
    [(b"bad:name", b"1"), (b"ok", b"bad\x7fvalue")],
]


@pytest.mark.parametrize("headers", BAD)
async def test_bad_response_headers_raise_uvicorns_error(headers):
    message = {"type": "http.response.start", "status": 200, "headers": headers}
    errors = []
    for cls in (_Cycle, RequestResponseCycle):
        cycle, transport = _cycle(cls, "GET", True)
        with pytest.raises(RuntimeError) as raised:
            await cycle.send(message)  # type: ignore[arg-type]
        errors.append(str(raised.value))
        assert transport.writes == []
    assert errors[0] == errors[1]


async def test_messages_out_of_order_get_uvicorns_errors():
    for cls in (_Cycle, RequestResponseCycle):
        cycle, _ = _cycle(cls, "GET", True)
        with pytest.raises(RuntimeError, match=r"Expected ASGI message 'http\.response\.start'"):
            await cycle.send({"type": "http.response.body", "body": b""})
        await cycle.send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
        with pytest.raises(RuntimeError, match=r"Expected ASGI message 'http\.response\.body'"):
            await cycle.send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- over a socket

LIMITS = InboundLimits(head_timeout=5.0, body_timeout=5.0, keepalive_timeout=0.4, max_connections=8)


async def _echo(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] == "/none":
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    answer = scope["method"].encode() + b" " + scope["path"].encode() + b" " + body
    headers = [] if scope["path"] == "/chunked" else [(b"content-length", str(len(answer)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


@contextlib.asynccontextmanager
async def _server() -> AsyncIterator[int]:
    async with with_limits(_echo, LIMITS, ConnectionBudget(LIMITS.max_connections)) as port:
        yield port


async def test_pipelined_requests_expect_100_continue_and_bodies_in_pieces():
    async with _server() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /1 HTTP/1.1\r\nhost: x\r\n\r\nHEAD /2 HTTP/1.1\r\nhost: x\r\n\r\n"
                     b"GET /none HTTP/1.1\r\nhost: x\r\n\r\nGET /chunked HTTP/1.1\r\nhost: x\r\n\r\n")
        raw = b""
        while not raw.endswith(b"0\r\n\r\n"):
            raw += await asyncio.wait_for(reader.read(65536), 3)
        assert raw.count(b"HTTP/1.1 200 OK") == 3 and b"HTTP/1.1 204 No Content" in raw
        assert b"GET /1 " in raw and b"HEAD /2" not in raw  # a HEAD answer has no body
        assert raw.endswith(b"transfer-encoding: chunked\r\n\r\nd\r\nGET /chunked \r\n0\r\n\r\n")
        writer.write(b"POST /p HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 6\r\n\r\n")
        assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3) == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"abc")
        await asyncio.sleep(0.05)
        writer.write(b"def")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
        assert head.startswith(b"HTTP/1.1 200 OK")
        assert await asyncio.wait_for(reader.readexactly(14), 3) == b"POST /p abcdef"
        writer.close()


async def test_the_keepalive_timeout_counts_from_the_last_answer():
    async with _server() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(3):  # each a little before the keep-alive timeout of the one before
            writer.write(b"GET /a HTTP/1.1\r\nhost: x\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
            assert head.startswith(b"HTTP/1.1 200 OK")
            await asyncio.wait_for(reader.readexactly(7), 3)
            answered = time.monotonic()
            await asyncio.sleep(0.25)
        assert await asyncio.wait_for(reader.read(), 3) == b""  # then closed, idle
        waited = time.monotonic() - answered
        assert 0.35 <= waited < 1.5, waited
        writer.close()


async def test_the_access_log_line_is_uvicorns():
    lines: dict[str, list[str]] = {}
    for cls in (_Cycle, RequestResponseCycle):
        logger = logging.getLogger(f"test.access.{cls.__name__}")
        records: list[logging.LogRecord] = []
        handler = logging.Handler()
        handler.emit = records.append  # type: ignore[method-assign]
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        cycle, _ = _cycle(cls, "GET", True)
        cycle.access_log, cycle.access_logger = True, logger
        cycle.scope.update(client=("127.0.0.1", 5000), raw_path=b"/a%20b", query_string=b"x=1", http_version="1.1")
        await cycle.send({"type": "http.response.start", "status": 201, "headers": [(b"content-length", b"0")]})
        lines[cls.__name__] = [r.getMessage() for r in records]
    assert lines["_Cycle"] == lines["RequestResponseCycle"] == ['127.0.0.1:5000 - "GET /a%20b?x=1 HTTP/1.1" 201']


def test_the_cycle_is_built_with_uvicorns_parameters_in_uvicorns_order():
    """httpserver.py builds each request's cycle with positional arguments (a keyword call cost a
    dict of eleven entries per request): a uvicorn that reorders them must fail here, not serve."""
    import inspect

    assert list(inspect.signature(RequestResponseCycle.__init__).parameters) == [
        "self", "scope", "transport", "flow", "logger", "access_logger", "access_log", "default_headers",
        "message_event", "expect_100_continue", "keep_alive", "on_response",
    ]
