"""Edge cases of naftiko's HTTP/1.1 protocol (runtime/httpserver.py, runtime/exchange.py) that a
demanding client, or an app answering early, runs into: answers given before the request body was
read, pipelined requests that together pass the head limit or arrive while a long answer runs,
timers that must not blame the client for time the server itself held it back, and Expect:
100-continue answered with a final status.

Raw sockets on loopback against ``loopback.with_limits``; what the other httpserver test files
cover is not repeated here.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from loopback import body_size, with_limits
from naftiko.exposes.http.limits import InboundLimits
from naftiko.runtime.httpserver import MAX_PIPELINED, ConnectionBudget

LIMITS = InboundLimits(
    max_head_bytes=4096, head_timeout=0.3, body_timeout=0.3, keepalive_timeout=0.3, max_connections=8,
)
T = 1.5  # the longest any single read may wait
PIECE = bytes(range(256)) * 1024  # 256 KiB
BIG = 64 * len(PIECE)  # 16 MiB: more than loopback's socket buffers hold
progress: dict[str, object] = {}


async def _app(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/early":  # answers at once, never reads the body (as a 413 on a declared length does)
        await _send(send, 413, b"too large")
        return
    if path.startswith("/slow"):  # answers after a while, then reads nothing
        await asyncio.sleep(float(path.rpartition("/")[2]))
        await _send(send, 200, b"slow " + path.encode())
        return
    if path == "/stream-then-read":  # starts its answer, then reads the body it echoes
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"6")]})
        await send({"type": "http.response.body", "body": b"abc", "more_body": True})
        message = await receive()
        await send({"type": "http.response.body", "body": message["body"]})
        return
    if path == "/204-with-body":  # an app that breaks the rule that a 204 has no body
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b"junk"})
        return
    if path == "/big":  # a large streamed answer (chunked), recording how far it got
        progress["sent"] = 0
        progress["returned"] = False
        signal = scope["extensions"]["naftiko.disconnect"]
        signal.on_disconnect(lambda: progress.__setitem__("signal", True))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(BIG // len(PIECE)):
            await send({"type": "http.response.body", "body": PIECE, "more_body": True})
            progress["sent"] += len(PIECE)
        await send({"type": "http.response.body", "body": b""})
        progress["returned"] = True
        return
    if path == "/sip":  # reads the body in small sips, more slowly than the client sends it
        size = 0
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            await asyncio.sleep(0.1)
            if not message.get("more_body"):
                break
        await _send(send, 200, b"%d" % size)
        return
    size = await body_size(receive)  # any other path: reads the whole body, answers its path and the body's length
    if size is not None:
        await _send(send, 200, path.encode() + b" %d" % size)


async def _send(send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


@contextlib.asynccontextmanager
async def _server(limits: InboundLimits = LIMITS) -> AsyncIterator[int]:
    async with with_limits(_app, limits, ConnectionBudget(limits.max_connections)) as port:
        try:
            yield port
        finally:  # a test that failed with a connection open must not hang the server's stop
            for writer in opened:
                writer.close()
            opened.clear()


opened: list[asyncio.StreamWriter] = []


async def _connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    opened.append(writer)
    return reader, writer


async def _answer(reader: asyncio.StreamReader) -> tuple[bytes, bytes, bytes]:
    """(status line, head, body) of one answer framed by its content-length."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), T)
    length = next(int(line.partition(b":")[2]) for line in head.lower().split(b"\r\n")
                  if line.startswith(b"content-length:"))
    body = await asyncio.wait_for(reader.readexactly(length), T)
    return head.partition(b"\r\n")[0], head, body


async def _closed_with_nothing_more(reader: asyncio.StreamReader) -> None:
    assert await asyncio.wait_for(reader.read(), T) == b""


# ---------------------------------------------------------------------- answered before the body


async def test_an_answer_before_a_large_body_keeps_reading_and_the_connection_serves_the_next_request():
    body = b"x" * (1024 * 1024)  # far more than the server holds for an app (BODY_HIGH_WATER)
    async with _server(InboundLimits(body_timeout=5.0, keepalive_timeout=5.0)) as port:
        reader, writer = await _connect(port)
        writer.write(b"POST /early HTTP/1.1\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
        assert (await _answer(reader))[0] == b"HTTP/1.1 413 Request Entity Too Large"
        # The answer said nothing of closing: the server reads (and drops) the rest of the body...
        await asyncio.wait_for(writer.drain(), T)
        writer.write(b"GET /next HTTP/1.1\r\nhost: t\r\n\r\n")
        # ...and answers what follows it, at once (not after the body timeout, not with a 408).
        assert (await _answer(reader))[::2] == (b"HTTP/1.1 200 OK", b"/next 0")
        writer.close()


async def test_an_answer_before_a_pipelined_body_behind_a_queued_request_resumes_reading():
    # Same, with the early answer queued behind another request when its body starts arriving.
    body = b"y" * (512 * 1024)
    async with _server(InboundLimits(body_timeout=5.0, keepalive_timeout=5.0)) as port:
        reader, writer = await _connect(port)
        writer.write(b"GET /slow/0.1 HTTP/1.1\r\nhost: t\r\n\r\n"
                     b"POST /early HTTP/1.1\r\nhost: t\r\ncontent-length: %d\r\n\r\n" % len(body))
        writer.write(body + b"GET /next HTTP/1.1\r\nhost: t\r\n\r\n")
        assert (await _answer(reader))[::2] == (b"HTTP/1.1 200 OK", b"slow /slow/0.1")
        assert (await _answer(reader))[0] == b"HTTP/1.1 413 Request Entity Too Large"
        await asyncio.wait_for(writer.drain(), T)
        assert (await _answer(reader))[::2] == (b"HTTP/1.1 200 OK", b"/next 0")
        writer.close()


@pytest.mark.slow  # waits out timeouts (0.5-1.1 s): the slow step of .ci/run runs it
async def test_a_connection_whose_body_ended_after_its_answer_still_closes_when_idle():
    async with _server() as port:
        reader, writer = await _connect(port)
        writer.write(b"POST /early HTTP/1.1\r\nhost: t\r\ncontent-length: 10\r\n\r\nabcde")
        assert (await _answer(reader))[0] == b"HTTP/1.1 413 Request Entity Too Large"
        await asyncio.sleep(0.05)
        writer.write(b"fghij")  # the body ends after the answer; then nothing more is asked
        ended = time.monotonic()
        await _closed_with_nothing_more(reader)  # closed quietly after the keep-alive timeout
        assert time.monotonic() - ended < LIMITS.keepalive_timeout + 0.5
        writer.close()


@pytest.mark.slow  # waits out timeouts (0.5-1.1 s): the slow step of .ci/run runs it
async def test_a_body_that_stalls_after_its_answer_is_not_answered_a_second_time():
    async with _server() as port:
        reader, writer = await _connect(port)
        writer.write(b"POST /early HTTP/1.1\r\nhost: t\r\ncontent-length: 10\r\n\r\nabcde")  # half a body
        assert (await _answer(reader))[0] == b"HTTP/1.1 413 Request Entity Too Large"
        # The body timeout ends the connection, but the request had its answer: a 408 now would be
        # read by the client as the answer to its next request.
        await _closed_with_nothing_more(reader)
        writer.close()


async def test_expect_100_answered_with_a_final_status_closes_the_connection():
    async with _server() as port:
        reader, writer = await _connect(port)
        writer.write(b"POST /early HTTP/1.1\r\nhost: t\r\nexpect: 100-continue\r\ncontent-length: 10\r\n\r\n")
        status, head, _ = await _answer(reader)
        # No 100 was sent, so the client may never send the body (RFC 9110 section 10.1.1): were
        # the connection kept, the client's next request would be read as that body.
        assert status == b"HTTP/1.1 413 Request Entity Too Large"
        assert b"\r\nconnection: close\r\n" in head.lower()
        await _closed_with_nothing_more(reader)
        writer.close()


async def test_a_closing_answer_given_while_the_body_still_arrives_lingers_instead_of_resetting():
    """The client sends its body anyway (without waiting for 100 Continue): the server shuts its
    side after the answer but keeps reading (and dropping) for a moment, as for its refusals, so the
    client's writes meet no reset and the answer it has not read yet is not discarded."""
    async with _server() as port:
        reader, writer = await _connect(port)
        writer.write(b"POST /early HTTP/1.1\r\nhost: t\r\nexpect: 100-continue\r\ncontent-length: 1000000\r\n\r\n")
        status, head, _ = await _answer(reader)
        assert status == b"HTTP/1.1 413 Request Entity Too Large" and b"\r\nconnection: close\r\n" in head.lower()
        await _closed_with_nothing_more(reader)  # the server's side is shut
        for _ in range(10):  # the body keeps coming, and is read and dropped: no reset
            writer.write(b"x" * 4096)
            await writer.drain()
            await asyncio.sleep(0.02)
        writer.close()


async def test_expect_100_whose_body_came_anyway_keeps_the_connection():
    async with _server() as port:
        reader, writer = await _connect(port)
        writer.write(b"POST /early HTTP/1.1\r\nhost: t\r\nexpect: 100-continue\r\ncontent-length: 3\r\n\r\nabc")
        status, head, _ = await _answer(reader)
        assert status == b"HTTP/1.1 413 Request Entity Too Large" and b"connection: close" not in head.lower()
        writer.write(b"GET /next HTTP/1.1\r\nhost: t\r\n\r\n")
        assert (await _answer(reader))[::2] == (b"HTTP/1.1 200 OK", b"/next 0")
        writer.close()


# ---------------------------------------------------------------------- pipelining


async def test_pipelined_requests_larger_together_than_the_head_limit_are_all_answered():
    count = 30  # 30 heads of 150 bytes: more than max_head_bytes (4096) in one write, each one small
    async with _server() as port:
        reader, writer = await _connect(port)
        writer.write(b"".join(b"GET /p%03d HTTP/1.1\r\nhost: t\r\nx-pad: %b\r\n\r\n" % (i, b"0" * 100) for i in range(count)))
        for i in range(count):
            assert (await _answer(reader))[::2] == (b"HTTP/1.1 200 OK", b"/p%03d 0" % i)
        writer.close()


async def test_pipelined_requests_beyond_the_queue_bound_are_dropped_after_a_closing_answer():
    # One read of tiny pipelined requests must not queue thousands of them (memory per connection):
    # those within the bound are answered in order, the last with connection: close, then the close.
    async with _server() as port:
        reader, writer = await _connect(port)
        writer.write(b"GET /q%03d HTTP/1.1\r\n\r\n" % 0 + b"".join(b"GET /q%03d HTTP/1.1\r\n\r\n" % i for i in range(1, 300)))
        answered = MAX_PIPELINED + 1  # the one in flight and those waiting their turn
        for i in range(answered):
            status, head, body = await _answer(reader)
            assert (status, body) == (b"HTTP/1.1 200 OK", b"/q%03d 0" % i)
            assert (b"connection: close" in head) == (i == answered - 1), (i, head)
        await _closed_with_nothing_more(reader)


async def test_a_body_then_a_pipelined_head_across_the_head_limit_are_both_answered():
    body = b"z" * 4000  # with the next head, more than max_head_bytes in one read
    async with _server() as port:
        reader, writer = await _connect(port)
        writer.write(b"POST /a HTTP/1.1\r\nhost: t\r\ncontent-length: %d\r\n\r\n" % len(body) + body
                     + b"GET /b HTTP/1.1\r\nhost: t\r\n\r\n")
        assert (await _answer(reader))[::2] == (b"HTTP/1.1 200 OK", b"/a 4000")
        assert (await _answer(reader))[::2] == (b"HTTP/1.1 200 OK", b"/b 0")
        writer.close()


async def test_a_head_over_the_limit_after_a_pipelined_request_is_still_refused():
    # The fix above must not open a way around the head limit: the endless head after a request
    # is still refused (by a close: its refusal cannot follow an answer in flight) and never run.
    async with _server() as port:
        reader, writer = await _connect(port)
        writer.write(b"GET /a HTTP/1.1\r\nhost: t\r\n\r\nGET /b HTTP/1.1\r\nhost: t\r\nx-long: " + b"v" * 9000)
        await asyncio.sleep(0.05)
        writer.write(b"v" * 9000 + b"\r\n\r\n")
        raw = await asyncio.wait_for(reader.read(), T)
        assert b"/b" not in raw and b"HTTP/1.1 200 OK" not in raw[1:]
        writer.close()


@pytest.mark.slow  # waits out timeouts (0.5-1.1 s): the slow step of .ci/run runs it
async def test_a_pipelined_head_arriving_in_pieces_during_a_long_answer_does_not_kill_it():
    async with _server() as port:
        reader, writer = await _connect(port)
        writer.write(b"GET /slow/0.6 HTTP/1.1\r\nhost: t\r\n\r\n")
        await asyncio.sleep(0.4)  # longer than the head timeout since the connection opened
        writer.write(b"GET /b HTTP/1.1\r\n")  # the next head, cut in two
        await asyncio.sleep(0.05)
        writer.write(b"host: t\r\n\r\n")
        assert (await _answer(reader))[::2] == (b"HTTP/1.1 200 OK", b"slow /slow/0.6")
        assert (await _answer(reader))[::2] == (b"HTTP/1.1 200 OK", b"/b 0")
        writer.close()


@pytest.mark.slow  # waits out timeouts (0.5-1.1 s): the slow step of .ci/run runs it
async def test_a_pipelined_body_the_server_holds_back_is_not_timed_out_against_the_client():
    body = b"w" * (1024 * 1024)  # sent at once, but not read while the request before it is answered
    async with _server() as port:
        reader, writer = await _connect(port)
        writer.write(b"GET /slow/0.6 HTTP/1.1\r\nhost: t\r\n\r\n"
                     b"POST /b HTTP/1.1\r\nhost: t\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
        assert (await _answer(reader))[::2] == (b"HTTP/1.1 200 OK", b"slow /slow/0.6")
        assert (await _answer(reader))[::2] == (b"HTTP/1.1 200 OK", b"/b %d" % len(body))
        writer.close()


@pytest.mark.slow  # waits out timeouts (0.5-1.1 s): the slow step of .ci/run runs it
async def test_a_body_the_app_reads_slowly_is_not_timed_out_against_the_client():
    body = b"s" * (1024 * 1024)  # the app takes ~0.5 s to read it in 64 KiB sips: longer than body_timeout
    async with _server() as port:
        reader, writer = await _connect(port)
        writer.write(b"POST /sip HTTP/1.1\r\nhost: t\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
        assert (await _answer(reader))[::2] == (b"HTTP/1.1 200 OK", b"%d" % len(body))
        writer.close()


@pytest.mark.slow  # waits out timeouts (0.5-1.1 s): the slow step of .ci/run runs it
async def test_a_client_that_stops_sending_a_large_body_still_gets_a_408():
    # The server holding a body back must not switch the body timeout off for a client that stalls.
    async with _server() as port:
        reader, writer = await _connect(port)
        writer.write(b"POST /sip HTTP/1.1\r\nhost: t\r\ncontent-length: %d\r\n\r\n" % (1024 * 1024) + b"s" * 300_000)
        raw = await asyncio.wait_for(reader.read(), T + 1)
        assert raw.startswith(b"HTTP/1.1 408 "), raw[:80]
        writer.close()


@pytest.mark.slow  # waits out timeouts (0.5-1.1 s): the slow step of .ci/run runs it
@pytest.mark.parametrize("pipelined", [False, True])
async def test_an_idle_connection_after_pipelined_answers_closes_quietly(pipelined: bool):
    async with _server() as port:
        reader, writer = await _connect(port)
        requests = b"GET /a HTTP/1.1\r\nhost: t\r\n\r\n" * (3 if pipelined else 1)
        writer.write(requests)
        for _ in range(3 if pipelined else 1):
            await _answer(reader)
        await _closed_with_nothing_more(reader)
        writer.close()


@pytest.mark.slow  # waits out timeouts (0.5-1.1 s): the slow step of .ci/run runs it
@pytest.mark.parametrize(("second", "answer"), [(b"/b", b"/b 0"), (b"/slow/0.4", b"slow /slow/0.4")])
async def test_a_head_begun_while_the_server_stopped_reading_is_timed_from_when_it_reads_again(second, answer):
    async with _server() as port:
        reader, writer = await _connect(port)
        # /slow answers after 0.5 s; the second request waits its turn meanwhile, so the server stops
        # reading, with the first half of /c's head already in: the head timeout (0.3 s) must not
        # run out on it while the server does not read (nor just after it reads again, at 0.5 s).
        writer.write(b"GET /slow/0.5 HTTP/1.1\r\nhost: t\r\n\r\nGET %b HTTP/1.1\r\nhost: t\r\n\r\n" % second
                     + b"GET /c HTTP/1.1\r\n")
        await asyncio.sleep(0.65)
        writer.write(b"host: t\r\n\r\n")
        assert (await _answer(reader))[::2] == (b"HTTP/1.1 200 OK", b"slow /slow/0.5")
        assert (await _answer(reader))[::2] == (b"HTTP/1.1 200 OK", answer)
        assert (await _answer(reader))[::2] == (b"HTTP/1.1 200 OK", b"/c 0")
        writer.close()


# ---------------------------------------------------------------------- disconnects


async def test_an_app_that_answers_after_its_caller_left_logs_no_error(caplog):
    async with _server() as port:
        with caplog.at_level("INFO", logger="naftiko.http"):
            _, writer = await _connect(port)
            writer.write(b"GET /slow/0.1 HTTP/1.1\r\nhost: t\r\n\r\n")
            await asyncio.sleep(0.02)
            writer.close()  # gone before the answer; the app answers anyway, to nobody
            await asyncio.sleep(0.2)
        assert not [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]


# ---------------------------------------------------------------------- answer framing


async def test_no_100_continue_is_written_into_an_answer_already_under_way():
    async with _server() as port:
        reader, writer = await _connect(port)
        writer.write(b"POST /stream-then-read HTTP/1.1\r\nhost: t\r\nexpect: 100-continue\r\ncontent-length: 3\r\n\r\n")
        await asyncio.sleep(0.1)  # the answer has begun, without a 100: the client sends its body anyway
        writer.write(b"xyz")
        status, _, body = await _answer(reader)
        assert (status, body) == (b"HTTP/1.1 200 OK", b"abcxyz")
        await _closed_with_nothing_more(reader)  # (no 100 went out before the answer: see the test above)


async def test_a_body_sent_with_a_204_is_dropped_and_the_next_answer_is_in_step():
    async with _server() as port:
        reader, writer = await _connect(port)
        writer.write(b"GET /204-with-body HTTP/1.1\r\nhost: t\r\n\r\nGET /b HTTP/1.1\r\nhost: t\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), T)
        assert head.startswith(b"HTTP/1.1 204 No Content\r\n")
        assert (await _answer(reader))[::2] == (b"HTTP/1.1 200 OK", b"/b 0")  # not "junk" first


# ---------------------------------------------------------------------- write back-pressure


async def test_a_large_answer_to_a_client_that_does_not_read_waits_and_then_arrives_whole():
    async with _server() as port:
        reader, writer = await _connect(port)
        writer.write(b"GET /big HTTP/1.1\r\nhost: t\r\n\r\n")
        await asyncio.sleep(0.3)  # not reading: the app must be held back, not buffered without bound
        held = progress["sent"]
        assert isinstance(held, int) and held < BIG // 2, held
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), T)
        assert b"transfer-encoding: chunked" in head
        received = 0
        while True:  # then reading: every chunk arrives, and the connection is still in step
            size = int(await asyncio.wait_for(reader.readuntil(b"\r\n"), T), 16)
            chunk = await asyncio.wait_for(reader.readexactly(size + 2), T)
            if size == 0:
                break
            assert chunk[:-2] == PIECE
            received += size
        assert received == BIG and progress["returned"] is True
        writer.write(b"GET /b HTTP/1.1\r\nhost: t\r\n\r\n")
        assert (await _answer(reader))[::2] == (b"HTTP/1.1 200 OK", b"/b 0")


async def test_a_client_gone_while_a_large_answer_waits_for_it_releases_the_app():
    async with _server() as port:
        _, writer = await _connect(port)
        writer.write(b"GET /big HTTP/1.1\r\nhost: t\r\n\r\n")
        await asyncio.sleep(0.2)
        assert progress["returned"] is False  # waiting for the client to read
        writer.transport.abort()  # gone (a reset), never having read
        for _ in range(100):
            if progress["returned"]:
                break
            await asyncio.sleep(0.01)
        # the app's send returned (nothing more is written), its task ended, and it was told
        assert progress["returned"] is True and progress.get("signal") is True
