"""FastMCP ``from_openapi`` serving the same operation(s) naftiko serves, for the side-by-side benchmark.

Runs in its own venv (bench/.venv-fastmcp, made by bench/run.py) so fastmcp's dependencies stay out of
the project's venv:

    bench/.venv-fastmcp/bin/python bench/fastmcp_server.py OPENAPI.json UPSTREAM_URL PORT

Configured as its documentation shows: ``FastMCP.from_openapi`` with a plain ``httpx2.AsyncClient``
(FastMCP 4 is built on httpx2; its docs pass ``httpx2.AsyncClient(base_url=...)`` and nothing
else, so the client keeps its default pool limits) carrying the same bearer header naftiko sends.
Served the same way as naftiko: Streamable HTTP on /mcp, stateless, JSON responses (no SSE),
uvloop + httptools, no access log.
"""

import json
import sys

import httpx2
import uvicorn
from fastmcp import FastMCP


def build(spec_path: str, upstream: str):
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    client = httpx2.AsyncClient(base_url=upstream, headers={"Authorization": "Bearer bench"})
    # FastMCP always slugifies operationIds: operation "get-customer" becomes tool "get_customer".
    server = FastMCP.from_openapi(spec, client=client, name="metronome-customers-fastmcp")
    return server.http_app(path="/mcp", stateless_http=True, json_response=True, host_origin_protection=False)


async def main(spec_path: str, upstream: str, port: int) -> None:
    app = build(spec_path, upstream)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, loop="uvloop", http="httptools",
        access_log=False, log_level="warning", lifespan="on", server_header=False,
    )
    await uvicorn.Server(config).serve()


if __name__ == "__main__":
    import uvloop

    uvloop.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
