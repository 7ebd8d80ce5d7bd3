"""The reference engine's Shipyard tutorial tests, ported, on every syntax of the language.

Ported from naftiko/ikanos (Apache-2.0) ``modules/ikanos-engine/src/test/java/io/ikanos/tutorial/
Step{1..8}ShipyardMcpClientIntegrationTest.java``, ``Step10ShipyardRestAdapterIntegrationTest.java`` and
``Step11ShipyardFleetManifestIntegrationTest.java`` (assertions re-expressed, no code copied). Each test
runs the same MCP, REST and skill requests against four surfaces of one tutorial step: the ``ikanos: 1.0.0-beta5``
file, the ``naftiko: 1.0.0-alpha2`` file of the same step, the beta5 file migrated to alpha2 and the
alpha2 file migrated to beta5 (``naftiko migrate``). It checks the reference test's assertions on each
and that every surface answers identically on the wire and sends identical requests upstream. The
upstream is :mod:`shipyard_mock`, replaying the examples of the two Shipyard OpenAPI documents (what
Microcks does for the reference tests). ``server/discover`` (a draft MCP method the official SDK does
not serve) is exercised as the standard ``initialize``. The tutorial files are test data, see
``tests/fixtures/versions/README.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import shutil
from pathlib import Path

import httpx
import orjson
import pytest
import pytest_asyncio
import yaml

from naftiko.document import versions
from naftiko.document.loader import Loaded, load
from naftiko.document.migrate import dump
from naftiko.document.source import read_source
from naftiko.engine.plan import Options, compile_plan
from naftiko.runtime.serve import build_app
from shipyard_mock import start_mock

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "versions"
SURFACES = ("beta5", "alpha2", "beta5-as-alpha2", "alpha2-as-beta5")
NEWER_TUTORIAL = ("beta5", "beta5-as-alpha2")  # step 6 gained a tool (refresh-crew) after alpha2
TOKEN = yaml.safe_load((DATA / "beta5" / "shared" / "secrets.yaml").read_text())["mcp-server-token"]
STEPS = {
    1: "step-1-shipyard-mock.yml",
    2: "step-2-shipyard-wiring.yml",
    3: "step-3-shipyard-auth.yml",
    4: "step-4-shipyard-output-shaping.yml",
    5: "step-5-shipyard-multi-source.yml",
    6: "step-6-shipyard-write-operations.yml",
    7: "step-7-shipyard-orchestrated-lookup.yml",
    8: "step-8-shipyard-skill-groups.yml",
    10: "step-10-shipyard-rest-adapter.yml",
    11: "step-11-shipyard-fleet-manifest.yml",
}


@pytest.fixture(scope="module")
def surfaces(tmp_path_factory) -> dict[str, Path]:
    """Directory of each surface; the migrated ones are written by the migration itself."""
    root = tmp_path_factory.mktemp("surfaces")
    out = {"beta5": DATA / "beta5", "alpha2": DATA / "alpha2"}
    for name, era, target in (("beta5-as-alpha2", "beta5", "1.0.0-alpha2"), ("alpha2-as-beta5", "alpha2", "1.0.0-beta5")):
        for file in (DATA / era).rglob("*.y*ml"):
            dest = root / name / file.relative_to(DATA / era)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if file.name == "secrets.yaml":
                shutil.copy(file, dest)
                continue
            migrated = versions.migrate(versions.normalise(read_source(str(file))), target)
            assert migrated.invented == [] and migrated.dropped == [], (file, migrated.invented, migrated.dropped)
            dest.write_text(dump(migrated.data))
        out[name] = root / name
    return out


@pytest_asyncio.fixture(scope="module")
async def mock():
    mock, runner, url = await start_mock()
    mock.url = url  # type: ignore[attr-defined]
    yield mock
    await runner.cleanup()




@contextlib.asynccontextmanager
async def _lifespan(app):
    """Run an ASGI app's lifespan (httpx's ASGITransport does not)."""
    started = asyncio.Event()
    stopping = asyncio.get_running_loop().create_future()
    messages = [{"type": "lifespan.startup"}]

    async def receive():
        if messages:
            return messages.pop()
        await stopping
        return {"type": "lifespan.shutdown"}

    async def send(message):
        if message["type"] in ("lifespan.startup.complete", "lifespan.startup.failed"):
            started.set()

    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send))
    await asyncio.wait_for(started.wait(), 10)
    try:
        yield
    finally:
        stopping.set_result(None)
        await asyncio.wait_for(task, 10)


_LOADED: dict[Path, Loaded] = {}


def _load(file: Path) -> Loaded:
    """``load(file)``, done once per file for the module (each file is loaded, validated and
    checked against its schema the first time a test serves it): loading is a pure function of
    the file, and the most expensive step here. Each test gets its own deep copy, so nothing a
    compilation might change in the document reaches the next test."""
    if file not in _LOADED:
        _LOADED[file] = load(str(file))
    return copy.deepcopy(_LOADED[file])


@contextlib.asynccontextmanager
async def _serve(file: Path, mock_url: str):
    """Every adapter of the file, in process: one httpx client per adapter kind."""
    loaded = _load(file)
    bases = {"registry": f"{mock_url}/registry", "legacy": f"{mock_url}/dockyard"}
    plan = compile_plan(loaded, Options(base_uris=bases, several_files=True))  # not every step consumes both
    try:
        async with contextlib.AsyncExitStack() as stack:
            clients = {}
            for adapter in plan.adapters:
                app = build_app(adapter, plan)
                await stack.enter_async_context(_lifespan(app))
                transport = httpx.ASGITransport(app=app)
                clients[adapter.kind] = await stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1"))
            yield clients
    finally:
        await plan.aclose()


def _rpc(method: str, params: dict | None = None, id_: int = 1) -> dict:
    return {"jsonrpc": "2.0", "id": id_, "method": method, "params": params or {}}


def _tool(name: str, arguments: dict | None = None) -> dict:
    return _rpc("tools/call", {"name": name, "arguments": arguments or {}}, 3)


async def _post(clients: dict, body: dict | tuple, token: str | None = TOKEN) -> httpx.Response:
    """A JSON-RPC request to the MCP adapter, or ``(kind, method, path, json)`` to another adapter."""
    if isinstance(body, tuple):
        kind, method, path, payload = body
        return await clients[kind].request(method, path, json=payload)
    http = clients["mcp"]
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return await http.post("/", content=orjson.dumps(body), headers=headers)


async def run(surfaces, mock, step: int, bodies: list, on=SURFACES, token: str | None = TOKEN) -> list:
    """Send ``bodies`` to every surface of ``step``; assert identical answers and identical upstream
    requests; return the answers ``(status, json)`` of the beta5 file."""
    answers, upstream = {}, {}
    for surface in on:
        mark = len(mock.requests)
        async with _serve(surfaces[surface] / STEPS[step], mock.url) as clients:
            replies = [await _post(clients, body, token) for body in bodies]
        answers[surface] = [(r.status_code, r.json() if r.content else None) for r in replies]
        upstream[surface] = [(api, method, path, body) for api, method, path, _h, body in mock.requests[mark:]]
    first = answers[on[0]]
    for surface in on[1:]:
        assert answers[surface] == first, f"{surface} answers differently from {on[0]}"
        assert upstream[surface] == upstream[on[0]], f"{surface} calls upstream differently from {on[0]}"
    return first


def _result(answer) -> object:
    """The tool result of a ``tools/call`` answer, parsed from its first text content."""
    status, envelope = answer
    assert status == 200
    result = envelope["result"]
    assert result.get("isError") is not True, envelope
    assert isinstance(result["content"], list) and result["content"]
    return orjson.loads(result["content"][0]["text"])


def _tools(answer) -> list[dict]:
    status, envelope = answer
    assert status == 200
    return envelope["result"]["tools"]


def _schema_of(tools: list[dict], name: str) -> tuple[dict, list]:
    tool = next(t for t in tools if t["name"] == name)
    return tool["inputSchema"]["properties"], tool["inputSchema"].get("required", [])


SHIP_FIELDS = ("imo", "name", "type", "flag", "status")
INITIALIZE = _rpc(
    "initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "shipyard-test", "version": "1"}}
)


# ------------------------------------------------------------------ step 1: mock mode


async def test_step1_initialize_advertises_protocol_and_tools(surfaces, mock):
    (status, envelope), = await run(surfaces, mock, 1, [INITIALIZE])
    assert status == 200
    assert envelope["result"]["protocolVersion"]
    assert "tools" in envelope["result"]["capabilities"]


async def test_step1_tools_list_advertises_get_ship(surfaces, mock):
    tools = _tools((await run(surfaces, mock, 1, [_rpc("tools/list")]))[0])
    assert [t["name"] for t in tools] == ["get-ship"]
    assert tools[0]["description"] == "Retrieve a ship's details by IMO number"


async def test_step1_get_ship_returns_the_mock_object(surfaces, mock):
    mark = len(mock.requests)
    ship = _result((await run(surfaces, mock, 1, [_tool("get-ship", {"imo_number": "IMO-9321483"})]))[0])
    assert ship == {"imo": "IMO-9321483", "name": "Northern Star", "type": "cargo", "flag": "NO", "status": "active"}
    assert mock.requests[mark:] == []  # mock mode: nothing upstream


# ------------------------------------------------------------------ steps 2-5: wiring, auth, shaping, sources


@pytest.mark.parametrize("step", [2, 3, 4, 5])
async def test_tools_list_names_in_order(surfaces, mock, step):
    names = [t["name"] for t in _tools((await run(surfaces, mock, step, [_rpc("tools/list")]))[0])]
    assert names == ["list-ships", "get-ship", "list-legacy-vessels"][: 3 if step == 5 else 2]


@pytest.mark.parametrize("step", [2, 3, 4, 5])
async def test_list_ships_status_is_optional_and_get_ship_imo_required(surfaces, mock, step):
    tools = _tools((await run(surfaces, mock, step, [_rpc("tools/list")]))[0])
    props, required = _schema_of(tools, "list-ships")
    assert props["status"]["type"] == "string" and "status" not in required
    props, required = _schema_of(tools, "get-ship")
    assert props["imo"]["type"] == "string" and "imo" in required


@pytest.mark.parametrize("step", [2, 3, 4, 5])
async def test_list_ships_returns_mapped_ships(surfaces, mock, step):
    ships = _result((await run(surfaces, mock, step, [_tool("list-ships")]))[0])
    assert isinstance(ships, list) and ships
    assert all(field in ships[0] for field in SHIP_FIELDS)
    assert ships[0]["imo"].strip() and ships[0]["name"].strip()


async def test_step2_list_ships_filtered_by_status(surfaces, mock):
    mark = len(mock.requests)
    ships = _result((await run(surfaces, mock, 2, [_tool("list-ships", {"status": "active"})]))[0])
    assert ships and all(ship["status"] == "active" for ship in ships)
    assert mock.requests[mark][2] == "/ships"


@pytest.mark.parametrize("step", [2, 3])
async def test_get_ship_resolves_the_path_parameter(surfaces, mock, step):
    mark = len(mock.requests)
    ship = _result((await run(surfaces, mock, step, [_tool("get-ship", {"imo": "IMO-9321483"})]))[0])
    assert all(field in ship for field in SHIP_FIELDS)
    assert ship["imo"] == "IMO-9321483"
    assert mock.requests[mark][2] == "/ships/IMO-9321483"


async def test_step3_upstream_gets_bearer_token_and_version_header_from_binds(surfaces, mock):
    mark = len(mock.requests)
    await run(surfaces, mock, 3, [_tool("list-ships")], on=("beta5",))
    headers = mock.requests[mark][3]
    assert headers["Authorization"] == "Bearer dummy-token"
    assert headers["Registry-Version"] == "1.0.0-alpha2"


async def test_step3_initialize_succeeds_with_binds_and_auth(surfaces, mock):
    (status, envelope), = await run(surfaces, mock, 3, [INITIALIZE])
    assert status == 200 and envelope["result"]["serverInfo"]


@pytest.mark.parametrize("token,status", [(TOKEN, 200), ("wrong-token", 401), (None, 401)])
async def test_step3_bearer_token_from_file_binding(surfaces, mock, token, status):
    (got, _), = await run(surfaces, mock, 3, [INITIALIZE], token=token)
    assert got == status


@pytest.mark.parametrize("step", [4, 5])
async def test_get_ship_flat_fields_and_nested_specs(surfaces, mock, step):
    ship = _result((await run(surfaces, mock, step, [_tool("get-ship", {"imo": "IMO-9321483"})]))[0])
    assert ship["imo"] == "IMO-9321483"
    assert all(str(ship[f]).strip() for f in ("name", "type", "flag", "status"))
    specs = ship["specs"]
    assert all(isinstance(specs[f], (int, float)) and not isinstance(specs[f], bool) for f in ("yearBuilt", "tonnage", "length"))


async def test_step5_list_legacy_vessels_schema_and_xml_source(surfaces, mock):
    tools, vessels = await run(surfaces, mock, 5, [_rpc("tools/list"), _tool("list-legacy-vessels")])
    props, required = _schema_of(_tools(tools), "list-legacy-vessels")
    assert props["status"]["type"] == "string" and "status" not in required
    vessels = _result(vessels)
    assert isinstance(vessels, list) and vessels
    assert vessels[0]["vesselCode"].strip() and vessels[0]["name"].strip()


# ------------------------------------------------------------------ step 6: write operations

VOYAGE = {
    "shipImo": "IMO-9321483",
    "departurePort": "Oslo",
    "arrivalPort": "Singapore",
    "departureDate": "2026-04-10",
    "arrivalDate": "2026-05-02",
    "crewIds": ["CREW-001", "CREW-003"],
    "cargoIds": ["CARGO-2024-0451"],
}


@pytest.mark.parametrize("step", [6, 7, 8])
async def test_create_voyage_schema_declares_required_fields(surfaces, mock, step):
    on = NEWER_TUTORIAL if step == 6 else SURFACES  # tools/list of step 6 lists refresh-crew since beta
    props, required = _schema_of(_tools((await run(surfaces, mock, step, [_rpc("tools/list")], on=on))[0]), "create-voyage")
    assert props["crewIds"]["type"] == "array" and props["cargoIds"]["type"] == "array"
    assert {"shipImo", "departurePort", "arrivalPort", "departureDate", "arrivalDate", "crewIds"} <= set(required)
    assert "cargoIds" not in required


async def test_step6_tools_list_has_five_tools(surfaces, mock):
    names = [t["name"] for t in _tools((await run(surfaces, mock, 6, [_rpc("tools/list")], on=NEWER_TUTORIAL))[0])]
    assert names == ["list-ships", "get-ship", "list-legacy-vessels", "create-voyage", "refresh-crew"]


def _check_voyage(voyage: dict) -> None:
    assert voyage["voyageId"].strip() and voyage["shipImo"] == "IMO-9321483"
    assert voyage["route"] == {"from": "Oslo", "to": "Singapore"}
    assert voyage["dates"] == {"departure": "2026-04-10", "arrival": "2026-05-02"}
    assert voyage["crewIds"] and isinstance(voyage["cargoIds"], list) and voyage["status"].strip()


@pytest.mark.parametrize("step", [6, 8])
async def test_create_voyage_returns_mapped_voyage(surfaces, mock, step):
    mark = len(mock.requests)
    voyage = _result((await run(surfaces, mock, step, [_tool("create-voyage", VOYAGE)]))[0])
    _check_voyage(voyage)
    api, method, path, _headers, body = mock.requests[mark]
    assert (api, method, path) == ("registry", "POST", "/voyages")
    assert orjson.loads(body)["crewIds"] == ["CREW-001", "CREW-003"]


async def test_step6_refresh_crew_returns_empty_content(surfaces, mock):
    (status, envelope), = await run(surfaces, mock, 6, [_tool("refresh-crew", {"imo_number": "IMO-9876543"})], on=NEWER_TUTORIAL)
    assert status == 200
    assert envelope["result"].get("isError") is not True
    assert envelope["result"]["content"] == []


# ------------------------------------------------------------------ step 7: orchestrated lookup


FIVE_TOOLS = ["list-ships", "get-ship", "list-legacy-vessels", "create-voyage", "get-ship-with-crew"]


@pytest.mark.parametrize("step", [7, 8, 11])
async def test_tools_list_and_get_ship_with_crew_schema(surfaces, mock, step):
    tools = _tools((await run(surfaces, mock, step, [_rpc("tools/list")]))[0])
    assert [t["name"] for t in tools] == FIVE_TOOLS + (["get-voyage-manifest"] if step == 11 else [])
    props, required = _schema_of(tools, "get-ship-with-crew")
    assert props["imo"]["type"] == "string" and "imo" in required


async def test_step7_get_ship_with_crew_joins_crew(surfaces, mock):
    result = _result((await run(surfaces, mock, 7, [_tool("get-ship-with-crew", {"imo": "IMO-9321483"})]))[0])
    assert isinstance(result, dict)
    assert result["imo"].strip() and result["name"].strip()
    assert isinstance(result["crew"], list) and result["crew"]
    assert result["crew"][0]["fullName"].strip()


# ------------------------------------------------------------------ steps 8, 10, 11: skills, REST, manifest


@pytest.mark.parametrize("step", [8, 10])
async def test_skill_catalog_has_fleet_and_voyage_groups(surfaces, mock, step):
    status, catalog = (await run(surfaces, mock, step, [("skill", "GET", "/skills", None)]))[0]
    assert status == 200 and catalog["count"] == 2
    assert {"fleet-ops", "voyage-ops"} <= {s["name"] for s in catalog["skills"]}


@pytest.mark.parametrize("step", [8, 10])
async def test_fleet_ops_tools_are_derived_from_the_mcp_adapter(surfaces, mock, step):
    status, detail = (await run(surfaces, mock, step, [("skill", "GET", "/skills/fleet-ops", None)]))[0]
    assert status == 200 and detail["name"] == "fleet-ops" and len(detail["tools"]) == 4
    for tool in detail["tools"]:
        assert tool["type"] == "derived"
        ref = tool["invocationRef"]
        assert ref["targetNamespace"] == "shipyard-tools" and ref["mode"] == "mcp" and ref["action"].strip()


async def test_step10_rest_list_ships(surfaces, mock):
    status, ships = (await run(surfaces, mock, 10, [("rest", "GET", "/ships", None)]))[0]
    assert status == 200 and isinstance(ships, list) and ships
    assert all(field in ships[0] for field in SHIP_FIELDS)


async def test_step10_rest_create_voyage_is_201(surfaces, mock):
    mark = len(mock.requests)
    status, voyage = (await run(surfaces, mock, 10, [("rest", "POST", "/voyages", VOYAGE)]))[0]
    assert status == 201 and voyage["voyageId"] == "VOY-2026-042"
    assert [r[:3] for r in mock.requests[mark:]] == [("registry", "POST", "/voyages")] * len(SURFACES)


async def test_step10_rest_create_voyage_maps_body_fields(surfaces, mock):
    status, voyage = (await run(surfaces, mock, 10, [("rest", "POST", "/voyages", VOYAGE)], on=("beta5",)))[0]
    assert status == 201
    _check_voyage(voyage)


async def test_step11_get_voyage_manifest_requires_voyage_id(surfaces, mock):
    props, required = _schema_of(_tools((await run(surfaces, mock, 11, [_rpc("tools/list")]))[0]), "get-voyage-manifest")
    assert props["voyageId"]["type"] == "string" and "voyageId" in required


async def test_step11_voyage_ops_skill_includes_the_manifest_tool(surfaces, mock):
    status, detail = (await run(surfaces, mock, 11, [("skill", "GET", "/skills/voyage-ops", None)]))[0]
    assert status == 200 and detail["name"] == "voyage-ops"
    assert sorted(t["name"] for t in detail["tools"]) == ["create-voyage", "get-voyage-manifest"]
