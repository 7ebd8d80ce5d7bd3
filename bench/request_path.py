"""CPU cost of the request path in process, without the HTTP server's sockets.

    python bench/request_path.py capabilities/metronome-customers.yaml
    python bench/request_path.py --upstream capabilities/metronome-customers.yaml

Default: one REST request through the ASGI app and one MCP tool's unit call, against the dry-run
transport (no upstream). Prints CPU microseconds per operation (process time, best of 9 runs of
5000), which moves far less than wrk's req/s on a shared machine. Compare two checkouts by running
each on the same machine.

``--upstream``: the REST app as ``naftiko-run`` serves it by default (inbound observer and the
request log on, written to a temporary file; the real aiohttp transport) against bench/upstream.py
in another process, and the bare forwarder's app (bench/forwarder.py) the same way, 32 requests in
flight, alternating; prints CPU microseconds per request of this process (the request log's writer
thread included) for each, best of 7 runs. It leaves out only what uvicorn does per request, which
is the same for both.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

from naftiko.document.loader import load
from naftiko.engine.plan import Options, compile_plan
from naftiko.exposes.rest.router import build_rest_app

BENCH = Path(__file__).resolve().parent
PATH = b"/v1/v1/customers/c-1"


def scope_for(path: bytes) -> dict:
    return {"type": "http", "method": "GET", "path": path.decode(), "raw_path": path, "query_string": b"",
            "headers": [(b"host", b"x"), (b"user-agent", b"wrk"), (b"accept", b"*/*"),
                        (b"x-forwarded-for", b"1.2.3")],
            "scheme": "http", "server": ("x", 80), "client": ("y", 1), "root_path": "", "http_version": "1.1",
            "asgi": {"version": "3.0"}, "state": {}}


async def dry_run(cap: str) -> None:
    plan = compile_plan(load(cap), Options(dry_run=True, environ={}))
    rest = next(a for a in plan.adapters if a.kind == "rest")
    mcp = next(a for a in plan.adapters if a.kind == "mcp")
    app = build_rest_app(rest, plan.secrets.mask)
    tool = next(t for t in mcp.tools if t.name == "get-customer")
    scope = scope_for(PATH)

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}
    out = []

    async def send(m):
        out.append(m)
    rest_call = lambda: app(scope, receive, send)  # noqa: E731
    cases = (("rest", rest_call), ("mcp-unit", lambda: tool.unit.invoke({"customer_id": "c-1"})))
    for label, fn in cases:
        for _ in range(2000):
            await fn()
        best = None
        for _ in range(9):
            n = 5000
            t = time.process_time()
            for _ in range(n):
                await fn()
            us = (time.process_time() - t) / n * 1e6
            best = us if best is None else min(best, us)
        print(f"{label}: {best:.1f} us/op (best of 9 x 5000)")
    assert out[0]["status"] == 200, out[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def drive(app, n: int, concurrency: int) -> float:
    """CPU microseconds of this process per request, ``concurrency`` requests in flight."""
    scope = scope_for(PATH)
    statuses: list[int] = []

    async def receive():
        await asyncio.sleep(3600)  # a caller that stays: only a disconnect would answer
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    try:  # naftiko's server hands each request a disconnect signal (runtime/httpserver.py): so does this driver
        from naftiko.exposes.http.disconnect import DISCONNECT_EXTENSION, DisconnectSignal
    except ImportError:  # an older checkout
        def extensions() -> dict:
            return {}
    else:
        def extensions() -> dict:
            return {DISCONNECT_EXTENSION: DisconnectSignal()}

    async def worker(count: int) -> None:
        for _ in range(count):
            await app({**scope, "extensions": extensions()}, body_receive(receive), send)

    t = time.process_time()
    await asyncio.gather(*(worker(n // concurrency) for _ in range(concurrency)))
    used = time.process_time() - t
    if set(statuses) != {200}:
        raise RuntimeError(f"unexpected statuses {sorted(set(statuses))}")
    return used / (n // concurrency * concurrency) * 1e6


def body_receive(then):
    """receive(): the (empty) request body first, then ``then``."""
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return await then()
    return receive


async def with_upstream(cap: str, url: str, log_file: TextIO, rounds: int, n: int, concurrency: int) -> None:
    from naftiko.observability.logs import configure_logging, flush_request_logs
    from naftiko.runtime.serve import build_app

    options = Options(environ={"METRONOME_API_KEY": "bench"}, base_uris={"metronome-customers": url})
    plans = []
    apps = {}
    for name, level in (("naftiko (log off)", "warning"), ("naftiko", "info")):  # info: naftiko-run's default
        configure_logging(level, stream=log_file)  # the request log is on when the level is info
        plans.append(compile_plan(load(cap), options))
        apps[name] = build_app(next(a for a in plans[-1].adapters if a.kind == "rest"), plans[-1])
    os.environ["UPSTREAM"] = url
    sys.path.insert(0, str(BENCH))
    import forwarder

    cases = {**apps, "bare forwarder": forwarder.app}
    for fn in cases.values():
        await drive(fn, 2000, concurrency)  # warm pools and caches
    results: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            results[name].append(await drive(fn, n, concurrency))
            flush_request_logs()
    best = {k: min(v) for k, v in results.items()}
    for name, values in results.items():
        print(f"{name:18} {best[name]:6.1f} us/req (best of {rounds}; all: {' '.join(f'{v:.0f}' for v in values)})")
    for name in apps:
        print(f"bare forwarder / {name} CPU: {best['bare forwarder'] / best[name]:.2f}")
    for plan in plans:
        await plan.aclose()
        telemetry = getattr(plan, "telemetry", None)
        if telemetry is not None:
            telemetry.shutdown()
    if forwarder.session is not None:
        await forwarder.session.close()


def main() -> None:
    args = sys.argv[1:]
    if args and args[0] == "--upstream":
        import uvloop

        port = free_port()
        upstream = subprocess.Popen([sys.executable, str(BENCH / "upstream.py"), str(port)])
        fd, log_path = tempfile.mkstemp(prefix="naftiko-request-log-", suffix=".log")
        try:
            time.sleep(0.5)
            with os.fdopen(fd, "w") as log_file:
                url = f"http://127.0.0.1:{port}"
                uvloop.run(with_upstream(args[1], url, log_file, rounds=7, n=6400, concurrency=32))
            print(f"request log lines written: {Path(log_path).read_text().count(chr(10))}")
        finally:
            upstream.terminate()
            upstream.wait()
            os.unlink(log_path)
    else:
        asyncio.run(dry_run(args[0]))


if __name__ == "__main__":
    main()
