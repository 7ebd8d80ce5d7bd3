"""End to end: every outbound auth scheme reaches the upstream correctly, and the MCP adapter
works over stdio the way Claude Desktop launches it."""

from __future__ import annotations

import base64
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
