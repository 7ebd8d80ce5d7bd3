"""Side-by-side benchmark: naftiko vs a bare forwarder (REST) and vs FastMCP ``from_openapi`` and the
MCP SDK's own floor (a bare low-level server forwarding with aiohttp) on MCP.

    python bench/run.py                       # about 4 minutes; writes bench/RESULTS.md
    python bench/run.py --rounds 5 --duration 5 --out /tmp/results.md

Run it with the project's venv active. One fast local upstream (nginx when installed, else
bench/upstream.py) answers a static customer JSON; every server under test forwards to it. Each
measurement cell (scenario x connections) runs the servers alternately, A B C A B C ..., and the
report keeps the medians. Every server runs as its users run it: naftiko with its defaults (request
log on, log level info), FastMCP as its documentation shows. See bench/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import http.client
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from gen_capability import generate  # bench/ is on sys.path: this file's own folder
from results import render, render_rest

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CAPABILITY = ROOT / "capabilities" / "metronome-customers.yaml"
FASTMCP_VENV = BENCH / ".venv-fastmcp"
FASTMCP_REQUIREMENTS = BENCH / "requirements-fastmcp.txt"
CUSTOMER = {"id": "c-1", "name": "Acme", "external_id": "ext-1", "ingest_aliases": ["acme"], "custom_fields": {}}
PAUSE = 0.3  # seconds between runs


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------- processes and /proc


@dataclass
class Proc:
    """A server process we started, with its output in a log file and its /proc figures."""

    name: str
    popen: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def status_kb(self, key: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise KeyError(key)

    def cpu_seconds(self) -> float:
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat[stat.rfind(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def children_cpu_seconds(self) -> float:
        """CPU of this process's live children (nginx's worker), read from /proc."""
        total = 0.0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                text = stat.read_text()
                fields = text[text.rfind(")") + 2 :].split()
                if int(fields[1]) == self.pid:
                    total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{tail}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def spawn(name: str, cmd: list[str], tmp: Path, env: dict | None = None, stdout=None) -> Proc:
    log_path = tmp / f"{name.replace(' ', '-')}.log"
    with open(log_path, "wb") as out:  # the child keeps its own copy of the descriptor
        popen = subprocess.Popen(
            cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=stdout or out, stderr=out,
            stdin=subprocess.DEVNULL,
        )
    return Proc(name, popen, log_path)


# ---------------------------------------------------------------- HTTP checks


def request(url: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None, timeout=5.0):
    """One HTTP request on a fresh connection; returns (status, parsed JSON body or None)."""
    rest = url.removeprefix("http://")
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request(method, "/" + path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    try:
        return resp.status, json.loads(data)
    except ValueError:
        return resp.status, None


def mcp_call(url: str, tool: str, arguments: dict, era: str):
    """tools/call on one era; returns (status, JSON)."""
    params: dict = {"name": tool, "arguments": arguments}
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if era == "2026":
        params["_meta"] = {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
        }
        headers |= {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": tool}
    else:
        headers["MCP-Protocol-Version"] = "2025-11-25"
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}).encode()
    return request(url, "POST", body, headers)


def mcp_ok(answer) -> bool:
    status, data = answer
    result = (data or {}).get("result") or {}
    return status == 200 and result.get("isError") is False and result.get("structuredContent") is not None


def expect(what: str, ok: bool, got) -> None:
    if not ok:
        raise RuntimeError(f"check failed: {what}: {got!r}")


def wait_until(probe, proc: Proc, timeout: float = 60.0, interval: float = 0.005) -> float:
    """Poll ``probe`` (True when served) until it succeeds; returns the time it succeeded (perf_counter)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        proc.check_alive()
        with contextlib.suppress(OSError, http.client.HTTPException):
            if probe():
                return time.perf_counter()
        time.sleep(interval)
    raise RuntimeError(f"{proc.name} did not answer within {timeout:.0f} s (log: {proc.log_path})")


# ---------------------------------------------------------------- upstream


class Upstream:
    """nginx (static file, keep-alive, stub_status request counter) when installed, else bench/upstream.py."""

    def __init__(self, tmp: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.nginx = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
        if self.nginx:
            self.kind = subprocess.run([self.nginx, "-v"], capture_output=True, text=True, check=False).stderr.strip()
            self.kind = self.kind.replace("nginx version: ", "") + " (1 worker, keep-alive, static JSON file)"
            self.proc = self._start_nginx(tmp)
        else:
            self.kind = "bench/upstream.py (raw asyncio + uvloop, keep-alive, static JSON)"
            self.proc = spawn("upstream", [sys.executable, str(BENCH / "upstream.py"), str(self.port)], tmp)
        wait_until(lambda: request(self.url + "/v1/customers/c-1")[1] == CUSTOMER, self.proc, timeout=10)

    def _start_nginx(self, tmp: Path) -> Proc:
        root = tmp / "nginx"
        (root / "www").mkdir(parents=True)
        (root / "www" / "customer.json").write_text(json.dumps(CUSTOMER, separators=(",", ":")))
        user = "user root root;\n" if os.geteuid() == 0 else ""  # as root, workers would switch to nobody
        temp_paths = "".join(f"  {kind}_temp_path {root}/{kind}_temp;\n" for kind in
                             ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (root / "nginx.conf").write_text(
            f"{user}worker_processes 1;\ndaemon off;\npid {root}/nginx.pid;\nerror_log {root}/error.log warn;\n"
            "events { worker_connections 4096; }\n"
            "http {\n  access_log off;\n  default_type application/json;\n"
            "  keepalive_requests 10000000;\n  keepalive_timeout 300s;\n" + temp_paths +
            f"  server {{\n    listen 127.0.0.1:{self.port} backlog=4096;\n    root {root}/www;\n"
            "    location = /nginx-status { stub_status; }\n"
            "    location / { try_files /customer.json =404; }\n  }\n}\n"
        )
        cmd = [self.nginx, "-p", str(root), "-c", str(root / "nginx.conf"), "-e", str(root / "error.log")]
        return spawn("upstream", cmd, tmp)

    def served(self) -> int | None:
        """Requests the upstream has answered so far (nginx only), not counting this query."""
        if not self.nginx:
            return None
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", "/nginx-status")
            text = conn.getresponse().read().decode()
        finally:
            conn.close()
        return int(text.splitlines()[2].split()[2]) - 1


# ---------------------------------------------------------------- servers under test


def start_naftiko(capability: Path, upstream: Upstream, tmp: Path, ns: str, env: dict) -> tuple[Proc, str, str]:
    """naftiko-run on free ports; returns (process, REST base URL, MCP URL) from its start-up lines."""
    exe = Path(sys.executable).parent / "naftiko-run"
    cmd = [str(exe), str(capability), "--base-uri", f"{ns}={upstream.url}",
           "--port", f"{ns}-rest=0", "--port", f"{ns}-mcp=0"]  # defaults: request log on
    lines = tmp / "naftiko.stdout"
    with open(lines, "wb") as stdout:
        proc = spawn("naftiko", cmd, tmp, env, stdout=stdout)
    urls: dict[str, str] = {}
    deadline = time.time() + 60
    while len(urls) < 2 and time.time() < deadline:
        if proc.popen.poll() is not None:
            break
        for line in lines.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] in ("rest", "mcp") and parts[2].startswith("http"):
                urls[parts[0]] = parts[2].rstrip("/")
        time.sleep(0.02)
    if len(urls) < 2:
        proc.stop()
        raise RuntimeError(f"naftiko did not print its start-up lines (log: {proc.log_path})")
    return proc, urls["rest"], urls["mcp"]


def start_forwarder(upstream: Upstream, tmp: Path) -> tuple[Proc, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "--app-dir", str(BENCH), "forwarder:app", "--host", "127.0.0.1",
           "--port", str(port), "--http", "httptools", "--loop", "uvloop", "--no-access-log", "--log-level", "warning"]
    return spawn("bare forwarder", cmd, tmp, {"UPSTREAM": upstream.url}), f"http://127.0.0.1:{port}"


class TreeProc(Proc):
    """A server whose work runs in child processes (granian's workers): CPU of the whole tree."""

    def cpu_seconds(self) -> float:
        return super().cpu_seconds() + self.children_cpu_seconds()


def start_granian(name: str, module: str, upstream: Upstream, tmp: Path, env: dict) -> tuple[Proc, str]:
    """An ASGI app of bench/ under granian (1 worker, uvloop, ASGI, no WebSocket, no access log)."""
    port = free_port()
    exe = Path(sys.executable).parent / "granian"
    cmd = [str(exe), "--interface", "asgi", "--loop", "uvloop", "--no-ws", "--host", "127.0.0.1", "--port", str(port),
           "--working-dir", str(BENCH), "--log-level", "warning", module]
    proc = spawn(name, cmd, tmp, {"UPSTREAM": upstream.url, **env})
    return TreeProc(proc.name, proc.popen, proc.log_path), f"http://127.0.0.1:{port}"


def start_sdk_floor(upstream: Upstream, tmp: Path) -> tuple[Proc, str]:
    port = free_port()
    return spawn("MCP SDK floor", [sys.executable, str(BENCH / "sdk_floor.py"), upstream.url, str(port)], tmp), \
        f"http://127.0.0.1:{port}/mcp"


def fastmcp_python() -> Path:
    return FASTMCP_VENV / "bin" / "python"


def ensure_fastmcp_venv() -> float:
    """Create bench/.venv-fastmcp (fastmcp pins its own mcp; keep it out of the project venv). Returns seconds spent."""
    started = time.perf_counter()
    probe = [str(fastmcp_python()), "-c", "import fastmcp, uvloop, httptools; print(fastmcp.__version__)"]
    if fastmcp_python().exists() and subprocess.run(probe, capture_output=True, check=False).returncode == 0:
        return 0.0
    log(f"creating {FASTMCP_VENV} (fastmcp, once) ...")
    subprocess.run([sys.executable, "-m", "venv", str(FASTMCP_VENV)], check=True)
    subprocess.run([str(fastmcp_python()), "-m", "pip", "install", "-q", "-r", str(FASTMCP_REQUIREMENTS)], check=True)
    return time.perf_counter() - started


def start_fastmcp(spec: Path, upstream: Upstream, tmp: Path, name: str = "FastMCP") -> tuple[Proc, str]:
    port = free_port()
    cmd = [str(fastmcp_python()), str(BENCH / "fastmcp_server.py"), str(spec), upstream.url, str(port)]
    return spawn(name, cmd, tmp), f"http://127.0.0.1:{port}/mcp"


@dataclass
class Servers:
    """The three servers under test, on free ports, all forwarding to the same upstream."""

    naftiko: Proc
    rest_url: str
    mcp_url: str
    forwarder: Proc
    fwd_url: str
    fastmcp: Proc
    fastmcp_url: str
    floor: Proc
    floor_url: str

    def all(self) -> tuple[Proc, Proc, Proc, Proc]:
        return self.naftiko, self.forwarder, self.fastmcp, self.floor

    def check(self) -> None:
        """Each server returns the upstream's customer, on REST or on both MCP eras."""
        path = "/v1/v1/customers/c-1"
        for proc, url in ((self.naftiko, self.rest_url), (self.forwarder, self.fwd_url)):
            wait_until(lambda u=url: request(u + path)[0] == 200, proc)
            got = request(url + path)
            expect(f"{proc.name} REST", got == (200, CUSTOMER), got)
        for proc, url, tool in ((self.naftiko, self.mcp_url, "get-customer"),
                                (self.fastmcp, self.fastmcp_url, "get_customer"),
                                (self.floor, self.floor_url, "get-customer")):
            wait_until(lambda u=url, t=tool: mcp_call(u, t, {"customer_id": "c-1"}, "legacy")[0] == 200, proc)
            for era in ("2026", "legacy"):
                got = mcp_call(url, tool, {"customer_id": "c-1"}, era)
                ok = mcp_ok(got) and got[1]["result"]["structuredContent"] == CUSTOMER
                expect(f"{proc.name} MCP {era}", ok, got)


def start_servers(upstream: Upstream, tmp: Path) -> Servers:
    naftiko, rest_url, mcp_url = start_naftiko(CAPABILITY, upstream, tmp, "metronome-customers",
                                               {"METRONOME_API_KEY": "bench"})
    try:
        forwarder, fwd_url = start_forwarder(upstream, tmp)
    except BaseException:
        naftiko.stop()
        raise
    try:
        fastmcp, fastmcp_url = start_fastmcp(BENCH / "get-customer.openapi.json", upstream, tmp)
    except BaseException:
        naftiko.stop()
        forwarder.stop()
        raise
    try:
        floor, floor_url = start_sdk_floor(upstream, tmp)
    except BaseException:
        for proc in (naftiko, forwarder, fastmcp):
            proc.stop()
        raise
    return Servers(naftiko, rest_url, mcp_url, forwarder, fwd_url, fastmcp, fastmcp_url, floor, floor_url)


# ---------------------------------------------------------------- load generation


def wrk(url: str, script: str, conns: int, seconds: int, env: dict | None = None) -> dict:
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", "10s", "-s", str(BENCH / script), url]
    run = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False)
    for line in run.stdout.splitlines():
        if line.startswith("BENCH "):
            return json.loads(line[6:])
    raise RuntimeError(f"wrk gave no summary ({' '.join(cmd)}):\n{run.stdout}\n{run.stderr}")


@dataclass
class Target:
    name: str
    proc: Proc
    url: str
    script: str
    env: dict = field(default_factory=dict)


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float  # server CPU time per request
    upstream_per_request: float | None
    errors: int


def measure(target: Target, conns: int, seconds: float, upstream: Upstream) -> Run:
    target.proc.check_alive()
    cpu0, up0 = target.proc.cpu_seconds(), upstream.served()
    out = wrk(target.url, target.script, conns, seconds, target.env)
    cpu1, up1 = target.proc.cpu_seconds(), upstream.served()
    n = max(out["requests"], 1)
    errors = sum(out[k] for k in ("err_connect", "err_read", "err_write", "err_status", "err_timeout"))
    return Run(
        rps=out["requests"] / (out["duration_us"] / 1e6),
        p50_ms=out["p50_us"] / 1000,
        p99_ms=out["p99_us"] / 1000,
        cpu_us=(cpu1 - cpu0) * 1e6 / n,
        upstream_per_request=None if up0 is None else (up1 - up0) / n,
        errors=errors,
    )


@dataclass
class Cell:
    conns: int
    runs: dict[str, list[Run]]

    def median(self, name: str, attr: str) -> float:
        values = [getattr(r, attr) for r in self.runs[name]]
        return statistics.median(values) if None not in values else float("nan")


@dataclass
class Scenario:
    title: str
    targets: list[Target]
    conns: list[int]
    cells: list[Cell] = field(default_factory=list)
    other_cores: float = float("nan")  # CPU used by processes outside the benchmark, in cores, while it ran

    def cell(self, conns: int) -> Cell:
        return next(c for c in self.cells if c.conns == conns)


def machine_busy_seconds() -> float:
    """CPU time all cores spent busy since boot (/proc/stat)."""
    first = Path("/proc/stat").read_text().split("\n", 1)[0]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, first.split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds(procs: list[Proc]) -> float:
    """CPU used by the benchmark: its servers, the upstream's workers, finished wrk runs, and this script."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    me = resource.getrusage(resource.RUSAGE_SELF)
    return (sum(p.cpu_seconds() + p.children_cpu_seconds() for p in procs)
            + children.ru_utime + children.ru_stime + me.ru_utime + me.ru_stime)


def run_scenario(scenario: Scenario, rounds: int, seconds: float, warmup: float, upstream: Upstream) -> None:
    log(f"== {scenario.title}")
    ours = [upstream.proc, *{id(t.proc): t.proc for t in scenario.targets}.values()]
    wall0, busy0, own0 = time.perf_counter(), machine_busy_seconds(), own_cpu_seconds(ours)
    for target in scenario.targets:  # grow keep-alive pools, JIT caches, etc.
        wrk(target.url, target.script, max(scenario.conns), warmup, target.env)
    for conns in scenario.conns:
        cell = Cell(conns, {t.name: [] for t in scenario.targets})
        for round_ in range(1, rounds + 1):
            for target in scenario.targets:  # A B A B ...
                time.sleep(PAUSE)  # let the previous server finish the calls in flight when wrk stopped
                run = measure(target, conns, seconds, upstream)
                cell.runs[target.name].append(run)
                log(f"   c={conns:<3} round {round_}  {target.name:<15} {run.rps:8.0f} req/s  p50 {run.p50_ms:6.2f} ms"
                    f"  p99 {run.p99_ms:6.2f} ms  cpu {run.cpu_us:6.0f} us/req  errors {run.errors}")
        scenario.cells.append(cell)
    wall = time.perf_counter() - wall0
    scenario.other_cores = max(0.0, (machine_busy_seconds() - busy0) - (own_cpu_seconds(ours) - own0)) / wall
    log(f"   other processes on this machine used {scenario.other_cores:.2f} cores meanwhile")


# ---------------------------------------------------------------- start-up


def measure_startups(upstream: Upstream, tmp: Path, rounds: int, operations: int) -> tuple[dict, int]:
    """Process start -> first successful MCP tools/call on a generated capability, naftiko and FastMCP alternately."""
    cap, spec = generate(tmp / "large", operations)
    results: dict[str, list[tuple[float, int]]] = {"naftiko": [], "FastMCP": []}
    for round_ in range(1, rounds + 1):
        # naftiko: explicit free ports so the probe needs no start-up line.
        rest_port, mcp_port = free_port(), free_port()
        exe = Path(sys.executable).parent / "naftiko-run"
        cmd = [str(exe), str(cap), "--base-uri", f"large={upstream.url}", "--port", f"large-rest={rest_port}",
               "--port", f"large-mcp={mcp_port}"]
        mcp_url = f"http://127.0.0.1:{mcp_port}/mcp"
        started = time.perf_counter()
        proc = spawn("naftiko-large", cmd, tmp, {"LARGE_API_KEY": "bench"})
        try:
            ready = wait_until(
                lambda u=mcp_url: mcp_ok(mcp_call(u, "get-thing-0", {"thing_id": "t-1"}, "legacy")), proc
            )
            results["naftiko"].append(((ready - started) * 1000, proc.status_kb("VmRSS")))
        finally:
            proc.stop()
        # FastMCP: from_openapi over the same operations (it slugifies get-thing-0 to get_thing_0).
        started = time.perf_counter()
        proc, url = start_fastmcp(spec, upstream, tmp, "FastMCP-large")
        try:
            ready = wait_until(lambda u=url: mcp_ok(mcp_call(u, "get_thing_0", {"thing_id": "t-1"}, "legacy")), proc)
            results["FastMCP"].append(((ready - started) * 1000, proc.status_kb("VmRSS")))
        finally:
            proc.stop()
        log(f"   start-up round {round_}: naftiko {results['naftiko'][-1][0]:.0f} ms, "
            f"FastMCP {results['FastMCP'][-1][0]:.0f} ms")
    return results, operations


# ---------------------------------------------------------------- machine and report


def machine() -> dict:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    def version(cmd: list[str]) -> str:
        with contextlib.suppress(OSError):
            run = subprocess.run(cmd, capture_output=True, text=True, check=False)
            return (run.stdout or run.stderr).strip().splitlines()[0]
        return "?"
    git = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True,
                         check=False)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "nproc": len(os.sched_getaffinity(0)),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "wrk": version(["wrk", "-v"]).split(" [")[0],
        "fastmcp": version([str(fastmcp_python()), "-c", "import fastmcp; print(fastmcp.__version__)"]),
        "mcp": version([sys.executable, "-c", "import importlib.metadata as m; print(m.version('mcp'))"]),
        "naftiko": version([sys.executable, "-c", "import naftiko; print(naftiko.__version__)"]),
        "commit": git.stdout.strip() or "?",
    }


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="naftiko side-by-side benchmark (writes bench/RESULTS.md)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per cell (default 5)")
    parser.add_argument("--duration", type=int, default=2, help="seconds per wrk run (default 2)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up seconds per server and scenario (default 1)")
    parser.add_argument("--operations", type=int, default=320, help="operations in the start-up capability")
    parser.add_argument("--startup-rounds", type=int, default=3, help="alternating start-up rounds (default 3)")
    parser.add_argument("--no-startup", action="store_true", help="skip the start-up measurement")
    parser.add_argument("--out", type=Path, default=None, help="default bench/RESULTS.md (--only rest: stdout)")
    parser.add_argument("--only", choices=["rest"], help="run only the REST scenario (no FastMCP, no start-up)")
    parser.add_argument("--granian", action="store_true",
                        help="with --only rest: also the bare forwarder and naftiko's REST app under granian")
    args = parser.parse_args(argv)
    command = shlex.join(["python", "bench/run.py", *(sys.argv[1:] if argv is None else argv)])

    if not shutil.which("wrk"):
        log("wrk is required (Debian: apt-get install -y wrk)")
        return 2
    if not (Path(sys.executable).parent / "naftiko-run").exists():
        log("run with the project's venv active (naftiko-run not found next to this Python)")
        return 2
    if args.only == "rest":
        return main_rest(args, command)
    if args.out is None:
        args.out = BENCH / "RESULTS.md"
    load_start = loadavg()
    began = time.perf_counter()
    setup = ensure_fastmcp_venv()
    info = machine()
    log(f"machine: {info['cpu']}, nproc {info['nproc']}, load {load_start}")

    procs: list[Proc] = []
    tmp = Path(tempfile.mkdtemp(prefix="naftiko-bench-"))
    try:
        upstream = Upstream(tmp)
        procs.append(upstream.proc)
        log(f"upstream: {upstream.kind} at {upstream.url}")

        servers = start_servers(upstream, tmp)
        procs += list(servers.all())
        servers.check()  # every server must give the right answer before it is timed
        idle = {p.name: p.status_kb("VmRSS") for p in servers.all()}
        naftiko, forwarder, fastmcp, floor = servers.all()
        rest_url, mcp_url = servers.rest_url, servers.mcp_url
        fwd_url, fastmcp_url = servers.fwd_url, servers.fastmcp_url
        floor_url = servers.floor_url

        rest_path = "/v1/v1/customers/c-1"
        scenarios = [
            Scenario("REST `GET /v1/v1/customers/{id}`: naftiko vs bare forwarder", [
                Target("naftiko", naftiko, rest_url + rest_path, "rest_get.lua"),
                Target("bare forwarder", forwarder, fwd_url + rest_path, "rest_get.lua"),
            ], [1, 32]),
            Scenario("MCP `tools/call get-customer`, 2026-07-28 envelope: naftiko vs FastMCP from_openapi "
                     "and the MCP SDK floor", [
                Target("naftiko", naftiko, mcp_url, "mcp_2026.lua", {"BENCH_TOOL": "get-customer"}),
                Target("FastMCP", fastmcp, fastmcp_url, "mcp_2026.lua", {"BENCH_TOOL": "get_customer"}),
                Target("MCP SDK floor", floor, floor_url, "mcp_2026.lua", {"BENCH_TOOL": "get-customer"}),
            ], [1, 16, 32]),
            Scenario("MCP `tools/call get-customer`, handshake era (2025-11-25, stateless, no initialize): "
                     "naftiko vs FastMCP from_openapi and the MCP SDK floor", [
                Target("naftiko", naftiko, mcp_url, "mcp_legacy.lua", {"BENCH_TOOL": "get-customer"}),
                Target("FastMCP", fastmcp, fastmcp_url, "mcp_legacy.lua", {"BENCH_TOOL": "get_customer"}),
                Target("MCP SDK floor", floor, floor_url, "mcp_legacy.lua", {"BENCH_TOOL": "get-customer"}),
            ], [1, 16, 32]),
        ]
        for scenario in scenarios:
            run_scenario(scenario, args.rounds, args.duration, args.warmup, upstream)

        servers.check()  # still answering correctly after the load?
        memory = [(p.name, idle[p.name], p.status_kb("VmRSS"), p.status_kb("VmHWM")) for p in servers.all()]
        for proc in servers.all():
            proc.stop()

        startups = None
        if not args.no_startup:
            log(f"== start-up, {args.operations} operations")
            startups = measure_startups(upstream, tmp, args.startup_rounds, args.operations)

        elapsed = time.perf_counter() - began - setup
        meta = {
            **info, "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"), "command": command,
            "elapsed": elapsed, "load_start": load_start, "load_end": loadavg(), "upstream": upstream.kind,
            "duration": args.duration, "warmup": args.warmup, "rounds": args.rounds,
        }
        text = render(meta, scenarios, memory, startups)
        args.out.write_text(text + "\n", encoding="utf-8")
        venv = f", plus {setup:.0f} s creating the FastMCP venv)" if setup else ")"
        log(f"wrote {args.out} ({elapsed:.0f} s" + venv)
        return 0
    finally:
        for proc in reversed(procs):
            proc.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main_rest(args: argparse.Namespace, command: str) -> int:
    """``--only rest``: naftiko and the bare forwarder (and with ``--granian`` both under granian)."""
    load_start = loadavg()
    began = time.perf_counter()
    info = machine()
    info["fastmcp"] = "not run"
    log(f"machine: {info['cpu']}, nproc {info['nproc']}, load {load_start}")
    procs: list[Proc] = []
    tmp = Path(tempfile.mkdtemp(prefix="naftiko-bench-"))
    try:
        upstream = Upstream(tmp)
        procs.append(upstream.proc)
        log(f"upstream: {upstream.kind} at {upstream.url}")
        naftiko, rest_url, _ = start_naftiko(CAPABILITY, upstream, tmp, "metronome-customers",
                                             {"METRONOME_API_KEY": "bench"})
        procs.append(naftiko)
        forwarder, fwd_url = start_forwarder(upstream, tmp)
        procs.append(forwarder)
        path = "/v1/v1/customers/c-1"
        targets = [Target("naftiko", naftiko, rest_url + path, "rest_get.lua"),
                   Target("bare forwarder", forwarder, fwd_url + path, "rest_get.lua")]
        if args.granian:
            gnaftiko, gn_url = start_granian("naftiko (granian)", "granian_app:app", upstream, tmp,
                                             {"NAFTIKO_CAPABILITY": str(CAPABILITY), "METRONOME_API_KEY": "bench"})
            procs.append(gnaftiko)
            gforwarder, gf_url = start_granian("bare forwarder (granian)", "forwarder:app", upstream, tmp, {})
            procs.append(gforwarder)
            targets += [Target("naftiko (granian)", gnaftiko, gn_url + path, "rest_get.lua"),
                        Target("bare forwarder (granian)", gforwarder, gf_url + path, "rest_get.lua")]
        for target in targets:  # every server must give the right answer before it is timed
            wait_until(lambda u=target.url: request(u)[0] == 200, target.proc)
            got = request(target.url)
            expect(f"{target.proc.name} REST", got == (200, CUSTOMER), got)
        idle = {t.proc.name: t.proc.status_kb("VmRSS") for t in targets}
        rest = Scenario("REST `GET /v1/v1/customers/{id}`: naftiko vs bare forwarder", targets, [1, 32])
        run_scenario(rest, args.rounds, args.duration, args.warmup, upstream)
        for target in targets:
            got = request(target.url)
            expect(f"{target.proc.name} REST after the load", got == (200, CUSTOMER), got)
        memory = [(t.proc.name, idle[t.proc.name], t.proc.status_kb("VmRSS"), t.proc.status_kb("VmHWM"))
                  for t in targets if not isinstance(t.proc, TreeProc)]  # granian's supervisor is not the worker
        elapsed = time.perf_counter() - began
        meta = {
            **info, "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"), "command": command,
            "elapsed": elapsed, "load_start": load_start, "load_end": loadavg(), "upstream": upstream.kind,
            "duration": args.duration, "warmup": args.warmup, "rounds": args.rounds,
        }
        text = render_rest(meta, rest, memory)
        if args.out is None:
            print(text)
        else:
            args.out.write_text(text + "\n", encoding="utf-8")
            log(f"wrote {args.out} ({elapsed:.0f} s)")
        return 0
    finally:
        for proc in reversed(procs):
            proc.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
