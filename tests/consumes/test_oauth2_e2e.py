"""Outbound OAuth2 and custom tokens (docs/reference.md, "Outbound OAuth2"), end to end.

A local aiohttp authorization server and API on loopback: the token endpoint checks client
credentials (HTTP Basic or in the body), issues numbered tokens, rotates refresh tokens and can
be told to fail, stall or answer garbage; the API accepts only tokens it issued and not revoked.
naftiko's plan is compiled in-process and driven through its REST app (httpx) and MCP tool table.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qsl

import httpx
import orjson
import pytest
from aiohttp import web
from mcp import types

from loopback import on_loopback
from naftiko.document.loader import load
from naftiko.engine.plan import Options, compile_plan
from naftiko.errors import LoadError
from naftiko.exposes.mcp.server import McpTools
from naftiko.runtime.serve import build_app

CLIENT_ID = "svc-key-id-7d2f"
CLIENT_SECRET = "s3cr3t-client-value-91ab"
REFRESH_TOKEN = "rt-initial-5566aa"


@dataclass
class AuthServer:
    url: str = ""
    token_requests: list[dict] = field(default_factory=list)
    api_requests: list[str] = field(default_factory=list)  # the bearer token each API call carried
    issued: set[str] = field(default_factory=set)
    expires_in: object = 3600
    mode: str = "ok"  # ok | down | garbage | slow | invalid_client | no_token
    delay: float = 0.0
    refresh_token: str = REFRESH_TOKEN
    always_401: bool = False
    counter: int = 0

    def reset(self) -> None:
        self.token_requests.clear()
        self.api_requests.clear()
        self.issued.clear()
        self.expires_in, self.mode, self.delay, self.always_401 = 3600, "ok", 0.0, False
        self.refresh_token = REFRESH_TOKEN

    async def token(self, request: web.Request) -> web.Response:
        form = dict(parse_qsl((await request.read()).decode()))
        self.token_requests.append(
            {
                "form": form,
                "authorization": request.headers.get("Authorization"),
                "content_type": request.headers.get("Content-Type"),
            }
        )
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.mode == "down":
            return web.Response(status=500, text="internal error")
        if self.mode == "slow":  # past the test's 2 s bound (its timeout is 0.5 s); the server's
            await asyncio.sleep(2)  # clean-up at the end of the module waits for this handler
        if self.mode == "garbage":
            return web.Response(text="<html>maintenance</html>", content_type="text/html")
        if self.mode == "no_token":
            return web.json_response({"token_type": "Bearer"})
        client = self.client(request, form)
        if client != (CLIENT_ID, CLIENT_SECRET) or self.mode == "invalid_client":
            return web.json_response({"error": "invalid_client"}, status=401)
        body: dict = {"token_type": "Bearer", "expires_in": self.expires_in}
        if form.get("grant_type") == "refresh_token":
            if form.get("refresh_token") != self.refresh_token:
                return web.json_response({"error": "invalid_grant"}, status=400)
            self.refresh_token = f"rt-rotated-{self.counter + 1}-abcdef"
            body["refresh_token"] = self.refresh_token
        elif form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        self.counter += 1
        token = f"access-token-{self.counter}-{'x' * 12}"
        self.issued.add(token)
        body["access_token"] = token
        return web.json_response(body)

    @staticmethod
    def client(request: web.Request, form: dict) -> tuple[str, str]:
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            return user, password
        return form.get("client_id", ""), form.get("client_secret", "")

    async def login(self, request: web.Request) -> web.Response:  # custom-token: a JSON login
        body = await request.json()
        self.token_requests.append({"json": body})
        if (body.get("username"), body.get("password")) != (CLIENT_ID, CLIENT_SECRET):
            return web.json_response({"error": "bad login"}, status=403)
        self.counter += 1
        token = f"session-{self.counter}-{'y' * 12}"
        self.issued.add(token)
        return web.json_response({"data": {"sessionToken": token, "expiresIn": self.expires_in}})

    async def items(self, request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else request.headers.get("X-Session-Token", "")
        token = token or request.query.get("session", "")
        self.api_requests.append(token)
        if self.always_401 or token not in self.issued:
            return web.json_response({"message": "unauthorized"}, status=401)
        return web.json_response({"items": [{"id": 1}], "query": dict(request.query)})


@pytest.fixture(scope="module")
async def auth_server():
    server = AuthServer()
    app = web.Application()
    app.router.add_post("/oauth/token", server.token)
    app.router.add_post("/login", server.login)
    app.router.add_get("/items", server.items)
    async with on_loopback(app) as server.url:
        yield server


@pytest.fixture
def server(auth_server):
    auth_server.reset()
    return auth_server


def capability(url: str, auth: str, extra_consumes: str = "") -> str:
    return f"""\
naftiko: 1.0.0-alpha2
info:
  label: OAuth2 test
  description: outbound tokens
binds:
- namespace: creds
  keys:
    CLIENT_ID: CLIENT_ID
    CLIENT_SECRET: CLIENT_SECRET
    REFRESH_TOKEN: REFRESH_TOKEN
capability:
  consumes:
{extra_consumes}  - type: http
    namespace: api
    baseUri: {url}
    authentication:
{auth}
    resources:
    - name: items
      path: /items
      operations:
      - name: list-items
        method: GET
        inputParameters:
        - name: q
          in: query
  exposes:
  - type: rest
    namespace: rest
    port: 8080
    resources:
    - path: /items
      operations:
      - method: GET
        call: api.list-items
        with:
          q: rest.q
  - type: mcp
    namespace: mcp
    port: 9090
    tools:
    - name: list-items
      description: List items
      call: api.list-items
"""


def client_credentials(url: str, client_auth: str = "body", margin: int | None = None, scope: str | None = None) -> str:
    lines = [
        "      type: oauth2",
        "      grantType: client-credentials",
        f"      tokenEndpoint: {url}/oauth/token",
        "      clientId: '{{creds.CLIENT_ID}}'",
        "      clientSecret: '{{creds.CLIENT_SECRET}}'",
        f"      clientAuthentication: {client_auth}",
    ]
    if margin is not None:
        lines.append(f"      safetyMargin: {margin}")
    if scope:
        lines.append(f"      scope: {scope}")
    return "\n".join(lines)


ENV = {"CLIENT_ID": CLIENT_ID, "CLIENT_SECRET": CLIENT_SECRET, "REFRESH_TOKEN": REFRESH_TOKEN}


def compiled(tmp_path: Path, text: str, **options):
    path = tmp_path / "cap.yaml"
    path.write_text(text)
    return compile_plan(load(str(path)), Options(environ=ENV, **options))


class Running:
    """The compiled plan's REST app and MCP tool table, with the plan's transports closed after."""

    def __init__(self, plan):
        self.plan = plan
        self.rest_plan = next(a for a in plan.adapters if a.kind == "rest")
        self.mcp_plan = next(a for a in plan.adapters if a.kind == "mcp")
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=build_app(self.rest_plan, plan)), base_url="http://t"
        )
        self.tools = McpTools(self.mcp_plan, plan.secrets.mask)

    async def tool(self, name: str, arguments: dict | None = None) -> types.CallToolResult:
        ctx = SimpleNamespace(protocol_version="2025-06-18")
        return await self.tools.call_tool(ctx, types.CallToolRequestParams(name=name, arguments=arguments or {}))

    @property
    def source(self):
        return self.plan.consumers["api"]["list-items"].transport.source

    async def __aenter__(self) -> Running:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.http.aclose()
        await self.plan.aclose()


def assert_no_secret(text: str, server: AuthServer) -> None:
    for secret in (
        CLIENT_SECRET,
        REFRESH_TOKEN,
        *server.issued,
        base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode(),
    ):
        assert secret not in text


# ---------------------------------------------------------------------------- client credentials


async def test_client_credentials_in_the_body_by_default(tmp_path, server):
    plan = compiled(tmp_path, capability(server.url, client_credentials(server.url, scope="read:items")))
    async with Running(plan) as run:
        first = await run.http.get("/items", params={"q": "a"})
        second = await run.http.get("/items", params={"q": "b"})
    assert first.status_code == 200 and second.status_code == 200
    assert first.json()["query"] == {"q": "a"}
    assert len(server.token_requests) == 1  # cached for the second call
    sent = server.token_requests[0]
    assert sent["form"] == {
        "grant_type": "client_credentials",
        "scope": "read:items",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    assert sent["authorization"] is None and sent["content_type"] == "application/x-www-form-urlencoded"
    assert server.api_requests == [f"access-token-{server.counter}-xxxxxxxxxxxx"] * 2


async def test_client_credentials_with_http_basic(tmp_path, server):
    plan = compiled(tmp_path, capability(server.url, client_credentials(server.url, "basic")))
    async with Running(plan) as run:
        response = await run.http.get("/items")
    assert response.status_code == 200
    sent = server.token_requests[0]
    assert sent["authorization"] == "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert sent["form"] == {"grant_type": "client_credentials"}  # nothing secret in the body


async def test_token_is_refreshed_safety_margin_before_expiry(tmp_path, server):
    server.expires_in = 600
    plan = compiled(tmp_path, capability(server.url, client_credentials(server.url, margin=100)))
    async with Running(plan) as run:
        now = [1000.0]
        run.source._clock = lambda: now[0]
        assert (await run.http.get("/items")).status_code == 200
        now[0] += 499  # 101 s left: still used
        assert (await run.http.get("/items")).status_code == 200
        assert len(server.token_requests) == 1
        now[0] += 2  # 99 s left: inside the safety margin, refreshed before the call
        assert (await run.http.get("/items")).status_code == 200
    assert len(server.token_requests) == 2
    assert server.api_requests[0] == server.api_requests[1] != server.api_requests[2]


async def test_expires_in_as_a_string_and_short_lifetimes(tmp_path, server):
    server.expires_in = "10"  # some servers send a string; a margin over the lifetime halves it
    plan = compiled(tmp_path, capability(server.url, client_credentials(server.url, margin=60)))
    async with Running(plan) as run:
        now = [0.0]
        run.source._clock = lambda: now[0]
        await run.http.get("/items")
        now[0] = 4.9
        await run.http.get("/items")
        assert len(server.token_requests) == 1
        now[0] = 5.1
        await run.http.get("/items")
    assert len(server.token_requests) == 2


async def test_a_401_refreshes_once_and_retries_once(tmp_path, server):
    plan = compiled(tmp_path, capability(server.url, client_credentials(server.url)))
    async with Running(plan) as run:
        assert (await run.http.get("/items")).status_code == 200
        server.issued.clear()  # the authorization server revoked every token
        retried = await run.http.get("/items")
        assert retried.status_code == 200
        assert len(server.token_requests) == 2 and len(server.api_requests) == 3
        server.always_401 = True  # the API refuses even a fresh token: relayed after one retry
        refused = await run.http.get("/items")
    assert refused.status_code == 401 and refused.json() == {"message": "unauthorized"}
    assert len(server.token_requests) == 3 and len(server.api_requests) == 5


async def test_concurrent_first_calls_make_one_token_request(tmp_path, server):
    server.delay = 0.2
    plan = compiled(tmp_path, capability(server.url, client_credentials(server.url)))
    async with Running(plan) as run:
        responses = await asyncio.gather(*(run.http.get("/items") for _ in range(20)))
        results = await asyncio.gather(*(run.tool("list-items") for _ in range(5)))
    assert [r.status_code for r in responses] == [200] * 20
    assert not any(r.is_error for r in results)
    assert len(server.token_requests) == 1 and len(set(server.api_requests)) == 1


async def test_refresh_token_grant_keeps_rotated_refresh_tokens(tmp_path, server):
    auth = "\n".join(
        [
            "      type: oauth2",
            "      grantType: refresh-token",
            f"      tokenEndpoint: {server.url}/oauth/token",
            "      clientId: '{{creds.CLIENT_ID}}'",
            "      clientSecret: '{{creds.CLIENT_SECRET}}'",
            "      refreshToken: '{{creds.REFRESH_TOKEN}}'",
        ]
    )
    plan = compiled(tmp_path, capability(server.url, auth))
    async with Running(plan) as run:
        assert (await run.http.get("/items")).status_code == 200
        rotated = server.refresh_token
        server.issued.clear()
        assert (await run.http.get("/items")).status_code == 200
        assert plan.secrets.mask(f"x {rotated} y") == "x **** y"  # a rotated refresh token is a secret too
    assert [r["form"]["grant_type"] for r in server.token_requests] == ["refresh_token"] * 2
    assert server.token_requests[0]["form"]["refresh_token"] == REFRESH_TOKEN
    assert server.token_requests[1]["form"]["refresh_token"] == rotated != REFRESH_TOKEN


# ---------------------------------------------------------------------------- token endpoint failures


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("down", "answered HTTP 500"),
        ("garbage", "answered HTTP 200 with a body that is not a JSON object"),
        ("invalid_client", "answered HTTP 401 (invalid_client)"),
        ("no_token", "answered HTTP 200 without an access_token"),
    ],
)
async def test_token_endpoint_failures_are_one_clear_502_per_call(tmp_path, server, mode, expected):
    server.mode = mode
    server.delay = 0.1
    plan = compiled(tmp_path, capability(server.url, client_credentials(server.url)))
    async with Running(plan) as run:
        responses = await asyncio.gather(*(run.http.get("/items") for _ in range(5)))
        result = await run.tool("list-items")
    for response in responses:
        assert response.status_code == 502
        assert response.headers["content-type"] == "application/problem+json"
        detail = response.json()["detail"]
        assert detail == f"token endpoint {server.url}/oauth/token {expected}"
        assert_no_secret(response.text, server)
    assert len(server.token_requests) == 2  # one shared by the five concurrent calls, one for the tool call
    assert not server.api_requests  # nothing reached the API without a token
    assert result.is_error and "token endpoint" in result.content[0].text and expected in result.content[0].text
    assert_no_secret(result.content[0].text, server)


async def test_a_slow_token_endpoint_fails_within_the_timeout(tmp_path, server):
    server.mode = "slow"
    plan = compiled(tmp_path, capability(server.url, client_credentials(server.url)), timeout=0.5)
    async with Running(plan) as run:
        start = time.monotonic()
        responses = await asyncio.gather(*(run.http.get("/items") for _ in range(3)))
        elapsed = time.monotonic() - start
    assert elapsed < 2.0
    assert [r.status_code for r in responses] == [502] * 3
    assert responses[0].json()["detail"] == f"token endpoint {server.url}/oauth/token did not answer within 0.5s"
    assert len(server.token_requests) == 1


async def test_a_failed_acquisition_is_not_cached(tmp_path, server):
    server.mode = "down"
    plan = compiled(tmp_path, capability(server.url, client_credentials(server.url)))
    async with Running(plan) as run:
        assert (await run.http.get("/items")).status_code == 502
        server.mode = "ok"
        assert (await run.http.get("/items")).status_code == 200
    assert len(server.token_requests) == 2


async def test_an_unreachable_token_endpoint(tmp_path, server):
    dead = "http://127.0.0.1:9"  # discard port: nothing listens
    plan = compiled(tmp_path, capability(server.url, client_credentials(dead)))
    async with Running(plan) as run:
        response = await run.http.get("/items")
    assert response.status_code == 502
    assert (
        response.json()["detail"]
        == f"token endpoint {dead}/oauth/token could not be reached or its answer was too large"
    )


# ---------------------------------------------------------------------------- masking and dry run


async def test_tokens_are_masked_in_upstream_errors(tmp_path, server):
    plan = compiled(tmp_path, capability(server.url, client_credentials(server.url)))
    async with Running(plan) as run:
        await run.http.get("/items")
        token = next(iter(server.issued))
        assert plan.secrets.mask(f"echo {token}") == "echo ****"
        assert plan.secrets.mask({"h": f"Bearer {token}"}) == {"h": "Bearer ****"}


async def test_dry_run_shows_the_token_request_masked(tmp_path, server):
    for client_auth in ("body", "basic"):
        plan = compiled(tmp_path, capability(server.url, client_credentials(server.url, client_auth)), dry_run=True)
        async with Running(plan) as run:
            response = await run.http.get("/items", params={"q": "z"})
        described = response.json()
        assert response.status_code == 200 and described["dryRun"] is True
        assert described["headers"]["Authorization"] == "Bearer ****"
        token_request = described["tokenRequest"]
        assert token_request["method"] == "POST" and token_request["url"] == f"{server.url}/oauth/token"
        assert "grant_type=client_credentials" in token_request["body"]
        if client_auth == "basic":
            assert token_request["headers"]["Authorization"] == "Basic ****"
        else:
            assert (
                token_request["body"] == "grant_type=client_credentials&client_id=****&client_secret=****"
            )  # binds are secrets
        assert_no_secret(response.text, server)
    assert not server.token_requests  # a dry run asks for no token


# ---------------------------------------------------------------------------- custom-token


LOGIN = """\
  - type: http
    namespace: login
    baseUri: {url}
    resources:
    - name: login
      path: /login
      operations:
      - name: login
        method: POST
        body:
          type: json
          data:
            username: '{{{{username}}}}'
            password: '{{{{password}}}}'
"""


def custom_token(placement: str = "", call: str = "login.login") -> str:
    lines = [
        "      type: custom-token",
        "      acquire:",
        f"        call: {call}",
        "        with:",
        "          username: '{{creds.CLIENT_ID}}'",
        "          password: '{{creds.CLIENT_SECRET}}'",
        "        tokenField: $.data.sessionToken",
        "        expiresInField: $.data.expiresIn",
    ]
    return "\n".join(lines + ([placement] if placement else []))


@pytest.mark.parametrize(
    "placement",
    [
        "",
        "      placement: header\n      headerName: X-Session-Token",
        "      placement: query\n      paramName: session",
    ],
)
async def test_custom_token_from_a_consumed_login(tmp_path, server, placement):
    plan = compiled(tmp_path, capability(server.url, custom_token(placement), LOGIN.format(url=server.url)))
    async with Running(plan) as run:
        first = await run.http.get("/items", params={"session": "caller-value"})
        server.issued.clear()
        second = await run.http.get("/items")
    assert first.status_code == 200 and second.status_code == 200
    assert [r["json"] for r in server.token_requests] == [{"username": CLIENT_ID, "password": CLIENT_SECRET}] * 2
    if "query" in placement:  # the file's token replaces one the caller tried to pass
        assert first.json()["query"] == {"session": server.api_requests[0]}


async def test_custom_token_dry_run_and_failures(tmp_path, server):
    plan = compiled(tmp_path, capability(server.url, custom_token(), LOGIN.format(url=server.url)), dry_run=True)
    async with Running(plan) as run:
        described = (await run.http.get("/items")).json()
    assert described["tokenRequest"]["body"] == {"username": "****", "password": "****"}
    env = dict(ENV, CLIENT_SECRET="wrong-password")
    path = tmp_path / "cap.yaml"
    plan = compile_plan(load(str(path)), Options(environ=env))
    async with Running(plan) as run:
        response = await run.http.get("/items")
    assert response.status_code == 502 and response.json()["detail"] == "token call login.login answered HTTP 403"


# ---------------------------------------------------------------------------- load-time checks


def test_oauth2_settings_are_silent_in_tolerant_mode_and_reported_under_strict(tmp_path):
    path = tmp_path / "cap.yaml"
    path.write_text(capability("https://api.example.com", client_credentials("https://auth.example.com")))
    assert not load(str(path)).warnings
    with pytest.raises(LoadError) as err:
        load(str(path), strict=True)
    assert "grantType" in str(err.value)


@pytest.mark.parametrize(
    "auth, extra, message, at",
    [
        (
            client_credentials("https://a.example").replace("client-credentials", "refresh-token"),
            "",
            "needs a refreshToken",
            "grantType",
        ),
        (client_credentials("ftp://a.example"), "", "tokenEndpoint must be an http(s) URL", "tokenEndpoint"),
        (
            client_credentials("https://a.example").replace("clientAuthentication: body", "clientAuth: body"),
            "",
            "clientAuth",
            "clientAuth",
        ),
        (custom_token(call="api.list-items"), "", "without oauth2 or custom-token", "call: api"),
        (
            custom_token(call="login.nope"),
            LOGIN.format(url="https://l.example"),
            "has no operation 'nope'",
            "call: login",
        ),
        (
            custom_token("      placement: header"),
            LOGIN.format(url="https://l.example"),
            "needs a headerName",
            "placement",
        ),
    ],
)
def test_bad_token_settings_are_positioned_load_errors(tmp_path, auth, extra, message, at):
    text = capability("https://api.example.com", auth, extra)
    path = tmp_path / "cap.yaml"
    path.write_text(text)
    with pytest.raises(LoadError) as err:
        compile_plan(load(str(path)), Options(environ=ENV))
    diagnostic = next(d for d in err.value.diagnostics if message in d.message)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if at in row)
    assert diagnostic.line == line


def test_plain_http_token_endpoint_off_loopback_warns(tmp_path):
    plan = compiled(tmp_path, capability("https://api.example.com", client_credentials("http://auth.example.com")))
    assert any("plain http" in w.message for w in plan.warnings)
    plan = compiled(tmp_path, capability("https://api.example.com", client_credentials("http://127.0.0.1:1")))
    assert not any("plain http" in w.message for w in plan.warnings)


def test_the_token_endpoint_never_appears_with_credentials_in_errors():
    from naftiko.consumes.oauth2 import endpoint_label

    assert (
        endpoint_label("https://user:pw@auth.example.com:8443/oauth/token?client_secret=x")
        == "https://auth.example.com:8443/oauth/token"
    )
    assert json.dumps(endpoint_label("https://auth.example.com/t")) == '"https://auth.example.com/t"'


# ---------------------------------------------------------------------------- m3ter, both ways


M3TER_KEY_ID, M3TER_SECRET = "m3ter-key-id-0a1b2c", "m3ter-api-secret-9z8y7x"
M3TER_TOKEN = "m3ter-access-token-abc123def456"


async def test_m3ter_oauth2_variant_serves_with_a_service_user(upstream, in_memory):
    """The shipped OAuth2 variant as a user runs it: key id and secret from the environment,
    the token endpoint on the API host (followed by --base-uri), HTTP Basic client auth."""
    from conftest import CAPABILITIES, Reply

    upstream.reset()
    upstream.reply(
        "/oauth/token",
        Reply(body=orjson.dumps({"access_token": M3TER_TOKEN, "token_type": "Bearer", "expires_in": 18000})),
    )
    n = await in_memory(
        CAPABILITIES / "m3ter-balances-oauth2.yaml",
        upstream.url,
        consumes=["m3ter-balances"],
        adapters=["m3ter-balances-rest", "m3ter-balances-mcp"],
        env={"M3TER_ACCESS_KEY_ID": M3TER_KEY_ID, "M3TER_API_SECRET": M3TER_SECRET},
    )
    try:
        base = n.urls["m3ter-balances-rest"].rstrip("/")
        async with n.http() as http:
            first = await http.get(base + "/v1/organizations/org-1/balances", params={"pageSize": "5"})
            second = await http.get(base + "/v1/organizations/org-1/balances/b-1")
        assert first.status_code == 200 and second.status_code == 200, first.text
        token_calls = [r for r in upstream.requests if r.raw_path == "/oauth/token"]
        api_calls = [r for r in upstream.requests if r.raw_path != "/oauth/token"]
        assert len(token_calls) == 1 and token_calls[0].method == "POST"
        basic = base64.b64encode(f"{M3TER_KEY_ID}:{M3TER_SECRET}".encode()).decode()
        assert token_calls[0].headers["authorization"] == f"Basic {basic}"
        assert dict(parse_qsl(token_calls[0].body.decode())) == {"grant_type": "client_credentials"}
        assert [r.headers["authorization"] for r in api_calls] == [f"Bearer {M3TER_TOKEN}"] * 2
        assert api_calls[0].raw_path == "/organizations/org-1/balances"
    finally:
        assert await n.stop() == 0
    logs = n.stderr + "\n".join(n.stdout_lines)
    for secret in (M3TER_SECRET, M3TER_TOKEN, basic):
        assert secret not in logs
    upstream.reset()


def test_m3ter_ships_both_ways():
    from conftest import CAPABILITIES

    static = compile_plan(load(str(CAPABILITIES / "m3ter-balances.yaml")), Options(environ={"M3TER_API_KEY": "k" * 8}))
    oauth = compile_plan(
        load(str(CAPABILITIES / "m3ter-balances-oauth2.yaml")),
        Options(environ={"M3TER_ACCESS_KEY_ID": M3TER_KEY_ID, "M3TER_API_SECRET": M3TER_SECRET}),
    )
    assert set(static.consumers["m3ter-balances"]) == set(oauth.consumers["m3ter-balances"])
    source = oauth.consumers["m3ter-balances"]["listbalances"].transport.source
    assert source.endpoint == "https://api.m3ter.com/oauth/token"
    request = source.request()
    assert request.method == "POST" and ("Content-Type", "application/x-www-form-urlencoded") in request.headers
