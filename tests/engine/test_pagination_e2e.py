"""Pagination (docs/reference.md, "Pagination"), end to end against local paginated upstreams.

The upstream below pages a list of 25 records four ways: m3ter style (``nextToken`` in the
query and the answer), Metronome style (``next_page`` in a POST body and the answer), page
numbers and RFC 8288 ``Link`` headers; plus broken ones (a cursor that never advances, a next
link to another origin). The shipped m3ter and Metronome capabilities are compiled in-process
against it and driven through their REST apps and MCP tool tables.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import httpx
import orjson
import pytest
from aiohttp import web
from mcp import types

from conftest import CAPABILITIES
from loopback import on_loopback
from naftiko.document.loader import load
from naftiko.engine.pagination import next_link
from naftiko.engine.plan import Options, compile_plan
from naftiko.errors import LoadError
from naftiko.exposes.mcp.server import McpTools
from naftiko.runtime.serve import build_app

RECORDS = [{"id": f"r{i:02d}"} for i in range(25)]


class Pager:
    def __init__(self) -> None:
        self.url = ""
        self.hits: list[dict] = []
        self.delay = 0.0

    def reset(self) -> None:
        self.hits.clear()
        self.delay = 0.0

    async def m3ter(self, request: web.Request) -> web.Response:
        start = int(request.query.get("nextToken", "0"))
        size = int(request.query.get("pageSize", "10"))
        self.hits.append(
            {"path": request.path, "query": dict(request.query), "auth": request.headers.get("Authorization")}
        )
        if self.delay:
            await asyncio.sleep(self.delay)
        page = RECORDS[start : start + size]
        body: dict = {"data": page}
        if start + size < len(RECORDS):
            body["nextToken"] = str(start + size)
        return web.json_response(body)

    async def metronome(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.hits.append({"path": request.path, "body": body})
        start = int(body.get("next_page") or 0)
        limit = int(body.get("limit", 10))
        nxt = str(start + limit) if start + limit < len(RECORDS) else None
        return web.json_response({"data": RECORDS[start : start + limit], "next_page": nxt})

    async def customers(self, request: web.Request) -> web.Response:
        self.hits.append({"path": request.path, "query": dict(request.query)})
        start = int(request.query.get("next_page", "0"))
        nxt = str(start + 10) if start + 10 < len(RECORDS) else None
        return web.json_response({"data": RECORDS[start : start + 10], "next_page": nxt})

    async def numbered(self, request: web.Request) -> web.Response:
        page = int(request.query.get("page", "1"))
        self.hits.append({"path": request.path, "query": dict(request.query)})
        return web.json_response({"items": RECORDS[(page - 1) * 10 : page * 10]})

    async def linked(self, request: web.Request) -> web.Response:
        start = int(request.query.get("from", "0"))
        self.hits.append({"path": request.path, "query": dict(request.query)})
        headers = {}
        if start + 10 < len(RECORDS):
            headers["Link"] = f'</linked?from={start + 10}>; rel="next", </linked?from=0>; rel="first"'
        return web.json_response(RECORDS[start : start + 10], headers=headers)

    async def stuck(self, request: web.Request) -> web.Response:
        self.hits.append({"path": request.path, "query": dict(request.query)})
        return web.json_response({"data": [{"n": len(self.hits)}], "nextToken": "same"})

    async def foreign(self, request: web.Request) -> web.Response:
        self.hits.append({"path": request.path})
        return web.json_response([1], headers={"Link": '<https://elsewhere.example/p2>; rel="next"'})


@pytest.fixture(scope="module")
async def pager():
    fake = Pager()
    app = web.Application()
    app.router.add_get("/organizations/{org}/balances", fake.m3ter)
    app.router.add_get("/organizations/{org}/balances/{balance}/transactions", fake.m3ter)
    app.router.add_post("/v1/contracts/customerBalances/list", fake.metronome)
    app.router.add_get("/v1/customers", fake.customers)
    app.router.add_get("/numbered", fake.numbered)
    app.router.add_get("/linked", fake.linked)
    app.router.add_get("/stuck", fake.stuck)
    app.router.add_get("/foreign", fake.foreign)
    async with on_loopback(app) as fake.url:
        yield fake


@pytest.fixture
def up(pager):
    pager.reset()
    return pager


class Served:
    def __init__(self, file: Path, namespace: str, url: str, env: dict[str, str]):
        self.plan = compile_plan(load(str(file)), Options(base_uris={namespace: url}, environ=env))
        rest = next(a for a in self.plan.adapters if a.kind == "rest")
        self.mcp_plan = next(a for a in self.plan.adapters if a.kind == "mcp")
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=build_app(rest, self.plan)), base_url="http://t"
        )
        self.tools = McpTools(self.mcp_plan, self.plan.secrets.mask)

    async def tool(self, name: str, arguments: dict) -> types.CallToolResult:
        ctx = SimpleNamespace(protocol_version="2025-06-18")
        return await self.tools.call_tool(ctx, types.CallToolRequestParams(name=name, arguments=arguments))

    async def __aenter__(self) -> Served:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.http.aclose()
        await self.plan.aclose()


def m3ter(url: str) -> Served:
    return Served(CAPABILITIES / "m3ter-balances.yaml", "m3ter-balances", url, {"M3TER_API_KEY": "m3ter-static-key"})


def metronome(url: str, file: str = "metronome-credits-and-commits") -> Served:
    return Served(CAPABILITIES / f"{file}.yaml", file, url, {"METRONOME_API_KEY": "metronome-key"})


# ---------------------------------------------------------------------------- m3ter style (query cursor)


async def test_m3ter_one_page_by_default_as_the_upstream_answers(up):
    async with m3ter(up.url) as s:
        response = await s.http.get("/v1/organizations/org-1/balances", params={"pageSize": "10"})
    assert response.json() == {"data": RECORDS[:10], "nextToken": "10"}  # unchanged: no pagination field
    assert len(up.hits) == 1


async def test_m3ter_all_pages_over_rest(up):
    async with m3ter(up.url) as s:
        response = await s.http.get("/v1/organizations/org-1/balances", params={"pageSize": "10", "pages": "all"})
    assert response.status_code == 200
    assert response.json() == {
        "data": RECORDS,
        "nextToken": None,
        "pagination": {"pages": 3, "items": 25, "complete": True, "stoppedBy": None},
    }
    assert [h["query"] for h in up.hits] == [
        {"pageSize": "10"},
        {"pageSize": "10", "nextToken": "10"},
        {"pageSize": "10", "nextToken": "20"},
    ]
    assert all(h["auth"] == "Bearer m3ter-static-key" for h in up.hits)


async def test_m3ter_n_pages_over_mcp_says_it_is_incomplete_and_where_to_resume(up):
    async with m3ter(up.url) as s:
        listing = s.tools.listing.tools
        result = await s.tool("list-transactions", {"orgId": "org-1", "balanceId": "b-1", "pageSize": 5, "pages": 2})
    schema = next(t for t in listing if t.name == "list-transactions").input_schema
    assert "pages" in schema["properties"] and "pages" not in schema["required"]
    assert not result.is_error
    value = result.structured_content
    assert value["data"] == RECORDS[:10] and value["nextToken"] == "10"
    assert value["pagination"] == {"pages": 2, "items": 10, "complete": False, "stoppedBy": "pages"}
    assert orjson.loads(result.content[0].text) == value
    assert [h["path"] for h in up.hits] == ["/organizations/org-1/balances/b-1/transactions"] * 2


async def test_caps_on_items_and_pages(up, tmp_path):
    text = (
        (CAPABILITIES / "m3ter-balances.yaml")
        .read_text()
        .replace("pagination: {maxPages: 50, maxItems: 5000, timeout: 60}", "pagination: {maxPages: 2, maxItems: 12}")
    )
    path = tmp_path / "m3ter.yaml"
    path.write_text(text)
    async with Served(path, "m3ter-balances", up.url, {"M3TER_API_KEY": "k" * 8}) as s:
        by_items = (await s.http.get("/v1/organizations/o/balances", params={"pages": "all", "pageSize": "10"})).json()
        by_pages = (await s.http.get("/v1/organizations/o/balances", params={"pages": "all", "pageSize": "5"})).json()
        over = await s.tool("list-balances", {"orgId": "o", "pages": 7, "pageSize": 4})
    assert by_items["data"] == RECORDS[:12] and by_items["nextToken"] is None  # cut mid-page: no resume point
    assert by_items["pagination"] == {"pages": 2, "items": 12, "complete": False, "stoppedBy": "maxItems"}
    assert by_pages["pagination"] == {"pages": 2, "items": 10, "complete": False, "stoppedBy": "maxPages"}
    assert over.structured_content["pagination"]["pages"] == 2  # asking for more than the cap gets the cap


async def test_time_cap_returns_what_arrived(up, tmp_path):
    text = (
        (CAPABILITIES / "m3ter-balances.yaml")
        .read_text()
        .replace("pagination: {maxPages: 50, maxItems: 5000, timeout: 60}", "pagination: {timeout: 0.5}")
    )
    path = tmp_path / "m3ter.yaml"
    path.write_text(text)
    up.delay = 0.3
    async with Served(path, "m3ter-balances", up.url, {"M3TER_API_KEY": "k" * 8}) as s:
        response = await s.http.get("/v1/organizations/o/balances", params={"pages": "all", "pageSize": "5"})
    body = response.json()
    assert response.status_code == 200
    assert body["pagination"] == {"pages": 1, "items": 5, "complete": False, "stoppedBy": "timeout"}
    assert body["nextToken"] == "5"


@pytest.mark.parametrize("pages", ["0", "-1", "many", "2.5"])
async def test_bad_pages_argument_is_a_400_and_nothing_is_sent(up, pages):
    async with m3ter(up.url) as s:
        response = await s.http.get("/v1/organizations/o/balances", params={"pages": pages})
        result = await s.tool("list-balances", {"orgId": "o", "pages": 0})
    assert response.status_code == 400 and response.json()["field"] == "pages"
    assert result.is_error
    assert not up.hits


# ---------------------------------------------------------------------------- Metronome style (body cursor)


async def test_metronome_body_cursor_over_both_adapters(up):
    async with metronome(up.url) as s:
        rest = await s.http.post(
            "/v1/v1/contracts/customerbalances/list", params={"pages": "all"}, json={"customer_id": "c-1", "limit": 10}
        )
        tool = await s.tool("list-balances", {"body": {"customer_id": "c-1", "limit": 20}, "pages": "all"})
    assert rest.status_code == 200
    assert rest.json()["data"] == RECORDS and rest.json()["next_page"] is None
    assert rest.json()["pagination"] == {"pages": 3, "items": 25, "complete": True, "stoppedBy": None}
    assert [h["body"] for h in up.hits[:3]] == [
        {"customer_id": "c-1", "limit": 10},
        {"customer_id": "c-1", "limit": 10, "next_page": "10"},
        {"customer_id": "c-1", "limit": 10, "next_page": "20"},
    ]
    assert tool.structured_content["data"] == RECORDS and tool.structured_content["pagination"]["pages"] == 2


async def test_metronome_customers_query_cursor(up):
    async with metronome(up.url, "metronome-customers") as s:
        result = await s.tool("list-customers", {"pages": "all"})
    assert result.structured_content["data"] == RECORDS
    assert [h["query"].get("next_page") for h in up.hits] == [None, "10", "20"]


# ---------------------------------------------------------------------------- page numbers, links, broken upstreams


def generic(url: str, path: str, pagination: str, tool_extra: str = "") -> str:
    return f"""\
naftiko: 1.0.0-alpha2
info:
  label: Paging
  description: paging styles
capability:
  consumes:
  - type: http
    namespace: up
    baseUri: {url}
    resources:
    - name: list
      path: {path}
      operations:
      - name: list
        method: GET
        pagination:
{pagination}
  exposes:
  - type: rest
    namespace: rest
    port: 8080
    resources:
    - path: /list
      operations:
      - method: GET
        call: up.list
        pagination: true
  - type: mcp
    namespace: mcp
    port: 9090
    tools:
    - name: list
      description: a list
      call: up.list
      pagination: true{tool_extra}
"""


async def serve_generic(tmp_path, text: str) -> Served:
    path = tmp_path / "paging.yaml"
    path.write_text(text)
    return Served(path, "up", compile_plan(load(str(path))).consumers["up"]["list"].request.base_url, {})


async def test_page_numbers(up, tmp_path):
    text = generic(up.url, "/numbered", "          style: page\n          param: page\n          items: $.items")
    async with await serve_generic(tmp_path, text) as s:
        body = (await s.http.get("/list", params={"pages": "all"})).json()
    assert body["items"] == RECORDS
    assert body["pagination"] == {"pages": 4, "items": 25, "complete": True, "stoppedBy": None}  # page 4 is empty
    assert [h["query"]["page"] for h in up.hits] == ["1", "2", "3", "4"]


async def test_link_headers(up, tmp_path):
    text = generic(up.url, "/linked", "          style: link")
    async with await serve_generic(tmp_path, text) as s:
        body = (await s.http.get("/list", params={"pages": "all"})).json()
        result = await s.tool("list", {"pages": 2})
    assert body == {"items": RECORDS, "pagination": {"pages": 3, "items": 25, "complete": True, "stoppedBy": None}}
    assert result.structured_content["items"] == RECORDS[:20]


async def test_a_cursor_that_does_not_advance_stops_at_once(up, tmp_path):
    text = generic(
        up.url,
        "/stuck",
        "          style: cursor\n          next: $.nextToken\n          param: nextToken\n          items: $.data",
    )
    async with await serve_generic(tmp_path, text) as s:
        response = await s.http.get("/list", params={"pages": "all"})
        result = await s.tool("list", {"pages": "all"})
    assert response.status_code == 502
    assert (
        response.json()["detail"]
        == "pagination of up.list did not advance: the upstream sent the same next cursor twice"
    )
    assert result.is_error and "did not advance" in result.content[0].text
    assert len(up.hits) == 4  # two pages each: the second answered with the cursor that fetched it


async def test_a_next_link_to_another_origin_is_not_followed(up, tmp_path):
    async with await serve_generic(tmp_path, generic(up.url, "/foreign", "          style: link")) as s:
        response = await s.http.get("/list", params={"pages": "all"})
    assert response.status_code == 502 and "next link leaves" in response.json()["detail"]
    assert len(up.hits) == 1


def test_link_header_parsing():
    assert next_link('<https://a/x?p=2>; rel="next"') == "https://a/x?p=2"
    assert next_link('</p/1>; rel="prev", </p/3>; rel="next last"') == "/p/3"
    assert next_link('</p/1>; rel="prev"') is None and next_link(None) is None


@pytest.mark.parametrize(
    "pagination, message",
    [
        ("          style: cursor\n          param: x", "needs 'next'"),
        ("          style: page", "needs 'param'"),
        ("          style: cursor\n          next: $..x\n          param: x", "plain path"),
        ("          style: link\n          items: $.data[0]", "plain path"),
        (
            "          style: cursor\n          next: $.n\n          param: x\n          in: body",
            "exactly one 'in: body'",
        ),
        ("          style: sideways", "style"),
    ],
)
def test_bad_pagination_settings_are_load_errors(tmp_path, pagination, message):
    path = tmp_path / "paging.yaml"
    path.write_text(generic("https://api.example.com", "/x", pagination))
    with pytest.raises(LoadError) as err:
        compile_plan(load(str(path)))
    assert message in str(err.value)


def test_exposed_pagination_needs_a_paginated_call(tmp_path):
    text = generic("https://api.example.com", "/x", "          style: link").replace(
        "        pagination:\n          style: link\n", ""
    )
    path = tmp_path / "paging.yaml"
    path.write_text(text)
    with pytest.raises(LoadError) as err:
        compile_plan(load(str(path)))
    assert "declares no pagination" in str(err.value)
    assert all(d.message.endswith("declares no pagination") for d in err.value.diagnostics)


def test_pagination_is_silent_in_tolerant_mode_and_reported_under_strict():
    loaded = load(str(CAPABILITIES / "m3ter-balances.yaml"))
    assert not [w for w in loaded.warnings if "pagination" in w.message]
    with pytest.raises(LoadError) as err:
        load(str(CAPABILITIES / "m3ter-balances.yaml"), strict=True)
    assert "unknown field 'pagination'" in str(err.value)
