"""End to end: ``naftiko serve --reload`` on a temporary copy of a capability.

One naftiko process for the module. Each test writes a version of the file (or of the bind
file it references), waits for the reload log line on stderr and checks the running REST and
MCP adapters answer with the new behaviour — or, for a broken edit, that the error is logged
with ``file:line:col`` and the last good version still answers. A request in flight during a
reload finishes on the version it started on.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time

import httpx
import orjson
import pytest
from mcp import Client

from conftest import Reply, start_naftiko

TEMPLATE = """\
naftiko: 1.0.0-alpha2
info:
  label: Reload
  description: hot reload test
binds:
- namespace: vault
  location: file:///./vault.json
  keys:
    TOKEN: token
capability:
  consumes:
  - type: http
    namespace: up
    baseUri: http://127.0.0.1:1
    authentication: {{type: bearer, token: '{{{{TOKEN}}}}'}}
    resources:
    - name: slow
      path: /slow/{{id}}
      operations:
      - {{name: get-slow, method: GET}}
  exposes:
  - type: rest
    namespace: api
    port: 8080{address}
    resources:
    - path: /greeting
      operations:
      - method: GET
        name: greeting
        outputParameters:
        - type: object
          properties:
            msg: {{type: string, value: {value}}}
    - path: /slow/{{id}}
      operations:
      - {{method: GET, name: slow, call: up.get-slow}}
{extra_rest}
  - type: mcp
    namespace: tools
    port: 9090
    tools:
    - name: greeting
      description: A greeting.
      outputParameters:
      - {{name: msg, type: string, value: {value}}}
{extra_tool}"""

EXTRA_REST = """\
    - path: /farewell
      operations:
      - method: GET
        name: farewell
        outputParameters:
        - type: object
          properties:
            msg: {type: string, value: bye}
"""

EXTRA_TOOL = """\
    - name: farewell
      description: A farewell.
      outputParameters:
      - {name: msg, type: string, value: bye}
"""


def render(value: str = "one", *, extra: bool = False, address: str | None = None) -> str:
    return TEMPLATE.format(
        value=value,
        address=f"\n    address: {address}" if address else "",
        extra_rest=EXTRA_REST if extra else "",
        extra_tool=EXTRA_TOOL if extra else "",
    )


class Served:
    def __init__(self, naftiko, file, vault):
        self.n = naftiko
        self.file = file
        self.vault = vault

    def count(self, needle: str) -> int:
        return self.n.stderr.count(needle)

    async def write(self, path, text: str, *, expect: str = "reloaded ") -> str:
        """Write ``text`` and wait until stderr shows one more ``expect`` line; returns the new stderr."""
        if path.read_text() == text and expect == "reloaded ":
            return self.n.stderr  # already this version: nothing to wait for
        before = self.count(expect)
        path.write_text(text)
        end = time.monotonic() + 10
        while self.count(expect) <= before:
            assert time.monotonic() < end, f"no {expect!r} line after the edit: {self.n.stderr}"
            await asyncio.sleep(0.05)
        return self.n.stderr

    @property
    def rest(self) -> str:
        return self.n.urls["api"]

    @property
    def mcp(self) -> str:
        return self.n.urls["tools"]


@pytest.fixture(scope="module")
def served(upstream, tmp_path_factory):
    root = tmp_path_factory.mktemp("reload")
    file, vault = root / "capability.yaml", root / "vault.json"
    vault.write_bytes(orjson.dumps({"token": "tok-1"}))
    file.write_text(render())
    n = start_naftiko(file, upstream.url, consumes=["up"], adapters=["api", "tools"], extra=["--reload"])
    yield Served(n, file, vault)
    assert n.stop() == 0
    assert "Traceback" not in n.stderr
    assert "Unclosed" not in n.stderr  # every retired version's upstream session was closed


async def greeting(served: Served) -> tuple[int, dict, str]:
    async with httpx.AsyncClient() as http:
        r = await http.get(served.rest + "greeting")
    async with Client(served.mcp, mode="auto") as client:
        result = await client.call_tool("greeting", {})
    return r.status_code, r.json(), result.content[0].text


async def test_edit_changes_a_mock_value_and_adds_an_operation_and_a_tool(served):
    await served.write(served.file, render("one"))
    assert await greeting(served) == (200, {"msg": "one"}, '{"msg":"one"}')
    async with httpx.AsyncClient() as http:
        assert (await http.get(served.rest + "farewell")).status_code == 404

    log = await served.write(served.file, render("two", extra=True))
    assert re.search(r"reloaded \S+capability\.yaml: rest api \(3 operations\), mcp tools \(2 tools\)", log)
    assert await greeting(served) == (200, {"msg": "two"}, '{"msg":"two"}')
    async with httpx.AsyncClient() as http:
        r = await http.get(served.rest + "farewell")
    assert r.status_code == 200 and r.json() == {"msg": "bye"}
    for mode in ("legacy", "auto"):
        async with Client(served.mcp, mode=mode) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert names == {"greeting", "farewell"}
            assert (await client.call_tool("farewell", {})).content[0].text == '{"msg":"bye"}'


async def test_broken_yaml_keeps_the_last_good_version(served):
    await served.write(served.file, render("good"))
    broken = render("bad").replace("  description: hot reload test\n", "  description: hot reload test\n\tsummary: a tab\n")
    log = await served.write(served.file, broken, expect="still serving the last good version")
    tail = log[log.rindex("reload of"):]
    assert re.search(r"capability\.yaml:5:1: YAML syntax error: found a tab character", tail), tail
    assert await greeting(served) == (200, {"msg": "good"}, '{"msg":"good"}')

    await served.write(served.file, render("restored"))
    assert await greeting(served) == (200, {"msg": "restored"}, '{"msg":"restored"}')


async def test_a_broken_reference_is_reported_with_its_position(served):
    await served.write(served.file, render("good"))
    broken = render("good").replace("call: up.get-slow", "call: up.no-such-operation")
    log = await served.write(served.file, broken, expect="still serving the last good version")
    tail = log[log.rindex("reload of"):]
    line = next(i for i, text in enumerate(broken.splitlines(), 1) if "no-such-operation" in text)
    assert re.search(rf"capability\.yaml:{line}:\d+: .*no-such-operation", tail), tail
    assert await greeting(served) == (200, {"msg": "good"}, '{"msg":"good"}')
    await served.write(served.file, render("good"))


async def test_bind_file_change_reloads_the_secret(served, fresh_upstream):
    await served.write(served.file, render("good"))
    async with httpx.AsyncClient() as http:
        assert (await http.get(served.rest + "slow/1")).status_code == 200
        assert fresh_upstream.last.headers["authorization"] == "Bearer tok-1"
        await served.write(served.vault, orjson.dumps({"token": "tok-2"}).decode())
        assert (await http.get(served.rest + "slow/2")).status_code == 200
    assert fresh_upstream.last.headers["authorization"] == "Bearer tok-2"
    assert "tok-2" not in served.n.stderr and "tok-1" not in served.n.stderr


async def test_a_request_in_flight_finishes_on_its_version(served, fresh_upstream):
    await served.write(served.file, render("before"))
    fresh_upstream.reply("/slow/inflight", Reply(200, b'{"done":true}', delay=1.0))
    async with httpx.AsyncClient(timeout=10) as http:
        pending = asyncio.create_task(http.get(served.rest + "slow/inflight"))
        while not any(r.raw_path == "/slow/inflight" for r in fresh_upstream.requests):  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        await served.write(served.file, render("after"))
        assert not pending.done()  # the reload did not wait for it, nor cut it off
        assert (await http.get(served.rest + "greeting")).json() == {"msg": "after"}
        r = await pending
    assert r.status_code == 200 and r.json() == {"done": True}


async def test_address_change_waits_for_a_restart(served):
    """The test harness pins ports with --port NS=0, so the file's address is what moves here."""
    await served.write(served.file, render("good"))
    log = await served.write(served.file, render("moved", address="0.0.0.0"))
    port = served.rest.rsplit(":", 1)[1].rstrip("/")
    assert f"adapter 'api' now asks for 0.0.0.0:0; ports and addresses change on restart — it keeps listening on 127.0.0.1:{port}" in log
    assert await greeting(served) == (200, {"msg": "moved"}, '{"msg":"moved"}')
    await served.write(served.file, render("good"))


def _free_ports(count: int) -> list[int]:
    """``count`` different port numbers nothing listens on (held open together while chosen)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


SMALL = """\
naftiko: 1.0.0-alpha2
info: {{label: Ports, description: ports from the file}}
capability:
  exposes:
  - type: rest
    namespace: api
    port: {rest}
    resources:
    - path: /ping
      operations:
      - method: GET
        name: ping
        outputParameters:
        - {{type: string, value: pong}}
{mcp}"""
SMALL_MCP = """\
  - type: mcp
    namespace: tools
    port: {port}
    tools:
    - name: ping
      description: Ping.
      outputParameters:
      - {{type: string, value: pong}}
"""


async def test_port_change_and_removed_adapter_wait_for_a_restart(tmp_path):
    """Ports from the file (no --port): a new port is logged and ignored until restart; a
    removed adapter's port answers 503."""
    rest, mcp, other = _free_ports(3)
    file = tmp_path / "ports.yaml"
    file.write_text(SMALL.format(rest=rest, mcp=SMALL_MCP.format(port=mcp)))
    served = Served(start_naftiko(file, None, extra=["--reload"], ready=2), file, None)
    try:
        log = await served.write(file, SMALL.format(rest=other, mcp=""))
        assert f"adapter 'api' now asks for 127.0.0.1:{other}; ports and addresses change on restart — it keeps listening on 127.0.0.1:{rest}" in log
        assert "adapter 'tools' (mcp) was removed: its port answers 503 until restart" in log
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"http://127.0.0.1:{rest}/ping")).json() == "pong"
            with pytest.raises(httpx.ConnectError):
                await http.get(f"http://127.0.0.1:{other}/ping")
            r = await http.post(f"http://127.0.0.1:{mcp}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
            assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
    finally:
        assert served.n.stop() == 0


def test_references_cover_imports_binds_and_locations():
    """What is watched besides the file itself: every local file or directory it names."""
    from conftest import FIXTURES
    from naftiko.runtime.reload import _references

    def names(file):
        return {p.relative_to(FIXTURES).as_posix() for p in _references(str(FIXTURES / file), None)}

    assert names("imports.yaml") >= {"imports.yaml", "shared/catalog-consumes.yaml"}
    assert names("skill.yaml") >= {"skill.yaml", "skills/order-desk", "skills/style-guide"}
    assert names("mcp-catalog.yaml") >= {"catalog/docs", "catalog/settings.json", "catalog/prompts/review.md"}
