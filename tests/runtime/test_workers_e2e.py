"""End to end: ``naftiko serve --workers 2``.

One naftiko for the module, started like a user would, with a REST and an MCP adapter in
front of the fake upstream. Checks: two worker processes under the parent, the start-up
lines printed once, many concurrent requests over new connections all answered, both
workers doing the work (their CPU time grows), a killed worker replaced, SIGTERM to the
parent exiting 0 with no worker left behind, and the clear errors for combinations that
cannot work.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from mcp import Client

from conftest import FIXTURES, MINIMAL_CAPABILITY, start_naftiko
from naftiko.cli import main

pytestmark = pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT") or not Path("/proc").is_dir(), reason="Linux only")

MOCK_TOOL = """\
  - type: mcp
    namespace: tools
    port: 9090
    tools:
    - name: get-item
      description: An item.
      call: up.get-item
      with: {id: '{{id}}'}
      inputParameters:
      - {name: id, type: string, description: the id}
"""


def children(pid: int) -> list[int]:
    """Live child processes of ``pid``, from /proc."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(entry.name))
    return sorted(out)


def cpu_ticks(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def capability(tmp_path_factory):
    file = tmp_path_factory.mktemp("workers") / "capability.yaml"
    file.write_text(MINIMAL_CAPABILITY + MOCK_TOOL)
    return file


@pytest.fixture(scope="module")
def served(upstream, capability):
    n = start_naftiko(capability, upstream.url, consumes=["up"], adapters=["api", "tools"], extra=["--workers", "2"])
    yield n
    if n.proc.poll() is None:
        n.stop()


async def test_two_workers_share_the_ports_and_both_serve(served, fresh_upstream):
    workers = wait_for(lambda: len(children(served.proc.pid)) == 2 and children(served.proc.pid), what="2 workers")
    assert len([line for line in served.stdout_lines if line.startswith(("rest ", "mcp "))]) == 2  # printed once
    assert served.stderr.count("2 workers serving (pids ") == 1
    before = {pid: cpu_ticks(pid) for pid in workers}

    async def one(http: httpx.AsyncClient, i: int) -> httpx.Response:
        # A new connection per request: SO_REUSEPORT spreads connections, not requests.
        return await http.get(f"{served.urls['api']}items/i{i}", headers={"Connection": "close"})

    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=32)) as http:
        responses = await asyncio.gather(*(one(http, i) for i in range(200)))
    assert all(r.status_code == 200 for r in responses)
    assert {r.json()["path"] for r in responses} == {f"/items/i{i}" for i in range(200)}
    after = {pid: cpu_ticks(pid) for pid in workers}
    assert all(after[pid] > before[pid] for pid in workers), (before, after)

    for mode in ("legacy", "auto"):  # sessionless MCP: any worker answers any request
        async with Client(served.urls["tools"], mode=mode) as client:
            for i in range(3):
                result = await client.call_tool("get-item", {"id": f"m{i}"})
                assert not result.is_error and f"/items/m{i}" in result.content[0].text


async def test_a_killed_worker_is_replaced(served):
    workers = wait_for(lambda: len(children(served.proc.pid)) == 2 and children(served.proc.pid), what="2 workers")
    os.kill(workers[0], signal.SIGKILL)
    replaced = wait_for(
        lambda: (now := children(served.proc.pid)) and len(now) == 2 and workers[0] not in now and now, what="a new worker"
    )
    assert workers[1] in replaced
    assert f"(pid {workers[0]}) was killed by SIGKILL; starting a new one" in served.stderr
    async with httpx.AsyncClient() as http:
        for i in range(20):
            r = await http.get(f"{served.urls['api']}items/k{i}", headers={"Connection": "close"})
            assert r.status_code == 200


def test_sigterm_stops_every_worker_and_exits_0(served):
    workers = wait_for(lambda: len(children(served.proc.pid)) == 2 and children(served.proc.pid), what="2 workers")
    assert served.stop() == 0
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists(), f"worker {pid} outlived the parent"
    assert "Traceback" not in served.stderr


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "naftiko", "serve", *args], capture_output=True, text=True, timeout=30, check=False)


def test_workers_with_reload_is_refused(capability, capsys):
    assert main(["serve", str(capability), "--workers", "2", "--reload"]) == 2
    assert "--reload runs one process" in capsys.readouterr().err


def test_workers_must_be_positive(capability, capsys):
    assert main(["serve", str(capability), "--workers", "0"]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err


def test_workers_with_stdio_is_refused(capsys):
    assert main(["serve", str(FIXTURES / "stdio-tools.yaml"), "--workers", "2", "--dry-run"]) == 2
    assert "--workers does not apply to an MCP adapter on transport stdio" in capsys.readouterr().err


def test_a_busy_port_fails_start_up_once(capability):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = _run(str(capability), "--workers", "2", "--port", f"api={port}", "--port", "tools=0", "--base-uri", "up=http://127.0.0.1:1")
    assert r.returncode == 2
    assert r.stderr.count(f"port {port} on 127.0.0.1 is already in use") == 1
    assert "Traceback" not in r.stderr


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def test_workers_do_not_outlive_a_killed_parent(upstream, capability):
    n = start_naftiko(capability, upstream.url, consumes=["up"], adapters=["api", "tools"], extra=["--workers", "2"])
    workers: list[int] = []
    try:
        workers = wait_for(lambda: len(children(n.proc.pid)) == 2 and children(n.proc.pid), what="2 workers")
        n.proc.kill()  # SIGKILL: the parent cannot pass anything on
        n.proc.wait()
        wait_for(lambda: not any(_alive(pid) for pid in workers), what="the workers to stop with their parent")
    finally:
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
