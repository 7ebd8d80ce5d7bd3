"""One JSON codec on the request path (naftiko.jsonio): integers beyond 64 bits stay exact both ways.

orjson alone decodes ``123456789012345678901234567890`` as a float and refuses to encode it; every
place that reads or writes a caller's or an upstream's JSON goes through jsonio instead, so an
identifier or an amount is never rounded: the apikey-in-body transport, the dry-run description,
and the MCP envelope (request in, tool result out).
"""

from __future__ import annotations

import json

import pytest

from conftest import Reply
from harness import serve_in_memory
from naftiko import jsonio
from naftiko.consumes.auth import BodyFieldTransport
from naftiko.consumes.transport import DryRunTransport, OutboundRequest, UpstreamResponse

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


# A PUT whose one body parameter is the caller's integer; the upstream answers another one.
CAPABILITY = """\
naftiko: 1.0.0-alpha2
info: {label: Big, description: big integers over MCP}
capability:
  consumes:
  - type: http
    namespace: ledger
    baseUri: https://ledger.example.com
    resources: [{name: totals, path: '/totals/{id}', operations: [
      {name: put-total, method: PUT, inputParameters: [{name: id, in: path}, {name: amount, in: body}]}]}]
  exposes:
  - type: mcp
    namespace: big-mcp
    port: 0
    description: Totals over MCP
    tools:
    - name: put-total
      description: set a total
      inputParameters:
      - {name: id, type: string, required: true, description: the total's id}
      - {name: amount, type: integer, required: true, description: an amount}
      call: ledger.put-total
      with: {id: '{{id}}', amount: '{{amount}}'}
"""


async def test_mcp_tool_call_keeps_big_integers_both_ways(tmp_path, fresh_upstream) -> None:
    fresh_upstream.reply("/totals/a", Reply(200, b'{"total": ' + BIG_TEXT + b"}", "application/json"))
    request = (
        b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", '
        b'"params": {"name": "put-total", "arguments": {"id": "a", "amount": ' + BIG_TEXT + b"}}}"
    )
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream",
               "mcp-protocol-version": "2025-11-25"}
    path = tmp_path / "big.yaml"
    path.write_text(CAPABILITY)
    served = await serve_in_memory(path, fresh_upstream.url, consumes=["ledger"], adapters=["big-mcp"])
    try:
        async with served.http() as http:
            response = await http.post(served.urls["big-mcp"], content=request, headers=headers)
    finally:
        assert await served.stop() == 0
    assert response.status_code == 200, response.text
    answer = json.loads(response.content)
    assert answer["result"]["isError"] is False, answer
    assert answer["result"]["structuredContent"] == {"total": BIG}
    assert json.loads(fresh_upstream.last.body) == BIG  # the argument reached the upstream exact
