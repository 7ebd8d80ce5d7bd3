"""End to end: every outbound auth scheme reaches the upstream correctly, and the MCP adapter
works over stdio the way Claude Desktop launches it."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys

import pytest
import pytest_asyncio
from mcp import Client, StdioServerParameters

from conftest import FIXTURES
from harness import serve_in_memory

SECRETS = {"AUTH_USER": "ada", "AUTH_PASSWORD": "s3cr3t-pass", "AUTH_KEY": "key-123456"}
NAMESPACES = ["with-digest", "with-basic", "with-apikey-query", "with-apikey-header"]


@pytest_asyncio.fixture(scope="module")
async def auth_served(upstream):
    n = await serve_in_memory(FIXTURES / "auth-variants.yaml", upstream.url, consumes=NAMESPACES, adapters=["auth-rest"], env=SECRETS)
    yield n
    assert await n.stop() == 0
    for secret in SECRETS.values():
        assert secret not in n.stderr


async def _get(n, path):
    async with n.http() as http:
        return await http.get(n.urls["auth-rest"] + path.lstrip("/"))


async def test_basic(auth_served, fresh_upstream):
    r = await _get(auth_served, "/basic/1")
    assert r.status_code == 200
    expected = base64.b64encode(b"ada:s3cr3t-pass").decode()
    assert fresh_upstream.last.headers["authorization"] == f"Basic {expected}"


async def test_apikey_in_query_is_encoded(auth_served, fresh_upstream):
    r = await _get(auth_served, "/apikey-query/1")
    assert r.status_code == 200
    assert fresh_upstream.last.query.getall("api_key") == ["key-123456"]
    assert "authorization" not in fresh_upstream.last.headers


async def test_apikey_in_header(auth_served, fresh_upstream):
    r = await _get(auth_served, "/apikey-header/1")
    assert r.status_code == 200
    assert fresh_upstream.last.headers["x-api-key"] == "key-123456"


async def test_digest_challenge_response(auth_served, fresh_upstream):
    fresh_upstream.digest = ("ada", "s3cr3t-pass")
    r = await _get(auth_served, "/digest/7")
    assert r.status_code == 200, r.text
    first, second = fresh_upstream.requests
    assert "authorization" not in first.headers  # challenged first
    assert second.headers["authorization"].startswith('Digest username="ada"')
    assert second.raw_path == "/digest/7"


async def test_digest_wrong_password_relays_401(upstream, fresh_upstream):
    fresh_upstream.digest = ("ada", "another-password")
    n = await serve_in_memory(FIXTURES / "auth-variants.yaml", upstream.url, consumes=NAMESPACES, adapters=["auth-rest"], env=SECRETS)
    try:
        fresh_upstream.digest = ("ada", "another-password")
        r = await _get(n, "/digest/7")
        assert r.status_code == 401
    finally:
        assert await n.stop() == 0


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_mcp_over_stdio(upstream, fresh_upstream, mode):
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "naftiko", "serve", str(FIXTURES / "stdio-tools.yaml"), "--base-uri", f"items-api={upstream.url}"],
        env={**os.environ, "STDIO_TOKEN": "stdio-token-1"},
    )
    async with Client(params, mode=mode) as client:
        assert client.server_info.name == "items-stdio"
        tools = (await client.list_tools()).tools
        assert [t.name for t in tools] == ["get-item"]
        assert tools[0].title == "Get an item"
        assert tools[0].input_schema["required"] == ["item_id"]
        result = await client.call_tool("get-item", {"item_id": "a/b", "verbose": True})
    assert not result.is_error, result.content
    assert result.structured_content == {"id": "/items/a%2Fb", "seen_query": [["verbose", "true"]]}
    rec = fresh_upstream.last
    assert rec.raw_path == "/items/a%2Fb"
    assert rec.headers["authorization"] == "Bearer stdio-token-1"


async def _stdio_exchange(upstream_url: str, lines: list[str], expect: int) -> list[object]:
    """Send raw lines to ``naftiko serve`` on stdio; return the first ``expect`` JSON lines it writes
    (stdin stays open until then, as a client's does)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "naftiko", "serve", str(FIXTURES / "stdio-tools.yaml"), "--base-uri", f"items-api={upstream_url}",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "STDIO_TOKEN": "stdio-token-1"},
    )
    try:
        proc.stdin.write("".join(line + "\n" for line in lines).encode())
        await proc.stdin.drain()
        replies = []
        while len(replies) < expect:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line, f"stdout closed after {replies}: {(await proc.stderr.read()).decode()}"
            replies.append(json.loads(line))
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), 30)
        err = (await proc.stderr.read()).decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert "Traceback" not in err, err
    return replies


STDIO_INIT = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
              "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}


async def test_stdio_answers_lines_that_are_not_json_rpc(upstream, fresh_upstream):
    """JSON-RPC 2.0: a line that is not JSON gets -32700, an invalid message -32600 (id null unless usable)."""
    lines = [
        "this is not json",
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": []}),
        json.dumps({"jsonrpc": "2.0", "id": None, "method": "tools/call", "params": {"name": "get-item", "arguments": {"item_id": "x"}}}),
        json.dumps({"id": 2, "method": "ping"}),
        json.dumps(STDIO_INIT),
        json.dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {"cursor": "bogus"}}),
        json.dumps([{"jsonrpc": "2.0", "id": 4, "method": "tools/list"}]),  # a batch, on 2025-11-25
        json.dumps({"jsonrpc": "2.0", "id": 5, "method": "ping"}),
    ]
    replies = await _stdio_exchange(upstream.url, lines, 8)
    by_id = {r["id"]: r for r in replies if r["id"] is not None}
    nulls = [r for r in replies if r["id"] is None]
    assert [r["error"]["code"] for r in nulls] == [-32700, -32600, -32600]  # not JSON; null id; batch refused
    assert "2025-11-25" in nulls[2]["error"]["message"]
    assert by_id[1]["error"]["code"] == -32600  # params as array: the id is echoed
    assert by_id[2]["error"]["code"] == -32600  # no "jsonrpc": "2.0"
    assert by_id[3]["error"]["code"] == -32602 and "cursor" in by_id[3]["error"]["message"]
    assert by_id[5]["result"] == {}  # still serving afterwards
    assert fresh_upstream.requests == []


async def test_stdio_serves_a_batch_on_2025_03_26(upstream, fresh_upstream):
    init = {**STDIO_INIT, "params": {**STDIO_INIT["params"], "protocolVersion": "2025-03-26"}}
    batch = [
        {"jsonrpc": "2.0", "id": "a", "method": "tools/call", "params": {"name": "get-item", "arguments": {"item_id": "7"}}},
        {"jsonrpc": "2.0", "id": "b", "method": "tools/list"},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": "c", "method": "tools/list", "params": []},
    ]
    replies = await _stdio_exchange(upstream.url, [json.dumps(init), json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
                                             json.dumps(batch), json.dumps({"jsonrpc": "2.0", "id": 9, "method": "ping"})], 3)
    assert replies[0]["result"]["protocolVersion"] == "2025-03-26"
    batch_reply = next(r for r in replies if isinstance(r, list))
    by_id = {r["id"]: r for r in batch_reply}
    assert set(by_id) == {"a", "b", "c"}
    assert by_id["a"]["result"]["structuredContent"]["id"] == "/items/7"
    assert by_id["b"]["result"]["tools"][0]["name"] == "get-item"
    assert by_id["c"]["error"]["code"] == -32600
    assert fresh_upstream.last.raw_path == "/items/7"
