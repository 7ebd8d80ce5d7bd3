"""Inputs bound at load, by location: callers reach only what the file exposes.

Each test drives the REST adapter (``httpx.ASGITransport``) or the MCP server (the SDK's in-process
client, both protocol eras) of one compiled plan against the loopback fake upstream, and checks
what the upstream actually received (docs/reference.md, "Binding and precedence").
"""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest
from mcp import Client

from conftest import Reply
from naftiko.document.loader import load
from naftiko.engine.plan import Options, compile_plan
from naftiko.errors import LoadError
from naftiko.exposes.mcp.server import build_server
from naftiko.exposes.rest.router import build_rest_app

MODES = ["legacy", "auto"]
ENV = {"BIND_TENANT": "acme", "BIND_HDR": "s3cr3t-header"}

CAPABILITY = """\
naftiko: 1.0.0-alpha2
info:
  label: Binding
  description: binding and precedence
binds:
- namespace: secrets
  keys:
    TENANT: BIND_TENANT
    HDR: BIND_HDR
capability:
  consumes:
  - type: http
    namespace: up
    baseUri: https://api.example.com
    resources:
    - name: customers
      path: /customers/{customer_id}
      operations:
      - name: get-customer
        method: GET
        inputParameters:
        - {name: org, in: query, value: '{{TENANT}}'}
        - {name: X-Secret, in: header, value: '{{secrets.HDR}}'}
    - name: odata
      path: /odata
      operations:
      - name: list
        method: GET
        inputParameters:
        - {name: $top, in: query}
        - {name: $filter, in: query}
        - {name: 'filter[state]', in: query}
        - {name: 'state~neq', in: query}
    - name: search
      path: /search
      operations:
      - name: search
        method: GET
        inputParameters:
        - {name: q, in: query, value: '{{userId}}', type: string, description: The user to search for.}
    - name: voyages
      path: /voyages
      operations:
      - name: create-voyage
        method: POST
        body: '{"imo": "{{shipImo}}", "crew": {{crewIds}}}'
    - name: users
      path: /users
      operations:
      - name: put-user
        method: PUT
        inputParameters:
        - {name: id, in: body}
        - {name: name, in: body}
    - name: charges
      path: /charges
      operations:
      - name: charge
        method: POST
        body: {type: json, data: {amount: '{{tools.amount}}'}}
    - name: items
      path: /items
      operations:
      - name: create-item
        method: POST
        inputParameters:
        - {name: body, in: body}
    - name: traced
      path: /traced
      operations:
      - name: traced
        method: GET
        inputParameters:
        - {name: X-Request-Id, in: header}
        - {name: page, in: query}
  exposes:
  - type: rest
    namespace: api
    port: 0
    resources:
    - path: /v1/customers/{customer-id}
      operations:
      - method: GET
        call: up.get-customer
    - path: /odata
      operations:
      - method: GET
        call: up.list
        with:
          $top: rest.$top
          $filter: rest.$filter
          filter[state]: rest.filter[state]
          state~neq: rest.state~neq
    - path: /search
      operations:
      - method: GET
        inputParameters:
        - {name: userId, in: query}
        call: up.search
    - path: /voyages
      operations:
      - method: POST
        inputParameters:
        - {name: shipImo, in: body, type: string, required: true}
        - {name: crewIds, in: body, type: array, required: true}
        call: up.create-voyage
    - path: /users
      operations:
      - method: PUT
        inputParameters:
        - {name: id, in: body, value: $.user.id}
        - {name: name, in: body, value: $.user.name}
        call: up.put-user
    - path: /items
      operations:
      - method: POST
        call: up.create-item
        with:
          body: rest.body
    - path: /traced
      operations:
      - method: GET
        call: up.traced
  - type: mcp
    namespace: hints-mcp
    port: 0
    tools:
    - name: get-customer
      description: by id
      call: up.get-customer
    - name: get-by-record
      description: the spec's $this form
      call: up.get-customer
      with:
        customer_id: $this.hints-mcp.record-id
    - name: odata
      description: OData and JSON:API names
      call: up.list
      with:
        $top: tools.$top
        filter[state]: tools.filter[state]
    - name: search
      description: a consumed value that is a template of inputs
      call: up.search
    - name: charge
      description: an input read only by the body template
      call: up.charge
    - name: declared
      description: declared inputs only
      inputParameters:
      - {name: customer-id, type: string, required: true}
      call: up.get-customer
    - name: declared-search
      description: declared inputs only, and a template reading an undeclared name
      inputParameters:
      - {name: term, type: string, required: false}
      call: up.search
"""


@pytest.fixture(scope="module")
def cap_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("binding") / "cap.yaml"
    path.write_text(CAPABILITY)
    return path


@pytest.fixture
async def served(cap_file, fresh_upstream):
    plan = compile_plan(load(str(cap_file)), Options(environ=dict(ENV), base_uris={"up": fresh_upstream.url}))
    rest = next(a for a in plan.adapters if a.kind == "rest")
    mcp = next(a for a in plan.adapters if a.kind == "mcp")
    app = build_rest_app(rest, plan.secrets.mask)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as http:
        yield http, build_server(mcp, plan.secrets.mask)[0], plan
    await plan.aclose()


async def call_tool(server, mode: str, name: str, arguments: dict):
    async with Client(server, mode=mode) as client:
        return await client.call_tool(name, arguments)


async def list_tools(server, mode: str) -> dict:
    async with Client(server, mode=mode) as client:
        return {t.name: t for t in (await client.list_tools()).tools}


# ------------------------------------------------------------------ (a) precedence callers cannot bend


@pytest.mark.parametrize(
    "attempt",
    [
        {"params": {"TENANT": "evil", "org": "evil"}},
        {"params": {"secrets": "x"}},
        {"params": {"secrets.HDR": "x", "X-Secret": "mine"}},
        {"headers": {"TENANT": "evil", "secrets": "x", "X-Secret": "mine", "org": "evil"}},
        {"cookies": {"TENANT": "evil", "secrets": "x", "org": "evil"}},
    ],
    ids=["query-bind-name", "query-bind-namespace", "query-dotted", "headers", "cookies"],
)
async def test_rest_caller_cannot_override_binds_or_fixed_values(served, fresh_upstream, attempt):
    http, _, _ = served
    cookies = attempt.get("cookies")
    if cookies:
        http.cookies.update(cookies)
    r = await http.get("/v1/customers/cus_123", params=attempt.get("params"), headers=attempt.get("headers"))
    assert r.status_code == 200, r.text
    sent = fresh_upstream.last
    assert sent.path == "/customers/cus_123"
    assert sent.query.getall("org") == ["acme"]
    assert sent.headers["x-secret"] == "s3cr3t-header"


@pytest.mark.parametrize("mode", MODES)
async def test_mcp_arguments_cannot_override_binds_or_fixed_values(served, fresh_upstream, mode):
    _, server, _ = served
    arguments = {"customer_id": "c1", "secrets": {"HDR": "mine"}, "TENANT": "evil", "org": "evil", "X-Secret": "mine"}
    result = await call_tool(server, mode, "get-customer", arguments)
    assert not result.is_error, result.content
    sent = fresh_upstream.last
    assert sent.path == "/customers/c1"
    assert sent.query.getall("org") == ["acme"]
    assert sent.headers["x-secret"] == "s3cr3t-header"


@pytest.mark.parametrize(
    "attempt",
    [{"headers": {"customer_id": "cus_OTHER"}}, {"params": {"customer_id": "cus_OTHER"}},
     {"params": {"customer-id": "cus_OTHER"}}, {"cookies": {"customer_id": "cus_OTHER"}}],
    ids=["header", "query", "query-same-spelling", "cookie"],
)
async def test_rest_path_variable_is_never_overridden(served, fresh_upstream, attempt):
    http, _, _ = served
    if attempt.get("cookies"):
        http.cookies.update(attempt["cookies"])
    r = await http.get("/v1/customers/cus_123", params=attempt.get("params"), headers=attempt.get("headers"))
    assert r.status_code == 200, r.text
    assert fresh_upstream.last.path == "/customers/cus_123"


async def test_rest_headers_feed_only_declared_header_parameters(served, fresh_upstream):
    http, _, _ = served
    r = await http.get("/traced", headers={"X-Request-Id": "r-1", "page": "9", "X-Other": "o"})
    assert r.status_code == 200, r.text
    sent = fresh_upstream.last
    assert sent.headers["x-request-id"] == "r-1"  # a consumed header parameter, fed by its header
    assert "page" not in sent.query  # a query parameter is not fed from a header of that name
    assert "x-other" not in sent.headers
    both = {"X-Request-Id": "from-header"}
    await http.get("/traced", params={"page": "2", "X-Request-Id": "from-query"}, headers=both)
    assert fresh_upstream.last.query.getall("page") == ["2"]
    assert fresh_upstream.last.headers["x-request-id"] == "from-query"  # one value: the query's, never a list


@pytest.mark.parametrize("mode", MODES)
async def test_mcp_declared_tool_gets_only_its_inputs(served, fresh_upstream, mode):
    """Declared inputs are the whole contract: `customer-id` feeds `customer_id` (bound at load);
    an undeclared argument named like the consumed parameter feeds nothing."""
    _, server, _ = served
    result = await call_tool(server, mode, "declared", {"customer-id": "c7", "customer_id": "evil"})
    assert not result.is_error, result.content
    assert fresh_upstream.last.path == "/customers/c7"


@pytest.mark.parametrize("mode", MODES)
async def test_mcp_undeclared_argument_never_reaches_a_template(served, fresh_upstream, mode):
    """`value: '{{userId}}'` on the consumed side; the tool declares only `term`: a caller's
    `userId` argument is dropped, so the upstream gets no `q` at all."""
    _, server, _ = served
    result = await call_tool(server, mode, "declared-search", {"term": "x", "userId": "evil"})
    assert not result.is_error, result.content
    assert "q" not in fresh_upstream.last.query


# ------------------------------------------------------------------ (b) names as data


async def test_rest_odata_and_jsonapi_names_are_forwarded(served, fresh_upstream):
    http, _, _ = served
    names = {"$top": "5", "$filter": "a eq 1", "filter[state]": "open", "state~neq": "closed"}
    r = await http.get("/odata", params=names)
    assert r.status_code == 200, r.text
    q = fresh_upstream.last.query
    assert {name: q.get(name) for name in names} == names


async def test_rest_absent_names_send_nothing_never_the_alias_text(served, fresh_upstream):
    http, _, _ = served
    assert (await http.get("/odata")).status_code == 200
    assert list(fresh_upstream.last.query.items()) == []


@pytest.mark.parametrize("mode", MODES)
async def test_mcp_odata_names_in_schema_and_forwarded(served, fresh_upstream, mode):
    _, server, _ = served
    tools = await list_tools(server, mode)
    assert {"$top", "filter[state]"} <= set(tools["odata"].input_schema["properties"])
    result = await call_tool(server, mode, "odata", {"$top": 3, "filter[state]": "open"})
    assert not result.is_error, result.content
    q = fresh_upstream.last.query
    assert (q.get("$top"), q.get("filter[state]")) == ("3", "open")
    await call_tool(server, mode, "odata", {})
    assert list(fresh_upstream.last.query.items()) == []


# ------------------------------------------------------------------ (c) body inputs, value templates, $this


async def test_rest_post_voyages_binds_body_fields(served, fresh_upstream):
    http, _, _ = served
    r = await http.post("/voyages", json={"shipImo": "9321483", "crewIds": [11, 12]})
    assert r.status_code == 200, r.text
    assert fresh_upstream.last.json() == {"imo": "9321483", "crew": [11, 12]}


async def test_rest_missing_required_body_field_is_400_and_nothing_sent(served, fresh_upstream):
    http, _, _ = served
    r = await http.post("/voyages", json={"shipImo": "9321483"})
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "crewIds" in r.text
    assert fresh_upstream.requests == []


@pytest.mark.parametrize("body, field", [({"shipImo": 9321483, "crewIds": [1]}, "shipImo"),
                                         ({"shipImo": "9321483", "crewIds": "1,2"}, "crewIds")])
async def test_rest_body_field_of_the_wrong_type_is_400_and_nothing_sent(served, fresh_upstream, body, field):
    http, _, _ = served
    r = await http.post("/voyages", json=body)
    assert r.status_code == 400
    assert r.json()["field"] == field
    assert fresh_upstream.requests == []


async def test_rest_body_inputs_by_jsonpath_value(served, fresh_upstream):
    http, _, _ = served
    r = await http.put("/users", json={"user": {"id": 7, "name": "Ann"}})
    assert r.status_code == 200, r.text
    assert fresh_upstream.last.json() == {"id": 7, "name": "Ann"}


async def test_rest_consumed_value_template_of_an_input(served, fresh_upstream):
    http, _, _ = served
    assert (await http.get("/search", params={"userId": "u-1"})).status_code == 200
    assert fresh_upstream.last.query.getall("q") == ["u-1"]


@pytest.mark.parametrize("mode", MODES)
async def test_mcp_template_inputs_are_in_the_schema_and_sent(served, fresh_upstream, mode):
    _, server, _ = served
    tools = await list_tools(server, mode)
    user_id = tools["search"].input_schema["properties"]["userId"]
    assert user_id == {"type": "string", "description": "The user to search for."}
    assert "amount" in tools["charge"].input_schema["properties"]
    assert not (await call_tool(server, mode, "search", {"userId": "u-2"})).is_error
    assert fresh_upstream.last.query.getall("q") == ["u-2"]
    assert not (await call_tool(server, mode, "charge", {"amount": 12})).is_error
    assert fresh_upstream.last.json() == {"amount": 12}


@pytest.mark.parametrize("mode", MODES)
async def test_mcp_this_namespace_reference(served, fresh_upstream, mode):
    _, server, _ = served
    tools = await list_tools(server, mode)
    assert "record-id" in tools["get-by-record"].input_schema["properties"]
    result = await call_tool(server, mode, "get-by-record", {"record-id": "r9"})
    assert not result.is_error, result.content
    assert fresh_upstream.last.path == "/customers/r9"


# ------------------------------------------------------------------ (d) big integers


async def test_rest_big_integers_reach_the_upstream_exact(served, fresh_upstream):
    http, _, _ = served
    body = b'{"id": 99999999999999999999999, "amount": 18446744073709551617, "small": 1.5}'
    r = await http.post("/items", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    assert b"99999999999999999999999" in fresh_upstream.last.body
    assert b"18446744073709551617" in fresh_upstream.last.body


@pytest.mark.parametrize("mode", MODES)
async def test_mcp_big_integers_from_the_upstream_stay_exact(served, fresh_upstream, mode):
    _, server, _ = served
    fresh_upstream.reply("/customers/c1", Reply(body=b'{"balance": 123456789012345678901234567890}'))
    result = await call_tool(server, mode, "get-customer", {"customer_id": "c1"})
    assert not result.is_error, result.content
    assert result.structured_content == {"balance": 123456789012345678901234567890}
    assert "123456789012345678901234567890" in result.content[0].text


# ------------------------------------------------------------------ (e) variables nothing can provide

TYPO = """\
naftiko: 1.0.0-alpha2
info: {label: Typo, description: a misspelt bind}
binds:
- namespace: lamp
  keys: {LAMP_TOKEN: LAMP_TOKEN_ENV}
capability:
  consumes:
  - type: http
    namespace: lamp
    baseUri: https://lamp.example.com
    authentication: {type: bearer, token: '{{LAMP_TOKN}}'}
    resources:
    - name: state
      path: /state
      operations:
      - name: get-state
        inputParameters:
        - {name: X-Key, in: header, value: '{{lamp.LAMP_TOKEM}}'}
  exposes:
  - type: mcp
    namespace: lamp-mcp
    port: 0
    tools:
    - {name: state, description: s, call: lamp.get-state}
"""


def test_outbound_variable_no_bind_provides_is_a_positioned_load_error(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text(TYPO)
    with pytest.raises(LoadError) as info:
        compile_plan(load(str(path)), Options(environ={"LAMP_TOKEN_ENV": "t0k3n-value"}))
    messages = {(d.line, d.message) for d in info.value.diagnostics}
    token_line = TYPO[: TYPO.index("token: '{{LAMP_TOKN}}'")].count("\n") + 1
    header_line = TYPO[: TYPO.index("{{lamp.LAMP_TOKEM}}")].count("\n") + 1
    assert any(line == token_line and "LAMP_TOKN" in m and "lamp.LAMP_TOKEN" in m for line, m in messages), messages
    assert any(line == header_line and "LAMP_TOKEM" in msg for line, msg in messages), messages
    assert not any("t0k3n-value" in msg for _, msg in messages)


def test_outbound_variable_no_bind_provides_is_an_error_under_dry_run_too(tmp_path):
    """Under --dry-run (and `naftiko validate`) an unset bind variable is a placeholder, but a
    name no bind declares is still a mistake."""
    path = tmp_path / "typo.yaml"
    path.write_text(TYPO)
    with pytest.raises(LoadError) as info:
        compile_plan(load(str(path)), Options(environ={}, dry_run=True))
    assert any("LAMP_TOKN" in d.message for d in info.value.diagnostics)


# ------------------------------------------------------------------ (f) fragments, declared Content-Type, outputSchema

EDGES = """\
naftiko: 1.0.0-alpha2
info: {label: Edges, description: paths, bodies, output schemas}
capability:
  consumes:
  - type: http
    namespace: aws
    baseUri: https://aws.example.com
    resources:
    - name: target
      path: '/#X-Amz-Target=Cognito.ListUsers'
      operations:
      - name: list-users
        method: POST
        inputParameters:
        - {name: X-Amz-Target, in: header, value: Cognito.ListUsers}
        - {name: limit, in: query}
    - name: soap
      path: /soap
      operations:
      - name: soap
        method: POST
        inputParameters:
        - {name: Content-Type, in: header, value: text/xml}
        - {name: envelope, in: body}
    - name: empty
      path: /empty
      operations:
      - name: empty
        method: GET
  exposes:
  - type: mcp
    namespace: edges
    port: 0
    tools:
    - {name: list-users, description: l, call: aws.list-users}
    - {name: soap, description: s, call: aws.soap}
    - name: typed
      description: typed outputs over an empty answer
      call: aws.empty
      outputParameters:
      - {name: id, type: string, mapping: $.id}
      - {name: count, type: integer, mapping: $.count}
"""


@pytest.fixture
async def edges(tmp_path, fresh_upstream):
    path = tmp_path / "edges.yaml"
    path.write_text(EDGES)
    plan = compile_plan(load(str(path)), Options(environ={}, base_uris={"aws": fresh_upstream.url}))
    yield plan, build_server(plan.adapters[0], plan.secrets.mask)[0]
    await plan.aclose()


async def test_fragment_in_consumed_path_is_kept_out_of_the_request_target(edges, fresh_upstream):
    plan, server = edges
    line = EDGES[: EDGES.index("      - name: list-users")].count("\n") + 1
    assert any(w.line == line and "#X-Amz-Target" in w.message for w in plan.warnings), plan.warnings
    result = await call_tool(server, "legacy", "list-users", {"limit": 5})
    assert not result.is_error, result.content
    sent = fresh_upstream.last
    assert sent.path == "/"
    assert sent.query.getall("limit") == ["5"]
    assert sent.headers["x-amz-target"] == "Cognito.ListUsers"


async def test_declared_content_type_governs_a_string_body(edges, fresh_upstream):
    _, server = edges
    xml = '<Envelope a="1">x</Envelope>'
    result = await call_tool(server, "auto", "soap", {"envelope": xml})
    assert not result.is_error, result.content
    sent = fresh_upstream.last
    assert sent.body == xml.encode()
    assert sent.headers["content-type"] == "text/xml"


@pytest.mark.parametrize("mode", MODES)
async def test_output_schema_is_always_honoured(edges, fresh_upstream, mode):
    _, server = edges
    fresh_upstream.reply("/empty", Reply(status=204, body=b""))
    async with Client(server, mode=mode) as client:
        schema = {t.name: t for t in (await client.list_tools()).tools}["typed"].output_schema
        result = await client.call_tool("typed", {})
    assert schema is not None and set(schema["properties"]) == {"id", "count"}
    assert not result.is_error, result.content
    assert result.structured_content == {"id": None, "count": None}


FEEDS_NOTHING = """\
naftiko: 1.0.0-alpha2
info: {label: Unused, description: inputs that feed nothing}
capability:
  consumes:
  - type: http
    namespace: up
    baseUri: https://api.example.com
    resources:
    - name: items
      path: /items
      operations:
      - name: list
        inputParameters:
        - {name: q, in: query}
  exposes:
  - type: rest
    namespace: api
    port: 0
    resources:
    - path: /orgs/{org}/items
      operations:
      - {method: GET, call: up.list}
  - type: mcp
    namespace: tools-mcp
    port: 0
    tools:
    - name: search
      description: s
      inputParameters:
      - {name: query, type: string}
      call: up.list
      with:
        q: tools.qeury
"""


def test_inputs_that_feed_nothing_are_positioned_warnings(tmp_path):
    path = tmp_path / "unused.yaml"
    path.write_text(FEEDS_NOTHING)
    plan = compile_plan(load(str(path)), Options(environ={}))
    route_line = FEEDS_NOTHING[: FEEDS_NOTHING.index("- {method: GET, call: up.list}")].count("\n") + 1
    tool_line = FEEDS_NOTHING[: FEEDS_NOTHING.index("    - name: search")].count("\n") + 1
    warnings = {(w.line, w.message) for w in plan.warnings}
    assert any(line == route_line and "'{org}' feeds nothing" in msg for line, msg in warnings), warnings
    assert any(line == tool_line and "'qeury'" in msg for line, msg in warnings), warnings


def test_json_body_template_with_a_missing_value_stays_valid_json():
    """`"crew": {{crewIds}}` with no crewIds was `"crew": ,`; a value standing alone is null."""
    from naftiko.consumes.request import BodyPlan
    from naftiko.expressions.template import Scope

    body = BodyPlan("template", '{"imo": "{{shipImo}}", "crew": {{crewIds}}, "n": [{{a}}, {{b}}], "q": {{q}}}')
    data, ctype = body.render(Scope({"shipImo": 'say "hi"', "b": 2, "q": [1, {"x": None}]}))
    assert ctype == "application/json"
    assert orjson.loads(data) == {"imo": 'say "hi"', "crew": None, "n": [None, 2], "q": [1, {"x": None}]}


STEPS = """\
naftiko: 1.0.0-alpha2
info: {label: Steps, description: orchestrated units bind at load too}
binds:
- namespace: secrets
  keys: {TENANT: BIND_TENANT}
capability:
  consumes:
  - type: http
    namespace: up
    baseUri: https://api.example.com
    resources:
    - name: gardens
      path: /gardens/{id}
      operations:
      - name: get-garden
        inputParameters:
        - {name: org, in: query, value: '{{TENANT}}'}
  exposes:
  - type: rest
    namespace: api
    port: 0
    resources:
    - path: /gardens/{garden-id}
      operations:
      - method: GET
        steps:
        - {type: call, name: garden, call: up.get-garden, with: {id: rest.garden_id}}
        mappings:
        - {targetName: requested, value: rest.garden_id}
        - {targetName: path, value: $.garden.path}
"""


async def test_orchestrated_unit_binds_tolerant_names_at_load_and_keeps_binds(tmp_path, fresh_upstream):
    path = tmp_path / "steps.yaml"
    path.write_text(STEPS)
    plan = compile_plan(load(str(path)), Options(environ=dict(ENV), base_uris={"up": fresh_upstream.url}))
    app = build_rest_app(plan.adapters[0], plan.secrets.mask)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as http:
            attempt = {"TENANT": "evil", "garden_id": "g-OTHER"}
            r = await http.get("/gardens/g-1", params=attempt, headers={"garden_id": "g-2"})
        assert r.status_code == 200, r.text
        assert r.json() == {"requested": "g-1", "path": "/gardens/g-1"}
        assert fresh_upstream.last.query.getall("org") == ["acme"]
    finally:
        await plan.aclose()


@pytest.mark.parametrize("mode", MODES)
async def test_mcp_big_integer_argument_reaches_the_upstream_exact(served, fresh_upstream, mode):
    _, server, _ = served
    result = await call_tool(server, mode, "charge", {"amount": 99999999999999999999999})
    assert not result.is_error, result.content
    assert fresh_upstream.last.body == b'{"amount":99999999999999999999999}'
