"""Resilience per consumes entry (docs/resilience.md) and the graceful lifecycle, end to end.

A scripted raw HTTP/1.1 upstream (below) answers each path from a list of acts — a status, a
delay, a body sent in two halves, a connection reset — and records hits, the most requests it
held at once, and when a caller hung up on it. naftiko runs as a subprocess against it.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
import orjson
import pytest
import pytest_asyncio
from mcp import Client
from mcp.types import CallToolResult

from conftest import FIXTURES, start_naftiko
from harness import run_cli, serve_in_memory
from naftiko.consumes.resilience import RetryPolicy, retry_after_seconds, with_retries
from naftiko.consumes.transport import UpstreamConnectionError, UpstreamResponse
from naftiko.document.loader import load
from naftiko.engine.plan import compile_plan
from naftiko.errors import LoadError

FILE = FIXTURES / "resilience.yaml"
REST, MCP = "res-rest", "res-mcp"
CONSUMES = ["retrying", "connect-only", "bounded", "capped", "timed", "plain"]


# ---------------------------------------------------------------------------- scripted upstream


@dataclass
class Act:
    status: int = 200
    body: bytes = b'{"ok": true}'
    content_type: str = "application/json"
    headers: dict = field(default_factory=dict)
    delay: float = 0.0  # before answering; a caller hanging up meanwhile is recorded
    pause: float = 0.0  # between the headers (+ first half of the body) and the rest
    reset: bool = False  # close the connection instead of answering


class RawUpstream:
    def __init__(self) -> None:
        self.url = ""
        self.scripts: dict[str, list[Act]] = {}
        self.hits: Counter[str] = Counter()
        self.in_flight = 0
        self.most_in_flight = 0
        self.hung_up: dict[str, float] = {}  # path → monotonic time the caller closed while we waited

    def script(self, path: str, *acts: Act) -> None:
        """Acts are used in order; the last one repeats."""
        self.scripts[path] = list(acts)

    def _next(self, path: str) -> Act:
        acts = self.scripts.get(path) or [Act()]
        return acts.pop(0) if len(acts) > 1 else acts[0]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                _, target, _ = line.decode("latin-1").split(" ", 2)
                headers = {}
                while (h := await reader.readline()) not in (b"\r\n", b""):
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                length = int(headers.get("content-length", 0))
                if length:
                    await reader.readexactly(length)
                path = target.split("?", 1)[0]
                self.hits[path] += 1
                act = self._next(path)
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
                try:
                    if act.reset:
                        writer.transport.abort()
                        return
                    if act.delay:
                        try:  # nothing more arrives on this connection unless the caller closes it
                            if await asyncio.wait_for(reader.read(1), act.delay) == b"":
                                self.hung_up[path] = time.monotonic()
                                return
                        except TimeoutError:
                            pass
                    extra = "".join(f"{k}: {v}\r\n" for k, v in act.headers.items())
                    head = (
                        f"HTTP/1.1 {act.status} X\r\nContent-Type: {act.content_type}\r\n"
                        f"Content-Length: {len(act.body)}\r\n{extra}\r\n"
                    ).encode()
                    half = len(act.body) // 2 if act.pause else len(act.body)
                    writer.write(head + act.body[:half])
                    await writer.drain()
                    if act.pause:
                        await asyncio.sleep(act.pause)
                        writer.write(act.body[half:])
                        await writer.drain()
                finally:
                    self.in_flight -= 1
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()


@pytest_asyncio.fixture(scope="module")
async def raw_upstream():
    fake = RawUpstream()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    fake.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    yield fake
    server.close()


@pytest.fixture(scope="module")
def blackhole():
    """A port whose accept queue is full: connecting to it hangs, so only a connect timeout ends it."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    fillers = []
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(c)
    time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    for c in fillers:
        c.close()
    srv.close()


@pytest_asyncio.fixture(scope="module")
async def served(raw_upstream, blackhole):
    n = await serve_in_memory(
        FILE, raw_upstream.url, consumes=CONSUMES, adapters=[REST, MCP],
        extra=["--base-uri", f"blackhole={blackhole}", "--timeout", "1"],
    )
    yield n
    assert await n.stop() == 0
    assert "Traceback" not in n.stderr


@pytest_asyncio.fixture(scope="module")
async def served_on_sockets(raw_upstream, blackhole):
    """The same capability on real loopback sockets (in this process), for the tests where the
    caller hangs up: a client disconnect exists only on a connection."""
    n = await serve_in_memory(
        FILE, raw_upstream.url, consumes=CONSUMES, adapters=[REST, MCP],
        extra=["--base-uri", f"blackhole={blackhole}", "--timeout", "1"], sockets=True,
    )
    yield n
    assert await n.stop() == 0
    assert "Traceback" not in n.stderr


async def _get(n, path: str, **kw) -> httpx.Response:
    async with n.http(timeout=10) as http:
        return await http.get(n.urls[REST] + path.lstrip("/"), **kw)


def _problem(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    return r.json()


# ---------------------------------------------------------------------------- retries


async def test_idempotent_get_is_retried_until_it_succeeds(served, raw_upstream):
    raw_upstream.script("/things/r1", Act(503), Act(502), Act(200, b'{"id": "r1"}'))
    r = await _get(served, "/things/r1")
    assert r.status_code == 200 and r.json() == {"id": "r1"}
    assert raw_upstream.hits["/things/r1"] == 3


async def test_exhausted_retries_relay_the_last_status_and_body(served, raw_upstream):
    raw_upstream.script("/things/r2", Act(503, b"still down", "text/plain"))
    r = await _get(served, "/things/r2")
    assert r.status_code == 503 and r.text == "still down"
    assert raw_upstream.hits["/things/r2"] == 3  # first attempt + max 2 retries


async def test_post_is_never_retried(served, raw_upstream):
    raw_upstream.script("/things/r3", Act(503, b"busy", "text/plain"), Act(200))
    async with served.http() as http:
        r = await http.post(served.urls[REST] + "things/r3", json={"a": 1})
    assert r.status_code == 503 and r.text == "busy"
    assert raw_upstream.hits["/things/r3"] == 1


@pytest.mark.parametrize("status", [500, 404, 400])
async def test_other_statuses_are_not_retried(served, raw_upstream, status):
    path = f"/things/s{status}"
    raw_upstream.script(path, Act(status, b'{"e": 1}'), Act(200))
    r = await _get(served, path)
    assert r.status_code == status and r.json() == {"e": 1}
    assert raw_upstream.hits[path] == 1


async def test_retry_after_within_max_delay_is_honoured(served, raw_upstream):
    raw_upstream.script("/things/ra0", Act(429, b"slow down", "text/plain", {"Retry-After": "0"}), Act(200))
    r = await _get(served, "/things/ra0")
    assert r.status_code == 200 and raw_upstream.hits["/things/ra0"] == 2


async def test_retry_after_beyond_max_delay_gives_up_at_once(served, raw_upstream):
    raw_upstream.script("/things/ra9", Act(429, b"come back later", "text/plain", {"Retry-After": "9"}), Act(200))
    started = time.monotonic()
    r = await _get(served, "/things/ra9")
    assert time.monotonic() - started < 1
    assert r.status_code == 429 and r.text == "come back later" and r.headers["retry-after"] == "9"
    assert raw_upstream.hits["/things/ra9"] == 1


async def test_connection_reset_is_retried(served, raw_upstream):
    raw_upstream.script("/things/reset", Act(reset=True), Act(200, b'{"after": "reset"}'))
    r = await _get(served, "/things/reset")
    assert r.status_code == 200 and r.json() == {"after": "reset"}
    assert raw_upstream.hits["/things/reset"] == 2


async def test_connection_reset_without_retries_is_a_502(served, raw_upstream):
    # The HTTP client itself resends an idempotent request once when the connection drops
    # (RFC 9112 §9.3.1); without a retries policy that is all.
    raw_upstream.script("/things/reset-plain", Act(reset=True), Act(reset=True), Act(200))
    body = _problem(await _get(served, "/plain/reset-plain"), 502)
    assert "failed" in body["detail"] and raw_upstream.hits["/things/reset-plain"] == 2


async def test_post_is_not_resent_after_a_reset(served, raw_upstream):
    raw_upstream.script("/things/reset-post", Act(reset=True), Act(200))
    async with served.http() as http:
        r = await http.post(served.urls[REST] + "things/reset-post", json={"a": 1})
    _problem(r, 502)
    assert raw_upstream.hits["/things/reset-post"] == 1


async def test_when_connect_only_leaves_statuses_alone(served, raw_upstream):
    raw_upstream.script("/things/co", Act(503, b"x", "text/plain"), Act(200))
    r = await _get(served, "/connect-only/co")
    assert r.status_code == 503 and raw_upstream.hits["/things/co"] == 1
    raw_upstream.script("/things/co-reset", Act(reset=True), Act(reset=True), Act(200, b'{"n": 3}'))
    r = await _get(served, "/connect-only/co-reset")
    assert r.status_code == 200 and raw_upstream.hits["/things/co-reset"] == 3


async def test_mcp_tool_is_retried_too(served, raw_upstream):
    raw_upstream.script("/things/m1", Act(504), Act(200, b'{"id": "m1"}'))
    async with served.mcp(served.urls[MCP], mode="auto") as client:
        result = await client.call_tool("get-thing", {"id": "m1"})
    assert not result.is_error and result.structured_content == {"id": "m1"}
    assert raw_upstream.hits["/things/m1"] == 2


# ---------------------------------------------------------------------------- timeouts


async def test_read_timeout_between_bytes(served, raw_upstream):
    raw_upstream.script("/slow/drip", Act(200, b'{"long": "' + b"x" * 50 + b'"}', pause=2.0))
    started = time.monotonic()
    body = _problem(await _get(served, "/timed/drip"), 504)
    assert "sent nothing for 1.5s" in body["detail"] and time.monotonic() - started < 2.0


async def test_entry_total_overrides_the_default_timeout(served, raw_upstream):
    # --timeout 1 is the default total; the 'timed' entry sets 2.5 s, so a 1.2 s answer arrives.
    # The two calls go to different entries (and paths): made at once, they wait together.
    raw_upstream.script("/slow/late", Act(200, b'{"late": true}', delay=1.2))
    raw_upstream.script("/things/late", Act(200, b"{}", delay=1.2))
    r, plain = await asyncio.gather(_get(served, "/timed/late"), _get(served, "/plain/late"))
    assert r.status_code == 200 and r.json() == {"late": True}
    body = _problem(plain, 504)
    assert "within 1s" in body["detail"]


async def test_connect_timeout_is_retried_then_504(served):
    started = time.monotonic()
    body = _problem(await _get(served, "/blackhole/x"), 504)
    elapsed = time.monotonic() - started
    assert "did not accept a connection within 0.3s" in body["detail"] and "after 2 attempts" in body["detail"]
    assert 0.6 <= elapsed < 2.5


# ---------------------------------------------------------------------------- concurrency


async def test_concurrency_bound_queues_then_answers_busy(served, raw_upstream):
    raw_upstream.script("/slow/c1", Act(200, b'{"slow": 1}', delay=0.8))
    raw_upstream.most_in_flight = 0
    async with served.mcp(served.urls[MCP], mode="legacy") as client:
        first = asyncio.create_task(_get(served, "/slow/c1"))
        await asyncio.sleep(0.2)
        second, result = await asyncio.gather(_get(served, "/slow/c1"), client.call_tool("get-slow", {"id": "c1"}))
    body = _problem(second, 503)
    assert "busy" in body["detail"] and body["title"] == "Service unavailable"
    assert result.is_error and "busy" in result.content[0].text
    assert (await first).status_code == 200
    assert raw_upstream.most_in_flight == 1


async def test_queued_call_runs_when_a_slot_frees_in_time(served, raw_upstream):
    raw_upstream.script("/slow/c2", Act(200, b'{"slow": 2}', delay=0.1))
    raw_upstream.most_in_flight = 0
    answers = await asyncio.gather(*(_get(served, "/slow/c2") for _ in range(2)))
    assert [a.status_code for a in answers] == [200, 200]
    assert raw_upstream.hits["/slow/c2"] == 2 and raw_upstream.most_in_flight == 1


# ---------------------------------------------------------------------------- response size cap


async def test_body_over_the_cap_is_a_502_over_rest(served, raw_upstream):
    raw_upstream.script("/big/b1", Act(200, b"a" * 5000, "text/plain"))
    body = _problem(await _get(served, "/big/b1"), 502)
    assert "larger than 1000 bytes" in body["detail"] and "maxResponseBytes" in body["detail"]
    assert "aaaa" not in str(body)


async def test_body_at_the_cap_passes_whole(served, raw_upstream):
    raw_upstream.script("/big/b2", Act(200, b"b" * 1000, "text/plain"))
    r = await _get(served, "/big/b2")
    assert r.status_code == 200 and r.text == "b" * 1000


async def test_mcp_text_over_the_cap_is_truncated_with_a_note(served, raw_upstream):
    text = ("é" * 499 + "z" * 3000).encode()  # 998 bytes of é, then the cap takes two z
    raw_upstream.script("/big/b3", Act(200, text, "text/plain; charset=utf-8"))
    async with served.mcp(served.urls[MCP], mode="auto") as client:
        result = await client.call_tool("get-big", {"id": "b3"})
    assert not result.is_error
    first, note = result.content
    assert first.text == "é" * 499 + "zz" and len(first.text.encode()) == 1000
    assert "truncated" in note.text and "1000 bytes" in note.text


async def test_mcp_cut_inside_a_character_keeps_whole_characters(served, raw_upstream):
    text = ("z" + "é" * 2000).encode()  # byte 1000 is the first half of an 'é'
    raw_upstream.script("/big/b4", Act(200, text, "text/plain; charset=utf-8"))
    async with served.mcp(served.urls[MCP], mode="legacy") as client:
        result = await client.call_tool("get-big", {"id": "b4"})
    assert not result.is_error and result.content[0].text == "z" + "é" * 499


async def test_mcp_shaped_body_over_the_cap_is_an_error(served, raw_upstream):
    raw_upstream.script("/big/b5", Act(200, orjson.dumps({"size": "x" * 3000})))
    async with served.mcp(served.urls[MCP], mode="auto") as client:
        result = await client.call_tool("get-big-shaped", {"id": "b5"})
    assert result.is_error and "larger than 1000 bytes" in result.content[0].text


# ---------------------------------------------------------------------------- client disconnects


@pytest.mark.parametrize("route", ["/plain/gone", "/fwd/things/gone"])
async def test_client_disconnect_cancels_the_upstream_call(served_on_sockets, raw_upstream, route):
    served = served_on_sockets
    raw_upstream.hung_up.pop("/things/gone", None)
    raw_upstream.script("/things/gone", Act(200, b"{}", delay=0.9))  # under --timeout 1
    async with served.http(timeout=0.2) as http:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await http.get(served.urls[REST] + route.lstrip("/"))
    for _ in range(40):
        if "/things/gone" in raw_upstream.hung_up:
            break
        await asyncio.sleep(0.02)
    assert "/things/gone" in raw_upstream.hung_up, "naftiko kept the upstream call after its caller left"
    assert raw_upstream.hung_up["/things/gone"] - started < 0.7
    r = await _get(served, "/plain/after")  # the server is fine afterwards
    assert r.status_code == 200


async def test_mcp_client_disconnect_cancels_the_upstream_call(served_on_sockets, raw_upstream):
    served = served_on_sockets
    raw_upstream.hung_up.pop("/things/mcp-gone", None)
    raw_upstream.script("/things/mcp-gone", Act(200, b"{}", delay=2.5))  # under the entry's total of 3
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "get-thing", "arguments": {"id": "mcp-gone"}}}
    async with served.http(timeout=0.2) as http:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await http.post(served.urls[MCP], json=call, headers={"accept": "application/json, text/event-stream"})
    for _ in range(40):
        if "/things/mcp-gone" in raw_upstream.hung_up:
            break
        await asyncio.sleep(0.02)
    assert raw_upstream.hung_up.get("/things/mcp-gone", 99) - started < 0.7
    async with served.mcp(served.urls[MCP], mode="auto") as client:  # and the adapter is fine afterwards
        assert not (await client.call_tool("get-thing", {"id": "after"})).is_error


# ---------------------------------------------------------------------------- graceful lifecycle


async def _reached_upstream(raw_upstream, path: str, within: float = 10.0) -> None:
    """Wait until the request for ``path`` has reached the upstream (it is then in flight in naftiko)."""
    deadline = time.monotonic() + within
    while raw_upstream.hits[path] == 0:
        assert time.monotonic() < deadline, f"no request for {path} reached the upstream"
        await asyncio.sleep(0.01)


async def test_sigterm_drains_in_flight_requests_and_exits_0(raw_upstream):
    n = start_naftiko(FILE, raw_upstream.url, consumes=CONSUMES, adapters=[REST, MCP], extra=["--grace", "5"])
    raw_upstream.hits.pop("/things/drain", None)
    raw_upstream.script("/things/drain", Act(200, b'{"drained": true}', delay=1.0))
    in_flight = asyncio.create_task(_get(n, "/plain/drain"))
    await _reached_upstream(raw_upstream, "/things/drain")
    n.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 5
    while True:  # soon no longer accepting (a request accepted meanwhile is answered at once)
        try:
            await _get(n, "/plain/new")
        except httpx.ConnectError:
            break
        except (httpx.ReadError, httpx.RemoteProtocolError):
            # accepted by the kernel just before the listener closed, then closed unanswered as the
            # server stops (as any server does with a connection that has sent no request yet)
            break
        assert time.monotonic() < deadline, "still accepting connections 5 s after SIGTERM"
        await asyncio.sleep(0.02)
    assert not in_flight.done()  # refused while the request in flight was still being drained
    r = await in_flight
    assert r.status_code == 200 and r.json() == {"drained": True}
    assert await asyncio.to_thread(n.proc.wait, 10) == 0
    assert "Traceback" not in n.stderr


@dataclass
class CutOff:
    """What the callers in flight got when SIGTERM stopped a naftiko with ``--grace 0.2``."""

    code: int
    seconds: float  # from SIGTERM to the exit
    rest: httpx.Response
    mcp: dict[str, CallToolResult]  # era → the tool call's result
    stderr: str


@pytest_asyncio.fixture(scope="module")
async def cut_off(raw_upstream):
    """One naftiko with ``--grace 0.2``, and when SIGTERM arrives three calls in flight that the
    upstream would hold for 20 s: a REST request and an MCP tool call in each era. One process
    for the three tests below (each checks what its caller got): starting one takes a second."""
    n = start_naftiko(FILE, raw_upstream.url, consumes=CONSUMES, adapters=[REST, MCP],
                      extra=["--grace", "0.2", "--timeout", "30"])
    paths = {"rest": "/things/stuck", "legacy": "/things/stuck-mcp-legacy", "auto": "/things/stuck-mcp-auto"}
    for path in paths.values():
        raw_upstream.hits.pop(path, None)
        raw_upstream.script(path, Act(200, b"{}", delay=20))

    async def call(mode):
        async with Client(n.urls[MCP], mode=mode) as client:
            return await client.call_tool("get-thing", {"id": paths[mode].rsplit("/", 1)[1]})

    try:
        rest = asyncio.create_task(_get(n, "/plain/stuck"))
        mcp = {mode: asyncio.create_task(call(mode)) for mode in ("legacy", "auto")}
        for path in paths.values():
            await _reached_upstream(raw_upstream, path)
        started = time.monotonic()
        n.proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(n.proc.wait, 10)
        seconds = time.monotonic() - started
        results = {mode: await asyncio.wait_for(task, 10) for mode, task in mcp.items()}
        yield CutOff(code, seconds, await asyncio.wait_for(rest, 10), results, n.stderr)
    finally:
        if n.proc.poll() is None:
            n.proc.kill()
            n.proc.wait()


async def test_grace_bounds_the_drain(cut_off):
    assert cut_off.code == 0 and cut_off.seconds < 3
    body = _problem(cut_off.rest, 503)  # stopped, and told so
    assert "shutting down" in body["detail"]
    assert "Traceback" not in cut_off.stderr


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_grace_bounds_an_mcp_call_which_still_gets_a_result(cut_off, mode):
    """An MCP tool call cut off by --grace is an isError result (both eras), not a plain-text 500."""
    assert cut_off.code == 0
    result = cut_off.mcp[mode]
    assert result.is_error and "shutting down" in result.content[0].text
    assert "Traceback" not in cut_off.stderr


def test_grace_must_not_be_negative():
    proc = run_cli(["serve", str(FILE), "--grace", "-1"])  # the command's entry point, in this process
    assert proc.returncode == 2 and "--grace" in proc.stderr


# ---------------------------------------------------------------------------- loading


def _write(tmp_path, resilience: str):
    text = FILE.read_text().replace(
        "    resilience:\n      timeouts: {total: 3}\n      retries: {max: 2, backoff: 0.05, maxDelay: 0.5}\n",
        resilience,
        1,
    )
    path = tmp_path / "cap.yaml"
    path.write_text(text)
    return path


def test_resilience_is_silent_in_tolerant_mode_and_reported_under_strict():
    loaded = load(str(FILE))
    assert not [w for w in loaded.warnings if "resilience" in w.message]
    with pytest.raises(LoadError) as err:
        load(str(FILE), strict=True)
    assert any("unknown field 'resilience'" in str(d) for d in err.value.diagnostics)


@pytest.mark.parametrize(
    "resilience, message",
    [
        ("    resilience:\n      maxConcurency: 3\n", "'maxConcurency'"),
        ("    resilience:\n      retries: {when: [500]}\n", "got 500"),
        ("    resilience:\n      timeouts: {connect: 0}\n", "greater than 0"),
        ("    resilience:\n      maxResponseBytes: abc\n", "maxResponseBytes"),
    ],
)
def test_bad_resilience_settings_are_load_errors(tmp_path, resilience, message):
    with pytest.raises(LoadError) as err:
        load(str(_write(tmp_path, resilience)))
    text = str(err.value)
    assert message in text and ":" in text.splitlines()[0] and "Traceback" not in text


def test_settings_reach_the_transport(tmp_path):
    # observe=False: the aiohttp transports as built; this module's served fixture has request
    # logging on, and a plan compiled meanwhile is built with observed transports around them
    plan = compile_plan(load(str(FILE)), observe=False)
    limits = {ns: next(iter(ops.values())).transport._limits for ns, ops in plan.consumers.items()}
    assert limits["retrying"].retry.max == 2 and limits["retrying"].retry.statuses == {429, 502, 503, 504}
    assert limits["connect-only"].retry.connect and not limits["connect-only"].retry.statuses
    assert limits["bounded"].max_concurrency == 1 and limits["bounded"].queue_timeout == 0.3
    assert limits["capped"].max_response_bytes == 1000
    assert (limits["timed"].read, limits["timed"].total) == (1.5, 2.5)
    assert limits["plain"].retry is None and limits["plain"].max_response_bytes == 16 * 1024 * 1024  # the default cap


# ---------------------------------------------------------------------------- retry policy (units)


POLICY = RetryPolicy(max=3, backoff=0.1, max_delay=0.3, statuses=frozenset({503}), connect=True)


def test_backoff_grows_with_jitter_and_is_capped():
    for retry, step in [(0, 0.1), (1, 0.2), (2, 0.3), (5, 0.3)]:
        assert POLICY.backoff_delay(retry, rand=lambda: 0.0) == pytest.approx(step / 2)
        assert POLICY.backoff_delay(retry, rand=lambda: 1.0) == pytest.approx(step)


def test_retry_after_forms():
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


class _Clock:
    def __init__(self):
        self.now = 0.0
        self.waits: list[float] = []

    async def sleep(self, seconds):
        self.waits.append(seconds)
        self.now += seconds


async def test_no_wait_crosses_the_deadline():
    clock = _Clock()
    calls = []

    async def attempt(deadline):
        calls.append(clock.now)
        return UpstreamResponse(503, {}, b"")

    response = await with_retries(attempt, POLICY, 0.2, (), clock=lambda: clock.now, sleep=clock.sleep)
    assert response.status == 503
    assert clock.now < 0.2 and len(calls) == len(clock.waits) + 1


async def test_connection_errors_raise_after_the_last_attempt_naming_the_count():
    clock = _Clock()

    async def attempt(deadline):
        raise UpstreamConnectionError("upstream h refused or could not be reached")

    with pytest.raises(UpstreamConnectionError) as err:
        await with_retries(attempt, POLICY, 100, (UpstreamConnectionError,), clock=lambda: clock.now, sleep=clock.sleep)
    assert "(after 4 attempts)" in err.value.detail and len(clock.waits) == 3
