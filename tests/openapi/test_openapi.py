"""OpenAPI export and import, the editor schema, and ``validate --strict`` reporting.

Export: every shipped capability (and the library and export-shapes fixtures) becomes an
OpenAPI 3.1 document that a real validator (openapi-spec-validator) accepts, with spot checks
of paths, parameters, operationIds, request bodies and response schemas.
Import: an original OAS 3.0 spec and an original Swagger 2.0 spec become capabilities that
``validate`` accepts (``--strict`` lists the documented extensions), then are served together in one naftiko process
against the fake upstream: one REST operation and MCP tools (legacy and 2026-07-28 clients)
are called and the upstream request is checked (method, path, query, body, credentials).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import pytest_asyncio
import yaml
from openapi_spec_validator import validate as validate_openapi

from conftest import CAPABILITIES, FIXTURES
from harness import Served, serve_in_memory
from naftiko.cli import main
from naftiko.document.loader import load
from naftiko.document.versions import VERSIONS
from naftiko.openapi.export import ExportError, export_openapi
from naftiko.openapi.importer import ImportFailed, import_openapi, kebab, read_spec

OPENAPI = FIXTURES / "openapi"
INVENTORY = OPENAPI / "inventory-oas30.yaml"
DEPOT = OPENAPI / "depot-swagger20.json"
SHAPES = OPENAPI / "export-shapes.yaml"
LIBRARY = FIXTURES / "library.yaml"
EXPORTED = [*sorted(CAPABILITIES.glob("*.yaml")), LIBRARY, SHAPES, FIXTURES / "forward.yaml"]
TOKEN = "inv-token-7c1e"
DEPOT_KEY = "depot-key-93ab"


def _export(file: Path, adapter: str | None = None) -> dict:
    return export_openapi(load(str(file)), adapter)


def _op(doc: dict, path: str, method: str) -> dict:
    assert path in doc["paths"], sorted(doc["paths"])
    return doc["paths"][path][method]


def _params(op: dict) -> dict[tuple[str, str], dict]:
    return {(p["name"], p["in"]): p for p in op.get("parameters", [])}


def _ok_schema(op: dict) -> dict:
    return op["responses"]["200"]["content"]["application/json"]["schema"]


# ------------------------------------------------------------------ export


@pytest.mark.parametrize("file", EXPORTED, ids=[f.name for f in EXPORTED])
def test_export_is_a_valid_openapi_31_document(file):
    doc = _export(file)
    validate_openapi(doc)  # raises on any deviation from the OpenAPI 3.1 schema and rules
    assert doc["openapi"] == "3.1.0"
    assert doc["paths"]
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    assert doc["components"]["schemas"]["Problem"]["required"] == ["type", "title", "status", "detail"]
    for item in doc["paths"].values():
        for op in item.values():
            assert "{{" not in json.dumps(op.get("parameters", []))
            if "x-naftiko-forward" not in op:
                bad = op["responses"]["400"]["$ref"]
                assert doc["components"]["responses"][bad.rsplit("/", 1)[1]]["content"]["application/problem+json"]


def test_export_metronome_paths_params_and_bodies():
    doc = _export(CAPABILITIES / "metronome-customers.yaml")
    assert doc["info"]["title"] == "Metronome — Customers"
    assert doc["servers"][0]["url"] == "http://127.0.0.1:8080"
    one = _op(doc, "/v1/v1/customers/{customer-id}", "get")
    assert one["operationId"] == "getcustomerv1"
    param = _params(one)[("customer-id", "path")]
    assert param["required"] is True and param["schema"] == {"type": "string"}
    assert "requestBody" not in one
    # a simple-mode operation without declared inputs: query parameters inferred from `with`,
    # typed and described by the consumed parameters they feed
    listing = _op(doc, "/v1/v1/customers", "get")
    params = _params(listing)
    assert params[("only_archived", "query")]["schema"] == {"type": "boolean"}
    assert params[("customer_ids", "query")]["schema"] == {"type": "array", "items": {"type": "string"}}
    assert params[("customer_ids", "query")]["explode"] is True
    assert "ingest_alias" in params[("ingest_alias", "query")]["description"]
    create = _op(doc, "/v1/v1/customers", "post")
    assert create["operationId"] == "createcustomerv1"
    assert create["requestBody"]["content"]["application/json"]["schema"]["type"] == "object"
    assert create["responses"]["413"]["$ref"] == "#/components/responses/PayloadTooLarge"
    assert "413" not in listing["responses"]


def test_export_m3ter_keeps_route_spelling_and_types_declared_upstream():
    doc = _export(CAPABILITIES / "m3ter-balances.yaml")
    op = _op(doc, "/v1/organizations/{orgid}/balances/{balanceid}/transactions", "get")
    params = _params(op)
    assert {("orgid", "path"), ("balanceid", "path")} <= set(params)
    assert ("orgId", "query") not in params  # fed by the path placeholder, not a second input
    assert params[("pageSize", "query")]["schema"] == {"type": "integer"}
    put = _op(doc, "/v1/organizations/{orgid}/balances/{id}", "put")
    assert put["requestBody"]["required"] is True  # the consumed body parameter says so


def test_export_library_orchestrated_ref_and_inferred_inputs():
    doc = _export(LIBRARY)
    details = _op(doc, "/books/{isbn}", "get")
    assert details["operationId"] == "get-book-details"
    assert details["summary"] == "A book with its authors resolved by name and country."  # from the aggregate function
    schema = _ok_schema(details)
    assert schema["properties"]["title"] == {"type": "string"}
    assert schema["properties"]["authors"]["items"]["properties"] == {
        "name": {"type": "string"},
        "country": {"type": "string"},
    }
    assert schema["properties"]["stats"]["properties"]["author_count"] == {"type": "number"}
    score = _op(doc, "/books/{isbn}/score", "get")
    assert ("bonus", "query") in _params(score)  # read by the script step through `with`
    assert set(_ok_schema(score)["properties"]) == {"isbn", "score"}  # the mappings' targets
    lend = _op(doc, "/loans", "post")
    assert {("isbn", "query"), ("reader", "query"), ("tags", "query")} <= set(_params(lend))
    assert "*/*" in lend["responses"]["200"]["content"]  # no outputs: the upstream answer is relayed


def test_export_shapes_mapped_mock_forward_and_inbound_auth():
    doc = _export(SHAPES)
    assert doc["servers"][0]["url"] == "http://localhost:8181"  # 0.0.0.0 is not an address to call
    assert doc["components"]["securitySchemes"]["inbound"] == {"type": "apiKey", "name": "X-Berths-Key", "in": "header"}
    assert doc["security"] == [{"inbound": []}]
    berth = _op(doc, "/berths/{berth-id}", "get")  # `{{berth-id}}` becomes an OpenAPI template
    assert berth["summary"] == "Read a berth" and berth["tags"] == ["berths"]
    assert berth["responses"]["401"]["$ref"] == "#/components/responses/Unauthorized"
    moorings = _ok_schema(berth)["properties"]["moorings"]
    assert moorings["type"] == "array"
    assert moorings["items"]["properties"]["side"] == {"type": "string"}
    assert ("X-Harbour-Zone", "header") in _params(berth)  # a consumed header filled by name
    book = _op(doc, "/bookings", "post")
    assert book["requestBody"]["description"] == "The booking."
    assert _params(book)[("X-Idempotency-Key", "header")]["description"] == "Makes retries safe."
    weather = _op(doc, "/weather", "get")
    assert _ok_schema(weather)["properties"] == {"wind": {"type": "number"}, "note": {"type": "string"}}
    assert ("spot", "query") in _params(weather)  # rendered into a mock value
    charts = doc["paths"]["/charts/{path}"]
    assert set(charts) == {"get", "post", "put", "patch", "delete"}
    assert "several segments" in _params(charts["get"])[("path", "path")]["description"]
    assert charts["post"]["x-naftiko-forward"] == {"targetNamespace": "harbour"}


def test_export_adapter_choice_and_errors():
    loaded = load(str(FIXTURES / "inbound-auth.yaml"))
    doc = export_openapi(loaded, "rest-apikey-query")
    assert doc["components"]["securitySchemes"]["inbound"] == {"type": "apiKey", "name": "api_key", "in": "query"}
    assert export_openapi(loaded)["components"]["securitySchemes"]["inbound"] == {"type": "http", "scheme": "bearer"}
    with pytest.raises(ExportError, match="no REST adapter 'nope'"):
        export_openapi(loaded, "nope")
    with pytest.raises(ExportError, match="no REST adapter to export"):
        export_openapi(load(str(FIXTURES / "stdio-tools.yaml")))


def test_cli_export_json_yaml_and_stdout(tmp_path, capsys):
    out_json, out_yaml = tmp_path / "lib.json", tmp_path / "lib.yaml"
    assert main(["export", "openapi", str(LIBRARY), "-o", str(out_json)]) == 0
    assert main(["export", "openapi", str(LIBRARY), "-o", str(out_yaml)]) == 0
    from_json = json.loads(out_json.read_text())
    validate_openapi(from_json)
    assert yaml.safe_load(out_yaml.read_text()) == from_json
    capsys.readouterr()
    assert main(["export", "openapi", str(SHAPES), "--adapter", "berths-rest"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("openapi: 3.1.0")
    assert "&id0" not in printed  # no YAML anchors
    validate_openapi(yaml.safe_load(printed))


def test_cli_export_failures_exit_2_without_traceback(tmp_path, capsys):
    assert main(["export", "openapi", str(FIXTURES / "stdio-tools.yaml")]) == 2
    assert main(["export", "openapi", str(LIBRARY), "--adapter", "library-mcp"]) == 2
    broken = tmp_path / "broken.yaml"
    broken.write_text("naftiko: 1.0.0-alpha2\ncapability: [\n")
    assert main(["export", "openapi", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "no REST adapter to export" in err and "no REST adapter 'library-mcp'" in err
    assert re.search(rf"{re.escape(str(broken))}:\d+:\d+: YAML syntax error", err)


# ------------------------------------------------------------------ schema


def test_cli_schema_prints_the_bundled_json_schema(capsys):
    assert main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    bundled = json.loads((Path(__file__).parents[2] / "src/naftiko/document/naftiko-schema.json").read_text())
    assert printed == bundled
    assert printed["$id"] == "https://naftiko.io/schemas/v1.0.0-alpha2/naftiko.json"


# ------------------------------------------------------------------ import


def test_kebab_names():
    assert kebab("getPetById") == "get-pet-by-id"
    assert kebab("list_shelf_parcels") == "list-shelf-parcels"
    assert kebab("Warehouse Inventory") == "warehouse-inventory"
    assert kebab("HTTPServerStatus") == "http-server-status"
    assert kebab("/bins/{bin.code}/count") == "bins-bin-code-count"


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """Both fixture specs imported with the real command, into files."""
    d = tmp_path_factory.mktemp("imported")
    files = {"inventory": d / "inventory.yaml", "depot": d / "depot.yaml"}
    assert main(["import", "openapi", str(INVENTORY), "-o", str(files["inventory"])]) == 0
    assert main(["import", "openapi", str(DEPOT), "-o", str(files["depot"])]) == 0
    return files


def test_imported_capabilities_validate(imported, capsys):
    """Tolerant validation is clean except for a parameter name the spec's identifiers cannot hold;
    --strict reports the documented naftiko extensions (schema, style…) the import writes."""
    capsys.readouterr()
    assert main(["validate", str(imported["inventory"]), str(imported["depot"])]) == 0
    out = capsys.readouterr()
    assert (
        "inventory.yaml: valid with 1 warning(s): "
        "rest warehouse-inventory-rest (6 operations), mcp warehouse-inventory-mcp (6 tools)"
        in out.out
    )
    assert (
        "depot.yaml: valid with 0 warning(s): rest depot-shelves-rest (3 operations), mcp depot-shelves-mcp (3 tools)"
        in out.out
    )
    assert "'filter[colour]' does not match" in out.err
    assert main(["validate", "--strict", str(imported["inventory"])]) == 1
    err = capsys.readouterr().err
    assert "unknown field 'schema'" in err and "inputParameters[0].schema" in err


def test_import_oas30_structure():
    result = import_openapi(read_spec(str(INVENTORY)), str(INVENTORY))
    cap = result.capability
    assert cap["naftiko"] == "1.0.0-alpha2"
    assert cap["info"]["label"] == "Warehouse Inventory"
    assert cap["binds"][0]["keys"] == {"WAREHOUSE_INVENTORY_TOKEN": "WAREHOUSE_INVENTORY_TOKEN"}
    (consumes,) = cap["capability"]["consumes"]
    assert consumes["namespace"] == "warehouse-inventory"
    assert consumes["baseUri"] == "https://eu.inventory.example.test/api/v2"  # server variables → defaults
    assert consumes["authentication"] == {"type": "bearer", "token": "{{env.WAREHOUSE_INVENTORY_TOKEN}}"}
    rest, mcp = cap["capability"]["exposes"]
    assert (rest["type"], rest["port"], mcp["type"], mcp["port"]) == ("rest", 8080, "mcp", 9090)
    tools = {t["name"]: t for t in mcp["tools"]}
    assert list(tools) == ["list-items", "create-item", "get-item", "replace-item", "delete-item", "count-bin"]
    assert tools["get-item"]["hints"] == {"readOnly": True, "idempotent": True}
    assert tools["replace-item"]["hints"] == {"readOnly": False, "idempotent": True}
    assert tools["delete-item"]["hints"] == {"readOnly": False, "destructive": True, "idempotent": True}
    assert tools["create-item"]["hints"] == {"readOnly": False}
    listed = {p["name"]: p for p in tools["list-items"]["inputParameters"]}
    assert listed["limit"]["type"] == "integer"  # through a parameter $ref and a schema $ref
    assert listed["limit"]["schema"] == {"minimum": 1, "maximum": 100}
    assert listed["inStock"] == {
        "name": "inStock",
        "type": "boolean",
        "description": "Only items with a positive quantity.",
        "required": False,
    }
    assert listed["tag"]["type"] == "array" and listed["tag"]["schema"] == {"items": {"type": "string"}}
    assert "filter_colour" in listed and tools["list-items"]["with"]["filter[colour]"] == "tools.filter_colour"
    assert tools["list-items"]["with"]["X-Request-Id"] == "tools.X-Request-Id"
    fields = {p["name"]: p for p in tools["create-item"]["inputParameters"]}  # the JSON body, flattened
    assert list(fields) == ["sku", "quantity", "parts", "loop"]
    assert fields["parts"]["schema"]["items"]["type"] == "object"  # a recursive item stays open below its type
    assert tools["create-item"]["with"]["sku"] == "tools.sku"
    counted = {p["name"]: p for p in tools["count-bin"]["inputParameters"]}
    assert counted["bin_code"]["type"] == "integer" and counted["bin_code"]["required"] is True  # `{bin.code}` renamed
    assert counted["counted"]["required"] is False  # required within a body the document makes optional
    resources = {r["name"]: r for r in consumes["resources"]}
    assert resources["bins-bin-code-count"]["path"] == "/bins/{bin_code}/count"
    assert resources["bins-bin-code-count"]["operations"][0]["body"] == {
        "type": "formUrlEncoded",
        "data": {"counted": "{{counted}}", "counter": "{{counter}}"},
    }
    assert any("#/paths/~1items~1{itemId}/head" in w for w in result.warnings)


def test_import_swagger20_structure():
    result = import_openapi(read_spec(str(DEPOT)), str(DEPOT))
    cap = result.capability
    (consumes,) = cap["capability"]["consumes"]
    assert consumes["baseUri"] == "https://depot.example.test/v1"  # https preferred, host + basePath
    assert consumes["authentication"] == {
        "type": "apikey",
        "key": "X-Depot-Key",
        "value": "{{env.DEPOT_SHELVES_API_KEY}}",
        "placement": "header",
    }
    tools = {t["name"]: t for t in cap["capability"]["exposes"][1]["tools"]}
    assert list(tools) == ["list-shelf-parcels", "shelve-parcel", "patch-parcels-parcel-id-label"]
    listed = {p["name"]: p for p in tools["list-shelf-parcels"]["inputParameters"]}
    assert listed["shelfId"]["required"] is True and listed["shelfId"]["description"] == "Shelf identifier."
    assert listed["max"]["type"] == "integer" and listed["fragile"]["type"] == "boolean"
    assert [p["name"] for p in tools["shelve-parcel"]["inputParameters"]] == ["shelfId", "code", "weight", "inside"]
    assert tools["patch-parcels-parcel-id-label"]["label"] == "Relabel a parcel"


def test_import_survives_circular_and_broken_refs():
    spec = {
        "openapi": "3.1.0",
        "info": {"title": "Loops", "version": "1"},
        "servers": [{"url": "http://loops.example.test"}],
        "paths": {
            "/a/{id}": {
                "parameters": [{"$ref": "#/components/parameters/A"}, {"$ref": "#/components/parameters/Missing"}],
                "post": {
                    "parameters": [{"name": "q", "in": "query", "schema": {"$ref": "#/components/schemas/Self"}}],
                    "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Node"}}}},
                },
            },
            "/b": {"$ref": "#/paths/~1b"},
        },
        "components": {
            "parameters": {"A": {"$ref": "#/components/parameters/B"}, "B": {"$ref": "#/components/parameters/A"}},
            "schemas": {
                "Self": {"$ref": "#/components/schemas/Self"},
                "Node": {
                    "allOf": [{"$ref": "#/components/schemas/Node"}],
                    "properties": {"next": {"$ref": "#/components/schemas/Node"}},
                },
            },
        },
    }
    result = import_openapi(spec, "loops.json")
    tool = result.capability["capability"]["exposes"][1]["tools"][0]
    params = {p["name"]: p for p in tool["inputParameters"]}
    assert params["q"]["schema"]["type"] == [
        "string",
        "number",
        "integer",
        "boolean",
        "array",
        "object",
        "null",
    ]  # no type: any value
    assert params["body"]["type"] == "object"  # one property: the body stays one argument
    assert params["body"]["schema"]["properties"]["next"] == {"type": "object"}  # recursion stays open below its type
    assert params["id"] == {
        "name": "id",
        "type": "string",
        "description": "Path parameter id.",
        "required": True,
    }  # from the path
    assert any("refers to itself" in w for w in result.warnings)
    assert any("Missing" in w and "does not resolve" in w for w in result.warnings)


@pytest.mark.parametrize(
    "text,name,message",
    [
        ("openapi: 3.0.0\ninfo: {title: x}\n", "nopaths.yaml", "no 'paths'"),
        ("just: a mapping\n", "other.yaml", "not a Swagger 2.0 or OpenAPI 3.x"),
        ("openapi: 3.0.0\npaths: {\n", "broken.yaml", "not valid YAML"),
        ('{"openapi": ', "broken.json", "not valid JSON"),
        ("- a list\n", "list.yaml", "must be a mapping"),
        (
            "openapi: 3.0.0\npaths:\n  /x:\n    head: {}\n",
            "headonly.yaml",
            "no operation to import (1 HEAD (not a capability method))",
        ),
    ],
)
def test_cli_import_refuses_what_it_cannot_import(tmp_path, capsys, text, name, message):
    spec = tmp_path / name
    spec.write_text(text)
    assert main(["import", "openapi", str(spec), "-o", str(tmp_path / "out.yaml")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out.yaml").exists()


def test_cli_import_to_stdout_with_warnings_on_stderr(capsys):
    assert main(["import", "openapi", str(INVENTORY)]) == 0
    out = capsys.readouterr()
    assert yaml.safe_load(out.out)["capability"]["consumes"][0]["namespace"] == "warehouse-inventory"
    assert "warning: #/paths/~1items~1{itemId}/head: HEAD operations are not supported; skipped" in out.err
    assert "imported 6 operations, skipped 1:" in out.err
    with pytest.raises(ImportFailed, match="file not found"):
        read_spec(str(OPENAPI / "nope.yaml"))


# ------------------------------------------------------------------ import round trip, served


def _together(inventory: Served, depot: Served) -> Served:
    """One handle whose clients reach the adapters of both capabilities (two processes before)."""
    return Served(plans=[], urls={**inventory.urls, **depot.urls}, apps={**inventory.apps, **depot.apps})


async def _serve(file: Path, upstream_url: str, namespace: str, env: dict) -> Served:
    return await serve_in_memory(
        file, upstream_url, consumes=[namespace], adapters=[f"{namespace}-rest", f"{namespace}-mcp"], env=env
    )


@pytest_asyncio.fixture(scope="module")
async def served(imported, upstream):
    env = {"WAREHOUSE_INVENTORY_TOKEN": TOKEN, "DEPOT_SHELVES_API_KEY": DEPOT_KEY}
    inventory = await _serve(imported["inventory"], upstream.url, "warehouse-inventory", env)
    depot = await _serve(imported["depot"], upstream.url, "depot-shelves", env)
    try:
        yield _together(inventory, depot)
    finally:
        for p in (inventory, depot):
            assert await p.stop() == 0
            assert TOKEN not in p.stderr and DEPOT_KEY not in p.stderr


async def test_served_import_rest_query_header_and_bearer(served, fresh_upstream):
    base = served.urls["warehouse-inventory-rest"]
    async with served.http() as http:
        r = await http.get(
            base + "items",
            params=[("limit", "5"), ("inStock", "true"), ("tag", "a"), ("tag", "b")],
            headers={"X-Request-Id": "req-1"},
        )
    assert r.status_code == 200, r.text
    rec = fresh_upstream.last
    assert (rec.method, rec.raw_path) == ("GET", "/items")
    assert rec.query["limit"] == "5" and rec.query["inStock"] == "true"
    assert rec.query.getall("tag") == ["a", "b"]
    assert rec.headers["x-request-id"] == "req-1"
    assert rec.headers["authorization"] == f"Bearer {TOKEN}"
    assert r.json()["path"] == "/items"  # the upstream answer passes through


async def test_served_import_rest_body_and_path(served, fresh_upstream):
    base = served.urls["warehouse-inventory-rest"]
    item = {"sku": "s-1", "quantity": 4}
    async with served.http() as http:
        r = await http.put(base + "items/s%2F1", json=item)
    assert r.status_code == 200, r.text
    rec = fresh_upstream.last
    assert (rec.method, rec.raw_path) == ("PUT", "/items/s%2F1")
    assert rec.json() == item
    assert rec.headers["authorization"] == f"Bearer {TOKEN}"


async def test_served_import_rest_swagger_apikey(served, fresh_upstream):
    base = served.urls["depot-shelves-rest"]
    async with served.http() as http:
        r = await http.get(base + "shelves/s-9/parcels", params={"max": "2", "fragile": "false"})
    assert r.status_code == 200, r.text
    rec = fresh_upstream.last
    assert (rec.method, rec.raw_path) == ("GET", "/shelves/s-9/parcels")
    assert dict(rec.query) == {"max": "2", "fragile": "false"}
    assert rec.headers["x-depot-key"] == DEPOT_KEY
    assert "authorization" not in rec.headers


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_served_import_mcp_tools(served, fresh_upstream, mode):
    async with served.mcp(served.urls["warehouse-inventory-mcp"], mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tools["delete-item"].annotations.destructive_hint is True
        assert tools["get-item"].annotations.read_only_hint is True
        assert tools["replace-item"].input_schema["required"] == ["itemId"]
        item = {"sku": 's-2 "quoted"', "quantity": 1}
        result = await client.call_tool("replace-item", {"itemId": "s-2", **item})
        assert not result.is_error, result.content
        rec = fresh_upstream.last
        assert (rec.method, rec.raw_path) == ("PUT", "/items/s-2")
        assert rec.json() == item
        assert rec.headers["content-type"] == "application/json"
        assert rec.headers["authorization"] == f"Bearer {TOKEN}"
        result = await client.call_tool("count-bin", {"bin_code": 7, "counted": 12, "counter": "ann"})
        assert not result.is_error, result.content
        rec = fresh_upstream.last
        assert (rec.method, rec.raw_path) == ("POST", "/bins/7/count")
        assert rec.headers["content-type"] == "application/x-www-form-urlencoded"
        assert rec.body == b"counted=12&counter=ann"
    async with served.mcp(served.urls["depot-shelves-mcp"], mode=mode) as client:
        result = await client.call_tool("list-shelf-parcels", {"shelfId": "s-1", "max": 3, "fragile": True})
        assert not result.is_error, result.content
        rec = fresh_upstream.last
        assert (rec.method, rec.raw_path) == ("GET", "/shelves/s-1/parcels")
        assert dict(rec.query) == {"max": "3", "fragile": "true"}
        assert rec.headers["x-depot-key"] == DEPOT_KEY


# ------------------------------------------------------------------ validate --strict reporting


def _pos(text: str, needle: str) -> tuple[int, int]:
    before = text[: text.index(needle)]
    return before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1


def test_validate_strict_reports_position_and_json_path(imported, tmp_path, capsys):
    text = imported["inventory"].read_text()
    text = text.replace(
        "      - name: list-items\n        method: GET\n",
        "      - name: list-items\n        method: GET\n        colour: red\n",
        1,
    )
    text = text.replace("    - name: items-item-id\n", "    - name: items_item_id!\n", 1)
    broken = tmp_path / "broken.yaml"
    broken.write_text(text)
    capsys.readouterr()
    assert main(["validate", "--strict", str(imported["inventory"])]) == 1
    before = int(re.search(r"invalid \((\d+) error", capsys.readouterr().err).group(1))  # the extensions
    assert main(["validate", str(broken)]) == 0  # tolerant: warnings only
    tolerant = capsys.readouterr().err
    assert "warning: unknown field 'colour'" in tolerant
    assert main(["validate", "--strict", str(broken)]) == 1
    err = capsys.readouterr().err
    line, col = _pos(text, "colour: red")
    assert (
        f"{broken}:{line}:{col}: unknown field 'colour' "
        "(schema, at $.capability.consumes[0].resources[0].operations[0].colour)"
    ) in err
    line, col = _pos(text, "name: items_item_id!")
    assert re.search(
        rf"{re.escape(str(broken))}:{line}:{col}: 'items_item_id!' does not match .* "
        r"\(schema, at \$\.capability\.consumes\[0\]\.resources\[1\]\.name\)",
        err,
    ), err
    assert f"{broken}: invalid ({before + 2} error(s))" in err
    assert "warning:" not in err  # under --strict every deviation is an error


def test_validate_strict_model_errors_carry_the_json_path_too(imported, tmp_path, capsys):
    """Wrong types stop the load before the schema check runs: under --strict their message
    names the JSON path as well; tolerant mode keeps the short message. Both exit 1."""
    text = (
        imported["depot"]
        .read_text()
        .replace("port: 9090", "port: ninety", 1)
        .replace("naftiko: 1.0.0-alpha2", "naftiko: 1.0.0-alpha9", 1)
    )
    broken = tmp_path / "types.yaml"
    broken.write_text(text)
    capsys.readouterr()
    assert main(["validate", "--strict", str(broken)]) == 1
    err = capsys.readouterr().err
    line, col = _pos(text, "port: ninety")
    assert f"{broken}:{line}:{col}: 'port' must be an integer, got 'ninety' (at $.capability.exposes[1].port)" in err
    assert main(["validate", str(broken)]) == 1
    err = capsys.readouterr().err
    assert f"{broken}:{line}:{col}: 'port' must be an integer, got 'ninety'\n" in err
    broken.write_text(text.replace("port: ninety", "port: 9090"))
    assert main(["validate", "--strict", str(broken)]) == 1
    err = capsys.readouterr().err
    assert (
        f"{broken}:3:1: unknown version '1.0.0-alpha9' (known: {', '.join(VERSIONS)}); "
        "checked as 1.0.0-alpha2 (at $.naftiko)"
        in err
    )
    assert main(["validate", str(broken)]) == 0
