"""outputRawFormat: every upstream format is decoded into JSON data that JSONPath mappings address.

Unit tests decode real bodies with :func:`naftiko.consumes.formats.decode` and shape them with
the real :func:`compile_outputs`; the end-to-end tests serve ``fixtures/formats.yaml`` against
the fake upstream and read the shaped JSON back over REST and MCP (both protocol eras).
"""

from __future__ import annotations

import orjson
import pytest
import pytest_asyncio

from conftest import FIXTURES, Reply
from harness import serve_in_memory
from naftiko.consumes.formats import MAX_DECODE_BYTES, check_format, decode
from naftiko.consumes.transport import UpstreamResponse
from naftiko.document.model import OutputParameter
from naftiko.engine.shaping import compile_outputs
from naftiko.errors import UpstreamUnavailable


def response(body: bytes | str, content_type: str = "text/plain") -> UpstreamResponse:
    raw = body.encode() if isinstance(body, str) else body
    return UpstreamResponse(200, {"content-type": content_type}, raw)


def shape(document: object, *params: dict) -> object:
    return compile_outputs([OutputParameter.model_validate(p) for p in params])(document)


def undecodable(body: bytes | str, fmt: str, content_type: str = "text/plain", schema: str | None = None) -> str:
    with pytest.raises(UpstreamUnavailable) as caught:
        decode(response(body, content_type), fmt, schema)
    assert caught.value.status == 502
    return caught.value.detail


# ------------------------------------------------------------------ json


def test_json_is_parsed_whatever_the_content_type():
    assert decode(response(b'{"a": [1, 2]}', "text/html")) == {"a": [1, 2]}
    assert decode(response(b'{"a": 1}', "application/octet-stream"), "json") == {"a": 1}


def test_json_with_byte_order_mark_or_declared_charset():
    assert decode(response(b'\xef\xbb\xbf{"a": 1}', "application/json")) == {"a": 1}
    latin1 = '{"name": "Café"}'.encode("latin-1")
    assert decode(response(latin1, "application/json; charset=ISO-8859-1")) == {"name": "Café"}


def test_json_that_is_not_json_is_a_502():
    detail = undecodable(b"<html>oops</html>", "json", "text/html")
    assert "not JSON" in detail and "text/html" in detail


def test_a_body_labelled_json_wins_over_the_declared_format():
    assert decode(response(b'{"vessel": []}', "application/json"), "xml") == {"vessel": []}
    assert decode(response(b'[{"sku": "A"}]', "application/vnd.api+json"), "csv") == [{"sku": "A"}]
    # labelled JSON but not JSON: the declared format still gets its chance
    assert decode(response(b"sku\nA\n", "application/json"), "csv") == [{"sku": "A"}]


# ------------------------------------------------------------------ xml

FLEET = b"""<?xml version="1.0" encoding="UTF-8"?>
<fl:fleet xmlns:fl="urn:example:fleet" updated="2026-01-01">
  <!-- two vessels -->
  <fl:vessel code="V001"><name>Sea Eagle</name><tonnage>1200</tonnage></fl:vessel>
  <fl:vessel code="V002"><name> Ocean Star </name><tonnage>860</tonnage><retired/></fl:vessel>
  <price currency="EUR">12.5</price>
  <note>Hello <b>big</b> world</note>
</fl:fleet>"""


def test_xml_elements_attributes_repeats_and_text():
    doc = decode(response(FLEET, "application/xml"), "xml")
    assert doc == {
        "updated": "2026-01-01",
        "vessel": [
            {"code": "V001", "name": "Sea Eagle", "tonnage": "1200"},
            {"code": "V002", "name": "Ocean Star", "tonnage": "860", "retired": ""},
        ],
        "price": {"currency": "EUR", "": "12.5"},
        "note": {"b": "big", "": "Hello world"},
    }


def test_xml_mapping_through_shaping():
    doc = decode(response(FLEET), "xml")
    vessels = shape(doc, {
        "type": "array", "mapping": "$.vessel",
        "items": {"type": "object", "properties": {
            "code": {"type": "string", "mapping": "$.code"},
            "tonnage": {"type": "number", "mapping": "$.tonnage"},
        }},
    })
    assert vessels == [{"code": "V001", "tonnage": 1200}, {"code": "V002", "tonnage": 860}]
    assert shape(doc, {"type": "number", "mapping": "$.price['']"}) == 12.5


def test_xml_single_child_is_an_object_and_still_maps_as_an_array():
    doc = decode(response(b"<fleet><vessel code='V9'><name>Solo</name></vessel></fleet>"), "xml")
    assert doc == {"vessel": {"code": "V9", "name": "Solo"}}
    names = shape(doc, {"type": "array", "mapping": "$.vessel", "items": {"type": "string", "mapping": "$.name"}})
    assert names == ["Solo"]


def test_xml_text_only_root_is_a_string():
    assert decode(response(b"<status> ok </status>"), "xml") == "ok"


def test_xml_entity_expansion_is_refused():
    bomb = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<lolz>&lol3;</lolz>"""
    detail = undecodable(bomb, "xml")
    assert "XML" in detail and "refused" in detail


def test_xml_external_entity_is_refused():
    xxe = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'
    detail = undecodable(xxe, "xml")
    assert "refused" in detail and "root:" not in detail


@pytest.mark.parametrize("body", [b"<a><b></a>", b"not xml at all", b"<a>" * 5000 + b"</a>" * 5000])
def test_bad_xml_is_a_502_naming_the_format(body):
    detail = undecodable(body, "xml")
    assert detail.startswith("upstream body is not valid XML (")
    assert "Traceback" not in detail


# ------------------------------------------------------------------ yaml


def test_yaml_document_dates_and_keys():
    body = "deploy:\n  region: eu-west-1\n  replicas: 3\nreleased: 2026-01-02\n7: seven\nfalse: no\ntags: [a, b]\n"
    doc = decode(response(body, "application/yaml"), "yaml")
    assert doc == {
        "deploy": {"region": "eu-west-1", "replicas": 3},
        "released": "2026-01-02",
        "7": "seven",
        "false": False,
        "tags": ["a", "b"],
    }
    orjson.dumps(doc)  # plain JSON data
    assert shape(doc, {"type": "object", "properties": {
        "region": {"type": "string", "mapping": "$.deploy.region"},
        "count": {"type": "number", "mapping": "$.tags.length()"},
    }}) == {"region": "eu-west-1", "count": 2}


def test_yaml_several_documents_are_a_list():
    assert decode(response("a: 1\n---\na: 2\n"), "yaml") == [{"a": 1}, {"a": 2}]


def test_yaml_alias_bomb_is_too_large():
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for prev, name in zip("abcdef", "bcdefg", strict=True):
        levels.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    detail = undecodable("\n".join(levels) + "\n", "yaml")
    assert "YAML" in detail and "too large to decode" in detail


@pytest.mark.parametrize("body", ["a: [1, 2", "a: !!python/object/apply:os.system [id]", "a: &a [*a]"])
def test_bad_or_unsafe_yaml_is_a_502(body):
    assert undecodable(body, "yaml").startswith("upstream body is not valid YAML (")


# ------------------------------------------------------------------ csv, tsv, psv


@pytest.mark.parametrize("fmt,sep", [("csv", ","), ("tsv", "\t"), ("psv", "|")])
def test_delimited_rows_keyed_by_header(fmt, sep):
    body = sep.join(["sku", "price", "label"]) + "\r\n" + sep.join(["A-1", "12.50", '"Big, ""new"" one"']) + "\r\n\r\n" + sep.join(["B-2", "3"]) + "\r\n"
    doc = decode(response(body, "text/plain"), fmt)
    assert doc == [
        {"sku": "A-1", "price": "12.50", "label": 'Big, "new" one'},
        {"sku": "B-2", "price": "3", "label": ""},  # a short row is padded
    ]
    prices = shape(doc, {"type": "array", "mapping": "$", "items": {"type": "object", "properties": {
        "sku": {"type": "string", "mapping": "$.sku"},
        "price": {"type": "number", "mapping": "$.price"},
    }}})
    assert prices == [{"sku": "A-1", "price": 12.5}, {"sku": "B-2", "price": 3}]


def test_csv_quoted_newlines_bom_blank_and_repeated_headers():
    body = '\ufeffid,,id,note\n1,x,2,"two\nlines",extra\n'.encode()
    assert decode(response(body, "text/csv"), "csv") == [{"id": "1", "column2": "x", "id_2": "2", "note": "two\nlines"}]


def test_csv_header_only_or_empty_is_no_rows():
    assert decode(response("a,b\n"), "csv") == []
    assert decode(response("\n\n"), "csv") == []


def test_bad_csv_is_a_502():
    assert undecodable('a,b\n1,"unterminated\n', "csv").startswith("upstream body is not valid CSV (")
    assert "not utf-8 text" in undecodable(b"a,b\n\xff\xfe,1\n", "csv")


# ------------------------------------------------------------------ html

PAGE = """<!doctype html><html><body>
<table class="nav"><tr><td>Home</td><td>About</td></tr></table>
<div id="main">
  <table id="prices">
    <thead><tr><th>Product</th><th>Unit price</th><th colspan="2">Stock</th></tr></thead>
    <tbody>
      <tr><td><a href="/w">Widget</a> <em>new</em></td><td>12.50</td><td>4</td><td>shelf A</td></tr>
      <tr><td>Gadget</td><td>3</td></tr>
    </tbody>
  </table>
  <table id="people"><tr><th>Name</th><th>Notes</th></tr>
    <tr><th>Ada</th><td>see <table><tr><td>inner</td></tr></table></td></tr></table>
</div>
<span class="total big" data-currency="EUR">15.50</span>
</body></html>"""

PRICE_ROWS = [
    {"Product": "Widget new", "Unit price": "12.50", "Stock": "4", "Stock_2": "shelf A"},
    {"Product": "Gadget", "Unit price": "3", "Stock": "", "Stock_2": ""},
]


def test_html_all_tables_without_selector():
    doc = decode(response(PAGE, "text/html; charset=utf-8"), "html")
    assert doc["tables"][0] == []  # without th cells the first row is the header; no rows left
    assert doc["tables"][1] == PRICE_ROWS
    assert doc["tables"][2] == [{"Name": "Ada", "Notes": "see inner"}]  # a th row header is data, not a header
    assert doc["tables"][3] == []  # the nested table: its only row is its header
    assert set(doc) == {"tables"}


def test_html_selector_picks_a_table_and_maps():
    doc = decode(response(PAGE), "html", "table#prices")
    assert doc["tables"] == [PRICE_ROWS]
    assert doc["elements"][0]["tag"] == "table" and doc["elements"][0]["attributes"] == {"id": "prices"}
    rows = shape(doc, {"type": "array", "mapping": "$.tables[0]", "items": {"type": "object", "properties": {
        "product": {"type": "string", "mapping": "$.Product"},
        "price": {"type": "number", "mapping": "$['Unit price']"},
    }}})
    assert rows == [{"product": "Widget new", "price": 12.5}, {"product": "Gadget", "price": 3}]


def test_html_selector_on_a_container_takes_its_tables():
    doc = decode(response(PAGE), "html", "#main")
    assert doc["tables"][0] == PRICE_ROWS and len(doc["tables"]) == 3


def test_html_selector_on_plain_elements():
    doc = decode(response(PAGE), "html", "span.total")
    assert doc == {
        "tables": [],
        "elements": [{"tag": "span", "text": "15.50", "attributes": {"class": "total big", "data-currency": "EUR"}}],
    }
    assert shape(doc, {"type": "number", "mapping": "$.elements[0].text"}) == 15.5


def test_html_selector_matching_nothing():
    assert decode(response(PAGE), "html", "table.missing") == {"tables": [], "elements": []}


# ------------------------------------------------------------------ markdown

HANDBOOK = """---
title: Release handbook
reviewed: 2026-03-01
---
Read this first.

# Release handbook

## Step 1: Build
Run `make`.

- check the changelog

## Step 2: Ship
Tag it
---------

> ## Not a section

## Owners

| Area | Owner |
|------|-------|
| CI   | **Lin** |
| Docs | Sam |
"""


def test_markdown_front_matter_tables_and_sections():
    doc = decode(response(HANDBOOK.replace("\n", "\r\n"), "text/markdown"), "markdown")
    assert doc["frontMatter"] == {"title": "Release handbook", "reviewed": "2026-03-01"}
    assert doc["tables"] == [[{"Area": "CI", "Owner": "Lin"}, {"Area": "Docs", "Owner": "Sam"}]]
    assert doc["sections"] == [
        {"heading": "Release handbook", "level": 1, "content": ""},
        {"heading": "Step 1: Build", "level": 2, "content": "Run `make`.\n\n- check the changelog"},
        {"heading": "Step 2: Ship", "level": 2, "content": ""},
        {"heading": "Tag it", "level": 2, "content": "> ## Not a section"},
        {"heading": "Owners", "level": 2, "content": "| Area | Owner |\n|------|-------|\n| CI   | **Lin** |\n| Docs | Sam |"},
    ]


def test_markdown_heading_prefix_filters_sections_and_maps():
    doc = decode(response(HANDBOOK), "markdown", "Step")
    assert [s["heading"] for s in doc["sections"]] == ["Step 1: Build", "Step 2: Ship"]
    assert len(doc["tables"]) == 1  # the filter scopes sections only
    out = shape(doc, {"type": "object", "properties": {
        "title": {"type": "string", "mapping": "$.frontMatter.title"},
        "steps": {"type": "array", "mapping": "$.sections[*].heading"},
        "owners": {"type": "array", "mapping": "$.tables[0]", "items": {"type": "string", "mapping": "$.Owner"}},
    }})
    assert out == {"title": "Release handbook", "steps": ["Step 1: Build", "Step 2: Ship"], "owners": ["Lin", "Sam"]}


def test_markdown_without_front_matter_or_with_a_leading_rule():
    assert decode(response("# A\ntext"), "markdown")["frontMatter"] == {}
    doc = decode(response("---\nJust a rule\n---\nbody\n"), "markdown")  # not a YAML mapping: plain markdown
    assert doc["frontMatter"] == {}
    assert doc["sections"] == [{"heading": "Just a rule", "level": 2, "content": "body"}]
    assert decode(response(""), "markdown") == {"frontMatter": {}, "tables": [], "sections": []}


# ------------------------------------------------------------------ load-time checks and limits


def test_schema_driven_formats_at_load():  # decoding: tests/test_avro_e2e.py, tests/test_protobuf_e2e.py
    assert check_format("protobuf") == "outputRawFormat 'protobuf' needs outputSchema, the .proto file describing the answer"
    assert check_format("avro") is None  # container files carry their schema


def test_check_format_accepts_known_formats_and_refuses_unknown_ones():
    for fmt in (None, "json", "XML", "yaml", "csv", "tsv", "psv", "markdown", "html", "binary"):
        assert check_format(fmt) is None
    assert check_format("html", "table#prices > tbody tr:nth-child(2)") is None
    assert "unknown outputRawFormat 'bytes'" in check_format("bytes")
    message = check_format("html", "table[")
    assert message.startswith("outputSchema 'table[' is not a valid CSS selector")


@pytest.mark.parametrize("fmt", ["xml", "yaml", "csv", "html", "markdown"])
def test_bodies_over_the_cap_are_not_parsed(fmt):
    detail = undecodable(b"a" * (MAX_DECODE_BYTES + 1), fmt)
    assert "too large to decode" in detail


# ------------------------------------------------------------------ end to end

REST, MCP = "formats-rest", "formats-mcp"

FLEET_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<fleet xmlns="urn:example:fleet" updated="2026-01-01">
  <vessel code="V001"><name>Sea Eagle</name><tonnage>1200</tonnage></vessel>
  <vessel code="V002"><name>Ocean Star</name><tonnage>860</tonnage></vessel>
</fleet>"""
PRICES_CSV = b'sku,price,label\r\nA-1,12.50,"Widget, large"\r\nB-2,3,Plain\r\n'
CONFIG_YAML = b"deploy:\n  region: eu-west-1\n  replicas: 3\ntags: [blue, green]\nreleased: 2026-01-02\n"


@pytest_asyncio.fixture(scope="module")
async def served(upstream):
    n = await serve_in_memory(FIXTURES / "formats.yaml", upstream.url, consumes=["legacy"], adapters=[REST, MCP])
    yield n
    assert await n.stop() == 0
    assert "Traceback" not in n.stderr


async def _everywhere(served, upstream, rest_path: str, tool: str, upstream_path: str) -> object:
    """The shaped answer over REST, MCP legacy and MCP 2026-07-28; all three must agree."""
    async with served.http() as http:
        r = await http.get(served.urls[REST] + rest_path)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    answers = [r.json()]
    for mode in ("legacy", "auto"):
        async with served.mcp(served.urls[MCP], mode=mode) as client:
            result = await client.call_tool(tool, {})
        assert not result.is_error, result.content
        answers.append(orjson.loads(result.content[0].text))
        if isinstance(answers[-1], dict):
            assert result.structured_content == answers[-1]
    assert answers[0] == answers[1] == answers[2]
    assert [(req.method, req.raw_path) for req in upstream.requests] == [("GET", upstream_path)] * 3
    return answers[0]


async def test_e2e_xml(served, fresh_upstream):
    fresh_upstream.reply("/fleet.xml", Reply(200, FLEET_XML, "application/xml"))
    assert await _everywhere(served, fresh_upstream, "vessels", "list-vessels", "/fleet.xml") == [
        {"code": "V001", "name": "Sea Eagle", "tonnage": 1200},
        {"code": "V002", "name": "Ocean Star", "tonnage": 860},
    ]


async def test_e2e_csv(served, fresh_upstream):
    fresh_upstream.reply("/prices.csv", Reply(200, PRICES_CSV, "text/csv"))
    assert await _everywhere(served, fresh_upstream, "prices", "list-prices", "/prices.csv") == [
        {"sku": "A-1", "price": 12.5},
        {"sku": "B-2", "price": 3},
    ]


async def test_e2e_yaml(served, fresh_upstream):
    fresh_upstream.reply("/config.yaml", Reply(200, CONFIG_YAML, "application/yaml"))
    assert await _everywhere(served, fresh_upstream, "config", "get-config", "/config.yaml") == {
        "region": "eu-west-1", "replicas": 3, "tags": ["blue", "green"],
    }


async def test_e2e_html_with_selector(served, fresh_upstream):
    fresh_upstream.reply("/catalog.html", Reply(200, PAGE.encode(), "text/html; charset=utf-8"))
    assert await _everywhere(served, fresh_upstream, "catalog", "get-catalog", "/catalog.html") == [
        {"product": "Widget new", "price": 12.5},
        {"product": "Gadget", "price": 3},
    ]


async def test_e2e_markdown_with_heading_prefix(served, fresh_upstream):
    fresh_upstream.reply("/handbook.md", Reply(200, HANDBOOK.encode(), "text/markdown"))
    assert await _everywhere(served, fresh_upstream, "handbook", "get-handbook", "/handbook.md") == {
        "title": "Release handbook",
        "steps": [
            {"heading": "Step 1: Build", "text": "Run `make`.\n\n- check the changelog"},
            {"heading": "Step 2: Ship", "text": ""},
        ],
        "owners": ["Lin", "Sam"],
    }


async def test_e2e_undecodable_body_is_a_502_and_a_tool_error(served, fresh_upstream):
    fresh_upstream.reply("/fleet.xml", Reply(200, b"<fleet><vessel></fleet>", "application/xml"))
    async with served.http() as http:
        r = await http.get(served.urls[REST] + "vessels")
    assert r.status_code == 502 and r.headers["content-type"] == "application/problem+json"
    assert "not valid XML" in r.json()["detail"]
    for mode in ("legacy", "auto"):
        async with served.mcp(served.urls[MCP], mode=mode) as client:
            result = await client.call_tool("list-vessels", {})
        assert result.is_error and "not valid XML" in result.content[0].text
        assert result.structured_content is None
