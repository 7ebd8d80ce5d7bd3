"""naftiko's HTTP protocol (runtime/httpserver.py) keeps what uvicorn's httptools protocol does
for HTTP/1.1 beyond one request per connection, checked over raw sockets on loopback: Expect:
100-continue, pipelined requests, bodies arriving in pieces, and a connection idle for
``keepalive_timeout`` after its *last* answer closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from loopback import with_limits
from naftiko.exposes.http.limits import InboundLimits
from naftiko.runtime.httpserver import ConnectionBudget

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
