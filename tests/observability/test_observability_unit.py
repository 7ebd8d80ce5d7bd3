"""In-process tests of the control adapter and telemetry wiring: what a file compiles to,
readiness when an adapter is not serving, and that nothing is instrumented when
observability is off (the hot path must stay as it was)."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
import uvicorn

from conftest import MINIMAL_CAPABILITY
from naftiko.consumes.transport import AiohttpTransport
from naftiko.document.loader import load
from naftiko.engine.plan import Options, compile_plan
from naftiko.errors import LoadError
from naftiko.exposes.rest.router import RestRouter
from naftiko.observability.outbound import ObservedTransport
from naftiko.observability.settings import ObservabilitySettings
from naftiko.observability.telemetry import start_telemetry, track
from naftiko.runtime.serve import build_app

CONTROL = """\
  - type: control
    port: 9191
"""


def with_control(extra: str = "") -> str:
    return MINIMAL_CAPABILITY + CONTROL + extra


def plan_of(tmp_path: Path, text: str, options: Options | None = None):
    path = tmp_path / "cap.yaml"
    path.write_text(text)
    return compile_plan(load(str(path)), options or Options(environ={}))


def errors_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(LoadError) as info:
        plan_of(tmp_path, text)
    return [str(d) for d in info.value.diagnostics]


@pytest.fixture
def quiet_requests():
    """Request logging off (as above INFO), whatever the test runner configured."""
    logger = logging.getLogger("naftiko.request")
    old = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(old)


def test_control_adapter_compiles_with_reference_defaults(tmp_path):
    plan = plan_of(tmp_path, with_control())
    control = next(a for a in plan.adapters if a.kind == "control")
    assert (control.namespace, control.address, control.port, control.url_path) == ("control", "127.0.0.1", 9191, "/")
    assert control.settings == ObservabilitySettings(metrics=True, traces=True)  # no block: both on
    assert control.endpoints == ["/health/live", "/health/ready", "/metrics", "/traces", "/traces/{traceId}"]
    assert control.size == "5 endpoints"


def test_control_port_override_address_and_switches(tmp_path):
    text = with_control(
        "    address: localhost\n    management: {health: false, info: true}\n"
        "    observability: {metrics: {local: {enabled: false}}, traces: {sampling: 0.25, propagation: b3, local: {buffer-size: 20}}}\n"
    )
    plan = plan_of(tmp_path, text, Options(environ={}, ports={"control": 0}))
    control = next(a for a in plan.adapters if a.kind == "control")
    assert control.port == 0 and control.address == "127.0.0.1"
    assert control.endpoints == ["/status", "/traces", "/traces/{traceId}"]
    assert control.settings == ObservabilitySettings(metrics=False, traces=True, buffer_size=20, sampling=0.25, propagation="b3")
    off = plan_of(tmp_path, with_control("    observability: {enabled: false}\n"))
    assert next(a for a in off.adapters if a.kind == "control").endpoints == ["/health/live", "/health/ready"]


@pytest.mark.parametrize(
    "block, message",
    [
        ("traces: {sampling: 2}", "traces.sampling must be a number from 0 to 1, got 2"),
        ("traces: {propagation: zipkin}", "traces.propagation must be one of w3c, b3, got 'zipkin'"),
        ("traces: {local: {buffer-size: 5}}", "traces.local.buffer-size must be an integer from 10 to 10000, got 5"),
        ("metrics: {local: {enabled: maybe}}", "'enabled' must be true or false, got 'maybe'"),
        ("exporters: {otlp: {endpoint: 'collector:4318'}}", "exporters.otlp.endpoint must be an http(s) URL"),
        ("exporters: {otlp: {endpoint: '{{NOPE}}/v1'}}", "exporters.otlp.endpoint refers to {{NOPE}}, which no bind provides"),
    ],
)
def test_bad_observability_values_are_load_errors_with_positions(tmp_path, block, message):
    text = with_control(f"    observability: {{{block}}}\n")
    errors = errors_of(tmp_path, text)
    assert len(errors) == 1 and message in errors[0], errors
    line = text.count("\n", 0, text.index("observability:")) + 1
    assert errors[0].startswith(f"{tmp_path / 'cap.yaml'}:{line}:")


def test_unknown_port_override_is_still_an_error(tmp_path):
    with pytest.raises(LoadError) as info:
        plan_of(tmp_path, MINIMAL_CAPABILITY, Options(environ={}, ports={"control": 0}))
    assert "--port control=…: no exposes namespace 'control'" in str(info.value)


def test_exporter_endpoint_from_file_or_standard_variables():
    assert ObservabilitySettings(otlp_endpoint="http://c:4318").exporter_endpoint({}) == "http://c:4318/v1/traces"
    assert ObservabilitySettings().exporter_endpoint({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}) == "http://c:4318/v1/traces"
    assert ObservabilitySettings().exporter_endpoint({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c/x"}) == "http://c/x"
    assert ObservabilitySettings(otlp_endpoint="http://c").exporter_endpoint({"OTEL_TRACES_EXPORTER": "none"}) is None
    assert not ObservabilitySettings(traces=True).tracing({"OTEL_SDK_DISABLED": "true"})
    assert ObservabilitySettings().exporter_endpoint({}) is None and not ObservabilitySettings().tracing({})


def test_nothing_is_instrumented_without_control_adapter_and_with_quiet_logs(tmp_path, quiet_requests):
    plan = plan_of(tmp_path, MINIMAL_CAPABILITY)
    telemetry = start_telemetry(plan, environ={})
    plan.telemetry = telemetry
    assert not telemetry.active
    assert telemetry.metrics is None and telemetry.tracing is None and telemetry.request_log is None
    [rest] = plan.adapters
    assert type(build_app(rest, plan)) is RestRouter  # the bare router: no wrapper on the hot path
    assert type(plan.consumers["up"]["get-item"].transport) is AiohttpTransport


def test_request_logging_alone_wraps_but_does_not_time_steps(tmp_path):
    logger = logging.getLogger("naftiko.request")
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        plan = plan_of(tmp_path, MINIMAL_CAPABILITY)
        telemetry = start_telemetry(plan, environ={})
    finally:
        logger.setLevel(old)
    assert telemetry.active and telemetry.request_log is not None
    assert telemetry.metrics is None and telemetry.tracing is None
    assert type(plan.consumers["up"]["get-item"].transport) is ObservedTransport  # counts upstream calls per request


async def test_readiness_is_503_while_an_adapter_is_not_serving(tmp_path, quiet_requests):
    plan = plan_of(tmp_path, with_control("    management: {info: true}\n"), Options(environ={}, ports={"api": 0, "control": 0}))
    rest, control = plan.adapters
    app = build_app(control, plan)
    server = uvicorn.Server(uvicorn.Config(app))  # built, never started
    track(rest, 18080, server)
    track(control, 19191, None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://control") as http:
        ready = await http.get("/health/ready")
        assert ready.status_code == 503
        body = ready.json()
        assert body["status"] == "DEGRADED"
        assert {"type": "rest", "namespace": "api", "port": 18080, "state": "starting"} in body["adapters"]
        server.started = True
        assert (await http.get("/health/ready")).json()["status"] == "UP"
        server.should_exit = True  # shutting down: not ready any more
        stopping = await http.get("/health/ready")
        assert stopping.status_code == 503 and stopping.json()["adapters"][0]["state"] == "stopping"
        status = (await http.get("/status")).json()
        assert status["status"] == "DEGRADED" and status["capability"]["label"] == "T"
        assert (await http.get("/health/live")).json() == {"status": "UP"}  # alive all along
    plan.telemetry.shutdown()


@pytest.mark.parametrize(
    "path, expected",
    [
        ("/skills", ("catalog", "/skills")),
        ("/skills/", ("catalog", "/skills")),
        ("/skills/repair", ("detail", "/skills/{name}")),
        ("/skills/repair/download", ("download", "/skills/{name}/download")),
        ("/skills/repair/contents", ("contents", "/skills/{name}/contents")),
        ("/skills/repair/contents/a/b.md", ("file", "/skills/{name}/contents/{file}")),
        ("/skills/repair/other", ("unmatched", "unmatched")),
        ("/elsewhere", ("unmatched", "unmatched")),
    ],
)
def test_skill_requests_are_named_by_route_never_by_value(path, expected):
    from naftiko.observability.inbound import skill_classify

    assert skill_classify({"path": path, "raw_path": path.encode()}) == expected


def test_rest_requests_are_named_by_operation_or_route(tmp_path, quiet_requests):
    from naftiko.observability.inbound import rest_classifier

    plan = plan_of(tmp_path, MINIMAL_CAPABILITY)
    [rest] = plan.adapters
    classify = rest_classifier(RestRouter(rest, plan.secrets.mask))

    def scope(method: str, path: str) -> dict:
        return {"method": method, "path": path, "raw_path": path.encode()}

    assert classify(scope("GET", "/items/42")) == ("get-/items/{id}", "/items/{id}")  # the unnamed operation's plan name
    assert classify(scope("DELETE", "/items/42")) == ("unmatched", "/items/{id}")
    assert classify(scope("GET", "/secret-looking/path")) == ("unmatched", "unmatched")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_request_log_line_formats_and_masks_secrets(fmt):
    import io
    import json
    import re

    from naftiko.binds.secrets import Secrets
    from naftiko.observability.logs import RequestLog, configure_logging

    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.logProcesses, logging.logMultiprocessing, logging.logThreads)
    stream = io.StringIO()
    try:
        configure_logging("info", fmt, stream=stream)
        log = RequestLog(Secrets(["s3cr3t-key"]).mask)
        log.write("rest", "api", "GET", "/keys/s3cr3t-key", "get-key", "200", 0.01234, 2, ("a" * 32, "b" * 16))
        # as the HTTP observer queues it: the raw path as the server gave it (its query too) and the status code
        log.write("rest", "api", "GET", b"/keys/s3cr3t-key?token=s3cr3t-key", "get-key", 200, 0.01234, 2,
                  ("a" * 32, "b" * 16))
        log.close()  # the line is written by the writer thread; close waits for it
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        logging.logProcesses, logging.logMultiprocessing, logging.logThreads = saved[2:]
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    for line in lines:
        assert "s3cr3t-key" not in line and "token" not in line
        if fmt == "text":
            assert re.fullmatch(
                r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO naftiko\.request: rest api GET /keys/\*\*\*\* "
                r"operation=get-key status=200 duration_ms=12\.34 upstream_calls=2 trace_id=a{32} span_id=b{16}",
                line,
            ), line
        else:
            entry = json.loads(line)
            assert entry["target"] == "/keys/****" and entry["duration_ms"] == 12.34 and entry["upstream_calls"] == 2
            assert entry["status"] == "200"
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])


def test_request_log_is_written_off_the_request_and_never_dropped(monkeypatch):
    """write() only queues; close() writes every queued line, in order; a full queue makes the
    request write its own line instead of dropping it."""
    import io

    from naftiko.observability import logs
    from naftiko.observability.logs import RequestLog, configure_logging

    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.logProcesses, logging.logMultiprocessing, logging.logThreads)
    stream = io.StringIO()
    try:
        configure_logging("info", "text", stream=stream)
        log = RequestLog(lambda text: text)
        for i in range(2000):
            log.write("rest", "api", "GET", f"/items/{i}", "get-item", "200", 0.001, 1, None)
        log.close()
        lines = stream.getvalue().splitlines()
        assert [line.split(" GET ")[1].split()[0] for line in lines] == [f"/items/{i}" for i in range(2000)]
        assert log.writer is None  # stopped; a second close is harmless
        log.close()

        stream.seek(0)
        stream.truncate()
        monkeypatch.setattr(logs, "QUEUE_LINES", 0)  # the writer is "behind": every line is written on the spot
        full = RequestLog(lambda text: text)
        full.write("rest", "api", "GET", "/now", "get-item", "200", 0.001, 1, None)
        assert "/now" in stream.getvalue()  # written before write() returned
        full.close()
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        logging.logProcesses, logging.logMultiprocessing, logging.logThreads = saved[2:]


def test_request_log_writes_to_the_stderr_of_the_moment_not_a_closed_one():
    """``configure_logging`` without a stream follows ``sys.stderr``: when it is swapped and the
    old one closed (as in-process runs of ``naftiko serve`` under output capture do), the writer
    thread's lines land in the new one, with no "Logging error" and no line lost."""
    import io
    from contextlib import redirect_stderr

    from naftiko.observability.logs import RequestLog, configure_logging

    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.logProcesses, logging.logMultiprocessing, logging.logThreads)
    before, after = io.StringIO(), io.StringIO()
    try:
        with redirect_stderr(before):
            configure_logging("info", "text")
        before.close()
        with redirect_stderr(after):
            log = RequestLog(lambda text: text)
            for i in range(50):
                log.write("rest", "api", "GET", f"/items/{i}", "get-item", "200", 0.001, 1, None)
            log.close()
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        logging.logProcesses, logging.logMultiprocessing, logging.logThreads = saved[2:]
    written = after.getvalue()
    assert "Logging error" not in written
    assert [line.split(" GET ")[1].split()[0] for line in written.splitlines()] == [f"/items/{i}" for i in range(50)]


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("ids", [None, ("c" * 32, "d" * 16)])
def test_request_lines_written_in_a_batch_are_what_logging_itself_writes(fmt, ids):
    """With logging as configure_logging leaves it, the writer formats request lines itself (no
    LogRecord per line); a filter anywhere sends every line through Logger.handle instead. Both
    must give the same bytes, one line per request, in order."""
    import collections
    import contextvars
    import io

    from naftiko.observability import logs
    from naftiko.observability.logs import configure_logging

    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.logProcesses, logging.logMultiprocessing, logging.logThreads)
    stream = io.StringIO()
    created = [1765100000.0 + i * 0.0371 for i in range(30)] + [1765100000.9996, 1765100001.0, 1765100059.99999]
    # as requests queue them: every other line with the raw path (bytes, its query kept) and the status code
    lines = [
        (t, "rest", "api", "GET", f"/items/{i}" if i % 2 else f"/items/{i}?key=v".encode(), "get-item",
         "200" if i % 2 else 200, 0.01234 * i, i, ids, contextvars.copy_context())
        for i, t in enumerate(created)
    ]
    try:
        configure_logging("info", fmt, stream=stream)
        assert logs._plain_handlers() == root.handlers  # the shortcut applies
        logs._write_batch(collections.deque(lines), str)
        direct = stream.getvalue()
        stream.seek(0)
        stream.truncate()
        root.handlers[0].addFilter(lambda record: True)  # any filter: every line as a LogRecord
        assert logs._plain_handlers() is None
        logs._write_batch(collections.deque(lines), str)
        through_logging = stream.getvalue()
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        logging.logProcesses, logging.logMultiprocessing, logging.logThreads = saved[2:]
    assert direct == through_logging
    assert [line.split(" GET ")[1].split()[0].strip('",') for line in direct.splitlines()] == [
        f"/items/{i}" for i in range(len(created))
    ]
    assert "status=200 " in direct if fmt == "text" else '"status":"200"' in direct


def test_text_duration_is_written_as_round_to_hundredths_of_a_millisecond():
    """The text line's ``duration_ms`` is cheaper to make than ``str(round(ms, 2))`` but must be
    the same text for every duration: ties, whole numbers, trailing zeros, huge and odd values."""
    import math
    import random

    from naftiko.observability.logs import _milliseconds

    rng = random.Random(12)
    seconds = [0.0, -0.0, 1e-9, 0.00001, 0.000005, 0.000015, 0.01, 0.0123, 0.0125, 0.1, 1.0, 12.3, 100.5, 1e9, 1e10,
               1e13, 1e16, math.inf, math.nan]
    seconds += [k / 100_000 for k in range(0, 20_000, 7)]  # hundredths of a ms and the ties between them
    seconds += [(k + 0.5) / 100_000 for k in range(0, 20_000, 13)]
    seconds += [rng.random() * 10 ** rng.randint(-6, 8) for _ in range(20_000)]
    for s in seconds:
        assert _milliseconds(s) == str(round(s * 1000, 2)), s


def test_request_log_writer_takes_lines_queued_after_a_batch_without_being_asked(monkeypatch):
    """A line queued once the writer has taken its batch wakes it again: it is written within a
    batch interval, with no flush() or close() to push it out."""
    import io
    import time

    from naftiko.observability import logs
    from naftiko.observability.logs import RequestLog, configure_logging

    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.logProcesses, logging.logMultiprocessing, logging.logThreads)
    stream = io.StringIO()
    monkeypatch.setattr(logs, "BATCH_SECONDS", 0.001)
    try:
        configure_logging("info", "text", stream=stream)
        log = RequestLog(lambda text: text)
        for i in range(3):
            log.write("rest", "api", "GET", f"/items/{i}", "get-item", "200", 0.001, 1, None)
            deadline = time.monotonic() + 5
            while f"/items/{i} " not in stream.getvalue() and time.monotonic() < deadline:
                time.sleep(0.005)
            assert f"/items/{i} " in stream.getvalue()
        log.close()
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        logging.logProcesses, logging.logMultiprocessing, logging.logThreads = saved[2:]
    assert len(stream.getvalue().splitlines()) == 3


def test_a_handler_on_two_loggers_writes_request_lines_as_logging_does():
    """The same handler on the root and the ``naftiko`` logger gets each record twice; the
    writer's own formatting must not change that (it leaves such set-ups to logging)."""
    import collections
    import contextvars
    import io

    from naftiko.observability import logs
    from naftiko.observability.logs import configure_logging

    root = logging.getLogger()
    naftiko_logger = logging.getLogger("naftiko")
    saved = (root.handlers[:], root.level, logging.logProcesses, logging.logMultiprocessing, logging.logThreads)
    stream = io.StringIO()
    lines = [(1765100000.5 + i, "rest", "api", "GET", f"/items/{i}", "get-item", "200", 0.002, 1, None,
              contextvars.copy_context()) for i in range(2)]
    try:
        configure_logging("info", "text", stream=stream)
        naftiko_logger.addHandler(root.handlers[0])
        logs._write_batch(collections.deque(lines), str)
    finally:
        naftiko_logger.removeHandler(root.handlers[0])
        root.handlers[:], root.level = saved[0], saved[1]
        logging.logProcesses, logging.logMultiprocessing, logging.logThreads = saved[2:]
    targets = [line.split(" GET ")[1].split()[0] for line in stream.getvalue().splitlines()]
    assert targets == ["/items/0", "/items/0", "/items/1", "/items/1"]


@pytest.mark.parametrize("metrics_on", [False, True])
async def test_http_observer_records_the_status_actually_sent_and_the_upstream_calls(metrics_on):
    """The observer notes the status of the answer as it is sent (whatever the app returns), 500
    when the app fails before answering, and the upstream calls counted during the request; the
    app's messages reach the server unchanged and in order."""
    import io

    from naftiko.observability.inbound import HttpObserver
    from naftiko.observability.logs import RequestLog, configure_logging
    from naftiko.observability.metrics import Metrics
    from naftiko.observability.outbound import UPSTREAM_CALLS
    from naftiko.observability.telemetry import Telemetry

    async def answering(scope, receive, send):
        calls = UPSTREAM_CALLS.get()
        calls[0] += 2  # what two ObservedTransport.send calls do
        await send({"type": "http.response.start", "status": 401, "headers": []})
        await send({"type": "http.response.body", "body": b"no"})

    async def failing(scope, receive, send):
        raise RuntimeError("broken before answering")

    async def receive():
        return {"type": "http.disconnect"}

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.logProcesses, logging.logMultiprocessing, logging.logThreads)
    stream = io.StringIO()
    try:
        configure_logging("info", "text", stream=stream)
        metrics = Metrics() if metrics_on else None
        telemetry = Telemetry(metrics=metrics, request_log=RequestLog(str))
        scope = {"type": "http", "method": "GET", "path": "/a", "raw_path": b"/a?q=1", "headers": []}
        await HttpObserver(answering, telemetry, "rest", "api", lambda s: ("op", "/a"))(scope, receive, send)
        with pytest.raises(RuntimeError):
            await HttpObserver(failing, telemetry, "rest", "api", lambda s: ("op", "/a"))(scope, receive, send)
        assert UPSTREAM_CALLS.get() is None  # the request's counter does not outlive it
        telemetry.shutdown()
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        logging.logProcesses, logging.logMultiprocessing, logging.logThreads = saved[2:]
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"] and sent[1]["body"] == b"no"
    first, second = stream.getvalue().splitlines()
    assert " rest api GET /a operation=op status=401 " in first and first.endswith(" upstream_calls=2")
    assert " rest api GET /a operation=op status=500 " in second and second.endswith(" upstream_calls=0")
    if metrics is not None:
        text = metrics.exposition()[0].decode()
        assert 'naftiko_request_total{adapter="rest",namespace="api",operation="op",status="401"} 1.0' in text
        assert 'naftiko_request_total{adapter="rest",namespace="api",operation="op",status="500"} 1.0' in text
        # the kind of error, as the observer works it out from the status (only when metrics are on)
        assert 'naftiko_request_errors_total{adapter="rest",namespace="api",operation="op",type="client_error"} 1.0' in text
        assert 'naftiko_request_errors_total{adapter="rest",namespace="api",operation="op",type="server_error"} 1.0' in text
