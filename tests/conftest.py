"""Shared test fixtures: a real fake upstream on loopback and a real naftiko process.

The fake upstream is an aiohttp server on 127.0.0.1 that records every request exactly as
it arrived (raw path, query, headers, body) and answers what the test programs. naftiko runs
as a subprocess started like a user would (``python -m naftiko serve FILE …``) on free ports,
pointed at the fake upstream with ``--base-uri``.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import orjson
import pytest
import pytest_asyncio
from multidict import MultiDict

if TYPE_CHECKING:  # imported where used: the xdist controller loads this file too, before it
    # starts the workers, and runs no test (importing the MCP SDK and aiohttp's server took ~1 s)
    from aiohttp import web
    from mcp import Client

ROOT = Path(__file__).resolve().parent.parent
CAPABILITIES = ROOT / "capabilities"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
API_KEY = "test-key-4f9a1c7e"

# The smallest capability that serves: one consumed GET and one REST route calling it.
MINIMAL_CAPABILITY = """\
naftiko: 1.0.0-alpha2
info:
  label: T
  description: test
capability:
  consumes:
  - type: http
    namespace: up
    baseUri: https://api.example.com
    resources:
    - name: items
      path: /items/{id}
      operations:
      - name: get-item
        method: GET
  exposes:
  - type: rest
    namespace: api
    port: 8080
    resources:
    - path: /items/{id}
      operations:
      - method: GET
        call: up.get-item
"""


@dataclass
class Recorded:
    method: str
    raw_path: str
    path: str
    query: MultiDict
    headers: dict
    body: bytes

    def json(self):
        return orjson.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: bytes | None = None  # None → an echo of the request as JSON
    content_type: str = "application/json"
    delay: float = 0.0
    headers: dict = field(default_factory=dict)  # extra response headers


@dataclass
class FakeUpstream:
    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    replies: dict[str, Reply] = field(default_factory=dict)  # raw path → reply
    digest: tuple[str, str] | None = None  # when set, paths under /digest/ demand HTTP digest auth

    def reply(self, raw_path: str, reply: Reply) -> None:
        self.replies[raw_path] = reply

    def reset(self) -> None:
        self.requests.clear()
        self.replies.clear()
        self.digest = None

    @property
    def last(self) -> Recorded:
        assert self.requests, "the upstream received no request"
        return self.requests[-1]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        from aiohttp import web

        body = await request.read()
        rec = Recorded(
            request.method,
            request.raw_path.split("?", 1)[0],
            request.path,
            MultiDict(request.query),
            {k.lower(): v for k, v in request.headers.items()},
            body,
        )
        self.requests.append(rec)
        if self.digest and rec.raw_path.startswith("/digest/") and not _digest_ok(rec, self.digest):
            challenge = 'Digest realm="fake", nonce="n0nce", qop="auth", algorithm=MD5, opaque="op"'
            return web.Response(status=401, headers={"WWW-Authenticate": challenge})
        reply = self.replies.get(rec.raw_path, Reply())
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.body is None:
            echo = {"upstream": "fake", "method": rec.method, "path": rec.raw_path, "query": list(rec.query.items())}
            return web.Response(status=reply.status, body=orjson.dumps(echo), content_type="application/json")
        return web.Response(status=reply.status, body=reply.body, headers={"Content-Type": reply.content_type, **reply.headers})


def _digest_ok(rec: Recorded, credentials: tuple[str, str]) -> bool:
    """Check an RFC 7616 (MD5, qop=auth) Authorization header the way a real server would."""
    header = rec.headers.get("authorization", "")
    if not header.startswith("Digest "):
        return False
    fields = dict(re.findall(r'(\w+)="?([^",]+)"?', header[7:]))
    user, password = credentials
    md5 = lambda text: hashlib.md5(text.encode()).hexdigest()  # noqa: E731
    ha1 = md5(f"{user}:fake:{password}")
    ha2 = md5(f"{rec.method}:{fields.get('uri')}")
    expected = md5(f"{ha1}:n0nce:{fields.get('nc')}:{fields.get('cnonce')}:auth:{ha2}")
    return fields.get("username") == user and fields.get("response") == expected


# Test modules whose every test is marked slow (a module-level ``pytestmark``), relative to tests/.
# When the mark expression cannot select a slow test (the default run's ``-m 'not slow'``) they are
# not imported at all: importing test_schemathesis.py exports and parses an OpenAPI document, seconds
# of CPU in every worker for tests that would be deselected anyway. ``-m slow`` collects them as before.
SLOW_MODULES = {"openapi/test_schemathesis.py"}


def _may_select_slow(config: pytest.Config) -> bool:
    from _pytest.mark.expression import Expression

    markexpr = config.option.markexpr
    if not markexpr:
        return True
    expression = Expression.compile(markexpr)
    # slow, with every other mark absent or present: either way the expression rejects it → none selected
    return any(expression.evaluate(lambda name, /, other=other, **_: name == "slow" or other) for other in (False, True))


def pytest_configure(config: pytest.Config) -> None:
    """schemathesis's pytest plugin is loaded only when its tests may run (``-m slow``): importing
    it takes half a second, in every worker process, and only test_schemathesis.py uses it."""
    if _may_select_slow(config):
        config.pluginmanager.import_plugin("schemathesis.pytest.plugin")


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (pyproject's addopts): three worker processes for the default run, and none
    (every test in this process) when slow tests may be selected: under pytest-xdist the test cases
    schemathesis generates for test_schemathesis.py are collected but not all run (2 of 30 ran).
    A run of one test file (``pytest tests/x/test_y.py -x`` while iterating) stays in this process
    too: files run whole on one worker, so a second one would only add its start-up.

    Three on a two-core machine: much of the suite's time is waiting (timeouts under test, slow
    upstreams, drains, reloads), so a third worker computes while another waits. Measured on the
    two-core machine, quiet, alternating runs: two workers in collection order 73–77 s, three with
    the files in the order of :data:`FIRST_FILES` and no garbage collection while collecting
    (:func:`pytest_collection`) 51–56 s; at an hour when the machine was faster, 62 s and 44–48 s.
    Four gained nothing over three. The timing-sensitive tests are checked reliable at three,
    also with a busy loop taking one of the two cores."""
    if _may_select_slow(config):
        return 0
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        files = {arg.split("::", 1)[0] for arg in config.args}
        if len(files) == 1 and Path(next(iter(files))).is_file():
            return 0
    return 3


# The files that take longest, relative to tests/, in the order the workers should take them. With
# ``--dist loadfile`` a file is a unit of work and the workers take units in collection order, so
# these are moved to the front: a long file started last runs alone at the end while the other
# workers are idle. Among them, a file that mostly waits (timeouts under test, drains, reloads,
# slow upstreams: under half its time on a CPU) is followed by two that mostly compute, so the three
# workers keep both cores busy; three waiting files started together left the machine half idle.
# Measured per file with ``-n 0`` (wall, CPU of the process and its subprocesses):
#   resilience 14.0 s (CPU 46 %), workers 8.1 (67 %), auth_and_stdio 7.9 (90 %), faults 10.3 (47 %),
#   tutorial_versions 7.5 (96 %), fuzz 6.4 (65 %), reload 9.4 (23 %), unit_versions 4.9 (88 %), …
# The rest follow with the files of most tests first (what xdist's own reordering, turned off in
# addopts, would do). Only the order depends on this list: a file missing from it, or a stale
# figure, costs time, not a test.
FIRST_FILES = (
    "consumes/test_resilience_e2e.py",
    "runtime/test_workers_e2e.py",
    "exposes/test_auth_and_stdio_e2e.py",
    "consumes/test_faults_e2e.py",
    "conformance/test_tutorial_versions_e2e.py",
    "conformance/test_fuzz.py",
    "runtime/test_reload_e2e.py",
    "document/test_unit_versions.py",
    "runtime/test_errors_e2e.py",
    "exposes/test_inbound_limits.py",
    "openapi/test_openapi_import.py",
    "exposes/test_mcp_cache_e2e.py",
    "consumes/test_oauth2_e2e.py",
    "observability/test_observability_e2e.py",
    "runtime/test_harness.py",
    "consumes/test_upstream_bounds.py",
    "engine/test_tolerant_e2e.py",
    "openapi/test_openapi.py",
    "runtime/test_httpserver_hot_path.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    count: dict[Path, int] = {}
    for item in items:
        count[item.path] = count.get(item.path, 0) + 1

    def rank(item: pytest.Item) -> tuple[int, int]:
        name = item.path.relative_to(here).as_posix() if item.path.is_relative_to(here) else ""
        first = FIRST_FILES.index(name) if name in FIRST_FILES else len(FIRST_FILES)
        return first, -count[item.path]

    items.sort(key=rank)  # stable: a file's tests keep their order, and stay together


@pytest.hookimpl(wrapper=True)
def pytest_collection(session: pytest.Session):
    """No automatic garbage collection while the tests are collected, one collection at the end,
    and what is alive then (modules, schemas, plugins: kept for the whole run) frozen out of the
    collector's sight. Importing every test module makes hundreds of thousands of long-lived
    objects; each full collection walked all of them again: 1.6 s of CPU while collecting and 1.5 s
    afterwards in each worker process, before the change. Objects the tests make are collected as
    usual."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return (yield)
    finally:
        gc.collect()
        gc.freeze()
        if enabled:
            gc.enable()


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    here = Path(__file__).resolve().parent
    if collection_path.suffix == ".py" and collection_path.is_relative_to(here):
        if collection_path.relative_to(here).as_posix() in SLOW_MODULES and not _may_select_slow(config):
            return True
    return None


@pytest_asyncio.fixture(scope="session")
async def upstream():
    fake = FakeUpstream()
    from aiohttp import web

    from loopback import on_loopback  # aiohttp is imported where it is used (the xdist controller loads conftest)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    async with on_loopback(app) as fake.url:
        yield fake


@pytest.fixture(autouse=True, scope="module")
def _logging_levels_restored_per_module():
    """The same undoing at module scope: a module-scoped fixture that runs ``naftiko`` commands in
    this process changes the levels before any test's own snapshot is taken, so without this the
    next module would start with request logging on (and its plans' transports observed)."""
    root, sdk = logging.getLogger(), logging.getLogger("mcp")
    saved = (root.level, sdk.level)
    yield
    root.setLevel(saved[0])
    sdk.setLevel(saved[1])


@pytest.fixture(autouse=True)
def _logging_set_up_by_the_command_is_undone():
    """A test that runs ``naftiko serve`` in this process (``naftiko.cli.main``) gets the command's
    logging set-up: a handler on the root logger writing to ``sys.stderr``, the root level, the SDK's
    level. Undone after the test, so the next test neither writes through that handler (into the
    terminal, or into another test's captured output) nor serves with request logging it did not ask for."""
    from naftiko.observability.logs import StderrHandler

    root, sdk = logging.getLogger(), logging.getLogger("mcp")
    saved = (root.level, sdk.level, logging.logProcesses, logging.logMultiprocessing, logging.logThreads)
    yield
    for handler in [h for h in root.handlers if isinstance(h, StderrHandler)]:
        root.removeHandler(handler)
    root.setLevel(saved[0])
    sdk.setLevel(saved[1])
    logging.logProcesses, logging.logMultiprocessing, logging.logThreads = saved[2:]


@pytest.fixture
def fresh_upstream(upstream):
    upstream.reset()
    yield upstream
    upstream.reset()


_LINE = re.compile(r"^(rest|mcp|skill|control)\s+(\S+)\s+(http://\S+)\s+(\d+) (operations|tools|skills|endpoints)(?:, \d+ forward)?$")


class Naftiko:
    """A running ``naftiko serve`` subprocess and the URLs it announced."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None):
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        full_env.pop("METRONOME_API_KEY", None)
        full_env.pop("M3TER_API_KEY", None)
        full_env.update(env or {})
        self.args = args
        self.stderr_file = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "naftiko", "serve", *args],
            stdout=subprocess.PIPE,
            stderr=self.stderr_file,
            env=full_env,
            text=True,
        )
        self.urls: dict[str, str] = {}
        self.sizes: dict[str, int] = {}
        self.stdout_lines: list[str] = []

    def _read_stdout(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_ready(self, adapters: int, timeout: float = 20.0) -> Naftiko:
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        end = time.monotonic() + timeout
        while len(self.urls) < adapters:
            if self.proc.poll() is not None:
                raise AssertionError(f"naftiko exited {self.proc.returncode}: {self.stderr}")
            if time.monotonic() > end:
                raise AssertionError(f"naftiko did not announce its adapters in time: {self.stderr}")
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                continue
            self.stdout_lines.append(line)
            m = _LINE.match(line)
            if m:
                self.urls[m.group(2)] = m.group(3)
                self.sizes[m.group(2)] = int(m.group(4))
        return self

    @property
    def alive(self) -> bool:
        """The process is still running (``harness.Served.alive`` says the same in memory)."""
        return self.proc.poll() is None

    def http(self, **kwargs) -> httpx.AsyncClient:
        """A client for this process's adapters (the same call as ``harness.Served.http``)."""
        return httpx.AsyncClient(**kwargs)

    def mcp(self, url: str, mode: str = "auto", **kwargs) -> Client:
        """The MCP SDK's client over the network (the same call as ``harness.Served.mcp``)."""
        from mcp import Client

        return Client(url if url.startswith("http") else self.urls[url], mode=mode, **kwargs)

    @property
    def stderr(self) -> str:
        self.stderr_file.seek(0)
        return self.stderr_file.read()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_naftiko(file: Path | str, upstream_url: str | None, *, consumes: list[str] = (), adapters: list[str] = (), extra=(), env=None, ready: int | None = None) -> Naftiko:
    args = [str(file)]
    for ns in consumes:
        args += ["--base-uri", f"{ns}={upstream_url}"]
    for ns in adapters:
        args += ["--port", f"{ns}=0"]
    args += list(extra)
    return Naftiko(args, env).wait_ready(ready if ready is not None else len(adapters))


@pytest_asyncio.fixture
async def in_memory():
    """``harness.serve_in_memory`` for one test: every capability it served is stopped after the
    test, and must stop cleanly (as a process must exit 0)."""
    from harness import serve_in_memory

    started = []

    async def start(*args, **kwargs):
        served = await serve_in_memory(*args, **kwargs)
        started.append(served)
        return served

    yield start
    for served in reversed(started):
        assert await served.stop() == 0
