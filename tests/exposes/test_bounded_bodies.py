"""Request bodies within bounds, in process: the depth and size checks run on the raw bytes before
parsing (adapters/limits.py), so a 4 MiB ``[{},{},…]`` is refused without building a million
objects; a caller that hangs up mid-body is logged at INFO and recorded as 499, not a 500.
"""

from __future__ import annotations

import logging

import httpx
import orjson
import pytest
import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FIXTURES
from naftiko.document.loader import load
from naftiko.engine.plan import Options, compile_plan
from naftiko.exposes.http.limits import (
    MAX_JSON_CONTAINERS,
    MAX_JSON_DEPTH,
    JsonTooLarge,
    json_too_deep,
    loads_bounded,
    too_deep,
)
from naftiko.runtime.serve import build_app

FILE = FIXTURES / "resilience-hostile.yaml"


@pytest_asyncio.fixture
async def rest_app(fresh_upstream):
    plan = compile_plan(load(str(FILE)), Options(environ={}, base_uris={"up": fresh_upstream.url + "/base"}))
    rest = next(a for a in plan.adapters if a.kind == "rest")
    yield build_app(rest, plan), fresh_upstream
    await plan.aclose()


async def _post(app, body: bytes, content_type: str = "application/json") -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rest") as http:
        return await http.post("/items/1", content=body, headers={"content-type": content_type})


def _nested(depth: int) -> bytes:
    return b'{"a":' * (depth - 1) + b"[]" + b"}" * (depth - 1)


async def test_a_wide_body_of_empty_objects_is_refused_before_parsing(rest_app):
    app, upstream = rest_app
    body = b"[" + b",".join([b"{}"] * (4 * 1024 * 1024 // 3)) + b"]"
    r = await _post(app, body)
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"] == f"request body holds more than {MAX_JSON_CONTAINERS} objects and arrays"
    assert r.json()["field"] == "body"
    assert upstream.requests == []


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
async def test_a_body_one_level_too_deep_is_refused_and_one_at_the_limit_passes(rest_app, content_type):
    app, upstream = rest_app
    r = await _post(app, _nested(MAX_JSON_DEPTH + 1), content_type)
    assert r.status_code == 400
    assert r.json()["detail"] == f"request body nests deeper than {MAX_JSON_DEPTH} levels"
    assert upstream.requests == []
    r = await _post(app, _nested(MAX_JSON_DEPTH), content_type)
    assert r.status_code == 200, r.text
    assert orjson.loads(upstream.last.body) == orjson.loads(_nested(MAX_JSON_DEPTH))


async def test_brackets_inside_strings_do_not_count(rest_app):
    app, upstream = rest_app
    body = orjson.dumps({"text": "[" * 500 + '\\"{' * 100, "more": ["]]]" * 10, '"[[["']})
    r = await _post(app, body)
    assert r.status_code == 200, r.text
    assert upstream.last.body == body


async def test_a_client_that_hangs_up_mid_body_is_a_499_logged_at_info(rest_app, caplog):
    app, upstream = rest_app
    events = [
        {"type": "http.request", "body": b'{"a": [1, 2', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict] = []

    async def receive():
        return events.pop(0) if events else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/items/1", "raw_path": b"/items/1", "query_string": b"",
             "headers": [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
             "scheme": "http", "server": ("rest", 80), "client": ("127.0.0.1", 1), "root_path": ""}
    with caplog.at_level(logging.INFO, logger="naftiko"):
        await app(scope, receive, send)
    assert sent[0]["status"] == 499
    assert upstream.requests == []
    gone = [r for r in caplog.records if "disconnected before the answer" in r.getMessage()]
    assert [r.levelname for r in gone] == ["INFO"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


def test_loads_bounded_refuses_without_parsing_and_parses_what_fits():
    with pytest.raises(JsonTooLarge, match="nests deeper than 3 levels"):
        loads_bounded(b"[[[[]]]]", max_depth=3)
    with pytest.raises(JsonTooLarge, match="more than 2 objects"):
        loads_bounded('[{}, {}, {"x": "[[[["}]', max_containers=2)
    assert loads_bounded('{"a": "[[[[[[", "b": [[1]]}', max_depth=3) == {"a": "[[[[[[", "b": [[1]]}
    with pytest.raises(orjson.JSONDecodeError):
        loads_bounded(b"[1, 2")


_STRINGS = st.text(alphabet=st.sampled_from(list('[]{}"\\/ax\n\u00e9')), max_size=6)
_JSON = st.recursive(
    st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | _STRINGS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_STRINGS, inner, max_size=3),
    max_leaves=30,
)


@settings(max_examples=400)
@given(_JSON, st.integers(min_value=0, max_value=8), st.booleans())
def test_the_byte_level_depth_check_agrees_with_a_walk_of_the_parsed_value(value, limit, pretty):
    data = orjson.dumps(value, option=orjson.OPT_INDENT_2 if pretty else 0)
    assert json_too_deep(data, limit) == too_deep(value, limit)


# ---------------------------------------------------------------- upstream answers the engine must read

MAPPED = """\
naftiko: 1.0.0-alpha2
info: {label: T, description: test}
capability:
  consumes:
  - type: http
    namespace: up
    baseUri: https://api.example.com
    resources:
    - name: items
      path: /items/{id}
      operations:
      - {name: get-item, method: GET, outputRawFormat: json}
  exposes:
  - type: rest
    namespace: api
    port: 8080
    resources:
    - path: /relay/{id}
      operations:
      - {method: GET, call: up.get-item}
    - path: /field/{id}
      operations:
      - method: GET
        call: up.get-item
        outputParameters:
        - {name: data, type: object, mapping: $.data}
    - path: /whole/{id}
      operations:
      - method: GET
        call: up.get-item
        outputParameters:
        - {type: object, mapping: $}
"""


@pytest_asyncio.fixture
async def mapped_app(tmp_path, fresh_upstream):
    path = tmp_path / "mapped.yaml"
    path.write_text(MAPPED)
    plan = compile_plan(load(str(path)), Options(environ={}, base_uris={"up": fresh_upstream.url}))
    yield build_app(plan.adapters[0], plan), fresh_upstream
    await plan.aclose()


async def _get(app, path: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        return await http.get(path)


@pytest.mark.parametrize("route", ["/field/1", "/whole/1"])
async def test_a_non_json_answer_to_a_mapped_json_operation_is_a_502_naming_its_type(mapped_app, route):
    from conftest import Reply

    app, upstream = mapped_app
    upstream.reply("/items/1", Reply(body=b"<html><body>maintenance</body></html>", content_type="text/html"))
    r = await _get(app, route)
    assert r.status_code == 502 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"] == "upstream answered text/html that is not JSON; cannot apply outputParameters"
    r = await _get(app, "/relay/1")  # no outputs declared: relayed as it came
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")


async def test_upstream_json_nested_990_deep_is_a_502_problem_where_it_must_be_read(mapped_app):
    from conftest import Reply

    app, upstream = mapped_app
    deep = b'{"data":' + b"[" * 990 + b"]" * 990 + b"}"
    upstream.reply("/items/1", Reply(body=deep))
    r = await _get(app, "/field/1")
    assert r.status_code == 502 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"] == "upstream answered JSON nested deeper than 128 levels; cannot apply outputParameters"
    r = await _get(app, "/whole/1")  # the whole document as declared: relayed unread, byte for byte
    assert r.status_code == 200 and r.content == deep


# ---------------------------------------------------------------- typed inputs


@pytest_asyncio.fixture
async def typed_app(fresh_upstream):
    plan = compile_plan(load(str(FIXTURES / "fuzz-inputs.yaml")), Options(environ={"FUZZ_TOKEN": "t0ken-value"}, base_uris={"up": fresh_upstream.url}))
    rest = next(a for a in plan.adapters if a.kind == "rest")
    yield build_app(rest, plan), fresh_upstream
    await plan.aclose()


@pytest.mark.parametrize("value", ["1_000", " 7 ", "٣", "7.0", "nan", "0x10"])
async def test_integer_inputs_accept_only_ascii_decimal(typed_app, value):
    app, upstream = typed_app
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rest") as http:
        r = await http.get("/items/a", params={"limit": value})
    assert r.status_code == 400 and r.json()["field"] == "limit", r.text
    assert upstream.requests == []


@pytest.mark.parametrize(("name", "value", "ok"), [("limit", "-12", True), ("ratio", "1.5e3", True), ("ratio", "٣", False), ("ratio", "inf", False)])
async def test_number_inputs_are_json_numbers(typed_app, name, value, ok):
    app, upstream = typed_app
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rest") as http:
        r = await http.get("/items/a", params={name: value})
    if ok:
        assert r.status_code == 200, r.text
    else:
        assert r.status_code == 400 and r.json()["field"] == name
        assert upstream.requests == []


async def test_a_header_value_with_a_vertical_tab_is_a_400_naming_the_header(rest_app):
    app, upstream = rest_app
    scope_headers = [(b"x-trace", b"a\x0bb")]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rest") as http:
        request = http.build_request("GET", "/items/1")
        request.headers = httpx.Headers(request.headers.raw + scope_headers)  # raw bytes, as a client could send
        r = await http.send(request)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["field"].lower() == "x-trace" and "control character" in body["detail"]
    assert upstream.requests == []
