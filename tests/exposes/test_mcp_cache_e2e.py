"""End to end: an ``ikanos: 1.0.0-beta5`` MCP adapter's ``ttlMs`` / ``cacheScope`` and the
capability's ``info.version`` on the wire (docs/reference.md, "Caching hints").

MCP 2026-07-28 ("server/utilities/caching") requires both hints at the top level of the six
cacheable results: ``server/discover``, ``tools/list``, ``prompts/list``, ``resources/list``,
``resources/templates/list`` and ``resources/read``; never on ``tools/call`` or
``prompts/get``, and never in a handshake-era answer (2025-11-25 and before have no such
fields). Both serving paths are checked: the envelope's own answers (tools, discover) and the
SDK's (resources, prompts, initialize), over HTTP with the official client and raw JSON-RPC,
and over stdio. ``info.version`` is the ``serverInfo.version`` of both eras.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import pytest_asyncio
from mcp import Client, StdioServerParameters

from harness import serve_in_memory
from naftiko import __version__
from naftiko.document.loader import load
from naftiko.engine.plan import Options, compile_plan
from naftiko.errors import LoadError

MODERN = "2026-07-28"
SERVER_INFO = "io.modelcontextprotocol/serverInfo"
META = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}
ACCEPT = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
HINTS = ("ttlMs", "cacheScope")
TTL = 60000

CAPABILITY = """\
ikanos: "1.0.0-beta5"
info:
  display: Cache hints
  description: MCP caching hints and the capability version.
  version: "2.4.1"
capability:
  consumes:
  - type: http
    namespace: cache-api
    baseUri: http://127.0.0.1:1
    resources:
      weather:
        path: /cities/{{city}}/weather
        operations:
          get-weather:
            method: GET
  exposes:
  - type: mcp
    namespace: cache-mcp
    port: 9411
    description: Weather, notes and a prompt, cacheable for a minute by anyone.
    ttlMs: 60000
    cacheScope: public
    tools:
      get-weather:
        description: The weather of a city.
        inputParameters:
          city:
            type: string
            required: true
            description: The city.
        call: cache-api.get-weather
        with:
          city: cache-mcp.city
    resources:
      notes:
        display: Notes
        uri: notes://readme
        description: The notes.
        location: file:///./notes.md
      city-weather:
        display: City weather
        uri: weather://{city}/current
        description: Current weather of a city.
        call: cache-api.get-weather
        with:
          city: cache-mcp.city
    prompts:
      hello:
        display: Hello
        description: Say hello.
        arguments:
          who:
            description: Who to greet.
        template:
        - role: user
          content: Say hello to {{who}}.
  - type: mcp
    namespace: plain-mcp
    port: 9412
    description: The same weather, with no caching hints declared.
    tools:
      get-weather:
        description: The weather of a city.
        inputParameters:
          city:
            type: string
            required: true
            description: The city.
        call: cache-api.get-weather
        with:
          city: plain-mcp.city
    resources:
      city-weather:
        display: City weather
        uri: weather://{city}/current
        description: Current weather of a city.
        call: cache-api.get-weather
        with:
          city: plain-mcp.city
"""

# A capability with no info.version and no hints: the spec defaults, naftiko's own version.
UNVERSIONED = """\
ikanos: "1.0.0-beta5"
info:
  display: No version
  description: Neither info.version nor caching hints.
capability:
  exposes:
  - type: mcp
    namespace: bare-mcp
    port: 9413
    tools:
      ping:
        description: Answers pong.
        outputParameters:
          pong:
            type: string
            value: pong
"""


def write(tmp_path: Path, text: str, name: str = "cap.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    (tmp_path / "notes.md").write_text("# Notes\n")
    return path


@pytest_asyncio.fixture(scope="module")
async def served(upstream, tmp_path_factory):
    path = write(tmp_path_factory.mktemp("cache"), CAPABILITY)
    n = await serve_in_memory(path, upstream.url, consumes=["cache-api"], adapters=["cache-mcp", "plain-mcp"])
    yield n
    assert await n.stop() == 0


@pytest_asyncio.fixture(scope="module")
async def bare(tmp_path_factory):
    n = await serve_in_memory(write(tmp_path_factory.mktemp("bare"), UNVERSIONED), adapters=["bare-mcp"])
    yield n
    assert await n.stop() == 0


# ------------------------------------------------------------------ loading


def test_fields_reach_the_plan(tmp_path):
    plan = compile_plan(load(str(write(tmp_path, CAPABILITY))), Options(environ={}))
    cached, plain = plan.adapters
    assert (cached.ttl_ms, cached.cache_scope, cached.version) == (TTL, "public", "2.4.1")
    assert (plain.ttl_ms, plain.cache_scope, plain.version) == (0, "private", "2.4.1")


ALPHA2 = """\
naftiko: 1.0.0-alpha2
info: {label: Older, description: An alpha2 file using the beta4 additions., version: "3.1"}
capability:
  exposes:
  - type: mcp
    namespace: older-mcp
    port: 9414
    ttlMs: 1000
    cacheScope: public
    tools:
    - name: ping
      description: Answers pong.
      outputParameters:
      - {name: pong, type: string, value: pong}
"""


def test_an_older_version_gets_schema_warnings_and_the_fields_still_act(tmp_path):
    loaded = load(str(write(tmp_path, ALPHA2)))
    warned = {str(w).split("warning: ", 1)[1] for w in loaded.warnings}
    assert {
        "unknown field 'version' (schema, at $.info.version)",
        "unknown field 'ttlMs' (schema, at $.capability.exposes[0].ttlMs)",
        "unknown field 'cacheScope' (schema, at $.capability.exposes[0].cacheScope)",
    } <= warned, warned
    adapter = compile_plan(loaded, Options(environ={})).adapters[0]
    assert (adapter.ttl_ms, adapter.cache_scope, adapter.version) == (1000, "public", "3.1")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("ttlMs: -1", "'ttlMs': Input should be greater than or equal to 0"),
        ("ttlMs: 9007199254740992", "'ttlMs': Input should be less than or equal to 9007199254740991"),
        ('ttlMs: "60000"', "'ttlMs' must be an integer, got '60000'"),
        ("ttlMs: true", "'ttlMs' must be an integer, got True"),
        ("ttlMs: 1.5", "'ttlMs' must be an integer, got 1.5"),
        ("cacheScope: shared", "'cacheScope' must be one of 'public' or 'private', got 'shared'"),
    ],
)
def test_bad_values_are_load_errors_naming_the_field(tmp_path, line, message):
    text = CAPABILITY.replace("    ttlMs: 60000\n    cacheScope: public\n", f"    {line}\n")
    with pytest.raises(LoadError) as err:
        load(str(write(tmp_path, text)))
    shown = str(err.value)
    assert "1.0.0-beta5" in shown
    assert message in shown, shown
    line_no = text.splitlines().index(f"    {line}") + 1
    assert f"cap.yaml:{line_no}:" in shown, shown


# ------------------------------------------------------------------ the official client


async def test_modern_client_reads_the_hints_on_every_cacheable_result(served, fresh_upstream):
    async with served.mcp("cache-mcp", mode="auto") as c:
        assert c.protocol_version == MODERN
        assert c.server_info is not None and c.server_info.version == "2.4.1"
        assert c.server_info.name == "cache-mcp"
        results = [
            await c.list_tools(),
            await c.list_resources(),
            await c.list_resource_templates(),
            await c.read_resource("notes://readme"),
            await c.list_prompts(),
        ]
        for result in results:
            assert {"ttl_ms", "cache_scope"} <= result.model_fields_set, type(result).__name__  # sent, not defaulted
            assert (result.ttl_ms, result.cache_scope) == (TTL, "public"), type(result).__name__
        called = await c.call_tool("get-weather", {"city": "oslo"})
        prompt = await c.get_prompt("hello", {"who": "Ada"})
    assert not called.is_error, called.content
    for result in (called, prompt):
        dumped = result.model_dump(by_alias=True)
        assert not set(HINTS) & set(dumped), dumped


async def test_modern_client_reuses_a_read_for_its_ttl_and_not_without_one(served, fresh_upstream):
    """What the hints are for: the SDK's client serves a fresh read from its cache (one upstream
    call for two reads), and re-reads every time from the adapter that declared none (ttlMs 0)."""
    for adapter, expected in (("cache-mcp", 1), ("plain-mcp", 2)):
        fresh_upstream.reset()
        async with served.mcp(adapter, mode="auto") as c:
            first = await c.read_resource("weather://oslo/current")
            second = await c.read_resource("weather://oslo/current")
        assert first.contents[0].text == second.contents[0].text
        assert json.loads(first.contents[0].text)["path"] == "/cities/oslo/weather"
        assert len(fresh_upstream.requests) == expected, adapter


async def test_legacy_client_gets_the_version_and_no_hints(served, fresh_upstream):
    async with served.mcp("cache-mcp", mode="legacy") as c:
        assert c.protocol_version != MODERN
        assert c.server_info is not None and c.server_info.version == "2.4.1"
        results = [
            await c.list_tools(),
            await c.list_resources(),
            await c.list_resource_templates(),
            await c.read_resource("notes://readme"),
            await c.list_prompts(),
        ]
    for result in results:
        assert not {"ttl_ms", "cache_scope"} & result.model_fields_set, type(result).__name__


async def test_unversioned_capability_defaults(bare):
    async with bare.mcp("bare-mcp", mode="auto") as c:
        listed = await c.list_tools()
        assert c.server_info is not None and c.server_info.version == __version__
    assert {"ttl_ms", "cache_scope"} <= listed.model_fields_set  # the spec requires them: 0 and private
    assert (listed.ttl_ms, listed.cache_scope) == (0, "private")
    async with bare.mcp("bare-mcp", mode="legacy") as c:
        assert c.server_info is not None and c.server_info.version == __version__


# ------------------------------------------------------------------ raw JSON-RPC on the wire


def modern_headers(method: str, name: str | None = None) -> dict[str, str]:
    headers = {**ACCEPT, "mcp-protocol-version": MODERN, "mcp-method": method}
    return headers | ({"mcp-name": name} if name else {})


async def rpc(served, adapter: str, method: str, params: dict | None, headers: dict[str, str]) -> dict:
    body = {"jsonrpc": "2.0", "id": 7, "method": method, "params": params or {}}
    async with served.http() as http:
        response = await http.post(served.urls[adapter], content=json.dumps(body), headers=headers)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert "error" not in answer, answer
    return answer["result"]


MODERN_CACHEABLE = [
    ("server/discover", None, None),
    ("tools/list", None, None),
    ("resources/list", None, None),
    ("resources/templates/list", None, None),
    ("resources/read", {"uri": "notes://readme"}, "notes://readme"),
    ("prompts/list", None, None),
]
MODERN_NOT_CACHEABLE = [
    ("tools/call", {"name": "get-weather", "arguments": {"city": "oslo"}}, "get-weather"),
    ("prompts/get", {"name": "hello", "arguments": {"who": "Ada"}}, "hello"),
]


@pytest.mark.parametrize(("method", "params", "name"), MODERN_CACHEABLE)
async def test_modern_wire_carries_the_hints_at_the_result_top_level(served, fresh_upstream, method, params, name):
    result = await rpc(served, "cache-mcp", method, {**(params or {}), "_meta": META}, modern_headers(method, name))
    assert result["ttlMs"] == TTL and result["cacheScope"] == "public", result
    assert result["resultType"] == "complete"
    assert result["_meta"][SERVER_INFO] == {"name": "cache-mcp", "version": "2.4.1"}
    assert not set(HINTS) & set(result["_meta"])  # results fields, not _meta
    if method in ("server/discover", "tools/list", "resources/list", "resources/templates/list"):  # plain-mcp has these
        plain = await rpc(served, "plain-mcp", method, {"_meta": META}, modern_headers(method))
        assert (plain["ttlMs"], plain["cacheScope"]) == (0, "private"), plain  # the spec's defaults, always sent


@pytest.mark.parametrize(("method", "params", "name"), MODERN_NOT_CACHEABLE)
async def test_modern_wire_leaves_calls_and_prompts_without_hints(served, fresh_upstream, method, params, name):
    result = await rpc(served, "cache-mcp", method, {**params, "_meta": META}, modern_headers(method, name))
    assert not set(HINTS) & set(result), result
    assert result["_meta"][SERVER_INFO]["version"] == "2.4.1"


LEGACY_METHODS = [
    ("tools/list", None),
    ("tools/call", {"name": "get-weather", "arguments": {"city": "oslo"}}),
    ("resources/list", None),
    ("resources/templates/list", None),
    ("resources/read", {"uri": "notes://readme"}),
    ("prompts/list", None),
    ("prompts/get", {"name": "hello", "arguments": {"who": "Ada"}}),
]


@pytest.mark.parametrize("version", ["2025-11-25", "2025-06-18", "2024-11-05"])
async def test_handshake_era_wire_has_the_version_and_never_the_hints(served, fresh_upstream, version):
    headers = {**ACCEPT, "mcp-protocol-version": version}
    init = {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}
    result = await rpc(served, "cache-mcp", "initialize", init, {**ACCEPT})
    assert result["serverInfo"]["version"] == "2.4.1" and result["serverInfo"]["name"] == "cache-mcp"
    assert not set(HINTS) & set(result), result
    for method, params in LEGACY_METHODS:
        result = await rpc(served, "cache-mcp", method, params, headers)
        assert not set(HINTS) & set(result), (method, result)
        assert "_meta" not in result or SERVER_INFO not in result["_meta"], (method, result)


async def test_no_header_era_has_no_hints(served, fresh_upstream):
    """A request without MCP-Protocol-Version is 2025-03-26 (streamable HTTP's default)."""
    for method, params in LEGACY_METHODS:
        result = await rpc(served, "cache-mcp", method, params, dict(ACCEPT))
        assert not set(HINTS) & set(result), (method, result)


# ------------------------------------------------------------------ stdio


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_stdio_serves_the_hints_and_the_version(tmp_path, mode):
    text = UNVERSIONED.replace("    port: 9413\n", "    transport: stdio\n    ttlMs: 5000\n    cacheScope: private\n")
    text = text.replace(
        "  description: Neither info.version nor caching hints.\n", '  description: stdio.\n  version: "7.0"\n'
    )
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "naftiko", "serve", str(write(tmp_path, text))], env=dict(os.environ)
    )
    async with Client(params, mode=mode) as c:
        assert c.server_info is not None and c.server_info.version == "7.0"
        listed = await c.list_tools()
        called = await c.call_tool("ping", {})
        version = c.protocol_version
    assert not called.is_error, called.content
    assert not set(HINTS) & set(called.model_dump(by_alias=True))
    if mode == "auto":
        assert version == MODERN
        assert {"ttl_ms", "cache_scope"} <= listed.model_fields_set
        assert (listed.ttl_ms, listed.cache_scope) == (5000, "private")
    else:
        assert version != MODERN
        assert not {"ttl_ms", "cache_scope"} & listed.model_fields_set
