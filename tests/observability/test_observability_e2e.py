"""End to end: the control port, metrics, traces, request logs and the control CLI commands.

One naftiko process serves a REST and an MCP adapter in front of the fake upstream plus a
control adapter with every endpoint group on, logging JSON. A second one puts its control
port behind bearer auth, switches /status and /metrics off, propagates B3 and exports spans
over OTLP/HTTP to a collector run here (its requests decoded with the OTLP protobuf types).
Everything is checked over real HTTP after real traffic; the CLI commands run as the user
would run them.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys

import httpx
import orjson
import pytest
import pytest_asyncio
from aiohttp import web
from mcp import MCPError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from prometheus_client.parser import text_string_to_metric_families

from conftest import FIXTURES, Reply
from harness import serve_in_memory
from loopback import on_loopback
from naftiko import __version__
from naftiko.cli import main as cli_main

TOKEN = "lamp-token-5e0c1b"  # the consumes credential: must never leak
REST, MCP, CONTROL = "keeper-rest", "keeper-mcp", "control"
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-0[0-9a-f]$")
CALLER_TRACE, CALLER_SPAN = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"


@pytest_asyncio.fixture(scope="module")
async def served(upstream):
    n = await serve_in_memory(
        FIXTURES / "observability.yaml", upstream.url, consumes=["up"], adapters=[REST, MCP, CONTROL],
        extra=["--log-format", "json"], env={"LIGHTHOUSE_TOKEN": TOKEN}, sockets=True,
    )
    yield n
    assert await n.stop() == 0
    assert TOKEN not in n.stderr


def control(n) -> str:
    return n.urls[CONTROL].rstrip("/")


async def eventually(check, timeout: float = 3.0):  # noqa: ASYNC109  # a polling deadline
    """The span, metric or log line of a request is recorded just after its response is
    sent, so a reader may look a moment too early: retry until ``check`` returns a value."""
    end = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value or asyncio.get_running_loop().time() > end:
            return value
        await asyncio.sleep(0.02)


async def trace(http, n, trace_id: str) -> dict:
    async def get():
        r = await http.get(f"{control(n)}/traces/{trace_id}")
        return r.json() if r.status_code == 200 else None

    found = await eventually(get)
    assert found, f"trace {trace_id} never reached /traces"
    return found


def by_kind(found: dict, kind: str) -> list[dict]:
    return [s for s in found["spans"] if s["kind"] == kind]


async def metric_families(http, n) -> dict:
    r = await http.get(f"{control(n)}/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def sample(families: dict, family: str, name: str, **labels) -> float | None:
    for s in families[family].samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return None


# ------------------------------------------------------------------ traces


async def test_rest_call_has_a_server_and_a_client_span_and_sends_traceparent(served, fresh_upstream):
    async with served.http() as http:
        r = await http.get(f"{served.urls[REST]}lamps/7")
        assert r.status_code == 200
        sent = TRACEPARENT.match(fresh_upstream.last.headers["traceparent"])
        assert sent, fresh_upstream.last.headers
        trace_id, parent_id = sent.groups()
        found = await trace(http, served, trace_id)
    assert found["operation"] == "get-lamp" and found["adapter"] == "rest" and found["status"] == "OK"
    [server] = by_kind(found, "SERVER")
    [client] = by_kind(found, "CLIENT")
    assert "parentSpanId" not in server  # a new trace: naftiko's server span is the root
    assert server["name"] == "GET /lamps/{id}"
    assert server["attributes"]["http.response.status_code"] == 200
    assert client["parentSpanId"] == server["spanId"]
    assert client["spanId"] == parent_id  # the upstream's parent is the client span itself
    assert client["name"] == "GET up.get-lamp"
    assert client["attributes"]["url.full"].endswith("/lamps/7")
    assert client["attributes"]["http.response.status_code"] == 200
    assert fresh_upstream.last.headers["authorization"] == f"Bearer {TOKEN}"


async def test_rest_caller_traceparent_is_continued(served, fresh_upstream):
    async with served.http() as http:
        headers = {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"}
        r = await http.get(f"{served.urls[REST]}lamps/8", headers=headers)
        assert r.status_code == 200
        trace_id, _ = TRACEPARENT.match(fresh_upstream.last.headers["traceparent"]).groups()
        assert trace_id == CALLER_TRACE
        found = await trace(http, served, CALLER_TRACE)
    [server] = by_kind(found, "SERVER")
    assert server["parentSpanId"] == CALLER_SPAN and server["remoteParent"] is True


async def test_caller_that_does_not_sample_gets_no_trace_but_keeps_its_id(served, fresh_upstream):
    unsampled = "1f2e3d4c5b6a79881f2e3d4c5b6a7988"
    async with served.http() as http:
        r = await http.get(f"{served.urls[REST]}lamps/9", headers={"traceparent": f"00-{unsampled}-{CALLER_SPAN}-00"})
        assert r.status_code == 200
        sent = TRACEPARENT.match(fresh_upstream.last.headers["traceparent"])
        assert sent.group(1) == unsampled and fresh_upstream.last.headers["traceparent"].endswith("-00")
        await asyncio.sleep(0.1)
        assert (await http.get(f"{control(served)}/traces/{unsampled}")).status_code == 404


async def test_orchestrated_operation_has_a_span_per_step(served, fresh_upstream):
    async with served.http() as http:
        r = await http.get(f"{served.urls[REST]}lamps/3/with-rota")
        assert r.status_code == 200 and r.json() == {"lampPath": "/lamps/3", "rotaPath": "/rotas/3"}
        trace_ids = {TRACEPARENT.match(rec.headers["traceparent"]).group(1) for rec in fresh_upstream.requests}
        assert len(trace_ids) == 1 and len(fresh_upstream.requests) == 2
        found = await trace(http, served, trace_ids.pop())
    [server] = by_kind(found, "SERVER")
    steps = by_kind(found, "INTERNAL")
    assert [s["name"] for s in steps] == ["step lamp", "step rota"]
    assert all(s["parentSpanId"] == server["spanId"] for s in steps)
    clients = by_kind(found, "CLIENT")
    assert sorted(c["name"] for c in clients) == ["GET up.get-lamp", "GET up.get-rota"]
    assert {c["parentSpanId"] for c in clients} == {s["spanId"] for s in steps}


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_mcp_tool_call_continues_the_meta_traceparent(served, fresh_upstream, mode):
    caller_trace = f"{CALLER_TRACE[:-4]}{'beef' if mode == 'auto' else 'cafe'}"
    async with served.mcp(served.urls[MCP], mode=mode) as client:
        result = await client.call_tool("get-lamp", {"id": "5"}, meta={"traceparent": f"00-{caller_trace}-{CALLER_SPAN}-01"})
    assert not result.is_error
    sent = TRACEPARENT.match(fresh_upstream.last.headers["traceparent"])
    assert sent.group(1) == caller_trace
    async with served.http() as http:
        found = await trace(http, served, caller_trace)
    assert found["adapter"] == "mcp" and found["operation"] == "get-lamp"
    [server] = by_kind(found, "SERVER")
    assert server["name"] == "tools/call get-lamp" and server["parentSpanId"] == CALLER_SPAN
    [client_span] = by_kind(found, "CLIENT")
    assert client_span["spanId"] == sent.group(2)


async def test_upstream_failure_is_an_error_trace(served, fresh_upstream):
    fresh_upstream.reply("/lamps/broken", Reply(status=500, body=b'{"error":"lamp room flooded"}'))
    async with served.http() as http:
        r = await http.get(f"{served.urls[REST]}lamps/broken")
        assert r.status_code == 500
        trace_id = TRACEPARENT.match(fresh_upstream.last.headers["traceparent"]).group(1)
        found = await trace(http, served, trace_id)
        assert found["status"] == "ERROR"
        [client] = by_kind(found, "CLIENT")
        assert client["status"] == "ERROR" and client["attributes"]["http.response.status_code"] == 500
        errors = (await http.get(f"{control(served)}/traces", params={"status": "ERROR"})).json()["traces"]
        assert trace_id in {t["traceId"] for t in errors}
        assert all(t["status"] == "ERROR" for t in errors)


async def test_traces_list_filters_and_errors(served, fresh_upstream):
    async with served.http() as http:
        for i in range(3):
            assert (await http.get(f"{served.urls[REST]}lamps/{i}/with-rota")).status_code == 200
        base = control(served)

        async def listed():
            body = (await http.get(f"{base}/traces", params={"operation": "with-rota"})).json()
            return body if len(body["traces"]) >= 3 else None

        body = await eventually(listed)
        assert body["bufferSize"] == 50 and 3 <= body["bufferUsed"] <= 50
        assert all(t["operation"] == "lamp-with-rota" and t["spanCount"] == 5 for t in body["traces"])
        stamps = [t["timestamp"] for t in body["traces"]]
        assert stamps == sorted(stamps, reverse=True)  # newest first
        one = (await http.get(f"{base}/traces", params={"limit": "1"})).json()["traces"]
        assert len(one) == 1
        assert (await http.get(f"{base}/traces", params={"status": "maybe"})).status_code == 400
        assert (await http.get(f"{base}/traces", params={"limit": "-1"})).status_code == 400
        missing = await http.get(f"{base}/traces/{'0' * 31}1")
        assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
        assert (await http.post(f"{base}/traces")).status_code == 405
        assert (await http.get(f"{base}/nothing-here")).status_code == 404


# ------------------------------------------------------------------ metrics


async def test_metrics_count_requests_steps_and_upstream_calls(served, fresh_upstream):
    fresh_upstream.reply("/lamps/gone", Reply(status=404, body=b'{"error":"no such lamp"}'))
    async with served.http() as http:
        before = await metric_families(http, served)

        def old(family: str, name: str, **labels) -> float:
            return (sample(before, family, name, **labels) or 0.0) if family in before else 0.0

        base_ok = old("naftiko_request", "naftiko_request_total", operation="get-lamp", status="200", adapter="rest")
        base_upstream = old("naftiko_http_client", "naftiko_http_client_total", namespace="up", status="200")
        for i in range(4):
            assert (await http.get(f"{served.urls[REST]}lamps/{i}")).status_code == 200
        assert (await http.get(f"{served.urls[REST]}lamps/gone")).status_code == 404
        assert (await http.get(f"{served.urls[REST]}no/such/route")).status_code == 404
        assert (await http.get(f"{served.urls[REST]}lamps/1/with-rota")).status_code == 200

        async def settled():
            families = await metric_families(http, served)
            done = sample(families, "naftiko_request", "naftiko_request_total", operation="lamp-with-rota", status="200")
            return families if done else None

        families = await eventually(settled)
    ok = sample(families, "naftiko_request", "naftiko_request_total", adapter="rest", namespace=REST, operation="get-lamp", status="200")
    assert ok - base_ok == 4
    assert sample(families, "naftiko_request", "naftiko_request_total", operation="get-lamp", status="404") >= 1
    assert sample(families, "naftiko_request", "naftiko_request_total", operation="unmatched", status="404") >= 1
    assert families["naftiko_request"].type == "counter"
    # histogram: buckets, count and sum, per operation
    hist = families["naftiko_request_duration_seconds"]
    assert hist.type == "histogram"
    count = sample(families, "naftiko_request_duration_seconds", "naftiko_request_duration_seconds_count", operation="get-lamp")
    inf = sample(families, "naftiko_request_duration_seconds", "naftiko_request_duration_seconds_bucket", operation="get-lamp", le="+Inf")
    total = sum(
        s.value for s in families["naftiko_request"].samples if s.labels["operation"] == "get-lamp" and s.labels["adapter"] == "rest"
    )
    assert count == inf == total
    assert sample(families, "naftiko_request_duration_seconds", "naftiko_request_duration_seconds_sum", operation="get-lamp") > 0
    # errors: a counter exposed with _total
    errors = families["naftiko_request_errors"]
    assert errors.type == "counter"
    assert sample(families, "naftiko_request_errors", "naftiko_request_errors_total", operation="get-lamp", type="client_error") >= 1
    # steps and upstream calls
    for step in ("lamp", "rota"):
        assert sample(families, "naftiko_step_duration_seconds", "naftiko_step_duration_seconds_count", operation="lamp-with-rota", step=step, type="call") >= 1
    upstream_ok = sample(families, "naftiko_http_client", "naftiko_http_client_total", namespace="up", host="127.0.0.1", method="GET", status="200")
    assert upstream_ok - base_upstream == 6  # 4 lamps + 2 steps
    assert sample(families, "naftiko_http_client", "naftiko_http_client_total", namespace="up", status="404") >= 1
    assert sample(families, "naftiko_http_client_duration_seconds", "naftiko_http_client_duration_seconds_count", namespace="up", host="127.0.0.1") >= 7


async def test_mcp_metrics_tell_tool_errors_from_protocol_errors(served, fresh_upstream):
    fresh_upstream.reply("/lamps/dark", Reply(status=503, body=b'{"error":"lamp off"}'))
    async with served.mcp(served.urls[MCP], mode="legacy") as client:
        assert not (await client.call_tool("get-lamp", {"id": "1"})).is_error
        assert (await client.call_tool("get-lamp", {"id": "dark"})).is_error
        with pytest.raises(MCPError):
            await client.call_tool("no-such-tool", {})
    async with served.http() as http:

        async def settled():
            families = await metric_families(http, served)
            return families if sample(families, "naftiko_request_errors", "naftiko_request_errors_total", adapter="mcp", type="protocol_error") else None

        families = await eventually(settled)
    assert sample(families, "naftiko_request", "naftiko_request_total", adapter="mcp", namespace=MCP, operation="get-lamp", status="ok") >= 1
    assert sample(families, "naftiko_request", "naftiko_request_total", adapter="mcp", operation="get-lamp", status="error") >= 1
    assert sample(families, "naftiko_request_errors", "naftiko_request_errors_total", adapter="mcp", operation="get-lamp", type="tool_error") >= 1
    # the caller's tool name is not a label: unknown tools are counted together
    assert sample(families, "naftiko_request_errors", "naftiko_request_errors_total", adapter="mcp", operation="unknown", type="protocol_error") >= 1
    assert not any("no-such-tool" in str(s.labels) for f in families.values() for s in f.samples)


# ------------------------------------------------------------------ health and status


async def test_health_and_status(served):
    async with httpx.AsyncClient() as http:
        base = control(served)
        live = await http.get(f"{base}/health/live")
        assert live.status_code == 200 and live.json() == {"status": "UP"}
        ready = await http.get(f"{base}/health/ready")
        assert ready.status_code == 200
        body = ready.json()
        assert body["status"] == "UP"
        ports = {ns: int(url.split(":")[2].split("/")[0]) for ns, url in served.urls.items()}
        assert {(a["type"], a["namespace"], a["port"], a["state"]) for a in body["adapters"]} == {
            ("rest", REST, ports[REST], "started"),
            ("mcp", MCP, ports[MCP], "started"),
            ("control", CONTROL, ports[CONTROL], "started"),
        }
        status = (await http.get(f"{base}/status")).json()
    assert status["capability"] == {"label": "Lighthouse keeper", "specVersion": "1.0.0-alpha2"}
    assert status["engine"]["version"] == __version__
    assert status["uptimeSeconds"] > 0 and status["uptime"].startswith("PT")
    assert status["adapters"] == body["adapters"]
    assert status["observability"]["metrics"] is True and status["observability"]["traces"] is True
    assert status["observability"]["exporter"] is None


# ------------------------------------------------------------------ logs


async def test_json_request_log_lines(served, fresh_upstream):
    async with served.http() as http:
        r = await http.get(f"{served.urls[REST]}lamps/77", headers={"traceparent": f"00-{'7' * 32}-{CALLER_SPAN}-01"})
        assert r.status_code == 200

    def lines():
        return [orjson.loads(line) for line in served.stderr.splitlines() if line.strip()]

    async def logged():
        return [e for e in lines() if e.get("target") == "/lamps/77"]

    [entry] = await eventually(logged)
    assert entry["logger"] == "naftiko.request" and entry["level"] == "INFO"
    assert entry["adapter"] == "rest" and entry["namespace"] == REST and entry["method"] == "GET"
    assert entry["operation"] == "get-lamp" and entry["status"] == "200" and entry["upstream_calls"] == 1
    assert isinstance(entry["duration_ms"], float) and entry["duration_ms"] > 0
    assert entry["trace_id"] == "7" * 32 and re.fullmatch(r"[0-9a-f]{16}", entry["span_id"])
    assert "status=200" in entry["message"] and "upstream_calls=1" in entry["message"]
    async with served.mcp(served.urls[MCP], mode="legacy") as client:
        await client.call_tool("get-lamp", {"id": "78"})
    tool = (await eventually(lambda: _async([e for e in lines() if e.get("method") == "tools/call"])))[-1]
    assert tool["adapter"] == "mcp" and tool["target"] == "get-lamp" and tool["status"] == "ok" and tool["upstream_calls"] == 1
    assert all(isinstance(e, dict) and "time" in e for e in lines())  # every stderr line is one JSON object
    assert TOKEN not in served.stderr


async def _async(value):
    return value


# ------------------------------------------------------------------ CLI


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The command as a user runs it: a new process."""
    return subprocess.run(
        [sys.executable, "-m", "naftiko", *args], capture_output=True, text=True, timeout=30, check=False,
        env={**os.environ, **(env or {})},
    )


async def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """The same command in this process (``naftiko.cli.main``), sparing a Python start-up;
    it runs in a thread so this loop keeps serving the fake upstream meanwhile."""
    capsys.readouterr()
    code = await asyncio.to_thread(cli_main, list(args))
    out, err = capsys.readouterr()
    return code, out, err


def control_port(n) -> str:
    return n.urls[CONTROL].split(":")[2].split("/")[0]


async def test_cli_health_status_metrics_traces(served, fresh_upstream, capsys, monkeypatch):
    async with served.http() as http:
        assert (await http.get(f"{served.urls[REST]}lamps/cli-1")).status_code == 200
    trace_id = TRACEPARENT.match(fresh_upstream.last.headers["traceparent"]).group(1)
    port = control_port(served)

    health = await asyncio.to_thread(cli, "health", "--port", port)  # once for real, as a new process
    assert health.returncode == 0, health.stderr
    assert health.stdout.startswith("UP") and REST in health.stdout and MCP in health.stdout

    monkeypatch.setenv("NAFTIKO_CONTROL_PORT", port)
    monkeypatch.setenv("NAFTIKO_CONTROL_ADDRESS", "127.0.0.1")
    code, out, _ = await run_cli(capsys, "health", "--live", "--json")
    assert code == 0 and orjson.loads(out) == {"status": "UP"}
    code, out, err = await run_cli(capsys, "status")
    assert code == 0, err
    assert "Lighthouse keeper" in out and __version__ in out and "keeper-rest" in out
    code, out, _ = await run_cli(capsys, "metrics")
    assert code == 0
    assert {"naftiko_request", "naftiko_http_client"} <= {f.name for f in text_string_to_metric_families(out)}

    async def listed():
        code, out, _ = await run_cli(capsys, "traces", "--operation", "get-lamp")
        return out if code == 0 and trace_id in out else None

    assert await eventually(listed)
    code, out, _ = await run_cli(capsys, "traces", trace_id)
    assert code == 0
    assert "SERVER" in out and "CLIENT   GET up.get-lamp" in out
    code, out, _ = await run_cli(capsys, "traces", trace_id, "--json")
    assert orjson.loads(out)["traceId"] == trace_id
    code, _, err = await run_cli(capsys, "traces", "f" * 32)
    assert code == 1 and "not in the buffer" in err


async def test_cli_unreachable_control_port_exits_3(capsys, monkeypatch):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    real = await asyncio.to_thread(cli, "health", "--port", port, "--timeout", "2")
    assert real.returncode == 3 and "cannot reach the control port" in real.stderr and "Traceback" not in real.stderr
    for command in ("status", "metrics", "traces"):
        code, _, err = await run_cli(capsys, command, "--port", port, "--timeout", "2")
        assert code == 3 and "cannot reach the control port" in err, (command, err)
    monkeypatch.setenv("NAFTIKO_CONTROL_PORT", "nine")
    code, _, err = await run_cli(capsys, "health")
    assert code == 2 and "NAFTIKO_CONTROL_PORT" in err


# ------------------------------------------------------------------ guarded control port, B3, OTLP


class Collector:
    def __init__(self):
        self.url = ""
        self.requests: list[ExportTraceServiceRequest] = []
        self.raw: list[bytes] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        assert request.headers["content-type"] == "application/x-protobuf"
        self.raw.append(body)
        message = ExportTraceServiceRequest()
        message.ParseFromString(body)
        self.requests.append(message)
        return web.Response(status=200, content_type="application/x-protobuf", body=b"")

    def spans(self) -> list:
        return [s for r in self.requests for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans]


@pytest_asyncio.fixture(scope="module")
async def collector():
    c = Collector()
    app = web.Application()
    app.router.add_post("/v1/traces", c.handle)
    async with on_loopback(app) as c.url:
        yield c


GAUGE_TOKEN, CONTROL_TOKEN = "gauge-token-41d2", "control-token-9a7f"


@pytest_asyncio.fixture(scope="module")
async def guarded(upstream, collector):
    env = {
        "GAUGE_TOKEN": GAUGE_TOKEN, "CONTROL_TOKEN": CONTROL_TOKEN, "OTLP_ENDPOINT": collector.url,
        "OTEL_BSP_SCHEDULE_DELAY": "50",  # export batches quickly so the test need not wait
    }
    n = await serve_in_memory(FIXTURES / "observability-guarded.yaml", upstream.url, consumes=["up"], adapters=["gauges-rest", CONTROL], env=env, sockets=True)
    yield n
    assert await n.stop() == 0
    assert GAUGE_TOKEN not in n.stderr and CONTROL_TOKEN not in n.stderr


async def test_guarded_control_port_needs_its_token_and_gates_endpoints(guarded, capsys):
    base = control(guarded)
    assert base.startswith("http://127.0.0.1:")  # address: localhost binds loopback
    auth = {"Authorization": f"Bearer {CONTROL_TOKEN}"}
    async with httpx.AsyncClient() as http:
        refused = await http.get(f"{base}/health/ready")
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
        assert (await http.get(f"{base}/health/ready", headers={"Authorization": "Bearer wrong"})).status_code == 401
        ready = await http.get(f"{base}/health/ready", headers=auth)
        assert ready.status_code == 200 and ready.json()["status"] == "UP"
        assert (await http.get(f"{base}/status", headers=auth)).status_code == 404  # management.info is off
        assert (await http.get(f"{base}/metrics", headers=auth)).status_code == 404  # metrics.local.enabled: false
        assert (await http.get(f"{base}/traces", headers=auth)).status_code == 200
    port = control_port(guarded)
    code, _, err = await run_cli(capsys, "health", "--port", port)
    assert code == 1 and "401" in err
    code, out, err = await run_cli(capsys, "health", "--port", port, "-H", f"Authorization: Bearer {CONTROL_TOKEN}")
    assert code == 0 and out.startswith("UP"), err
    code, _, err = await run_cli(capsys, "status", "--port", port, "-H", f"Authorization: Bearer {CONTROL_TOKEN}")
    assert code == 1 and "management.info" in err


async def test_b3_propagation_and_otlp_export(guarded, fresh_upstream, collector):
    async with guarded.http() as http:
        r = await http.get(f"{guarded.urls['gauges-rest']}levels/dover")
        assert r.status_code == 200
    headers = fresh_upstream.last.headers
    assert "traceparent" not in headers
    assert re.fullmatch(r"[0-9a-f]{32}", headers["x-b3-traceid"]) and re.fullmatch(r"[0-9a-f]{16}", headers["x-b3-spanid"])
    assert headers["x-b3-sampled"] == "1"
    trace_id = bytes.fromhex(headers["x-b3-traceid"])

    async def exported():
        # the client span and the server span (ended after the response) may leave in two batches
        spans = [s for s in collector.spans() if s.trace_id == trace_id]
        return spans if {"GET /levels/{station}", "GET up.get-level"} <= {s.name for s in spans} else None

    spans = await eventually(exported, timeout=5) or []
    names = {s.name for s in spans}
    assert {"GET /levels/{station}", "GET up.get-level"} <= names, names
    client = next(s for s in spans if s.name == "GET up.get-level")
    assert client.span_id == bytes.fromhex(headers["x-b3-spanid"])
    resource = collector.requests[-1].resource_spans[0].resource
    attributes = {a.key: a.value.string_value for a in resource.attributes}
    assert attributes["service.name"] == "Tide gauges"
    assert all(GAUGE_TOKEN.encode() not in raw and CONTROL_TOKEN.encode() not in raw for raw in collector.raw)
