"""One JSON codec on the request path (naftiko.jsonio): integers beyond 64 bits stay exact both ways.

orjson alone decodes ``123456789012345678901234567890`` as a float and refuses to encode it; every
place that reads or writes a caller's or an upstream's JSON goes through jsonio instead, so an
identifier or an amount is never rounded: the apikey-in-body transport, the dry-run description,
and the MCP envelope (request in, tool result out).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from conftest import Reply
from naftiko import jsonio
from naftiko.consumes.auth import BodyFieldTransport
from naftiko.consumes.transport import DryRunTransport, OutboundRequest, UpstreamResponse
from naftiko.document.loader import load
from naftiko.engine.plan import Options, compile_plan
from naftiko.runtime.serve import build_app

BIG = 123456789012345678901234567890
BIG_TEXT = str(BIG).encode()


def test_big_integers_round_trip_exactly() -> None:
    assert jsonio.loads(b'{"n": ' + BIG_TEXT + b"}") == {"n": BIG}
    assert jsonio.loads('[' + str(-BIG) + ']') == [-BIG]
    assert jsonio.dumps({"n": BIG}) == b'{"n":' + BIG_TEXT + b"}"


def test_invalid_text_is_a_decode_error_and_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(jsonio.JSONDecodeError):
        jsonio.loads(b'{"n": ' + BIG_TEXT)  # cut short: orjson's validation runs first
    with pytest.raises(jsonio.JSONDecodeError):
        jsonio.loads('"\ud800"')  # a str with a lone surrogate is not UTF-8 JSON
    with pytest.raises(TypeError):
        jsonio.dumps({"s": "\ud800", "n": BIG})


class _Recorder:
    def __init__(self) -> None:
        self.sent: list[OutboundRequest] = []

    async def send(self, request: OutboundRequest) -> UpstreamResponse:
        self.sent.append(request)
        return UpstreamResponse(200, {"content-type": "application/json"}, b"{}")

    async def aclose(self) -> None:
        return None


async def test_apikey_in_body_keeps_big_integers_of_the_body() -> None:
    inner = _Recorder()
    transport = BodyFieldTransport(inner, "api_key", "k-1")
    body = b'{"amount": ' + BIG_TEXT + b"}"
    await transport.send(OutboundRequest("POST", "http://up/x", [("Content-Type", "application/json")], body))
    assert json.loads(inner.sent[0].body or b"") == {"amount": BIG, "api_key": "k-1"}


async def test_dry_run_description_keeps_big_integers() -> None:
    transport = DryRunTransport(lambda value, header=None: value)
    body = b'{"amount": ' + BIG_TEXT + b"}"
    response = await transport.send(OutboundRequest("POST", "http://up/x?a=1", [], body))
    assert json.loads(response.body)["body"] == {"amount": BIG}


CAPABILITY = """\
naftiko: 1.0.0-alpha2
info: {label: Big, description: big integers over MCP}
capability:
  consumes:
  - type: http
    namespace: up
    baseUri: https://api.example.com
    resources:
    - name: items
      path: /items/{id}
      operations:
      - name: put-item
        method: PUT
        inputParameters:
        - {name: id, in: path}
        - {name: amount, in: body}
  exposes:
  - type: mcp
    namespace: big-mcp
    port: 0
    description: Items over MCP
    tools:
    - name: put-item
      description: one item
      inputParameters:
      - {name: id, type: string, required: true, description: the item id}
      - {name: amount, type: integer, required: true, description: an amount}
      call: up.put-item
      with: {id: '{{id}}', amount: '{{amount}}'}
"""


@contextlib.asynccontextmanager
async def _mcp(tmp_path: Path, upstream_url: str) -> AsyncIterator[httpx.AsyncClient]:
    path = tmp_path / "cap.yaml"
    path.write_text(CAPABILITY)
    plan = compile_plan(load(str(path)), Options(environ={}, base_uris={"up": upstream_url}))
    app = build_app(plan.adapters[0], plan)
    started, stop = asyncio.Event(), asyncio.Event()

    async def lifespan() -> None:
        async with app.router.lifespan_context(app):
            started.set()
            await stop.wait()

    task = asyncio.create_task(lifespan())
    await asyncio.wait([task, asyncio.ensure_future(started.wait())], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
            yield http
    finally:
        stop.set()
        await task
        await plan.aclose()


async def test_mcp_tool_call_keeps_big_integers_both_ways(tmp_path, fresh_upstream) -> None:
    fresh_upstream.reply("/items/a", Reply(200, b'{"total": ' + BIG_TEXT + b"}", "application/json"))
    request = (
        b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", '
        b'"params": {"name": "put-item", "arguments": {"id": "a", "amount": ' + BIG_TEXT + b"}}}"
    )
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream",
               "mcp-protocol-version": "2025-11-25"}
    async with _mcp(tmp_path, fresh_upstream.url) as http:
        response = await http.post("/mcp", content=request, headers=headers)
    assert response.status_code == 200, response.text
    answer = json.loads(response.content)
    assert answer["result"]["isError"] is False, answer
    assert answer["result"]["structuredContent"] == {"total": BIG}
    assert json.loads(fresh_upstream.last.body) == BIG  # the argument reached the upstream exact
