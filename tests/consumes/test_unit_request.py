"""Unit tests for building outbound requests: ``RequestPlan.build`` and ``CallUnit`` through a
compiled plan with a recording fake transport (reference §3, §9)."""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest

from naftiko.consumes.transport import OutboundRequest, UpstreamResponse
from naftiko.document.loader import load
from naftiko.engine.plan import Options, compile_plan
from naftiko.engine.result import Empty, JsonAnswer, Relayed, UpstreamFailure
from naftiko.errors import InvalidInput, UpstreamUnavailable
from naftiko.expressions.template import Scope

CAPABILITY = """\
naftiko: 1.0.0-alpha2
info:
  label: Request tests
  description: request building
binds:
- namespace: env
  keys:
    TOKEN: NAFTIKO_REQ_TOKEN
    API_KEY: NAFTIKO_REQ_KEY
    PASSWORD: NAFTIKO_REQ_PASSWORD
capability:
  consumes:
  - type: http
    namespace: up
    baseUri: https://api.example.com/base/
    inputParameters:
    - name: X-Client
      in: header
      value: naftiko-tests
    resources:
    - name: items
      path: /orgs/{orgId}/items/{{item_id}}
      inputParameters:
      - name: api-version
        in: query
        value: '2024-01'
      operations:
      - name: get-item
        method: GET
        inputParameters:
        - name: tags
          in: query
        - name: verbose
          in: query
        - name: limit
          in: query
        - name: X-Trace
          in: header
        - name: session
          in: cookie
    - name: things
      path: /things
      inputParameters:
      - name: X-Client
        in: header
        value: resource-level
      operations:
      - name: create
        method: POST
        inputParameters:
        - name: X-Client
          in: header
          value: 'op-{{who}}'
        - name: payload
          in: body
        - name: note
          in: query
      - name: multi
        method: PUT
        inputParameters:
        - name: a
          in: body
        - name: b
          in: body
      - name: fetch
        method: GET
        outputParameters:
        - name: first
          type: string
          value: $.data[0].name
  - type: http
    namespace: bearer-up
    baseUri: https://bearer.example.com
    authentication:
      type: bearer
      token: '{{TOKEN}}'
    resources:
    - name: ping
      path: /ping
      operations:
      - name: ping
  - type: http
    namespace: key-header-up
    baseUri: https://kh.example.com
    authentication:
      type: apikey
      key: X-Api-Key
      value: '{{env.API_KEY}}'
      placement: header
    resources:
    - name: ping
      path: /ping
      operations:
      - name: ping
  - type: http
    namespace: key-query-up
    baseUri: https://kq.example.com
    authentication:
      type: apikey
      key: api key
      value: '{{API_KEY}}'
      placement: query
    resources:
    - name: ping
      path: /ping
      operations:
      - name: ping
        inputParameters:
        - name: q
          in: query
  - type: http
    namespace: basic-up
    baseUri: https://basic.example.com
    authentication:
      type: basic
      username: alice
      password: '{{PASSWORD}}'
    resources:
    - name: ping
      path: /ping
      operations:
      - name: ping
  exposes:
  - type: rest
    namespace: api
    port: 0
    resources:
    - path: /orgs/{orgid}/items/{item-id}
      operations:
      - method: GET
        call: up.get-item
        with:
          limit: 10
          verbose: true
          tags: api.tags
    - path: /v2/orgs/{orgid}/items/{item-id}
      operations:
      - method: GET
        call: up.get-item
        with:
          tags: rest.labels
          limit: '{{n}}'
          X-Trace: 'trace-{{who}}'
    - path: /swap/{orgId}/{item_id}
      operations:
      - method: GET
        call: up.get-item
        with:
          orgId: rest.item_id
          item_id: rest.orgId
  - type: mcp
    namespace: toolbox
    port: 0
    tools:
    - name: create-tools
      description: tools alias and a text template
      call: up.create
      with:
        payload: tools.data
        note: 'hello {{who}}'
    - name: create-own
      description: own namespace and a single-variable template
      call: up.create
      with:
        payload: toolbox.data
        note: '{{who}}'
    - name: create-absent
      description: references to absent inputs
      call: up.create
      with:
        payload: mcp.missing
        note: '{{count}}'
    - name: create-literal
      description: rest is not an alias on an MCP adapter
      call: up.create
      with:
        payload: rest.data
        note: 42
    - name: get-item
      description: implicit filling
      call: up.get-item
    - name: multi
      description: several body params
      call: up.multi
    - name: fetch
      description: consumed outputs
      call: up.fetch
    - name: fetch-shaped
      description: exposed outputs
      call: up.fetch
      outputParameters:
      - name: firstName
        type: string
        mapping: $.data[0].name
      - name: count
        type: integer
        mapping: $.data.length()
    - name: bearer
      description: bearer
      call: bearer-up.ping
    - name: key-header
      description: apikey header
      call: key-header-up.ping
    - name: key-query
      description: apikey query
      call: key-query-up.ping
    - name: basic
      description: basic
      call: basic-up.ping
"""

ENV = {"NAFTIKO_REQ_TOKEN": "tok-123", "NAFTIKO_REQ_KEY": "k&y=1 2", "NAFTIKO_REQ_PASSWORD": "p:ss wörd"}


class RecordingTransport:
    def __init__(self):
        self.sent: list[OutboundRequest] = []
        self.reply = UpstreamResponse(200, {"content-type": "application/json"}, b'{"ok":true}')
        self.closed = False

    async def send(self, request: OutboundRequest) -> UpstreamResponse:
        self.sent.append(request)
        return self.reply

    async def aclose(self) -> None:
        self.closed = True

    @property
    def last(self) -> OutboundRequest:
        assert self.sent, "nothing was sent upstream"
        return self.sent[-1]


class Harness:
    def __init__(self, plan, transport):
        self.plan = plan
        self.transport = transport
        self.rest = {}
        self.tools = {}
        for adapter in plan.adapters:
            if adapter.kind == "rest":
                for route in adapter.routes:
                    for method, op in route.operations.items():
                        self.rest[(method, route.path)] = op.unit
            else:
                self.tools = {t.name: t.unit for t in adapter.tools}


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    path = tmp_path / "cap.yaml"
    path.write_text(CAPABILITY)
    plan = compile_plan(load(str(path)), Options(environ=dict(ENV)))
    transport = RecordingTransport()
    for ops in plan.consumers.values():
        for op in ops.values():
            op.transport = transport
    return Harness(plan, transport)


def query_of(req: OutboundRequest) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(req.url).query, keep_blank_values=True)


def path_of(req: OutboundRequest) -> str:
    return urlsplit(req.url).path


def headers_of(req: OutboundRequest) -> dict[str, str]:
    return {k.lower(): v for k, v in req.headers}


# ------------------------------------------------------------------ with forms


async def test_with_own_namespace_and_literal_number_and_boolean(h):
    unit = h.rest[("GET", "/orgs/{orgid}/items/{item-id}")]
    result = await unit.invoke({"orgid": "o1", "item-id": "i1", "tags": "t"})
    assert result.status == 200
    req = h.transport.last
    assert req.method == "GET"
    assert path_of(req) == "/base/orgs/o1/items/i1"
    q = query_of(req)
    assert ("limit", "10") in q and ("verbose", "true") in q and ("tags", "t") in q


async def test_with_rest_alias_and_templates(h):
    unit = h.rest[("GET", "/v2/orgs/{orgid}/items/{item-id}")]
    await unit.invoke({"orgid": "o", "item-id": "i", "labels": ["x", "y"], "n": 5, "who": "bob"})
    req = h.transport.last
    q = query_of(req)
    assert [v for k, v in q if k == "tags"] == ["x", "y"]
    assert ("limit", "5") in q
    assert headers_of(req)["x-trace"] == "trace-bob"


async def test_with_tools_alias_feeds_json_body_and_text_template(h):
    await h.tools["create-tools"].invoke({"data": {"k": [1, 2]}, "who": "bob"})
    req = h.transport.last
    assert req.method == "POST"
    assert orjson.loads(req.body) == {"k": [1, 2]}
    assert headers_of(req)["content-type"] == "application/json"
    assert query_of(req) == [("note", "hello bob")]


async def test_with_own_mcp_namespace_and_single_var_template_keeps_type(h):
    await h.tools["create-own"].invoke({"data": "str", "who": 5})
    req = h.transport.last
    assert req.body == b'"str"'
    assert query_of(req) == [("note", "5")]


async def test_with_reference_to_absent_input_leaves_key_unset(h):
    await h.tools["create-absent"].invoke({"count": 7})
    req = h.transport.last
    assert req.body is None
    assert query_of(req) == [("note", "7")]
    await h.tools["create-absent"].invoke({})
    req = h.transport.last
    assert req.body is None and query_of(req) == []
    assert "mcp.missing" not in req.url and "count" not in req.url


async def test_with_rest_prefix_on_mcp_adapter_is_a_literal(h):
    await h.tools["create-literal"].invoke({"data": "ignored"})
    req = h.transport.last
    assert orjson.loads(req.body) == "rest.data"
    assert query_of(req) == [("note", "42")]


async def test_with_is_evaluated_against_inputs_before_with(h):
    unit = h.rest[("GET", "/swap/{orgId}/{item_id}")]
    await unit.invoke({"orgId": "O", "item_id": "I"})
    assert path_of(h.transport.last) == "/base/orgs/I/items/O"


# ------------------------------------------------------------------ implicit filling and paths


async def test_implicit_filling_by_exact_name_on_mcp(h):
    """MCP arguments feed consumed parameters by their exact (schema) names; nothing is
    guessed per call, so a differently spelled argument feeds nothing."""
    await h.tools["get-item"].invoke({"orgId": "o", "item_id": "i", "tags": "t", "X-Trace": "x1"})
    req = h.transport.last
    assert path_of(req) == "/base/orgs/o/items/i"
    assert ("tags", "t") in query_of(req)
    assert headers_of(req)["x-trace"] == "x1"
    with pytest.raises(InvalidInput) as info:
        await h.tools["get-item"].invoke({"ORG-ID": "o", "item_id": "i"})
    assert info.value.field == "orgId"


async def test_tolerant_names_are_bound_at_load_on_rest(h):
    """The route's {orgid} and {item-id} feed orgId and item_id: matched once, at load."""
    await h.rest[("GET", "/orgs/{orgid}/items/{item-id}")].invoke({"orgid": "o", "item-id": "i"})
    assert path_of(h.transport.last) == "/base/orgs/o/items/i"


def test_ambiguous_normalised_name_is_a_positioned_load_warning(tmp_path):
    text = CAPABILITY.replace("    - path: /orgs/{orgid}/items/{item-id}\n      operations:\n      - method: GET\n",
                              "    - path: /orgs/{org-id}/items/{item-id}\n      operations:\n      - method: GET\n"
                              "        inputParameters:\n        - {name: org_id, in: query}\n")
    path = tmp_path / "cap.yaml"
    path.write_text(text)
    plan = compile_plan(load(str(path)), Options(environ=dict(ENV)))
    found = [w for w in plan.warnings if "'orgId' could be fed by any of 'org-id', 'org_id'" in str(w)]
    assert found and found[0].line == text[: text.index("- path: /orgs/{org-id}")].count("\n") + 3


async def test_path_segments_are_percent_encoded(h):
    await h.tools["get-item"].invoke({"orgId": "a/b", "item_id": "x?y z"})
    req = h.transport.last
    assert req.url.startswith("https://api.example.com/base/orgs/a%2Fb/items/x%3Fy%20z")
    assert urlsplit(req.url).query.count("?") == 0


@pytest.mark.parametrize("inputs", [{"item_id": "i"}, {"orgId": "", "item_id": "i"}, {"orgId": None, "item_id": "i"}])
async def test_missing_path_parameter_is_invalid_input_and_nothing_is_sent(h, inputs):
    with pytest.raises(InvalidInput) as info:
        await h.tools["get-item"].invoke(inputs)
    assert info.value.status == 400
    assert info.value.field == "orgId"
    assert "orgId" in info.value.detail
    assert h.transport.sent == []


# ------------------------------------------------------------------ query, headers, cookies, body


async def test_query_list_becomes_repeated_keys_and_values_are_encoded(h):
    await h.tools["get-item"].invoke({"orgId": "o", "item_id": "i", "tags": ["a b", "c&d", None]})
    raw = urlsplit(h.transport.last.url).query
    assert "tags=a%20b&tags=c%26d" in raw
    assert [v for k, v in query_of(h.transport.last) if k == "tags"] == ["a b", "c&d"]


async def test_booleans_in_query_are_true_false(h):
    await h.tools["get-item"].invoke({"orgId": "o", "item_id": "i", "verbose": False, "limit": True})
    q = query_of(h.transport.last)
    assert ("verbose", "false") in q and ("limit", "true") in q


async def test_header_parameter(h):
    await h.tools["get-item"].invoke({"orgId": "o", "item_id": "i", "X-Trace": "abc"})
    assert ("X-Trace", "abc") in h.transport.last.headers


async def test_cookie_parameter_becomes_cookie_header(h):
    await h.tools["get-item"].invoke({"orgId": "o", "item_id": "i", "session": "s 1"})
    hdrs = headers_of(h.transport.last)
    assert hdrs["cookie"] == "session=s%201"
    assert ("session", "s 1") not in query_of(h.transport.last)


async def test_cookie_with_semicolon_is_invalid(h):
    with pytest.raises(InvalidInput):
        await h.tools["get-item"].invoke({"orgId": "o", "item_id": "i", "session": "a; admin=1"})
    assert h.transport.sent == []


@pytest.mark.parametrize("bad", ["a\r\nX-Evil: 1", "a\nb", "a\rb"])
async def test_line_break_in_header_value_is_invalid_input(h, bad):
    with pytest.raises(InvalidInput) as info:
        await h.tools["get-item"].invoke({"orgId": "o", "item_id": "i", "X-Trace": bad})
    assert info.value.field == "X-Trace"
    assert h.transport.sent == []


async def test_single_body_param_is_the_json_body(h):
    await h.tools["create-tools"].invoke({"data": [1, {"a": None}]})
    req = h.transport.last
    assert orjson.loads(req.body) == [1, {"a": None}]
    assert headers_of(req)["content-type"] == "application/json"


async def test_several_body_params_form_an_object(h):
    await h.tools["multi"].invoke({"a": 1, "b": "x"})
    req = h.transport.last
    assert req.method == "PUT"
    assert orjson.loads(req.body) == {"a": 1, "b": "x"}
    # declared several: always an object of those given, whichever are given (docs/reference.md)
    await h.tools["multi"].invoke({"b": "only"})
    assert orjson.loads(h.transport.last.body) == {"b": "only"}


# ------------------------------------------------------------------ authentication


async def test_bearer_auth(h):
    await h.tools["bearer"].invoke({})
    req = h.transport.last
    assert req.url == "https://bearer.example.com/ping"
    assert headers_of(req)["authorization"] == "Bearer tok-123"


async def test_apikey_header_auth(h):
    await h.tools["key-header"].invoke({})
    assert ("X-Api-Key", ENV["NAFTIKO_REQ_KEY"]) in h.transport.last.headers


async def test_apikey_query_auth_is_encoded(h):
    await h.tools["key-query"].invoke({"q": "v"})
    req = h.transport.last
    assert "api%20key=k%26y%3D1%202" in urlsplit(req.url).query
    assert ("api key", ENV["NAFTIKO_REQ_KEY"]) in query_of(req)
    assert ("q", "v") in query_of(req)
    assert "authorization" not in headers_of(req)


async def test_basic_auth_is_real_base64(h):
    await h.tools["basic"].invoke({})
    scheme, _, encoded = headers_of(h.transport.last)["authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == "alice:p:ss wörd"


# ------------------------------------------------------------------ parameter levels


async def test_consumes_level_input_parameter_value_is_applied(h):
    """Regression (fixed in d4e2894): fixed ``value``s of consumes-level ``inputParameters`` were
    compiled but never sent (reference §3, parameter levels)."""
    await h.tools["get-item"].invoke({"orgId": "o", "item_id": "i"})
    assert headers_of(h.transport.last).get("x-client") == "naftiko-tests", h.transport.last.headers


async def test_resource_level_input_parameter_value_is_applied(h):
    """Regression (fixed in d4e2894): same for resource-level ``inputParameters``."""
    await h.tools["get-item"].invoke({"orgId": "o", "item_id": "i"})
    assert ("api-version", "2024-01") in query_of(h.transport.last), h.transport.last.url


async def test_operation_level_overrides_resource_and_consumes_level(h):
    await h.tools["create-tools"].invoke({"data": 1, "who": "bob"})
    assert [v for k, v in h.transport.last.headers if k == "X-Client"] == ["op-bob"]
    await h.tools["multi"].invoke({"a": 1})  # same resource, no operation-level value
    assert [v for k, v in h.transport.last.headers if k == "X-Client"] == ["resource-level"]


# ------------------------------------------------------------------ RequestPlan.build directly


def test_request_plan_build_direct(h):
    plan = h.plan.consumers["up"]["get-item"].request
    assert plan.target == "up.get-item"
    req = plan.build({"orgId": 7, "item_id": "x", "tags": ["a", "b"], "X-Trace": "t"}, Scope())
    assert req.method == "GET"
    assert req.url == "https://api.example.com/base/orgs/7/items/x?tags=a&tags=b"
    assert req.headers == [("X-Trace", "t")]
    assert req.body is None and req.timeout == 30.0


def test_request_plan_build_unknown_arg_goes_to_query(h):
    plan = h.plan.consumers["up"]["create"].request
    req = plan.build({"payload": {"x": 1}, "extra": "e"}, Scope())
    assert query_of(req) == [("extra", "e")]
    assert orjson.loads(req.body) == {"x": 1}


# ------------------------------------------------------------------ responses


async def test_upstream_error_is_relayed(h):
    h.transport.reply = UpstreamResponse(404, {"content-type": "application/json"}, b'{"e":1}')
    result = await h.tools["bearer"].invoke({})
    assert isinstance(result, UpstreamFailure) and (result.status, result.body) == (404, b'{"e":1}')


async def test_empty_upstream_body_is_empty_result(h):
    h.transport.reply = UpstreamResponse(204, {}, b"")
    result = await h.tools["bearer"].invoke({})
    assert result == Empty(204, {})


async def test_consumed_outputs_compile_but_unit_without_outputs_passes_through(h):
    body = b'{"data":[{"name":"w"}]}'
    # the consumed {name, type, value: $...} is a JSONPath mapping compiled at load
    assert h.plan.consumers["up"]["fetch"].shape(orjson.loads(body)) == {"first": "w"}
    # an exposed unit with no outputParameters relays the upstream body unchanged (reference §4)
    h.transport.reply = UpstreamResponse(200, {"content-type": "application/json"}, body)
    result = await h.tools["fetch"].invoke({})
    assert isinstance(result, Relayed)
    assert (result.status, result.body, result.content_type) == (200, body, "application/json")


async def test_exposed_output_parameters_shape_the_result(h):
    h.transport.reply = UpstreamResponse(200, {"content-type": "application/json"}, b'{"data":[{"name":"w"},{"name":"v"}]}')
    result = await h.tools["fetch-shaped"].invoke({})
    assert result == JsonAnswer(200, {"firstName": "w", "count": 2})  # a JSON value: served as application/json


async def test_non_json_upstream_with_output_parameters_is_bad_gateway(h):
    h.transport.reply = UpstreamResponse(200, {"content-type": "text/html"}, b"<html>")
    with pytest.raises(UpstreamUnavailable) as info:
        await h.tools["fetch-shaped"].invoke({})
    assert info.value.status == 502 and "text/html" in info.value.detail


async def test_passthrough_keeps_raw_bytes(h):
    h.transport.reply = UpstreamResponse(200, {"content-type": "text/plain"}, b"not json")
    result = await h.tools["bearer"].invoke({})
    assert isinstance(result, Relayed) and (result.body, result.content_type) == (b"not json", "text/plain")


async def test_plan_aclose_closes_transports(h):
    await h.plan.aclose()  # the real (unused) aiohttp transports close without error
    assert all(op.transport is h.transport for ops in h.plan.consumers.values() for op in ops.values())
