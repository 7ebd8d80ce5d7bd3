"""Secrets canary: unique bind values in every place a secret can go, every path driven, and
not one of them may appear in any response (body or header) or in the process's output.

The capability puts a bind in an outbound bearer token, an API key in the query, a fixed
header, a consumed path segment, a basic-auth password and two inbound credentials. The
upstream is hostile on purpose: its error bodies and redirects echo the secrets it was sent,
as some real APIs do. naftiko runs at ``--log-level debug``.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
import pytest_asyncio

from conftest import FIXTURES, Reply
from harness import run_cli, serve_in_memory

FILE = FIXTURES / "resilience-canary.yaml"
REST, LOCKED, LOCKED_Q, MCP = "canary-rest", "canary-locked", "canary-locked-q", "canary-mcp"
ADAPTERS = [REST, LOCKED, LOCKED_Q, MCP]
# Short enough to fit whole in any excerpt a library might quote (a YAML error's snippet is ~70 chars).
CANARY = {name: f"cn{name.lower()[:3]}{uuid.uuid4().hex[:14]}" for name in ("TOKEN", "KEY", "HDR", "TENANT", "PASS", "INBOUND", "INKEY")}
ENV = {f"CANARY_{name}": value for name, value in CANARY.items()}
ITEM = f"/t/{CANARY['TENANT']}/items"


def assert_clean(text: str, where: str) -> None:
    for name, value in CANARY.items():
        assert value not in text, f"{name} leaked in {where}: {text[:500]}"


def clean_response(r: httpx.Response) -> httpx.Response:
    assert_clean(r.text, f"{r.request.method} {r.request.url.path} body")
    assert_clean("\n".join(f"{k}: {v}" for k, v in r.headers.items()), f"{r.request.url.path} headers")
    for bad in ("Traceback", 'File "', "/work/", "/tmp/", "site-packages", "Error("):
        assert bad not in r.text, f"internal detail {bad!r} in {r.text[:300]}"
    return r


def clean_result(result, what: str):
    assert_clean(result.model_dump_json(), f"MCP {what}")
    for bad in ("Traceback", 'File "', "/work/", "site-packages"):
        assert bad not in result.model_dump_json()
    return result


@pytest_asyncio.fixture(scope="module")
async def served(upstream):
    dead = "http://127.0.0.1:1"
    n = await serve_in_memory(
        FILE, upstream.url, consumes=["up", "keyed", "basic"], adapters=ADAPTERS,
        extra=["--base-uri", f"dead={dead}", "--timeout", "0.5", "--log-level", "debug"], env=ENV,
    )
    yield n
    assert await n.stop() == 0
    assert_clean("\n".join(n.stdout_lines), "stdout")
    assert_clean(n.stderr, "stderr (debug log)")
    assert "Traceback" not in n.stderr


async def _get(n, adapter: str, path: str, **kw) -> httpx.Response:
    async with n.http() as http:
        return clean_response(await http.get(n.urls[adapter] + path.lstrip("/"), **kw))


async def _tool(n, name: str, args: dict, mode: str = "auto"):
    async with n.mcp(n.urls[MCP], mode=mode) as client:
        return clean_result(await client.call_tool(name, args), name)


def _echoing(status: int, *names: str, content_type: str = "application/json") -> Reply:
    """An upstream error that reflects the secrets it received."""
    text = " ".join(f"{n.lower()}={CANARY[n]}" for n in names)
    body = f'{{"error": "rejected: {text}"}}' if content_type == "application/json" else f"rejected: {text}"
    return Reply(status, body.encode(), content_type)


async def test_rest_and_mcp_success(served, fresh_upstream):
    fresh_upstream.reply(f"{ITEM}/ok", Reply(200, b'{"ok": true}'))
    r = await _get(served, REST, "/items/ok")
    assert r.status_code == 200 and r.json() == {"ok": True}
    rec = fresh_upstream.last  # the secrets did go upstream, where they belong
    assert rec.headers["authorization"] == f"Bearer {CANARY['TOKEN']}" and rec.headers["x-tenant-key"] == CANARY["HDR"]
    result = await _tool(served, "get-item", {"id": "ok"})
    assert not result.is_error


@pytest.mark.parametrize("status", [401, 403, 404, 500, 503])
async def test_upstream_errors_echoing_secrets_are_masked(served, fresh_upstream, status):
    fresh_upstream.reply(f"{ITEM}/e{status}", _echoing(status, "TOKEN", "HDR", "TENANT"))
    r = await _get(served, REST, f"/items/e{status}")
    assert r.status_code == status and "****" in r.text and "rejected" in r.text
    result = await _tool(served, "get-item", {"id": f"e{status}"}, mode="legacy")
    assert result.is_error and str(status) in result.content[0].text


async def test_text_error_and_apikey_in_query(served, fresh_upstream):
    fresh_upstream.reply("/docs/bad", _echoing(400, "KEY", content_type="text/plain"))
    r = await _get(served, REST, "/docs/bad")
    assert r.status_code == 400 and r.text == "rejected: key=****"
    assert fresh_upstream.last.query["api_key"] == CANARY["KEY"]
    await _tool(served, "get-doc", {"id": "bad"})


async def test_redirect_location_carrying_the_key_is_masked(served, fresh_upstream):
    fresh_upstream.reply("/docs/moved", Reply(302, b"", headers={"Location": f"/docs/new?api_key={CANARY['KEY']}"}))
    r = await _get(served, REST, "/docs/moved")
    assert r.status_code == 302 and r.headers["location"] == "/docs/new?api_key=****"
    await _tool(served, "get-doc", {"id": "moved"})


async def test_basic_auth_password(served, fresh_upstream):
    fresh_upstream.reply("/files/f", _echoing(401, "PASS"))
    r = await _get(served, REST, "/files/f")
    assert r.status_code == 401
    await _tool(served, "get-file", {"id": "f"})


async def test_timeout_and_refused(served, fresh_upstream):
    fresh_upstream.reply(f"{ITEM}/slow", Reply(200, b"{}", delay=1.0))
    assert (await _get(served, REST, "/items/slow")).status_code == 504
    assert (await _get(served, REST, "/dead/x")).status_code == 502
    body = (await _get(served, REST, "/userinfo/x")).json()
    assert body["status"] == 502 and "127.0.0.1:1" in body["detail"] and "svc" not in body["detail"]
    assert (await _tool(served, "get-userinfo", {"id": "x"})).is_error
    assert (await _tool(served, "get-item", {"id": "slow"})).is_error
    assert (await _tool(served, "get-dead", {"id": "x"}, mode="legacy")).is_error


async def test_bad_input_errors(served, fresh_upstream):
    assert (await _get(served, REST, "/items/%2e%2e")).status_code == 400
    assert (await _tool(served, "get-item", {"id": 7})).is_error
    assert (await _get(served, REST, "/nowhere")).status_code == 404
    async with served.http() as http:
        clean_response(await http.post(served.urls[REST] + "items/x", content=b"{"))


async def test_forward(served, fresh_upstream):
    fresh_upstream.reply("/docs/fw", Reply(200, b'{"fw": 1}'))
    fresh_upstream.reply("/docs/fw-bad", _echoing(422, "KEY"))
    fresh_upstream.reply("/docs/fw-moved", Reply(301, b"", headers={"Location": f"https://x.example/?api_key={CANARY['KEY']}"}))
    assert (await _get(served, REST, "/fwd/docs/fw?x=1")).json() == {"fw": 1}
    assert fresh_upstream.last.query["api_key"] == CANARY["KEY"]
    r = await _get(served, REST, f"/fwd/docs/fw-bad?api_key={CANARY['INKEY']}x")  # the caller's own key is stripped
    assert r.status_code == 422 and "****" in r.text
    assert fresh_upstream.last.query.getall("api_key") == [CANARY["KEY"]]
    r = await _get(served, REST, "/fwd/docs/fw-moved")
    assert r.status_code == 301 and "****" in r.headers["location"]


async def test_inbound_auth_failures(served, fresh_upstream):
    fresh_upstream.reply(f"{ITEM}/in", Reply(200, b'{"in": true}'))
    for headers in ({}, {"authorization": "Bearer nope"}, {"authorization": f"Bearer {CANARY['INBOUND'][:-1]}"},
                    {"authorization": "Basic eDp5"}):
        r = await _get(served, LOCKED, "/items/in", headers=headers)
        assert r.status_code == 401
    assert (await _get(served, LOCKED, "/items/in", headers={"authorization": f"Bearer {CANARY['INBOUND']}"})).status_code == 200
    assert (await _get(served, LOCKED_Q, "/items/in?key=wrong")).status_code == 401
    assert (await _get(served, LOCKED_Q, f"/items/in?key={CANARY['INKEY']}")).status_code == 200
    assert "key" not in fresh_upstream.last.query  # the inbound key is not passed on


async def test_dry_run_describes_without_secrets(upstream):
    n = await serve_in_memory(FILE, None, adapters=ADAPTERS, extra=["--dry-run", "--log-level", "debug"], env=ENV)
    try:
        for path in ("/items/x", "/docs/x", "/files/x", "/fwd/docs/x?y=1"):
            r = await _get(n, REST, path)
            assert r.status_code == 200 and r.json()["dryRun"] is True
        described = (await _get(n, REST, "/items/x")).json()
        assert described["headers"]["Authorization"] == "Bearer ****" and "****" in described["url"]
        for tool in ("get-item", "get-doc", "get-file"):
            assert not (await _tool(n, tool, {"id": "x"})).is_error
    finally:
        assert await n.stop() == 0
    assert_clean("\n".join(n.stdout_lines) + n.stderr, "dry-run output")


def _serve_fails(tmp_path, text: str, env: dict, extra_files: dict | None = None, extra: tuple = ()) -> str:
    for name, content in (extra_files or {}).items():
        (tmp_path / name).write_text(content)
    cap = tmp_path / "cap.yaml"
    cap.write_text(text)
    proc = run_cli(["serve", str(cap), "--port", "canary-rest=0", "--port", "canary-locked=0",
                    "--port", "canary-locked-q=0", "--port", "canary-mcp=0", *extra], env=env)
    assert proc.returncode == 2, proc.stderr
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output
    return output


@pytest.mark.parametrize(
    "change",
    [
        ("    baseUri: http://127.0.0.1:1\n    authentication: {type: bearer", "    baseUri: '{{TOKEN}}'\n    authentication: {type: bearer"),
        ("      path: /docs/{id}\n", "      path: /docs/{id}/{{secrets.NOPE}}\n"),
        ("    baseUri: 'http://svc:{{PASS}}@127.0.0.1:1'", "    baseUri: 'http://svc:{{PASS}}@127.0.0.1:{{TOKEN}}'"),
    ],
)
def test_load_errors_mentioning_binds(tmp_path, change):
    text = FILE.read_text().replace(*change, 1)
    assert text != FILE.read_text()
    # --strict: a broken consumed path would otherwise only leave its units out (tolerant mode)
    output = _serve_fails(tmp_path, text, ENV, extra=("--strict",))
    assert_clean(output, "load error")


@pytest.mark.parametrize("suffix, content", [
    (".yaml", "TOKEN: {token}\n  KEY: [unclosed {token}\n"),
    (".json", '{{"TOKEN": "{token}", "KEY": {token}}}'),
    (".yaml", "- {token}\n"),
])
def test_unreadable_bind_file(tmp_path, suffix, content):
    text = FILE.read_text().replace(
        "- namespace: secrets\n  keys:", f"- namespace: secrets\n  location: file:///./secrets{suffix}\n  keys:", 1
    )
    output = _serve_fails(tmp_path, text, {}, {f"secrets{suffix}": content.format(token=CANARY["TOKEN"])})
    assert "secrets" in output
    assert_clean(output, "bind file error")


async def test_script_failures_name_the_type_and_line_only(tmp_path):
    from naftiko.engine.script import PythonScript, ScriptFailed

    file = tmp_path / "calc.py"
    file.write_text(f"token = {CANARY['TOKEN']!r}\nraise ValueError('bad ' + token + ' in {tmp_path}')\n")
    script = PythonScript("calc", [compile(file.read_text(), str(file), "exec")], 5, 1000)
    with pytest.raises(ScriptFailed) as err:
        await script.run({}, {})
    assert err.value.detail == "script step 'calc' failed: ValueError at calc.py:2"
