"""Instructions per REST request, counted by valgrind's callgrind: a figure that machine load does not move.

    python bench/instructions.py                          # naftiko (defaults) and the bare forwarder
    python bench/instructions.py --requests 2000 --server warning=naftiko:--log-level,warning
    python bench/instructions.py --server old=/path/to/other/venv/bin/naftiko-run --server new=naftiko

On a shared machine wrk's requests/s move by up to 1.5x within minutes, so differences of a few
per cent cannot be resolved with them. This runs each server under callgrind (about 50x slower),
sends exactly ``--requests`` ``GET /v1/v1/customers/c-1`` over ``--connections`` keep-alive
connections, and prints the instructions the server process executed per request (all of its
threads: the request log's writer included), with the start-up and a warm-up left out (callgrind
dumps and resets its counters between them). Repeated runs agree to about 0.1 %.

What it leaves out: time in the kernel (system calls; both servers make about five per request)
and the cost of cache misses, which grows with the code and memory a request touches. So it is a
guide for changes to naftiko's own per-request work, not a replacement for ``bench/run.py``.
Needs ``valgrind`` (``apt-get install valgrind``) and, like run.py, nginx or bench/upstream.py.

``--server NAME=KIND[:ARG,ARG...]``: KIND is ``naftiko`` (the ``naftiko-run`` next to this Python),
a path to another ``naftiko-run``, ``forwarder`` (bench/forwarder.py under uvicorn as run.py starts it),
or ``forwarder-naftiko-http`` (the same app under naftiko's own HTTP protocol,
bench/forwarder_naftiko_http.py).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from run import BENCH, CAPABILITY, Proc, Upstream, free_port, request, spawn, wait_until

PATH = "/v1/v1/customers/c-1"


async def drive(port: int, requests: int, connections: int) -> int:
    """Send ``requests`` GETs over ``connections`` keep-alive connections; return how many were not 200."""
    line = f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    left = requests
    failed = 0

    async def one() -> None:
        nonlocal left, failed
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while left > 0:
            left -= 1
            writer.write(line)
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
            if length:
                await reader.readexactly(int(length.group(1)))
            else:  # chunked (the bare forwarder sends no length)
                await reader.readuntil(b"\r\n0\r\n\r\n")
            failed += not head.startswith(b"HTTP/1.1 200")
        writer.close()

    await asyncio.gather(*(one() for _ in range(connections)))
    return failed


def command(kind: str, args: list[str], port: int, upstream: Upstream) -> tuple[list[str], dict[str, str]]:
    if kind == "forwarder":
        return [sys.executable, "-m", "uvicorn", "--app-dir", str(BENCH), "forwarder:app", "--host", "127.0.0.1",
                "--port", str(port), "--http", "httptools", "--loop", "uvloop", "--no-access-log",
                "--log-level", "warning"], {"UPSTREAM": upstream.url}
    if kind == "forwarder-naftiko-http":  # the same forwarder app under naftiko's HTTP protocol
        return [sys.executable, str(BENCH / "forwarder_naftiko_http.py"), str(port)], {"UPSTREAM": upstream.url}
    exe = str(Path(sys.executable).parent / "naftiko-run") if kind == "naftiko" else kind
    return [exe, str(CAPABILITY), "--base-uri", f"metronome-customers={upstream.url}",
            "--port", f"metronome-customers-rest={port}", "--port", "metronome-customers-mcp=0", *args], \
        {"METRONOME_API_KEY": "bench"}


def dump(proc: Proc, out: Path) -> int:
    """Have callgrind write (and reset) its counters; return the instructions counted since the last dump."""
    before = set(out.parent.glob(out.name + ".*"))
    subprocess.run(["callgrind_control", "--dump", str(proc.pid)], capture_output=True, check=False)
    deadline = time.monotonic() + 30
    new: set[Path] = set()
    while not new and time.monotonic() < deadline:
        time.sleep(0.1)
        new = set(out.parent.glob(out.name + ".*")) - before
    time.sleep(0.5)  # let callgrind finish writing
    total = 0
    for path in new:
        for text in path.read_text().splitlines():
            if text.startswith(("summary:", "totals:")):
                total = max(total, int(text.split()[1]))
        path.unlink()
    return total


def measure(name: str, kind: str, args: list[str], upstream: Upstream, tmp: Path, requests: int, connections: int,
            repeats: int) -> list[float]:
    port = free_port()
    cmd, env = command(kind, args, port, upstream)
    out = tmp / f"callgrind.{name}"
    (tmp / name).mkdir()
    proc = spawn(name, ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p", *cmd], tmp / name, env)
    try:
        wait_until(lambda: request(f"http://127.0.0.1:{port}{PATH}")[0] == 200, proc, timeout=600)
        asyncio.run(drive(port, 300, connections))  # warm-up: connections, caches, the first-call paths
        results = []
        for _ in range(repeats):
            dump(proc, out)  # start-up and warm-up (or the previous repeat) out of the count
            failed = asyncio.run(drive(port, requests, connections))
            if failed:
                raise SystemExit(f"{name}: {failed} of {requests} requests did not answer 200")
            results.append(dump(proc, out) / requests)
        return results
    finally:
        proc.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--server", action="append", default=[],
                        help="NAME=KIND[:ARG,ARG...] (default: naftiko=naftiko and forwarder=forwarder)")
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    servers = args.server or ["naftiko=naftiko", "forwarder=forwarder"]
    tmp = Path(tempfile.mkdtemp(prefix="naftiko-instructions-"))
    upstream = Upstream(tmp)
    try:
        for spec in servers:
            name, _, rest = spec.partition("=")
            kind, _, extra = rest.partition(":")
            counts = measure(name, kind, [a for a in extra.split(",") if a], upstream, tmp, args.requests,
                             args.connections, args.repeats)
            print(f"{name:<12} {' / '.join(f'{c:,.0f}' for c in counts)} instructions per request", flush=True)
    finally:
        upstream.proc.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
