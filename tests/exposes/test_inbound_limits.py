"""Inbound limits (naftiko.runtime.httpserver), in process: a uvicorn server with naftiko's protocol on
loopback, driven with raw sockets because the attacks are about bytes and timing, not requests.

Each test sends what the audit sent (endless header value, endless header lines, long URL,
silence, slow body, too many connections) and asserts the answer, that the connection is
closed and that the server still answers an ordinary request at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import orjson
import pytest

from loopback import body_size, with_limits
from naftiko.exposes.http.limits import InboundLimits
from naftiko.runtime.httpserver import ConnectionBudget, connection_cap

LIMITS = InboundLimits(
    max_head_bytes=4096, max_url_bytes=1024, max_headers=20, head_timeout=0.5, body_timeout=0.5,
    keepalive_timeout=0.5, max_connections=4,
)


async def _app(scope, receive, send) -> None:
    """Reads the whole body, answers its length."""
    assert scope["type"] == "http"
    size = await body_size(receive)
    if size is None:
        return
    body = orjson.dumps({"received": size, "path": scope["path"]})
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


@contextlib.asynccontextmanager
async def _server(limits: InboundLimits = LIMITS) -> AsyncIterator[tuple[int, ConnectionBudget]]:
    budget = ConnectionBudget(limits.max_connections)
    async with with_limits(_app, limits, budget) as port:
        yield port, budget


async def _read_all(reader: asyncio.StreamReader, timeout: float = 3.0) -> bytes:  # noqa: ASYNC109
    """Everything until the server closes the connection (fails if it does not within ``timeout``)."""
    return await asyncio.wait_for(reader.read(), timeout)


def _status(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


def _problem(raw: bytes) -> dict:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"content-type: application/problem+json" in head.lower()
    assert b"connection: close" in head.lower()
    return orjson.loads(body)


async def _ok(port: int) -> None:
    """An ordinary request is answered promptly."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /ok HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\nconnection: close\r\n\r\nabc")
    raw = await _read_all(reader, 2.0)
    writer.close()
    assert _status(raw) == 200 and raw.endswith(b'{"received":3,"path":"/ok"}')


async def test_endless_header_value_is_refused_with_431_at_the_head_limit():
    async with _server() as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nhost: x\r\nx-long: ")
        sent = 0
        with contextlib.suppress(ConnectionError):
            for _ in range(200):  # 200 × 1 KiB: far past the 4 KiB limit if nothing stopped it
                writer.write(b"a" * 1024)
                await writer.drain()
                sent += 1024
        raw = await _read_all(reader)
        assert _status(raw) == 431
        assert "4096" in _problem(raw)["detail"]
        await _ok(port)


async def test_endless_header_lines_are_refused_by_count():
    async with _server() as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\n" + b"".join(b"x-%d: 1\r\n" % i for i in range(40)))
        raw = await _read_all(reader)
        assert _status(raw) == 431
        assert "20 header lines" in _problem(raw)["detail"]
        await _ok(port)


async def test_a_long_url_is_refused_with_414():
    async with _server() as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nhost: x\r\n\r\n")
        raw = await _read_all(reader)
        assert _status(raw) == 414
        assert "1024" in _problem(raw)["detail"]


async def test_an_endless_url_is_refused_with_414_before_the_head_limit():
    async with _server() as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        with contextlib.suppress(ConnectionError):
            writer.write(b"GET /")
            for _ in range(20):
                writer.write(b"a" * 512)
                await writer.drain()
        raw = await _read_all(reader)
        assert _status(raw) == 414


async def test_a_head_that_never_ends_gets_408_after_the_header_timeout():
    async with _server() as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n")  # and nothing more: slowloris
        raw = await _read_all(reader, 2.0)
        assert _status(raw) == 408
        assert "did not arrive within 0.5s" in _problem(raw)["detail"]


async def test_a_silent_connection_is_closed_after_the_header_timeout():
    async with _server() as (port, budget):
        reader, _writer = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.sleep(0.05)
        assert budget.active == 1
        assert await _read_all(reader, 2.0) == b""  # closed without a word: nothing was asked
        await asyncio.sleep(0.05)
        assert budget.active == 0


async def test_a_slow_body_gets_408_after_the_body_timeout(monkeypatch):
    # the refusal lingers until the server closes (this client never does): 0.3 s, not the 1 s default
    monkeypatch.setattr("naftiko.runtime.httpserver.LINGER_SECONDS", 0.3)
    async with _server() as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nab")
        raw = await _read_all(reader, 2.0)
        assert _status(raw) == 408
        assert "body did not arrive" in _problem(raw)["detail"]
        await _ok(port)


async def test_an_idle_kept_alive_connection_is_closed_after_the_keepalive_timeout():
    async with _server() as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /a HTTP/1.1\r\nhost: x\r\n\r\n")
        raw = await _read_all(reader, 2.0)  # the answer, then the close once idle for 0.5 s
        assert _status(raw) == 200 and raw.endswith(b'"path":"/a"}')


async def test_connections_beyond_the_cap_get_503_at_once_and_the_cap_frees_up(monkeypatch):
    monkeypatch.setattr("naftiko.runtime.httpserver.LINGER_SECONDS", 0.3)  # the mechanism, not the 1 s
    async with _server() as (port, budget):
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(4)]
        await asyncio.sleep(0.05)
        assert budget.active == 4
        reader, _writer = await asyncio.open_connection("127.0.0.1", port)
        raw = await _read_all(reader, 1.0)
        assert _status(raw) == 503
        assert b"retry-after: 1" in raw.lower()
        assert "4 at once" in _problem(raw)["detail"]
        for _, w in held:
            w.close()
        await asyncio.sleep(0.1)
        assert budget.active == 0
        await _ok(port)
        # the refused connection lingered for the client to read its 503, then the server closed it
        # (the client never does): within the linger time, polled with a margin for a loaded machine
        deadline = asyncio.get_running_loop().time() + 3.0
        while budget.lingering and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        assert budget.lingering == 0


async def test_bad_http_is_a_400_problem():
    async with _server() as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nbad\x0bname: 1\r\n\r\n")
        raw = await _read_all(reader)
        assert _status(raw) == 400
        assert _problem(raw)["detail"] == "the request is not valid HTTP/1.1"


async def test_a_websocket_upgrade_is_answered_as_plain_http_and_closed(caplog):
    async with _server() as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"GET /ws HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\n"
            b"sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        with caplog.at_level("INFO", logger="naftiko.http"):
            raw = await _read_all(reader)
        assert _status(raw) == 200 and raw.endswith(b'"path":"/ws"}')
        assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR") or r.exc_info]


async def test_requests_within_the_limits_pass_including_pipelined_ones():
    async with _server() as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        headers = b"".join(b"x-%d: %s\r\n" % (i, b"v" * 100) for i in range(15))
        writer.write(b"GET /1 HTTP/1.1\r\nhost: x\r\n" + headers + b"\r\n" + b"GET /2 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        raw = await _read_all(reader)
        assert raw.count(b"HTTP/1.1 200 OK") == 2 and b'"path":"/2"' in raw


async def test_refused_connections_linger_only_up_to_a_bound(monkeypatch):
    monkeypatch.setattr("naftiko.runtime.httpserver.LINGER_SLOTS", 2)
    limits = InboundLimits(max_connections=1, head_timeout=5)
    async with _server(limits) as (port, budget):
        held = await asyncio.open_connection("127.0.0.1", port)
        refused = [await asyncio.open_connection("127.0.0.1", port) for _ in range(5)]
        answers = [await _read_all(reader, 2.0) for reader, _ in refused]
        assert all(_status(a) == 503 for a in answers)  # every one got its answer
        assert budget.lingering == 2  # but only two hold a descriptor for the linger
        held[1].close()
        for _, w in refused:
            w.close()


@pytest.mark.parametrize(("requested", "fds", "cap"), [(1000, 20000, 1000), (1000, 1024, 480), (10, 1024, 10), (1000, 10, 1)])
def test_the_connection_cap_fits_the_open_file_limit(requested: int, fds: int, cap: int):
    assert connection_cap(requested, fds) == cap


# ---------------------------------------------------------------- the flags, in a served process


def test_the_flags_reach_every_listener_and_the_control_port_keeps_its_own_budget(tmp_path):
    from urllib.parse import urlsplit

    from conftest import FIXTURES, start_naftiko

    n = start_naftiko(
        FIXTURES / "observability.yaml", "http://127.0.0.1:9", consumes=["up"],
        adapters=["keeper-rest", "keeper-mcp", "control"],
        extra=["--max-headers", "5", "--max-connections", "2", "--header-timeout", "0.5", "--log-level", "info"],
        env={"LIGHTHOUSE_TOKEN": "t0ken-for-limits"},
    )
    try:
        rest = urlsplit(n.urls["keeper-rest"])
        control = urlsplit(n.urls["control"])
        socks = []

        def raw(url, payload: bytes) -> bytes:
            s = socket.create_connection((url.hostname, url.port), timeout=3)
            socks.append(s)
            s.sendall(payload)
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks)

        headers = b"".join(b"x-%d: 1\r\n" % i for i in range(6))
        assert _status(raw(rest, b"GET /lamps/1 HTTP/1.1\r\nhost: x\r\n" + headers + b"\r\n")) == 431
        held = [socket.create_connection((rest.hostname, rest.port)) for _ in range(2)]
        assert _status(raw(rest, b"GET /lamps/1 HTTP/1.1\r\nhost: x\r\n\r\n")) == 503  # the REST/MCP budget is full
        assert _status(raw(control, b"GET /health/live HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")) == 200
        for s in held + socks:
            s.close()
    finally:
        assert n.stop() == 0
    assert "Traceback" not in n.stderr and "431" in n.stderr  # refusals are logged (INFO), not as errors


def test_non_positive_limits_are_a_usage_error():
    from harness import run_cli

    ran = run_cli(["serve", "whatever.yaml", "--max-headers", "0"])
    assert ran.returncode == 2 and "--max-headers" in ran.stderr
