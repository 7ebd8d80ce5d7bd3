"""What the inbound limits cost: uvicorn's httptools protocol against naftiko's (httpserver.py).

    python bench/protocol_overhead.py                 # 5 alternating rounds of 3 s, 32 connections
    python bench/protocol_overhead.py --rounds 9 --connections 1

Both serve the same trivial ASGI app (a 2-byte JSON answer, so the protocol is most of the work)
in their own process with uvloop; ``wrk`` drives each in turn, alternating to spread machine noise
evenly. Prints requests/s per round and the median of each, and the ratio.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SERVER = """
import sys, uvicorn
from naftiko.runtime.httpserver import ConnectionBudget, protocol_for
from naftiko.exposes.http.limits import InboundLimits
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    headers = [(b"content-type", b"application/json"), (b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"{}"})
limits = InboundLimits()
http = protocol_for(limits, ConnectionBudget(limits.max_connections)) if sys.argv[2] == "naftiko" else "httptools"
uvicorn.run(
    app, host="127.0.0.1", port=int(sys.argv[1]), http=http, loop="uvloop", log_level="error", access_log=False,
    lifespan="off",
)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("server did not start")


def _wrk(port: int, connections: int, seconds: float) -> float:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{round(seconds)}s", "-s", str(HERE / "report.lua"), f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True,
    ).stdout
    summary = json.loads(next(line for line in out.splitlines() if line.startswith("BENCH "))[6:])
    return summary["requests"] / (summary["duration_us"] / 1e6)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    procs = {}
    try:
        for kind in ("uvicorn", "naftiko"):
            port = _free_port()
            procs[kind] = (subprocess.Popen([sys.executable, "-c", SERVER, str(port), kind]), port)
            _wait(port)
        results: dict[str, list[float]] = {"uvicorn": [], "naftiko": []}
        for _, port in procs.values():
            _wrk(port, args.connections, 1.0)  # warm-up
        for _ in range(args.rounds):
            for kind, (_, port) in procs.items():
                results[kind].append(_wrk(port, args.connections, args.seconds))
        for kind, values in results.items():
            rounds = ", ".join(f"{v:.0f}" for v in values)
            print(f"{kind:<8} median {statistics.median(values):>9.0f} req/s   rounds: {rounds}")
        ratio = statistics.median(results["naftiko"]) / statistics.median(results["uvicorn"])
        print(f"naftiko / uvicorn: {ratio:.3f}")
    finally:
        for proc, _ in procs.values():
            proc.terminate()
            proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
