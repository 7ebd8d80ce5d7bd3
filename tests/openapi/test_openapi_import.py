"""``naftiko import openapi``: rich tool schemas, serialisation styles, body kinds, options, hints.

An original OAS 3.1 document (tests/fixtures/openapi/styles-oas31.yaml) exercising every
parameter style and request body kind is imported with the real command, compiled in dry-run
and served in process: the REST adapter through ``httpx.ASGITransport``, the MCP adapter
through the SDK's in-memory client. Each call's answer is the exact request naftiko would send
upstream (URL with its query string, headers, body), which the tests compare byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest
import yaml
from mcp import Client

from conftest import FIXTURES
from naftiko.cli import main
from naftiko.document.loader import load
from naftiko.engine.plan import Options, compile_plan
from naftiko.exposes.mcp.server import build_server
from naftiko.exposes.rest.router import build_rest_app
from naftiko.openapi.importer import ImportFailed, ImportOptions, import_openapi, read_spec

STYLES = FIXTURES / "openapi" / "styles-oas31.yaml"
INVENTORY = FIXTURES / "openapi" / "inventory-oas30.yaml"
DEPOT = FIXTURES / "openapi" / "depot-swagger20.json"
BASE = "https://api.ledger.example.test/v1"


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("styles") / "ledger.yaml"
    assert main(["import", "openapi", str(STYLES), "-o", str(out)]) == 0
    return out


class Served:
    """The imported capability compiled in dry-run; adapters built in process."""

    def __init__(self, file: Path):
        self.plan = compile_plan(load(str(file)), Options(dry_run=True, environ={}))
        adapters = {a.namespace: a for a in self.plan.adapters}
        self.rest = build_rest_app(adapters["ledger-styles-rest"], self.plan.secrets.mask)
        self.mcp, _ = build_server(adapters["ledger-styles-mcp"], self.plan.secrets.mask)

    async def call(self, tool: str, args: dict) -> dict:
        async with Client(self.mcp) as client:
            result = await client.call_tool(tool, args)
        assert not result.is_error, result.content
        return json.loads(result.content[0].text)

    async def tools(self) -> dict:
        async with Client(self.mcp) as client:
            return {t.name: t for t in (await client.list_tools()).tools}

    async def rest_call(self, method: str, path: str, **kwargs) -> dict:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.rest), base_url="http://rest") as http:
            r = await http.request(method, path, **kwargs)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture(scope="module")
def served(imported) -> Served:
    return Served(imported)


# ------------------------------------------------------------------ schemas as rich as the document


async def test_tool_schemas_keep_enums_formats_bounds_defaults_nullable_items(served):
    tools = await served.tools()
    listed = tools["list-charges"].input_schema["properties"]
    assert listed["status"] == {
        "type": "array",
        "description": "Charge statuses to include.",
        "items": {"type": "string", "enum": ["pending", "paid", "failed"]},
    }
    assert listed["limit"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 100,
        "default": 10,
        "description": "Query parameter limit.",
    }
    assert listed["created"]["properties"] == {"gt": {"type": "integer"}, "lte": {"type": "integer"}}
    assert listed["window"]["properties"]["from"] == {"type": "string", "format": "date"}
    assert "top" in listed  # `$top` reaches the upstream under its own name (below)
    assert tools["list-events"].input_schema["properties"]["type"]["type"] == ["string", "null"]
    assert tools["list-events"].input_schema["properties"]["type"]["enum"] == ["created", "deleted", None]
    # titles: the summary, else the operationId in words
    assert tools["create-charge"].title == "Create a charge"
    assert tools["list-charges"].title == "List charges" and tools["list-events"].title == "List events"


async def test_json_body_is_flattened_with_refs_allof_oneof_resolved(served):
    tools = await served.tools()
    schema = tools["update-charge"].input_schema
    assert set(schema["properties"]) == {"id", "note", "amount", "tags", "refund"}  # readOnly `created` left out
    assert schema["required"] == ["id"]
    assert schema["properties"]["note"] == {
        "type": ["string", "null"],
        "description": "A free note.",
        "examples": ["VIP customer"],
    }
    assert schema["properties"]["amount"] == {
        "type": "integer",
        "exclusiveMinimum": 0,
        "description": "Field amount of the request body.",
    }
    assert schema["properties"]["tags"]["items"] == {"type": "string", "maxLength": 20}
    assert schema["properties"]["refund"]["anyOf"] == [
        {"type": "boolean"},
        {"type": "object", "properties": {"amount": {"type": "integer"}}},
    ]
    assert schema["properties"]["id"]["pattern"] == "^ch_[a-z0-9]+$"
    form = tools["create-charge"].input_schema
    assert form["required"] == ["amount", "currency"]
    assert form["properties"]["currency"] == {
        "type": "string",
        "enum": ["eur", "usd"],
        "examples": ["eur"],
        "description": "Form field currency.",
    }
    assert form["properties"]["amount"]["description"] == "Amount in cents."


async def test_flattened_json_body_is_rebuilt_exactly(served):
    sent = await served.call(
        "update-charge", {"id": "ch_1", "note": None, "amount": 5, "tags": ["a"], "refund": {"amount": 2}}
    )
    assert (sent["method"], sent["url"]) == ("PATCH", f"{BASE}/charges/ch_1")
    assert sent["body"] == {
        "note": None,
        "amount": 5,
        "tags": ["a"],
        "refund": {"amount": 2},
    }  # an explicit null is sent
    sent = await served.call("update-charge", {"id": "ch_1", "amount": 5})  # one field given: still an object
    assert sent["body"] == {"amount": 5}
    assert sent["headers"]["Content-Type"] == "application/json"
    # REST: the body's fields are bound by name; unknown fields do not travel
    sent = await served.rest_call("PATCH", "/charges/ch_2", json={"amount": 7, "note": "x", "other": 1})
    assert (sent["url"], sent["body"]) == (f"{BASE}/charges/ch_2", {"note": "x", "amount": 7})


async def test_path_parameter_gives_way_to_a_body_field_of_the_same_name(served):
    tools = await served.tools()
    assert set(tools["replace-charge"].input_schema["properties"]) == {"id_path", "id", "amount"}
    sent = await served.call("replace-charge", {"id_path": "ch_3", "id": "ch_3b", "amount": 1})
    assert (sent["url"], sent["body"]) == (f"{BASE}/charges/ch_3", {"id": "ch_3b", "amount": 1})
    sent = await served.rest_call(
        "PUT", "/charges/ch_4", json={"id": "ch_4", "amount": 2}
    )  # the REST route is unchanged
    assert (sent["url"], sent["body"]) == (f"{BASE}/charges/ch_4", {"id": "ch_4", "amount": 2})


async def test_body_kept_whole_when_a_field_collides_with_a_query_parameter(served):
    tools = await served.tools()
    assert set(tools["capture-charge"].input_schema["properties"]) == {"id", "amount", "body"}
    body = tools["capture-charge"].input_schema["properties"]["body"]
    assert body["properties"] == {"amount": {"type": "integer"}, "statement": {"type": "string"}}
    sent = await served.call("capture-charge", {"id": "ch_5", "amount": 3, "body": {"amount": 3, "statement": "x"}})
    assert (sent["url"], sent["body"]) == (f"{BASE}/charges/ch_5/capture?amount=3", {"amount": 3, "statement": "x"})


async def test_arguments_are_checked_before_anything_is_sent(served):
    async with Client(served.mcp) as client:
        bad = await client.call_tool("create-charge", {"amount": 5, "currency": "gbp"})
        assert bad.is_error and "gbp" in bad.content[0].text
        bad = await client.call_tool("list-charges", {"limit": 1000})
        assert bad.is_error and "limit" in bad.content[0].text


# ------------------------------------------------------------------ serialisation as the document says


async def test_query_header_cookie_styles_over_mcp(served):
    sent = await served.call(
        "list-charges",
        {
            "created": {"gt": 7, "lte": 9},
            "status": ["paid", "failed"],
            "ids": ["a", "b"],
            "words": ["x", "y z"],
            "codes": [1, 2],
            "window": {"from": "2026-01-01", "to": "2026-02-01"},
            "top": 5,
            "X-Trace": ["t1", "t2"],
            "prefs": ["p", "q"],
        },
    )
    query = sent["url"].split("?", 1)[1]
    assert query == (
        "created%5Bgt%5D=7&created%5Blte%5D=9&status=paid&status=failed&ids=a%2Cb&words=x%20y%20z&codes=1%7C2"
        "&from=2026-01-01&to=2026-02-01&%24top=5"
    )
    assert sent["headers"]["X-Trace"] == "t1,t2"
    assert sent["headers"]["Cookie"] == "****"  # cookies are masked whole in a dry run; the encoding is checked below
    assert sent["headers"]["Authorization"] == "Bearer ****"


async def test_query_styles_over_rest(served):
    sent = await served.rest_call("GET", "/charges", params=[("status", "paid"), ("status", "failed"), ("$top", "3")])
    assert sent["url"] == f"{BASE}/charges?status=paid&status=failed&%24top=3"


async def test_path_styles_simple_label_matrix(served):
    sent = await served.call("get-point", {"coords": [1.5, 2], "label": ["a", "b"], "matrix": ["x", "y"]})
    assert sent["url"] == f"{BASE}/points/1.5,2/.a,b/;matrix=x;matrix=y"


async def test_stripe_style_nested_form_body(served):
    sent = await served.call(
        "create-charge",
        {
            "amount": 2000,
            "currency": "eur",
            "address": {"line1": "1 Main St", "city": "Paris"},
            "metadata": {"order_id": "6735"},
            "expand": ["customer", "invoice"],
            "items": [{"price": "price_1", "quantity": 2}, {"price": "price_2", "quantity": 1}],
        },
    )
    assert sent["url"] == f"{BASE}/charges" and sent["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert unquote(sent["body"]).split("&") == [
        "amount=2000",
        "currency=eur",
        "address[line1]=1 Main St",
        "address[city]=Paris",
        "metadata[order_id]=6735",
        "expand[0]=customer",
        "expand[1]=invoice",
        "items[0][price]=price_1",
        "items[0][quantity]=2",
        "items[1][price]=price_2",
        "items[1][quantity]=1",
    ]
    assert sent["body"].startswith("amount=2000&currency=eur&address%5Bline1%5D=1%20Main%20St&")
    # the same body from a REST caller's JSON
    sent = await served.rest_call(
        "POST", "/charges", json={"amount": 1, "currency": "usd", "address": {"city": "Oslo"}}
    )
    assert sent["body"] == "amount=1&currency=usd&address%5Bcity%5D=Oslo"


async def test_multipart_file_part_on_the_operations_own_server(served):
    sent = await served.call("upload-file", {"purpose": "identity_document", "file": "PDF-bytes"})
    assert sent["url"] == "https://files.ledger.example.test/files"  # the operation-level server
    ctype = sent["headers"]["Content-Type"]
    assert ctype.startswith("multipart/form-data; boundary=")
    boundary = ctype.split("boundary=", 1)[1]
    assert sent["body"] == (
        f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nidentity_document\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="file"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\nPDF-bytes\r\n--{boundary}--\r\n"
    )


async def test_binary_body_keeps_its_media_type(served):
    sent = await served.call("put-file-contents", {"fileId": "f1", "body": "raw \x01 bytes"})
    assert (sent["method"], sent["url"]) == ("PUT", f"{BASE}/files/f1/contents")
    assert sent["headers"]["Content-Type"] == "application/octet-stream"
    assert sent["body"] == "raw \x01 bytes"


def test_operation_level_servers_become_their_own_consumes_entry(imported):
    cap = yaml.safe_load(imported.read_text())
    consumes = {c["namespace"]: c for c in cap["capability"]["consumes"]}
    assert consumes["ledger-styles-files-ledger-example-test"]["baseUri"] == "https://files.ledger.example.test"
    assert (
        consumes["ledger-styles-files-ledger-example-test"]["authentication"]
        == consumes["ledger-styles"]["authentication"]
    )
    tools = {t["name"]: t for t in cap["capability"]["exposes"][1]["tools"]}
    assert tools["upload-file"]["call"] == "ledger-styles-files-ledger-example-test.upload-file"


def test_imported_file_validates_with_only_the_parameter_name_warning(imported, capsys):
    capsys.readouterr()
    assert main(["validate", str(imported)]) == 0
    out = capsys.readouterr()
    assert "valid with 1 warning(s)" in out.out
    assert "'$top' does not match" in out.err  # a name the upstream needs; the spec's identifiers cannot hold it


# ------------------------------------------------------------------ options and summary


def test_options_namespace_env_prefix_port_base_uri(tmp_path, capsys):
    out = tmp_path / "cap.yaml"
    args = [
        "import",
        "openapi",
        str(STYLES),
        "-o",
        str(out),
        "--namespace",
        "ledger",
        "--env-prefix",
        "ledger_family",
        "--port",
        "7000",
        "--base-uri",
        "http://127.0.0.1:9/v9",
        "--exclude-tag",
        "files",
        "--include-path",
        "/charges*",
    ]
    assert main(args) == 0
    err = capsys.readouterr().err
    cap = yaml.safe_load(out.read_text())
    (consumes,) = cap["capability"]["consumes"]
    assert (consumes["namespace"], consumes["baseUri"]) == ("ledger", "http://127.0.0.1:9/v9")
    assert cap["binds"][0]["keys"] == {"LEDGER_FAMILY_TOKEN": "LEDGER_FAMILY_TOKEN"}
    rest, mcp = cap["capability"]["exposes"]
    assert (rest["namespace"], rest["port"], mcp["namespace"], mcp["port"]) == ("ledger-rest", 7000, "ledger-mcp", 7001)
    assert [t["name"] for t in mcp["tools"]] == [
        "list-charges",
        "create-charge",
        "replace-charge",
        "update-charge",
        "capture-charge",
    ]
    assert "imported 5 operations, skipped 4:" in err
    assert "4 not matched by --include-path" in err


def test_include_tag_and_split_by_tag(tmp_path, capsys):
    folder = tmp_path / "parts"
    assert (
        main(
            [
                "import",
                "openapi",
                str(STYLES),
                "-o",
                str(folder),
                "--split-by-tag",
                "--include-tag",
                "files",
                "--include-tag",
                "events",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    files = sorted(p.name for p in folder.iterdir())
    assert files == ["events.yaml", "files.yaml"]
    events = yaml.safe_load((folder / "events.yaml").read_text())
    files_cap = yaml.safe_load((folder / "files.yaml").read_text())
    assert [t["name"] for t in events["capability"]["exposes"][1]["tools"]] == ["list-events"]
    assert [t["name"] for t in files_cap["capability"]["exposes"][1]["tools"]] == ["upload-file", "put-file-contents"]
    ports = {e["namespace"]: e["port"] for cap in (events, files_cap) for e in cap["capability"]["exposes"]}
    assert len(set(ports.values())) == 4  # the parts can be served together
    assert events["binds"] == files_cap["binds"]  # one credential for the whole API
    assert "6 no tag named by --include-tag" in err
    for part in ("events.yaml", "files.yaml"):
        assert main(["validate", str(folder / part)]) == 0
    assert main(["import", "openapi", str(STYLES), "--split-by-tag"]) == 2
    assert "give a directory with -o DIR" in capsys.readouterr().err


def test_nothing_selected_says_why(tmp_path, capsys):
    assert main(["import", "openapi", str(STYLES), "-o", str(tmp_path / "x.yaml"), "--include-tag", "nope"]) == 2
    err = capsys.readouterr().err
    assert "no operation to import (9 no tag named by --include-tag)" in err
    assert not (tmp_path / "x.yaml").exists()


# ------------------------------------------------------------------ errors and hints


def test_webhooks_only_document_is_refused_clearly(tmp_path, capsys):
    spec = tmp_path / "hooks.yaml"
    spec.write_text(
        "openapi: 3.1.0\ninfo: {title: Hooks, version: '1'}\n"
        "webhooks:\n  newPet:\n    post: {responses: {'200': {description: ok}}}\n"
    )
    assert main(["import", "openapi", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "only webhooks (1)" in err and "Traceback" not in err


@pytest.mark.parametrize("command", [["validate"], ["serve", "--dry-run"], ["export", "openapi"]])
def test_openapi_document_given_to_capability_commands_gets_a_hint(command, capsys):
    assert main([*command, str(STYLES)]) != 0
    err = capsys.readouterr().err
    assert f"naftiko import openapi {STYLES}" in err and "Traceback" not in err


def test_minified_json_openapi_document_gets_the_hint_too(tmp_path, capsys):
    spec = tmp_path / "api.json"
    spec.write_text(json.dumps(read_spec(str(DEPOT))))  # one line
    assert main(["validate", str(spec)]) == 1
    assert f"naftiko import openapi {spec}" in capsys.readouterr().err


def test_unsupported_constructs_are_warnings_naming_the_json_pointer():
    spec = yaml.safe_load(STYLES.read_text())
    spec["paths"]["/charges"]["get"]["parameters"].append(
        {"name": "x", "in": "query", "style": "matrix", "schema": {"type": "array"}}
    )
    spec["paths"]["/charges"]["head"] = {"responses": {}}
    spec["paths"]["/events"]["get"]["parameters"][0]["schema"]["pattern"] = "(?<!x"
    result = import_openapi(spec, "doc.yaml")
    assert (
        "#/paths/~1charges/get/parameters/10: style 'matrix' is not defined for query parameters; the default is used"
        in result.warnings
    )
    assert "#/paths/~1charges/head: HEAD operations are not supported; skipped" in result.warnings
    assert any(w.startswith("#/paths/~1events/get/parameters/0: pattern") for w in result.warnings)
    assert result.skipped["HEAD (not a capability method)"] == 1


def test_swagger2_binary_body_and_collection_formats():
    spec = {
        "swagger": "2.0",
        "info": {"title": "Images", "version": "1"},
        "host": "img.example.test",
        "paths": {
            "/build": {
                "post": {
                    "operationId": "ImageBuild",
                    "consumes": ["application/x-tar"],
                    "parameters": [
                        {"name": "inputStream", "in": "body", "schema": {"type": "string", "format": "binary"}},
                        {
                            "name": "tags",
                            "in": "query",
                            "type": "array",
                            "items": {"type": "string"},
                            "collectionFormat": "csv",
                        },
                        {
                            "name": "t",
                            "in": "query",
                            "type": "array",
                            "items": {"type": "string"},
                            "collectionFormat": "multi",
                        },
                    ],
                }
            }
        },
    }
    cap = import_openapi(spec, "images.json").capability
    (op,) = cap["capability"]["consumes"][0]["resources"][0]["operations"]
    assert op["body"] == {"type": "text", "data": "{{body}}", "contentType": "application/x-tar"}
    assert op["inputParameters"] == [
        {"name": "tags", "in": "query", "style": "form", "explode": False},
        {"name": "t", "in": "query"},
    ]


def _nodes(schema: object) -> int:
    """Schema objects in a converted schema (each dict under properties/items/anyOf/…)."""
    if isinstance(schema, dict):
        return (1 if "type" in schema or not schema else 0) + sum(_nodes(v) for v in schema.values())
    if isinstance(schema, list):
        return sum(_nodes(v) for v in schema)
    return 0


@pytest.mark.parametrize("count, width", [(16, 4), (64, 64)])
def test_import_time_and_size_are_bounded_on_a_deeply_recursive_document(count, width):
    # `count` mutually recursive schemas of `width` properties each: every path through them is a
    # new expansion down to the depth limit, so the conversion stops at the node budget (the
    # warning below). The open {} written below the depth limit count against the budget too: 64
    # schemas of 64 properties once wrote 2.4 MB (and took 48 s to check).
    schemas = {
        f"S{i}": {
            "type": "object",
            "properties": {f"p{j}": {"$ref": f"#/components/schemas/S{(i + j + 1) % count}"} for j in range(width)},
        }
        for i in range(count)
    }
    spec = {
        "openapi": "3.0.0",
        "info": {"title": "Deep", "version": "1"},
        "paths": {
            "/x": {
                "post": {
                    "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/S0"}}}}
                }
            }
        },
        "components": {"schemas": schemas},
    }
    result = import_openapi(spec, "deep.json")
    assert len(json.dumps(result.capability)) < 500_000
    assert any("larger than 4000 nodes" in w for w in result.warnings)
    assert _nodes(result.capability) <= 4000 + 16  # the budget, plus the capability's own typed inputs


def test_style_encoders_for_cookies_headers_and_paths():
    from naftiko.consumes import styles

    assert styles.cookie_value(["p", "q"]) == "p,q"
    assert styles.cookie_value({"a": 1, "b": True}) == "a,1,b,true"
    assert styles.header_value({"a": 1}, True) == "a=1" and styles.header_value({"a": 1}, False) == "a,1"
    assert styles.path_segment("c", {"r": 1, "g": 2}, "matrix", True) == ";r=1;g=2"
    assert styles.path_segment("c", {"r": 1, "g": 2}, "matrix", False) == ";c=r,1,g,2"
    assert styles.path_segment("c", {"r": 1}, "label", True) == ".r=1"
    assert styles.path_segment("c", "a/b", "simple", False) == "a%2Fb"
    assert styles.query_pairs("k", {"x": 1}, "form", False) == [("k", "x,1")]
    assert styles.query_pairs("k", {"a": {"b": [1, {"c": None}]}}, "deepObject", True) == [("k[a][b][0]", "1")]


def test_read_spec_errors_are_clear():
    with pytest.raises(ImportFailed, match="file not found"):
        read_spec("/nonexistent/spec.yaml")
    assert ImportOptions().port is None


def test_split_by_tag_keeps_parts_apart_when_tags_read_alike():
    ok = {"responses": {"200": {"description": "ok"}}}
    spec = {
        "openapi": "3.0.3",
        "info": {"title": "Twins", "version": "1"},
        "servers": [{"url": "https://twins.example.test"}],
        "paths": {
            "/a": {"get": {"tags": ["Foo Bar"], **ok}},
            "/b": {"get": {"tags": ["foo-bar"], **ok}},
            "/c": {"get": ok},
        },
    }
    result = import_openapi(spec, "twins.yaml", ImportOptions(split_by_tag=True))
    assert list(result.parts) == ["foo-bar", "foo-bar-2", "untagged"]
    namespaces = [e["namespace"] for cap in result.parts.values() for e in cap["capability"]["exposes"]]
    assert len(set(namespaces)) == 6


async def test_output_schemas_option_shapes_results_to_the_documented_response(tmp_path, upstream, fresh_upstream):
    echo = {  # the fake upstream answers with an echo of the request
        "type": "object",
        "properties": {"method": {"type": "string"}, "path": {"type": "string"}, "count": {"type": "integer"}},
    }
    spec = {
        "openapi": "3.0.3",
        "info": {"title": "Echo", "version": "1"},
        "servers": [{"url": upstream.url}],
        "paths": {
            "/things/{id}": {
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "get": {
                    "operationId": "getThing",
                    "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": echo}}}},
                },
                "delete": {
                    "operationId": "dropThing",
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {"application/json": {"schema": {"oneOf": [echo, {"type": "string"}]}}},
                        }
                    },
                },
            }
        },
    }
    target = tmp_path / "echo.yaml"
    (tmp_path / "echo.json").write_text(json.dumps(spec))
    assert main(["import", "openapi", str(tmp_path / "echo.json"), "-o", str(target), "--output-schemas"]) == 0
    plan = compile_plan(load(str(target)), Options(environ={}))
    server, _ = build_server(next(a for a in plan.adapters if a.kind == "mcp"), plan.secrets.mask)
    async with Client(server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tools["get-thing"].output_schema["properties"] == {
            "method": {"type": ["string", "null"]},
            "path": {"type": ["string", "null"]},
            "count": {"type": ["number", "null"]},
        }
        assert tools["drop-thing"].output_schema is None  # a oneOf cannot be declared: the answer passes through
        result = await client.call_tool("get-thing", {"id": "t1"})
        assert result.structured_content == {
            "method": "GET",
            "path": "/things/t1",
            "count": None,
        }  # `upstream`, `query` dropped
        result = await client.call_tool("drop-thing", {"id": "t2"})
        assert json.loads(result.content[0].text)["upstream"] == "fake"
    await plan.aclose()
