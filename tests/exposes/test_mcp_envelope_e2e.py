"""The MCP endpoint's envelope (adapters/mcp_envelope.py), driven in-process with raw HTTP requests.

Each test states what the MCP specification requires and checks the answer a client gets: JSON-RPC
framing errors, protocol-version handling on both eras, batches on 2025-03-26, cursors, HTTP methods
and CORS. Nothing malformed may reach the upstream, and no answer carries library internals.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import httpx
import pytest

from naftiko.document.loader import load
from naftiko.engine.plan import Options, compile_plan
from naftiko.runtime.serve import build_app

CAPABILITY = """\
naftiko: 1.0.0-alpha2
info: {label: Envelope, description: MCP envelope tests}
capability:
  consumes:
  - type: http
    namespace: up
    baseUri: https://api.example.com
    resources:
    - name: items
      path: /items/{id}
      operations:
      - name: get-item
        method: GET
  exposes:
  - type: mcp
    namespace: env-mcp
    port: 0
    description: Items over MCP
    tools:
    - name: get-item
      description: one item
      inputParameters:
      - {name: id, type: string, required: true, description: the item id}
      call: up.get-item
      with: {id: '{{id}}'}
"""
MODERN = "2026-07-28"
SERVED = {"2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}
META = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}
ACCEPT = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
ORIGIN = "https://app.example.com"
INTERNALS = ("validation error", "pydantic", "Traceback", "input_value", "JSONRPCRequest", "Exception")


@contextlib.asynccontextmanager
async def mcp_client(tmp_path: Path, upstream_url: str, **options):
    path = tmp_path / "cap.yaml"
    path.write_text(CAPABILITY)
    plan = compile_plan(load(str(path)), Options(environ={}, base_uris={"up": upstream_url}, **options))
    app = build_app(plan.adapters[0], plan)
    started, stop = asyncio.Event(), asyncio.Event()

    async def lifespan() -> None:  # entered and left in one task, as a server does
        async with app.router.lifespan_context(app):
            started.set()
            await stop.wait()

    task = asyncio.create_task(lifespan())
    await asyncio.wait([task, asyncio.ensure_future(started.wait())], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # start-up failed: say why
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
            yield http
    finally:
        stop.set()
        await task
        await plan.aclose()


@pytest.fixture
async def http(tmp_path, fresh_upstream):
    async with mcp_client(tmp_path, fresh_upstream.url) as client:
        yield client


def legacy(version: str = "2025-11-25") -> dict:
    return {**ACCEPT, "mcp-protocol-version": version}


def modern(method: str, name: str | None = None) -> dict:
    headers = {**ACCEPT, "mcp-protocol-version": MODERN, "mcp-method": method}
    return headers | ({"mcp-name": name} if name else {})


async def post(http: httpx.AsyncClient, body: object, headers: dict, raw: bytes | None = None) -> httpx.Response:
    response = await http.post("/mcp", content=raw if raw is not None else json.dumps(body), headers=headers)
    assert not any(word in response.text for word in INTERNALS), response.text
    return response


def call(rid: object = 1, item: str = "a", meta: dict | None = None) -> dict:
    params: dict = {"name": "get-item", "arguments": {"id": item}}
    if meta is not None:
        params["_meta"] = meta
    return {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": params}


def error_of(response: httpx.Response, status: int, code: int, rid: object) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["jsonrpc"] == "2.0" and body["id"] == rid and "result" not in body, body
    assert body["error"]["code"] == code, body
    return body["error"]


# ------------------------------------------------------------------ the hot methods, both eras


async def test_tools_call_on_both_eras(http, fresh_upstream):
    old = (await post(http, call(7, "a"), legacy())).json()
    assert old == {"jsonrpc": "2.0", "id": 7, "result": {
        "content": [{"type": "text", "text": json.dumps(old["result"]["structuredContent"], separators=(",", ":"))}],
        "isError": False, "structuredContent": old["result"]["structuredContent"]}}
    assert old["result"]["structuredContent"]["path"] == "/items/a"
    new = (await post(http, call("x", "b", META), modern("tools/call", "get-item"))).json()
    assert new["id"] == "x" and new["result"]["resultType"] == "complete"
    assert new["result"]["structuredContent"]["path"] == "/items/b"
    assert new["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "env-mcp"
    assert [r.raw_path for r in fresh_upstream.requests] == ["/items/a", "/items/b"]


async def test_tools_list_and_discover(http):
    listed = (await post(http, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, legacy())).json()["result"]
    assert [t["name"] for t in listed["tools"]] == ["get-item"]
    assert listed["tools"][0]["inputSchema"]["required"] == ["id"]
    listed26 = (await post(http, {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": META}},
                           modern("tools/list"))).json()["result"]
    assert listed26["tools"] == listed["tools"] and listed26["resultType"] == "complete"
    found = (await post(http, {"jsonrpc": "2.0", "id": 2, "method": "server/discover", "params": {"_meta": META}},
                        modern("server/discover"))).json()["result"]
    assert set(found["supportedVersions"]) == SERVED  # every version served, not only 2026-07-28
    assert found["supportedVersions"][0] == MODERN
    assert found["capabilities"]["tools"] == {"listChanged": False}
    assert found["instructions"] == "Items over MCP"


async def test_unknown_tool_is_a_protocol_error_on_both_eras(http, fresh_upstream):
    body = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "nope", "arguments": {}}}
    assert "nope" in error_of(await post(http, body, legacy()), 200, -32602, 3)["message"]
    body["params"]["_meta"] = META
    error_of(await post(http, body, modern("tools/call", "nope")), 400, -32602, 3)
    assert fresh_upstream.requests == []


# ------------------------------------------------------------------ JSON-RPC framing


async def test_body_that_is_not_json_is_a_parse_error(http):
    error_of(await post(http, None, legacy(), raw=b'{"jsonrpc": "2.0", "id": 1,'), 400, -32700, None)


@pytest.mark.parametrize("era", ["legacy", "modern"])
async def test_params_as_array_is_an_invalid_request_echoing_the_id(http, fresh_upstream, era):
    body = {"jsonrpc": "2.0", "id": 41, "method": "tools/call", "params": []}
    headers = legacy() if era == "legacy" else modern("tools/call")
    assert "params" in error_of(await post(http, body, headers), 400, -32600, 41)["message"]
    assert fresh_upstream.requests == []


@pytest.mark.parametrize("era", ["legacy", "modern"])
async def test_null_id_is_an_error_not_a_notification(http, fresh_upstream, era):
    body = call(None, meta=META if era == "modern" else None)
    headers = legacy() if era == "legacy" else modern("tools/call", "get-item")
    response = await post(http, body, headers)
    assert response.status_code != 202
    error_of(response, 400, -32600, None)
    assert fresh_upstream.requests == []  # not run as a notification either


@pytest.mark.parametrize("bad", [{"id": 1, "method": "tools/list"}, {"jsonrpc": "1.0", "id": 1, "method": "tools/list"},
                                 {"jsonrpc": "2.0", "id": 1, "method": 5}, {"jsonrpc": "2.0", "id": True, "method": "ping"},
                                 "tools/list", 17])
async def test_messages_that_are_not_json_rpc_are_invalid_requests(http, bad):
    response = await post(http, bad, legacy())
    rid = 1 if isinstance(bad, dict) and bad.get("id") == 1 and bad["id"] is not True else None
    error_of(response, 400, -32600, rid)


# ------------------------------------------------------------------ batches


async def test_batch_is_served_on_2025_03_26(http, fresh_upstream):
    batch = [
        call(1, "a"),
        {"jsonrpc": "2.0", "id": "two", "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "ping"},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 5, "method": "tools/list", "params": []},
    ]
    response = await post(http, batch, legacy("2025-03-26"))
    assert response.status_code == 200
    replies = {reply["id"]: reply for reply in response.json()}
    assert set(replies) == {1, "two", 3, 5}  # one reply per request, none for the notification
    assert replies[1]["result"]["structuredContent"]["path"] == "/items/a"
    assert replies["two"]["result"]["tools"][0]["name"] == "get-item"
    assert replies[3]["result"] == {}
    assert replies[5]["error"]["code"] == -32600
    assert [r.raw_path for r in fresh_upstream.requests] == ["/items/a"]


async def test_batch_without_the_header_is_2025_03_26(http):
    response = await post(http, [{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}], ACCEPT)
    assert response.status_code == 200 and response.json()[0]["id"] == 1


async def test_batch_of_notifications_only_is_accepted(http):
    response = await post(http, [{"jsonrpc": "2.0", "method": "notifications/initialized"}], legacy("2025-03-26"))
    assert response.status_code == 202 and response.content == b""


@pytest.mark.parametrize("version", ["2025-06-18", "2025-11-25"])
async def test_batch_is_refused_after_2025_03_26(http, fresh_upstream, version):
    message = error_of(await post(http, [call(1)], legacy(version)), 400, -32600, None)["message"]
    assert version in message and "batch" in message
    assert fresh_upstream.requests == []


async def test_empty_batch_is_an_invalid_request(http):
    error_of(await post(http, [], legacy("2025-03-26")), 400, -32600, None)


async def test_initialize_cannot_be_batched(http):
    init = {"jsonrpc": "2.0", "id": 9, "method": "initialize",
            "params": {"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    [reply] = (await post(http, [init], legacy("2025-03-26"))).json()
    assert reply["id"] == 9 and reply["error"]["code"] == -32600


# ------------------------------------------------------------------ protocol versions


@pytest.mark.parametrize("version", ["2099-01-01", "not-a-version", "2024-10-07"])
async def test_unsupported_version_header_names_the_supported_versions(http, fresh_upstream, version):
    error = error_of(await post(http, call(4), legacy(version)), 400, -32022, 4)
    assert error["data"]["requested"] == version
    assert set(error["data"]["supported"]) == SERVED
    assert all(v in error["message"] for v in SERVED)
    assert fresh_upstream.requests == []


async def test_header_and_body_versions_must_agree(http, fresh_upstream):
    # the handshake-era header with a 2026-07-28 body: not served at either version
    error_of(await post(http, call(5, meta=META), legacy()), 400, -32020, 5)
    # a 2026-07-28 body without the header
    error_of(await post(http, call(6, meta=META), ACCEPT), 400, -32020, 6)
    assert fresh_upstream.requests == []


async def test_routing_headers_must_match_the_body_on_2026_07_28(http, fresh_upstream):
    error_of(await post(http, call(1, meta=META), modern("tools/list", "get-item")), 400, -32020, 1)
    error_of(await post(http, call(2, meta=META), modern("tools/call", "other")), 400, -32020, 2)
    error_of(await post(http, call(3, meta=META), modern("tools/call")), 400, -32020, 3)
    duplicated = [*modern("tools/call", "get-item").items(), ("mcp-method", "tools/call")]
    response = await http.post("/mcp", content=json.dumps(call(4, meta=META)), headers=duplicated)
    error_of(response, 400, -32020, 4)
    assert fresh_upstream.requests == []


async def test_base64_encoded_name_header_is_decoded(http, fresh_upstream):
    response = await post(http, call(1, meta=META), modern("tools/call", "=?base64?Z2V0LWl0ZW0=?="))
    assert response.status_code == 200 and response.json()["result"]["isError"] is False


async def test_2026_07_28_request_missing_client_capabilities_is_invalid_params(http, fresh_upstream):
    # basic/index "Per-request protocol fields": required; a request missing it MUST get -32602 / 400.
    meta = {"io.modelcontextprotocol/protocolVersion": MODERN}
    message = error_of(await post(http, call(8, meta=meta), modern("tools/call", "get-item")), 400, -32602, 8)["message"]
    assert "clientCapabilities" in message
    assert fresh_upstream.requests == []


# ------------------------------------------------------------------ cursors


@pytest.mark.parametrize("era", ["legacy", "modern"])
async def test_cursor_this_server_did_not_issue_is_invalid_params(http, era):
    params: dict = {"cursor": "bogus"}
    headers = legacy()
    if era == "modern":
        params["_meta"] = META
        headers = modern("tools/list")
    response = await post(http, {"jsonrpc": "2.0", "id": 12, "method": "tools/list", "params": params}, headers)
    assert "cursor" in error_of(response, 200 if era == "legacy" else 400, -32602, 12)["message"]


# ------------------------------------------------------------------ HTTP methods and CORS


@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT"])
@pytest.mark.parametrize("version", ["2025-11-25", MODERN, None])
async def test_methods_other_than_post_get_405_with_allow(http, method, version):
    headers = {"accept": "application/json, text/event-stream"} | ({"mcp-protocol-version": version} if version else {})
    response = await http.request(method, "/mcp", headers=headers)
    assert response.status_code == 405
    assert "POST" in response.headers["allow"]


async def test_wrong_content_type_accept_or_size_are_refused(http, tmp_path, fresh_upstream):
    assert (await http.post("/mcp", content=b"{}", headers={"content-type": "text/plain"})).status_code == 415
    response = await http.post("/mcp", content=json.dumps(call()), headers={**legacy(), "accept": "text/html"})
    assert response.status_code == 406
    async with mcp_client(tmp_path, fresh_upstream.url, max_body_bytes=100) as small:
        big = call(item="x" * 200)
        assert (await small.post("/mcp", content=json.dumps(big), headers=legacy())).status_code == 413
    assert fresh_upstream.requests == []


async def test_cors_admits_an_allowed_origin(tmp_path, fresh_upstream):
    async with mcp_client(tmp_path, fresh_upstream.url, allowed_origins=(ORIGIN,)) as http:
        preflight = await http.options("/mcp", headers={
            "origin": ORIGIN, "access-control-request-method": "POST",
            "access-control-request-headers": "content-type, mcp-protocol-version, mcp-method, mcp-name"})
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert "mcp-protocol-version" in preflight.headers["access-control-allow-headers"]
        response = await post(http, call(1), {**legacy(), "origin": ORIGIN})
        assert response.status_code == 200 and response.headers["access-control-allow-origin"] == ORIGIN
        initialize = {"jsonrpc": "2.0", "id": 2, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "browser", "version": "1"}}}
        answered_by_sdk = await post(http, initialize, {**ACCEPT, "origin": ORIGIN})
        assert answered_by_sdk.status_code == 200 and answered_by_sdk.headers["access-control-allow-origin"] == ORIGIN
        other = "https://evil.example.com"
        assert (await http.options("/mcp", headers={"origin": other, "access-control-request-method": "POST"})).status_code == 403
        refused = await post(http, call(3), {**legacy(), "origin": other})
        assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers
    assert [r.raw_path for r in fresh_upstream.requests] == ["/items/a"]


async def test_host_header_is_checked(http, fresh_upstream):
    response = await http.post("/mcp", content=json.dumps(call()), headers={**legacy(), "host": "evil.example.com"})
    assert response.status_code == 421
    assert fresh_upstream.requests == []


@pytest.mark.parametrize("depth", [300, 990])
@pytest.mark.parametrize("era", ["legacy", "modern"])
async def test_deeply_nested_upstream_json_is_a_tool_result_not_a_protocol_error(http, fresh_upstream, depth, era):
    from conftest import Reply

    fresh_upstream.reply("/items/deep", Reply(body=b'{"a":' * depth + b"1" + b"}" * depth))
    headers = legacy() if era == "legacy" else modern("tools/call", "get-item")
    response = await post(http, call(1, "deep", META if era == "modern" else None), headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "error" not in body, body  # never a JSON-RPC error with code 0 and exception text
    result = body["result"]
    if result["isError"]:
        assert "nested" in result["content"][0]["text"]
    else:  # relayed whole
        assert json.loads(result["content"][0]["text"]) == result.get("structuredContent", json.loads(result["content"][0]["text"]))


async def test_cors_is_never_granted_to_an_origin_nobody_allowed(tmp_path, fresh_upstream):
    async with mcp_client(tmp_path, fresh_upstream.url, allowed_hosts=("*",), allowed_origins=(ORIGIN,)) as http:
        anyone = await post(http, call(1), {**legacy(), "origin": "https://evil.example.com"})
        assert anyone.status_code == 200 and "access-control-allow-origin" not in anyone.headers  # checks off, no CORS
        allowed = await post(http, call(2), {**legacy(), "origin": ORIGIN})
        assert allowed.headers["access-control-allow-origin"] == ORIGIN
