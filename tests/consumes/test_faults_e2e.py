"""Fault injection, end to end: every way an upstream can misbehave, through every way a call
reaches it — REST simple (as it came, and shaped), REST steps, REST forward, and the MCP tools
for the same three units in both protocol eras.

The upstream is tests/fault_upstream.py, a raw socket server that takes the fault from the
path (``/f/<fault>/<id>``): statuses, 204, a hang, resets and closes before and during the
answer, a Content-Length it does not keep, a non-HTTP reply, bad chunking, malformed JSON, an
8 MiB body, binary bodies with and without a JSON type, and a slow drip (in time and too slow).
For each fault the exact REST answer (status, type, body or problem detail) and the exact MCP
result are checked; afterwards a normal call still succeeds, every connection the upstream held
open for a hang has been closed by naftiko, and at the end naftiko exits 0 with no traceback.

Resilience settings (retries, caps, concurrency, read timeouts) are in test_resilience_e2e.py;
engine errors on bad input in test_errors_e2e.py and test_hostile_input_e2e.py. This module runs
entries without ``resilience``: what every capability gets by default.
"""

from __future__ import annotations

import asyncio
import base64
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
import pytest_asyncio

from conftest import FIXTURES, start_naftiko
from fault_upstream import BINARY, FaultUpstream, error_body, huge_body, ok_body
from harness import serve_in_memory

FILE = FIXTURES / "faults.yaml"
REST, MCP = "faults-rest", "faults-mcp"
TIMEOUT = 0.6
ROOMY_TIMEOUT = 3.0
ID = "c-7"
ROUTES = ("simple", "shaped", "steps", "fwd/f")  # REST: relayed, shaped, two-step orchestration, forward
TOOLS = ("simple", "shaped", "steps")
ERAS = ("legacy", "auto")  # handshake era (2025-11-25) and the 2026-07-28 envelope


@pytest_asyncio.fixture(scope="module")
async def faulty():
    upstream = await FaultUpstream().start()
    yield upstream
    await upstream.stop()


@pytest_asyncio.fixture(scope="module")
async def served(faulty):
    n = await serve_in_memory(FILE, faulty.url, consumes=["up"], adapters=[REST, MCP], extra=["--timeout", str(TIMEOUT)])
    yield n
    assert await n.stop() == 0
    assert "Traceback" not in n.stderr, n.stderr
    assert "the engine failed" not in n.stderr


@pytest.fixture(scope="module")
def served_process(faulty):
    """A naftiko process, for the tests whose answers must arrive within the 0.6 s timeout while
    the load is high (8 MiB bodies, a burst of forty faults, a slow drip through two steps): in
    memory naftiko would share one event loop with the client and the upstream and could miss
    it; the timing of those answers needs naftiko on its own core."""
    n = start_naftiko(FILE, faulty.url, consumes=["up"], adapters=[REST, MCP], extra=["--timeout", str(TIMEOUT)])
    yield n
    assert n.stop() == 0
    assert "Traceback" not in n.stderr, n.stderr


@pytest.fixture(scope="module")
def served_roomy(faulty):
    """A naftiko process with a generous upstream timeout, for the tests about size and
    concurrency rather than time (8 MiB bodies, the burst): the fault upstream shares the test's
    event loop with a client parsing 8 MiB answers, so on a busy machine its writes could slip past
    0.6 s and turn an answer the test is not about into a 504."""
    n = start_naftiko(FILE, faulty.url, consumes=["up"], adapters=[REST, MCP], extra=["--timeout", str(ROOMY_TIMEOUT)])
    yield n
    assert n.stop() == 0
    assert "Traceback" not in n.stderr, n.stderr


@pytest.fixture(scope="module")
def host(faulty) -> str:
    return urlsplit(faulty.url).netloc


# ---------------------------------------------------------------------------- expectations


OK = orjson.loads(ok_body(ID))
SHAPED = {"name": "Acme"}
STEPS = {"id": ID, "name": "Acme"}


def timeout_detail(host: str) -> str:
    return f"upstream {host} did not answer within {TIMEOUT:g}s"


def failed_detail(host: str, exc: str) -> str:
    return f"upstream {host} failed: {exc}"


def not_json(ctype: str) -> str:
    return f"upstream answered {ctype} that is not JSON; cannot apply outputParameters"


# fault → the one engine problem (status, detail) every route and tool reports for it
ENGINE_FAILURES = {
    "hang": (504, timeout_detail),
    "stall": (504, timeout_detail),  # headers and half the body, then silence
    "drip-4-300": (504, timeout_detail),  # four pieces 300 ms apart: past the 0.6 s total
    "reset-before": (502, lambda h: failed_detail(h, "ServerDisconnectedError")),
    "close-before": (502, lambda h: failed_detail(h, "ServerDisconnectedError")),
    "reset-mid": (502, lambda h: failed_detail(h, "ClientPayloadError")),
    "truncated": (502, lambda h: failed_detail(h, "ClientPayloadError")),
    "garbage": (502, lambda h: failed_detail(h, "ClientResponseError")),
    "bad-chunked": (502, lambda h: failed_detail(h, "ClientResponseError")),
}


# ---------------------------------------------------------------------------- helpers


async def _rest_all(n, fault: str) -> dict[str, httpx.Response]:
    async with n.http(timeout=10) as http:
        answers = await asyncio.gather(*(http.get(f"{n.urls[REST]}{route}/{fault}/{ID}") for route in ROUTES))
    return dict(zip(ROUTES, answers, strict=True))


async def _mcp_all(n, fault: str) -> dict[tuple[str, str], object]:
    async with n.mcp(n.urls[MCP], mode="legacy") as legacy, n.mcp(n.urls[MCP], mode="auto") as modern:
        clients = {"legacy": legacy, "auto": modern}
        keys = [(era, tool) for era in ERAS for tool in TOOLS]
        results = await asyncio.gather(*(clients[era].call_tool(tool, {"fault": fault, "id": ID}) for era, tool in keys))
    return dict(zip(keys, results, strict=True))


def _problem(r: httpx.Response, status: int, detail: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body == {"type": "about:blank", "title": body["title"], "status": status, "detail": detail}
    assert body["title"] == {502: "Bad gateway", 504: "Gateway timeout"}[status]


def _relayed(r: httpx.Response, status: int, body: bytes, ctype: str | None = "application/json") -> None:
    assert r.status_code == status
    assert r.content == body
    assert r.headers.get("content-type") == ctype


def _error(result, text: str) -> None:
    assert result.is_error, result
    assert [block.text for block in result.content] == [text]
    assert result.structured_content is None


def _json_result(result, value, era: str) -> None:
    assert not result.is_error, result.content
    assert [orjson.loads(block.text) for block in result.content] == [value]
    structured = value if era == "auto" or isinstance(value, dict) else None  # handshake era: objects only
    assert result.structured_content == structured


async def _assert_healthy(n, faulty) -> None:
    """A normal call answers, and naftiko let go of every connection a hang kept open."""
    async with n.http(timeout=5) as http:
        r = await http.get(f"{n.urls[REST]}simple/ok/after")
    assert r.status_code == 200 and r.json()["id"] == "after"
    async with n.mcp(n.urls[MCP], mode="auto") as client:
        assert not (await client.call_tool("shaped", {"fault": "ok", "id": "after"})).is_error
    for _ in range(100):
        if faulty.held == 0:
            break
        await asyncio.sleep(0.01)
    assert faulty.held == 0, "naftiko kept an upstream connection open after giving up on it"
    assert n.alive


# ---------------------------------------------------------------------------- tests


@pytest.mark.parametrize("fault", list(ENGINE_FAILURES))
async def test_connection_and_timeout_faults_are_engine_problems(served, faulty, host, fault):
    status, detail = ENGINE_FAILURES[fault]
    rest, mcp = await asyncio.gather(_rest_all(served, fault), _mcp_all(served, fault))
    for r in rest.values():
        _problem(r, status, detail(host))
    for result in mcp.values():
        _error(result, detail(host))
    await _assert_healthy(served, faulty)


@pytest.mark.parametrize("status", [400, 404, 429, 500, 502, 503])
async def test_upstream_statuses_keep_status_and_body(served, faulty, status):
    rest, mcp = await asyncio.gather(_rest_all(served, str(status)), _mcp_all(served, str(status)))
    for r in rest.values():  # the steps unit fails with its call step's status (reference §5)
        _relayed(r, status, error_body(status, ID))
    text = f"upstream returned HTTP {status}: " + error_body(status, ID).decode()
    for result in mcp.values():
        _error(result, text)
    await _assert_healthy(served, faulty)


async def test_204_is_an_empty_success(served, faulty):
    rest, mcp = await asyncio.gather(_rest_all(served, "204"), _mcp_all(served, "204"))
    for route in ("simple", "shaped", "fwd/f"):
        _relayed(rest[route], 204, b"", None)
    # Steps: the call step's output is null, and the mappings still build the result.
    assert rest["steps"].status_code == 200 and rest["steps"].json() == {"id": ID, "name": None}
    for era in ERAS:
        for tool in ("simple", "shaped"):
            result = mcp[era, tool]
            assert not result.is_error and result.content == [] and result.structured_content is None
        _json_result(mcp[era, "steps"], {"id": ID, "name": None}, era)
    await _assert_healthy(served, faulty)


@pytest.mark.parametrize("fault", ["ok", "drip"])
async def test_success_and_slow_drip_within_the_timeout(served_process, faulty, fault):
    served = served_process  # a drip of 2 × 200 ms inside a 0.6 s budget: naftiko on its own core
    rest, mcp = await asyncio.gather(_rest_all(served, fault), _mcp_all(served, fault))
    _relayed(rest["simple"], 200, ok_body(ID))
    _relayed(rest["fwd/f"], 200, ok_body(ID))
    assert rest["shaped"].json() == SHAPED and rest["steps"].json() == STEPS
    for era in ERAS:
        _json_result(mcp[era, "simple"], OK, era)
        _json_result(mcp[era, "shaped"], "Acme", era)
        _json_result(mcp[era, "steps"], STEPS, era)


async def test_malformed_json_is_relayed_as_is_and_refused_for_shaping(served, faulty, host):
    raw = b'{"id": "' + ID.encode() + b'", "name": '
    rest, mcp = await asyncio.gather(_rest_all(served, "malformed"), _mcp_all(served, "malformed"))
    _relayed(rest["simple"], 200, raw)  # naftiko does not rewrite a body it does not need to read
    _relayed(rest["fwd/f"], 200, raw)
    _problem(rest["shaped"], 502, not_json("application/json"))
    _problem(rest["steps"], 502, not_json("application/json"))
    for era in ERAS:
        simple = mcp[era, "simple"]
        assert not simple.is_error and [b.text for b in simple.content] == [raw.decode()] and simple.structured_content is None
        _error(mcp[era, "shaped"], not_json("application/json"))
        _error(mcp[era, "steps"], not_json("application/json"))
    await _assert_healthy(served, faulty)


async def test_huge_body_passes_through_whole(served_roomy, faulty):
    served = served_roomy
    body = huge_body(8 * 1024 * 1024)
    rest, mcp = await asyncio.gather(_rest_all(served, "huge"), _mcp_all(served, "huge"))
    _relayed(rest["simple"], 200, body)
    _relayed(rest["fwd/f"], 200, body)
    assert rest["shaped"].json() == SHAPED and rest["steps"].json() == STEPS
    document = orjson.loads(body)
    for era in ERAS:
        _json_result(mcp[era, "simple"], document, era)
        _json_result(mcp[era, "shaped"], "Acme", era)
        _json_result(mcp[era, "steps"], STEPS, era)
    await _assert_healthy(served, faulty)


@pytest.mark.parametrize("fault, ctype", [("binary", "application/octet-stream"), ("binary-json", "application/json")])
async def test_binary_bodies(served, faulty, fault, ctype):
    rest, mcp = await asyncio.gather(_rest_all(served, fault), _mcp_all(served, fault))
    _relayed(rest["simple"], 200, BINARY, ctype)
    _relayed(rest["fwd/f"], 200, BINARY, ctype)
    _problem(rest["shaped"], 502, not_json(ctype))
    _problem(rest["steps"], 502, not_json(ctype))
    for era in ERAS:
        simple = mcp[era, "simple"]  # bytes that are not text travel as an embedded blob, whatever the label
        assert not simple.is_error and len(simple.content) == 1
        resource = simple.content[0].resource
        assert resource.mime_type == ctype and base64.b64decode(resource.blob) == BINARY
        assert str(resource.uri) == "naftiko://faults-mcp/tools/simple/result"
        _error(mcp[era, "shaped"], not_json(ctype))
        _error(mcp[era, "steps"], not_json(ctype))
    await _assert_healthy(served, faulty)


async def test_connection_faults_on_a_post_are_not_resent(served, faulty, host):
    """GET is resent once by the HTTP client after a drop before any answer; POST never."""
    before = faulty.hits["reset-before"]
    async with served.http(timeout=10) as http:
        post = await http.post(f"{served.urls[REST]}simple/reset-before/{ID}", json={"a": 1})
        assert faulty.hits["reset-before"] - before == 1
        get = await http.get(f"{served.urls[REST]}simple/reset-before/{ID}")
        assert faulty.hits["reset-before"] - before == 3
    for r in (post, get):
        _problem(r, 502, failed_detail(host, "ServerDisconnectedError"))
    await _assert_healthy(served, faulty)


async def test_many_faults_at_once_leave_the_server_healthy(served_roomy, faulty, host):
    """A burst mixing every fault concurrently: each caller still gets its own exact answer."""
    served = served_roomy
    faults = ["ok", "500", "hang", "reset-mid", "truncated", "malformed", "binary", "204", "garbage", "drip"] * 4
    async with served.http(timeout=10, limits=httpx.Limits(max_connections=100)) as http:
        answers = await asyncio.gather(*(http.get(f"{served.urls[REST]}simple/{f}/b{i}") for i, f in enumerate(faults)))
    expected = {"ok": 200, "500": 500, "hang": 504, "reset-mid": 502, "truncated": 502, "malformed": 200,
                "binary": 200, "204": 204, "garbage": 502, "drip": 200}
    assert [r.status_code for r in answers] == [expected[f] for f in faults]
    for i, (f, r) in enumerate(zip(faults, answers, strict=True)):
        if f in ("ok", "drip"):
            assert r.json()["id"] == f"b{i}"
    await _assert_healthy(served, faulty)
