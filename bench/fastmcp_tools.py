"""The tools FastMCP ``from_openapi`` makes of one OpenAPI document, as JSON on stdout.

Run with the FastMCP venv's Python (not a project dependency), by bench/openapi_import_report.py:

    /work/team/fastmcp-venv/bin/python bench/fastmcp_tools.py SPEC

Prints ``{"seconds": S, "tools": [{"name", "title", "inputSchema"}...]}`` where S is the time to read
the document and build the server, or ``{"error": "..."}`` when FastMCP refuses the document.
"""

import asyncio
import json
import sys
import time
from pathlib import Path

import httpx2
import yaml
from fastmcp import FastMCP


def read(path: str) -> object:
    text = Path(path).read_text("utf-8")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return json.loads(text) if path.endswith(".json") else yaml.load(text, Loader=loader)


async def main(path: str) -> dict:
    started = time.perf_counter()
    try:
        spec = read(path)
        server = FastMCP.from_openapi(spec, client=httpx2.AsyncClient(base_url="http://127.0.0.1:9"), name="report")
        tools = await server.list_tools()
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    seconds = time.perf_counter() - started
    listed = [t.to_mcp_tool().model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]
    tools_out = [{"name": t["name"], "title": t.get("title"), "inputSchema": t.get("inputSchema", {})} for t in listed]
    return {"seconds": seconds, "tools": tools_out}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1]))))
