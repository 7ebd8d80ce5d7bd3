"""Hostile input, end to end: a caller controls values, never where they land.

Path and query values cannot change the upstream host, add path segments or query keys;
CR/LF cannot start a new header; bodies are bounded in size (413) and nesting depth (400);
MCP arguments are checked against the tool's schema; forward copies only trusted headers;
the MCP endpoint checks Host and Origin (DNS rebinding). The fake upstream records every
request exactly as it arrived.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

import httpx
import orjson
import pytest
import pytest_asyncio
from mcp import MCPError

from conftest import FIXTURES
from harness import serve_in_memory
from naftiko.exposes.http.limits import MAX_JSON_DEPTH, too_deep
from naftiko.exposes.mcp.server import security_settings

FILE = FIXTURES / "resilience-hostile.yaml"
REST, MCP = "hostile-rest", "hostile-mcp"
MAX_BODY = 2048


@pytest_asyncio.fixture(scope="module")
async def served(upstream):
    n = await serve_in_memory(
        FILE, None, adapters=[REST, MCP],
        extra=["--base-uri", f"up={upstream.url}/base", "--max-body-bytes", str(MAX_BODY),
               "--allowed-host", "mcp.example.com", "--allowed-origin", "https://app.example"],
    )
    yield n
    assert await n.stop() == 0
    assert "Traceback" not in n.stderr


def _upstream_host(upstream) -> str:
    return urlsplit(upstream.url).netloc


def _problem(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    return r.json()


async def _rest(n, method: str, path: str, **kw) -> httpx.Response:
    async with n.http() as http:
        return await http.request(method, n.urls[REST] + path.lstrip("/"), **kw)


HOSTILE_SEGMENTS = [
    "../", "../../etc/passwd", "a/b", "%2F", "%2e%2e", "?x=1", "#frag", "@evil.com", "http://evil.com/x",
    "//evil.com", "a b", "..\\..\\", "é/ü", "x;y=1", ":8080", "\t",
]


@pytest.mark.parametrize("value", HOSTILE_SEGMENTS)
async def test_path_values_stay_one_segment_on_the_same_host(served, fresh_upstream, value):
    expected = "/base/items/" + quote(value, safe="")
    r = await _rest(served, "GET", "/items/" + quote(value, safe=""))
    assert r.status_code == 200, r.text
    async with served.mcp(served.urls[MCP], mode="auto") as client:
        result = await client.call_tool("get-item", {"id": value})
    assert not result.is_error, result.content
    assert len(fresh_upstream.requests) == 2
    for rec in fresh_upstream.requests:
        assert rec.raw_path == expected
        assert rec.headers["host"] == _upstream_host(fresh_upstream)
        assert list(rec.query.keys()) == []


@pytest.mark.parametrize("raw", ["%2e%2e", "%2E%2E", "."])
async def test_dot_segments_are_refused_before_anything_is_sent(served, fresh_upstream, raw):
    if raw != ".":  # httpx would normalise a literal '.' segment away itself
        body = _problem(await _rest(served, "GET", f"/items/{raw}"), 400)
        assert body["field"] == "id"
    async with served.mcp(served.urls[MCP], mode="legacy") as client:
        result = await client.call_tool("get-item", {"id": "." if raw == "." else ".."})
    assert result.is_error and "cannot be" in result.content[0].text
    assert fresh_upstream.requests == []


HOSTILE_QUERY = ["a&x=1", "#frag", "?y=2", "http://evil.com/?a=b&c=d", "k=v", "%26", "+ +", "a\nb", "=", ""]


@pytest.mark.parametrize("value", HOSTILE_QUERY)
async def test_query_values_stay_one_value_of_one_key(served, fresh_upstream, value):
    r = await _rest(served, "GET", "/items/q1?q=" + quote(value, safe=""))
    assert r.status_code == 200, r.text
    async with served.mcp(served.urls[MCP], mode="auto") as client:
        result = await client.call_tool("get-item", {"id": "q1", "q": value})
    assert not result.is_error
    for rec in fresh_upstream.requests:
        assert rec.raw_path == "/base/items/q1"
        assert list(rec.query.items()) == [("q", value)]


@pytest.mark.parametrize("value", ["a\r\nX-Evil: 1", "a\nX-Evil: 1", "a\rb", "a\x00b"])
async def test_header_injection_is_refused(served, fresh_upstream, value):
    async with served.mcp(served.urls[MCP], mode="auto") as client:
        result = await client.call_tool("get-item", {"id": "h", "X-Trace": value})
    assert result.is_error and "X-Trace" in result.content[0].text
    # the exact name: tolerant spellings are bound at load, never guessed per request
    body = _problem(await _rest(served, "GET", "/items/h?X-Trace=" + quote(value, safe="")), 400)
    assert body["field"] == "X-Trace"
    assert fresh_upstream.requests == []


async def test_cookie_injection_is_refused(served, fresh_upstream):
    async with served.mcp(served.urls[MCP], mode="legacy") as client:
        result = await client.call_tool("get-item", {"id": "c", "session": "abc; admin=1"})
    assert result.is_error and "session" in result.content[0].text
    assert fresh_upstream.requests == []


async def test_header_values_arrive_as_one_header(served, fresh_upstream):
    async with served.mcp(served.urls[MCP], mode="legacy") as client:
        result = await client.call_tool("get-item", {"id": "h2", "X-Trace": "a: b, c=d"})
    assert not result.is_error
    assert fresh_upstream.last.headers["x-trace"] == "a: b, c=d" and "x-evil" not in fresh_upstream.last.headers


# ---------------------------------------------------------------------------- body limits


async def test_body_over_max_body_bytes_is_413(served, fresh_upstream):
    big = {"pad": "x" * MAX_BODY}
    body = _problem(await _rest(served, "POST", "/items/b", json=big), 413)
    assert str(MAX_BODY) in body["detail"] and body["field"] == "body"

    async def chunks():  # no Content-Length: counted as it streams
        for _ in range(5):
            yield b"x" * 1000

    _problem(await _rest(served, "POST", "/items/b", content=chunks(), headers={"content-type": "text/plain"}), 413)
    _problem(await _rest(served, "POST", "/fwd/items/b", content=b"y" * (MAX_BODY + 1)), 413)
    assert fresh_upstream.requests == []
    r = await _rest(served, "POST", "/items/b", json={"pad": "x" * (MAX_BODY - 100)})
    assert r.status_code == 200 and len(fresh_upstream.requests) == 1


async def test_mcp_request_over_max_body_bytes_is_413(served, fresh_upstream):
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": "post-item", "arguments": {"id": "b", "body": "x" * MAX_BODY}}}
    async with served.http() as http:
        r = await http.post(served.urls[MCP], json=message, headers={"accept": "application/json, text/event-stream"})
    assert r.status_code == 413
    assert fresh_upstream.requests == []


def _nested(depth: int) -> object:
    value: object = "leaf"
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


async def test_rest_body_nesting_is_bounded(served, fresh_upstream):
    body = _problem(await _rest(served, "POST", "/items/d", content=orjson.dumps(_nested(MAX_JSON_DEPTH + 1))), 400)
    assert "deeper than 64" in body["detail"] and body["field"] == "body"
    as_text = {"content-type": "text/plain"}  # JSON sent with another type is parsed, and bounded, too
    _problem(await _rest(served, "POST", "/items/d", content=orjson.dumps(_nested(100)), headers=as_text), 400)
    assert fresh_upstream.requests == []
    r = await _rest(served, "POST", "/items/d", content=orjson.dumps(_nested(MAX_JSON_DEPTH)))
    assert r.status_code == 200
    assert fresh_upstream.last.json() == _nested(MAX_JSON_DEPTH)


async def test_mcp_argument_nesting_is_bounded(served, fresh_upstream):
    async with served.mcp(served.urls[MCP], mode="auto") as client:
        deep = await client.call_tool("post-item", {"id": "d", "body": _nested(MAX_JSON_DEPTH)})
        shallow = await client.call_tool("post-item", {"id": "d", "body": _nested(10)})
    assert deep.is_error and "deeper than 64" in deep.content[0].text
    assert not shallow.is_error
    assert len(fresh_upstream.requests) == 1 and fresh_upstream.last.json() == _nested(10)


def test_depth_check_units():
    assert not too_deep("x") and not too_deep({}) and not too_deep(_nested(64))
    assert too_deep(_nested(65)) and too_deep([[[1]]], limit=2)
    wide = {"a": [_nested(10) for _ in range(1000)]}
    assert not too_deep(wide) and too_deep({"a": [1, 2, _nested(64)]})


# ---------------------------------------------------------------------------- MCP arguments


async def test_mcp_arguments_are_checked_against_the_schema(served, fresh_upstream):
    async with served.mcp(served.urls[MCP], mode="auto") as client:
        wrong_type = await client.call_tool("get-item", {"id": 5})
        missing = await client.call_tool("get-item", {"q": "x"})
        with pytest.raises(MCPError):
            await client.call_tool("no-such-tool", {})
    assert wrong_type.is_error and "'id'" in wrong_type.content[0].text
    assert missing.is_error and "'id' is a required property" in missing.content[0].text
    assert fresh_upstream.requests == []


# ---------------------------------------------------------------------------- forward


async def test_forward_copies_trusted_headers_only(served, fresh_upstream):
    headers = {
        "X-Trusted": "yes", "X-Forwarded-For": "6.6.6.6", "Authorization": "Bearer caller",
        "Proxy-Authorization": "Basic eA==", "Keep-Alive": "timeout=5", "TE": "trailers",
        "Cookie": "sid=1", "X-Internal": "1", "Host": "evil.example",
    }
    r = await _rest(served, "GET", "/fwd/items/f1?a=1", headers=headers)
    assert r.status_code == 200
    rec = fresh_upstream.last
    assert rec.raw_path == "/base/items/f1" and list(rec.query.items()) == [("a", "1")]
    assert rec.headers["x-trusted"] == "yes" and rec.headers["host"] == _upstream_host(fresh_upstream)
    for name in ("x-forwarded-for", "authorization", "proxy-authorization", "keep-alive", "te", "cookie", "x-internal"):
        assert name not in rec.headers, name


async def test_forward_drops_a_trusted_header_named_in_connection(served, fresh_upstream):
    r = await _rest(served, "GET", "/fwd/items/f2", headers={"X-Trusted": "yes", "Connection": "keep-alive, X-Trusted"})
    assert r.status_code == 200 and "x-trusted" not in fresh_upstream.last.headers


@pytest.mark.parametrize("tail", ["@evil.com/x", "http:%2F%2Fevil.com/", "items%3Fx=1", "items%23frag"])
async def test_forward_path_never_changes_the_host(served, fresh_upstream, tail):
    r = await _rest(served, "GET", "/fwd/" + tail)
    assert r.status_code == 200
    rec = fresh_upstream.last
    assert rec.headers["host"] == _upstream_host(fresh_upstream)
    assert rec.raw_path.startswith("/base/") and list(rec.query.keys()) == []


@pytest.mark.parametrize("tail", ["%2e%2e/secret", "items/..%2F..%2Fsecret", "..%5Csecret"])
async def test_forward_refuses_dot_segments(served, fresh_upstream, tail):
    _problem(await _rest(served, "GET", "/fwd/" + tail), 400)
    assert fresh_upstream.requests == []


# ---------------------------------------------------------------------------- DNS rebinding


INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}


async def _initialize(n, **headers) -> int:
    async with n.http() as http:
        r = await http.post(
            n.urls[MCP], json=INIT, headers={"accept": "application/json, text/event-stream", **headers}
        )
    return r.status_code


@pytest.mark.parametrize(
    "headers, status",
    [
        ({}, 200),
        ({"host": "mcp.example.com"}, 200),
        ({"host": "mcp.example.com:8443"}, 200),
        ({"host": "localhost:1234"}, 200),
        ({"host": "evil.example"}, 421),
        ({"host": "mcp.example.com.evil.example"}, 421),
        ({"origin": "https://app.example"}, 200),
        ({"origin": "https://mcp.example.com"}, 200),
        ({"origin": "http://127.0.0.1:3000"}, 200),
        ({"origin": "http://evil.example"}, 403),
        ({"host": "mcp.example.com", "origin": "https://app.example.evil.example"}, 403),
    ],
)
async def test_mcp_host_and_origin_checks(served, headers, status):
    assert await _initialize(served, **headers) == status


def test_protection_defaults():
    loopback = security_settings("127.0.0.1")
    assert loopback.enable_dns_rebinding_protection and "localhost:*" in loopback.allowed_hosts
    wildcard = security_settings("0.0.0.0")  # on by default for every bind, not only loopback
    assert wildcard is not None and wildcard.enable_dns_rebinding_protection
    assert not any("0.0.0.0" in h for h in wildcard.allowed_hosts)
    concrete = security_settings("10.1.2.3", ("api.example.com",), ("https://ui.example.com",))
    assert {"10.1.2.3:*", "api.example.com", "api.example.com:*"} <= set(concrete.allowed_hosts)
    assert {"https://ui.example.com", "https://api.example.com"} <= set(concrete.allowed_origins)
    v6 = security_settings("2001:db8::1")
    assert "[2001:db8::1]:*" in v6.allowed_hosts
    assert security_settings("0.0.0.0", ("*",)) is None  # explicit opt-out
