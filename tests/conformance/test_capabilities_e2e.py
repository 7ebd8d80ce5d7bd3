"""End to end: every operation of the three shipped capabilities, over REST and over MCP in
both protocol eras, against a real fake upstream on loopback.

Each case asserts the exact request the upstream received (method, raw path, query, JSON
body, bearer token) and what the caller got back.
"""

from __future__ import annotations

import pytest
import pytest_asyncio

from conftest import API_KEY, CAPABILITIES
from harness import serve_in_memory

ODD = "cus/1?a b"  # a path value with '/', '?' and a space
ODD_ENC = "cus%2F1%3Fa%20b"

# (tool, REST method, REST path, upstream method, upstream raw path, inputs)
# inputs: "body" → JSON body; "list" → query filters; dict → path values (REST spelling → tool argument)
CUSTOMERS = [
    ("archive-billing-provider-configurations-customer", "POST", "/v1/v1/archivecustomerbillingproviderconfigurations", "POST", "/v1/archiveCustomerBillingProviderConfigurations", "body"),
    ("archive-revenue-system-configurations-customer", "POST", "/v1/v1/archivecustomerrevenuesystemconfigurations", "POST", "/v1/archiveCustomerRevenueSystemConfigurations", "body"),
    ("list-customers", "GET", "/v1/v1/customers", "GET", "/v1/customers", "list"),
    ("create-customer", "POST", "/v1/v1/customers", "POST", "/v1/customers", "body"),
    ("archive-customer", "POST", "/v1/v1/customers/archive", "POST", "/v1/customers/archive", "body"),
    ("set-customer-billable-status", "POST", "/v1/v1/customers/setbillablestatus", "POST", "/v1/customers/setBillableStatus", "body"),
    ("get-customer", "GET", f"/v1/v1/customers/{ODD_ENC}", "GET", f"/v1/customers/{ODD_ENC}", "id"),
    ("create-update-customer-ingest-aliases", "POST", "/v1/v1/customers/c-1/setingestaliases", "POST", "/v1/customers/c-1/setIngestAliases", "body+id"),
    ("update-customer-name", "POST", "/v1/v1/customers/c-1/setname", "POST", "/v1/customers/c-1/setName", "body+id"),
    ("update-customer-configuration", "POST", "/v1/v1/customers/c-1/updateconfig", "POST", "/v1/customers/c-1/updateConfig", "body+id"),
    ("get-embeddable-customer-dashboard", "POST", "/v1/v1/dashboards/getembeddableurl", "POST", "/v1/dashboards/getEmbeddableUrl", "body"),
    ("fetch-billing-provider-configurations-customer", "POST", "/v1/v1/getcustomerbillingproviderconfigurations", "POST", "/v1/getCustomerBillingProviderConfigurations", "body"),
    ("fetch-revenue-system-configurations-customer", "POST", "/v1/v1/getcustomerrevenuesystemconfigurations", "POST", "/v1/getCustomerRevenueSystemConfigurations", "body"),
    ("set-billing-provider-configurations-customer", "POST", "/v1/v1/setcustomerbillingproviderconfigurations", "POST", "/v1/setCustomerBillingProviderConfigurations", "body"),
    ("set-revenue-system-configurations-customer", "POST", "/v1/v1/setcustomerrevenuesystemconfigurations", "POST", "/v1/setCustomerRevenueSystemConfigurations", "body"),
]

CREDITS = [
    ("add-manual-balance-entry", "/v1/v1/contracts/addmanualbalanceledgerentry", "/v1/contracts/addManualBalanceLedgerEntry"),
    ("disable-trueup-commit", "/v1/v1/contracts/commits/disabletrueup", "/v1/contracts/commits/disableTrueup"),
    ("release-external-payment-gate-threshold", "/v1/v1/contracts/commits/threshold-billing/release", "/v1/contracts/commits/threshold-billing/release"),
    ("get-net-balance-customer", "/v1/v1/contracts/customerbalances/getnetbalance", "/v1/contracts/customerBalances/getNetBalance"),
    ("list-balances", "/v1/v1/contracts/customerbalances/list", "/v1/contracts/customerBalances/list"),
    ("create-commit", "/v1/v1/contracts/customercommits/create", "/v1/contracts/customerCommits/create"),
    ("list-commits", "/v1/v1/contracts/customercommits/list", "/v1/contracts/customerCommits/list"),
    ("update-commit-end-date", "/v1/v1/contracts/customercommits/updateenddate", "/v1/contracts/customerCommits/updateEndDate"),
    ("create-credit", "/v1/v1/contracts/customercredits/create", "/v1/contracts/customerCredits/create"),
    ("list-credits", "/v1/v1/contracts/customercredits/list", "/v1/contracts/customerCredits/list"),
    ("update-credit-end-date", "/v1/v1/contracts/customercredits/updateenddate", "/v1/contracts/customerCredits/updateEndDate"),
    ("list-seat-balances", "/v1/v1/contracts/seatbalances/list", "/v1/contracts/seatBalances/list"),
    ("archive-commit", "/v1/v2/contracts/commits/archive", "/v2/contracts/commits/archive"),
    ("edit-commit", "/v1/v2/contracts/commits/edit", "/v2/contracts/commits/edit"),
    ("archive-credit", "/v1/v2/contracts/credits/archive", "/v2/contracts/credits/archive"),
    ("edit-credit", "/v1/v2/contracts/credits/edit", "/v2/contracts/credits/edit"),
]

ORG = "org-7"
BAL = "bal 9"  # a space in a path value
BAL_ENC = "bal%209"
# (tool, method, REST path, upstream path, path args, query args, body?)
M3TER = [
    ("list-balances", "GET", f"/v1/organizations/{ORG}/balances", f"/organizations/{ORG}/balances", {"orgId": ORG}, {"pageSize": "20", "accountId": "acc-1", "ids": ["b1", "b2"]}, False),
    ("create-balance", "POST", f"/v1/organizations/{ORG}/balances", f"/organizations/{ORG}/balances", {"orgId": ORG}, {}, True),
    ("list-transactions", "GET", f"/v1/organizations/{ORG}/balances/{BAL_ENC}/transactions", f"/organizations/{ORG}/balances/{BAL_ENC}/transactions", {"orgId": ORG, "balanceId": BAL}, {"nextToken": "t0k", "entityType": "ACCOUNT"}, False),
    ("create-balance-transaction", "POST", f"/v1/organizations/{ORG}/balances/{BAL_ENC}/transactions", f"/organizations/{ORG}/balances/{BAL_ENC}/transactions", {"orgId": ORG, "balanceId": BAL}, {}, True),
    ("get-balance-transactions-summary", "GET", f"/v1/organizations/{ORG}/balances/{BAL_ENC}/transactions/summary", f"/organizations/{ORG}/balances/{BAL_ENC}/transactions/summary", {"orgId": ORG, "balanceId": BAL}, {}, False),
    ("retrieve-balance", "GET", f"/v1/organizations/{ORG}/balances/{BAL_ENC}", f"/organizations/{ORG}/balances/{BAL_ENC}", {"orgId": ORG, "id": BAL}, {}, False),
    ("update-balance", "PUT", f"/v1/organizations/{ORG}/balances/{BAL_ENC}", f"/organizations/{ORG}/balances/{BAL_ENC}", {"orgId": ORG, "id": BAL}, {}, True),
    ("delete-balance", "DELETE", f"/v1/organizations/{ORG}/balances/{BAL_ENC}", f"/organizations/{ORG}/balances/{BAL_ENC}", {"orgId": ORG, "id": BAL}, {}, False),
]

LIST_QUERY = {"customer_ids": ["c-1", "c-2"], "only_archived": "true", "ingest_alias": "a&b=c"}


async def _serve(upstream, name: str, env_key: str):
    n = await serve_in_memory(
        CAPABILITIES / f"{name}.yaml",
        upstream.url,
        consumes=[name],
        adapters=[f"{name}-rest", f"{name}-mcp"],
        env={env_key: API_KEY},
    )
    yield n
    assert await n.stop() == 0  # SIGTERM is a graceful, clean exit


@pytest_asyncio.fixture(scope="module")
async def customers(upstream):
    async for n in _serve(upstream, "metronome-customers", "METRONOME_API_KEY"):
        yield n


@pytest_asyncio.fixture(scope="module")
async def credits(upstream):
    async for n in _serve(upstream, "metronome-credits-and-commits", "METRONOME_API_KEY"):
        yield n


@pytest_asyncio.fixture(scope="module")
async def m3ter(upstream):
    async for n in _serve(upstream, "m3ter-balances", "M3TER_API_KEY"):
        yield n


def _rest_base(n, ns):
    return n.urls[ns].rstrip("/")


def test_startup_lines_count_every_operation(customers, credits, m3ter):
    assert customers.sizes == {"metronome-customers-rest": 15, "metronome-customers-mcp": 15}
    assert credits.sizes == {"metronome-credits-and-commits-rest": 16, "metronome-credits-and-commits-mcp": 16}
    assert m3ter.sizes == {"m3ter-balances-rest": 8, "m3ter-balances-mcp": 8}


def _assert_common(rec, method, raw_path):
    assert rec.method == method
    assert rec.raw_path == raw_path
    assert rec.headers["authorization"] == f"Bearer {API_KEY}"


# ------------------------------------------------------------------ customers


@pytest.mark.parametrize("tool,method,rest_path,up_method,up_path,kind", CUSTOMERS, ids=[c[0] for c in CUSTOMERS])
async def test_customers_rest(customers, fresh_upstream, tool, method, rest_path, up_method, up_path, kind):
    base = _rest_base(customers, "metronome-customers-rest")
    async with customers.http() as http:
        if kind.startswith("body"):
            payload = {"name": "Acme", "tool": tool, "nested": {"quote": 'a"b'}}
            r = await http.request(method, base + rest_path, json=payload)
        elif kind == "list":
            r = await http.get(base + rest_path, params=LIST_QUERY)
        else:
            r = await http.request(method, base + rest_path)
    assert r.status_code == 200, r.text
    rec = fresh_upstream.last
    _assert_common(rec, up_method, up_path)
    if kind.startswith("body"):
        assert rec.json() == payload
        assert rec.headers["content-type"] == "application/json"
    elif kind == "list":
        assert rec.query.getall("customer_ids") == ["c-1", "c-2"]
        assert rec.query["only_archived"] == "true"
        assert rec.query["ingest_alias"] == "a&b=c"
        assert rec.body == b""
    else:
        assert rec.body == b""
    # the upstream answer passes through unchanged
    assert r.json()["path"] == up_path
    assert r.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_customers_mcp_every_tool(customers, fresh_upstream, mode):
    url = customers.urls["metronome-customers-mcp"]
    async with customers.mcp(url, mode=mode) as client:
        assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == {c[0] for c in CUSTOMERS}
        for tool, _, _, up_method, up_path, kind in CUSTOMERS:
            fresh_upstream.reset()
            if kind == "body":
                args = {"body": {"name": "Acme", "tool": tool}}
            elif kind == "body+id":
                args = {"body": {"name": "Acme"}, "customer_id": "c-1"}
            elif kind == "list":
                args = {"customer_ids": ["c-1", "c-2"], "only_archived": True, "ingest_alias": "a&b=c"}
            else:
                args = {"customer_id": ODD}
            result = await client.call_tool(tool, args)
            assert not result.is_error, result.content
            rec = fresh_upstream.last
            _assert_common(rec, up_method, up_path)
            if "body" in args:
                assert rec.json() == args["body"]
            if kind == "list":
                assert rec.query.getall("customer_ids") == ["c-1", "c-2"]
                assert rec.query["only_archived"] == "true"
            assert result.structured_content["path"] == up_path
            assert '"upstream":"fake"' in result.content[0].text


async def test_customers_mcp_tool_metadata(customers):
    async with customers.mcp(customers.urls["metronome-customers-mcp"], mode="legacy") as client:
        assert client.server_info.name == "metronome-customers-mcp"
        assert "MCP adapter for Metronome" in (client.instructions or "")
        tools = {t.name: t for t in (await client.list_tools()).tools}
    get = tools["get-customer"]
    assert get.output_schema is None  # `mapping: $.` passes the body through: not typed
    assert get.input_schema["required"] == ["customer_id"]
    assert get.input_schema["properties"]["customer_id"]["type"] == "string"
    assert get.annotations.read_only_hint is True and get.annotations.idempotent_hint is True
    lst = tools["list-customers"].input_schema["properties"]
    assert lst["customer_ids"] == {"type": "array", "items": {"type": "string"}, "description": lst["customer_ids"]["description"]}
    assert lst["only_archived"]["type"] == "boolean"
    create = tools["create-customer"]
    assert create.input_schema["properties"]["body"]["type"] == "object"
    assert create.input_schema["required"] == []
    assert create.annotations.read_only_hint is False


# ------------------------------------------------------------------ credits & commits


@pytest.mark.parametrize("tool,rest_path,up_path", CREDITS, ids=[c[0] for c in CREDITS])
async def test_credits_rest(credits, fresh_upstream, tool, rest_path, up_path):
    base = _rest_base(credits, "metronome-credits-and-commits-rest")
    payload = {"customer_id": "c-1", "tool": tool, "amount": 12.5}
    async with credits.http() as http:
        r = await http.post(base + rest_path, json=payload)
    assert r.status_code == 200, r.text
    rec = fresh_upstream.last
    _assert_common(rec, "POST", up_path)
    assert rec.json() == payload
    assert r.json()["path"] == up_path


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_credits_mcp_every_tool(credits, fresh_upstream, mode):
    async with credits.mcp(credits.urls["metronome-credits-and-commits-mcp"], mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == {c[0] for c in CREDITS}
        assert tools["list-balances"].annotations.read_only_hint is True
        assert tools["create-commit"].annotations.read_only_hint is False
        for tool, _, up_path in CREDITS:
            fresh_upstream.reset()
            body = {"customer_id": "c-1", "tool": tool}
            result = await client.call_tool(tool, {"body": body})
            assert not result.is_error, result.content
            rec = fresh_upstream.last
            _assert_common(rec, "POST", up_path)
            assert rec.json() == body
            assert result.structured_content["path"] == up_path


# ------------------------------------------------------------------ m3ter


@pytest.mark.parametrize("tool,method,rest_path,up_path,path_args,query,has_body", M3TER, ids=[c[0] for c in M3TER])
async def test_m3ter_rest(m3ter, fresh_upstream, tool, method, rest_path, up_path, path_args, query, has_body):
    base = _rest_base(m3ter, "m3ter-balances-rest")
    payload = {"name": "Prepaid", "amount": 100} if has_body else None
    async with m3ter.http() as http:
        r = await http.request(method, base + rest_path, params=query, json=payload)
    assert r.status_code == 200, r.text
    rec = fresh_upstream.last
    _assert_common(rec, method, up_path)
    for key, value in query.items():
        assert rec.query.getall(key) == (value if isinstance(value, list) else [value])
    assert set(rec.query) <= set(query)
    if has_body:
        assert rec.json() == payload
    else:
        assert rec.body == b""


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_m3ter_mcp_every_tool(m3ter, fresh_upstream, mode):
    async with m3ter.mcp(m3ter.urls["m3ter-balances-mcp"], mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == {c[0] for c in M3TER}
        assert tools["delete-balance"].annotations.destructive_hint is True
        assert "orgId" in tools["list-balances"].input_schema["required"]
        for tool, method, _, up_path, path_args, query, has_body in M3TER:
            fresh_upstream.reset()
            args = {**path_args, **({k: (int(v) if k == "pageSize" else v) for k, v in query.items()})}
            if has_body:
                args["body"] = {"name": "Prepaid"}
            result = await client.call_tool(tool, args)
            assert not result.is_error, result.content
            rec = fresh_upstream.last
            _assert_common(rec, method, up_path)
            for key, value in query.items():
                assert rec.query.getall(key) == (value if isinstance(value, list) else [value])
            if has_body:
                assert rec.json() == {"name": "Prepaid"}
