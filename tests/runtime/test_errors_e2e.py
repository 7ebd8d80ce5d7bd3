"""End to end: failures are reported faithfully, over REST (problem+json) and MCP (isError).

Upstream 4xx/5xx keep their status and body; a slow upstream is a 504 / timeout tool error;
a refused connection a 502; bad input a 400 naming the field; a missing API key stops start-up
with a message naming the variable. Secrets never appear in any answer.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import httpx
import orjson
import pytest
import pytest_asyncio
from mcp import MCPError

from conftest import API_KEY, CAPABILITIES, Reply
from harness import run_cli, serve_in_memory

FILE = CAPABILITIES / "metronome-customers.yaml"
REST, MCP = "metronome-customers-rest", "metronome-customers-mcp"


@pytest_asyncio.fixture(scope="module")
async def served(upstream):
    n = await serve_in_memory(FILE, upstream.url, consumes=["metronome-customers"], adapters=[REST, MCP],
                              extra=["--timeout", "0.5"], env={"METRONOME_API_KEY": API_KEY})
    yield n
    assert await n.stop() == 0
    assert API_KEY not in n.stderr


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _problem(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"]
    assert API_KEY not in r.text
    return body


async def test_upstream_4xx_passes_through(served, fresh_upstream):
    err = orjson.dumps({"message": "customer not found"})
    fresh_upstream.reply("/v1/customers/nope", Reply(404, err))
    async with served.http() as http:
        r = await http.get(served.urls[REST] + "v1/v1/customers/nope")
    assert r.status_code == 404
    assert r.json() == {"message": "customer not found"}
    async with served.mcp(served.urls[MCP], mode="auto") as client:
        result = await client.call_tool("get-customer", {"customer_id": "nope"})
    assert result.is_error
    assert result.structured_content is None
    text = result.content[0].text
    assert "404" in text and "customer not found" in text


async def test_upstream_5xx_text_body(served, fresh_upstream):
    fresh_upstream.reply("/v1/customers/archive", Reply(503, b"maintenance window", "text/plain"))
    async with served.http() as http:
        r = await http.post(served.urls[REST] + "v1/v1/customers/archive", json={"id": "c"})
    assert r.status_code == 503
    assert r.text == "maintenance window"
    assert r.headers["content-type"].startswith("text/plain")
    async with served.mcp(served.urls[MCP], mode="legacy") as client:
        result = await client.call_tool("archive-customer", {"body": {"id": "c"}})
    assert result.is_error and "503" in result.content[0].text and "maintenance window" in result.content[0].text


async def test_upstream_timeout(served, fresh_upstream):
    fresh_upstream.reply("/v1/customers/slow", Reply(200, b"{}", delay=2.0))
    async with served.http() as http:
        r = await http.get(served.urls[REST] + "v1/v1/customers/slow")
    body = _problem(r, 504)
    assert "0.5s" in body["detail"]
    async with served.mcp(served.urls[MCP], mode="auto") as client:
        result = await client.call_tool("get-customer", {"customer_id": "slow"})
    assert result.is_error and "did not answer" in result.content[0].text


async def test_upstream_refused(upstream):
    dead = f"http://127.0.0.1:{_closed_port()}"
    n = await serve_in_memory(FILE, dead, consumes=["metronome-customers"], adapters=[REST, MCP], env={"METRONOME_API_KEY": API_KEY})
    try:
        async with n.http() as http:
            r = await http.get(n.urls[REST] + "v1/v1/customers/c-1")
        body = _problem(r, 502)
        assert "refused" in body["detail"] or "reached" in body["detail"]
        async with n.mcp(n.urls[MCP], mode="legacy") as client:
            result = await client.call_tool("get-customer", {"customer_id": "c-1"})
        assert result.is_error and "could not be reached" in result.content[0].text
    finally:
        assert await n.stop() == 0


async def test_upstream_204_and_empty_body(served, fresh_upstream):
    fresh_upstream.reply("/v1/customers/archive", Reply(204, b""))
    async with served.http() as http:
        r = await http.post(served.urls[REST] + "v1/v1/customers/archive", json={"id": "c"})
    assert r.status_code == 204 and r.content == b""
    async with served.mcp(served.urls[MCP], mode="auto") as client:
        result = await client.call_tool("archive-customer", {"body": {"id": "c"}})
    assert not result.is_error and result.content == []


async def test_upstream_non_json_success_to_a_json_mapped_operation_is_a_502(served, fresh_upstream):
    # get-customer declares outputRawFormat: json and maps the answer as an object (mapping: $.):
    # a CSV answer is not what it declares, and a 200 carrying it would be a success a JSON client cannot parse
    fresh_upstream.reply("/v1/customers/c-csv", Reply(200, b"id,name\n1,Acme\n", "text/csv"))
    detail = "upstream answered text/csv that is not JSON; cannot apply outputParameters"
    async with served.http() as http:
        r = await http.get(served.urls[REST] + "v1/v1/customers/c-csv")
    assert _problem(r, 502)["detail"] == detail
    async with served.mcp(served.urls[MCP], mode="legacy") as client:
        result = await client.call_tool("get-customer", {"customer_id": "c-csv"})
    assert result.is_error and detail in result.content[0].text


async def test_rest_engine_errors(served, fresh_upstream):
    base = served.urls[REST]
    async with served.http() as http:
        _problem(await http.get(base + "v1/v1/nowhere"), 404)
        r = await http.delete(base + "v1/v1/customers")
        _problem(r, 405)
        assert r.headers["allow"] == "GET, HEAD, POST"
        head = await http.head(base + "v1/v1/customers/c-head")
        assert head.status_code == 200 and head.content == b"" and fresh_upstream.last.method == "GET"
        fresh_upstream.reset()
        body = _problem(await http.post(base + "v1/v1/customers", content=b'{"name": ', headers={"content-type": "application/json"}), 400)
        assert body["field"] == "body"
        big = b'{"x": "' + b"a" * (5 * 1024 * 1024) + b'"}'
        body = _problem(await http.post(base + "v1/v1/customers", content=big, headers={"content-type": "application/json"}), 413)
        assert body["field"] == "body"
    assert fresh_upstream.requests == []  # nothing was sent upstream for any of these


async def test_mcp_argument_validation(served, fresh_upstream):
    for mode in ("legacy", "auto"):
        async with served.mcp(served.urls[MCP], mode=mode) as client:
            result = await client.call_tool("list-customers", {"customer_ids": "not-a-list"})
            assert result.is_error and "customer_ids" in result.content[0].text
            result = await client.call_tool("get-customer", {})
            assert result.is_error and "customer_id" in result.content[0].text
            with pytest.raises(MCPError):
                await client.call_tool("no-such-tool", {})
    assert fresh_upstream.requests == []


def test_missing_api_key_fails_startup_naming_it():
    # The command's entry point in this process (the variable is scrubbed from its environment):
    # it fails while compiling, before serving. test_port_conflict_fails_fast runs the process.
    proc = run_cli(["serve", str(FILE)])
    assert proc.returncode == 2
    assert "METRONOME_API_KEY" in proc.stderr and "bind 'env'" in proc.stderr
    assert "metronome-customers.yaml:14:5:" in proc.stderr  # the key in binds
    assert "Traceback" not in proc.stderr


def test_port_conflict_fails_fast():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "naftiko", "serve", str(FILE), "--dry-run", "--port", f"{REST}={port}", "--port", f"{MCP}=0"],
            capture_output=True, text=True, timeout=30,
        )
    assert proc.returncode == 2
    assert f"port {port}" in proc.stderr and "already in use" in proc.stderr and "Traceback" not in proc.stderr


async def test_dry_run_describes_the_request_and_masks_secrets(upstream):
    n = await serve_in_memory(FILE, None, adapters=[REST, MCP], extra=["--dry-run"], env={"METRONOME_API_KEY": API_KEY})
    try:
        async with n.http() as http:
            r = await http.get(n.urls[REST] + "v1/v1/customers", params={"customer_ids": ["a", "b"], "only_archived": "true"})
        assert r.status_code == 200
        d = r.json()
        assert d["method"] == "GET"
        assert d["url"] == "https://api.metronome.com/v1/customers?customer_ids=a&customer_ids=b&only_archived=true"
        assert d["query"] == {"customer_ids": ["a", "b"], "only_archived": "true"}
        assert d["headers"]["Authorization"] == "Bearer ****"
        assert API_KEY not in r.text
        async with n.mcp(n.urls[MCP], mode="auto") as client:
            result = await client.call_tool("update-customer-name", {"customer_id": "c 1", "body": {"name": "New"}})
        d = result.structured_content
        assert d["method"] == "POST" and d["url"] == "https://api.metronome.com/v1/customers/c%201/setName"
        assert d["body"] == {"name": "New"} and API_KEY not in result.content[0].text
    finally:
        assert await n.stop() == 0


async def test_dry_run_needs_no_api_key():
    n = await serve_in_memory(FILE, None, adapters=[REST, MCP], extra=["--dry-run"])
    try:
        async with n.http() as http:
            r = await http.get(n.urls[REST] + "v1/v1/customers/c-1")
        assert r.status_code == 200 and r.json()["headers"]["Authorization"] == "Bearer ****"
    finally:
        assert await n.stop() == 0


async def test_dot_segments_in_path_values_are_refused(served, fresh_upstream):
    async with served.http() as http:
        body = _problem(await http.get(served.urls[REST] + "v1/v1/customers/%2E%2E"), 400)
    assert body["field"] == "customer_id"
    async with served.mcp(served.urls[MCP], mode="auto") as client:
        result = await client.call_tool("get-customer", {"customer_id": ".."})
    assert result.is_error and "customer_id" in result.content[0].text
    assert fresh_upstream.requests == []


async def test_relayed_responses_keep_content_type_and_safe_headers(served, fresh_upstream):
    fresh_upstream.reply("/v1/customers/c-limited", Reply(429, b"slow down", "text/plain", headers={"Retry-After": "7", "Set-Cookie": "a=b", "X-Internal": "1"}))
    fresh_upstream.reply("/v1/customers/c-moved", Reply(302, b"", "text/plain", headers={"Location": "https://example.test/c-2"}))
    async with served.http() as http:
        r = await http.get(served.urls[REST] + "v1/v1/customers/c-limited")
        assert r.status_code == 429 and r.text == "slow down"
        assert r.headers["content-type"] == "text/plain" and r.headers["retry-after"] == "7"
        assert "set-cookie" not in r.headers and "x-internal" not in r.headers
        r = await http.get(served.urls[REST] + "v1/v1/customers/c-moved")
        assert r.status_code == 302 and r.headers["location"] == "https://example.test/c-2"
