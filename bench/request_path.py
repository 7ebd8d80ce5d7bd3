"""CPU cost of the request path in process, without sockets: one REST request through the ASGI app
and one MCP tool's unit call, against the dry-run transport (no upstream).

    python bench/request_path.py capabilities/metronome-customers.yaml

Prints CPU microseconds per operation (process time, best of 9 runs of 5000), which moves far less
than wrk's req/s on a shared machine. Compare two checkouts by running each on the same machine.
"""
import asyncio
import sys
import time

from naftiko.document.loader import load
from naftiko.engine.plan import Options, compile_plan
from naftiko.exposes.rest.router import build_rest_app

CAP = sys.argv[1]

async def main():
    plan = compile_plan(load(CAP), Options(dry_run=True, environ={}))
    rest = next(a for a in plan.adapters if a.kind == "rest")
    mcp = next(a for a in plan.adapters if a.kind == "mcp")
    app = build_rest_app(rest, plan.secrets.mask)
    tool = next(t for t in mcp.tools if t.name == "get-customer")
    path = b"/v1/v1/customers/c-1"
    scope = {"type": "http", "method": "GET", "path": path.decode(), "raw_path": path, "query_string": b"",
             "headers": [(b"host", b"x"), (b"user-agent", b"wrk"), (b"accept", b"*/*"), (b"x-forwarded-for", b"1.2.3")],
             "scheme": "http", "server": ("x", 80), "client": ("y", 1), "root_path": "", "http_version": "1.1"}
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

asyncio.run(main())
