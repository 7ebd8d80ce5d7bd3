"""The MCP SDK floor: the official SDK's low-level server with one tool that forwards with aiohttp.

    python bench/sdk_floor.py UPSTREAM_URL PORT

The least any server built on the SDK's Streamable HTTP transport can cost per ``tools/call``: no
argument validation beyond the SDK's, no shaping, one aiohttp session, the upstream body relayed as
text and structured content. Served like naftiko (stateless, JSON responses, uvloop + httptools, no
access log), on the same SDK version as the project. Where naftiko is faster than this row, it is
because the envelope (adapters/mcp_envelope.py) does not go through the SDK on the hot methods.
"""

from __future__ import annotations

import contextlib
import sys

import aiohttp
import mcp_types as types
import orjson
import uvicorn
from mcp.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from starlette.applications import Starlette
from starlette.routing import Route

TOOL = types.Tool(
    name="get-customer",
    description="Get a customer",
    input_schema={"type": "object", "properties": {"customer_id": {"type": "string"}}, "required": ["customer_id"]},
)


def build(upstream: str) -> Starlette:
    session: aiohttp.ClientSession | None = None

    async def list_tools(ctx, params) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[TOOL])

    async def call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        nonlocal session
        if session is None:
            session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))
        url = f"{upstream}/v1/customers/{(params.arguments or {})['customer_id']}"
        async with session.get(url, headers={"Authorization": "Bearer bench"}) as resp:
            body = await resp.read()
        return types.CallToolResult(
            content=[types.TextContent(text=body.decode())], structured_content=orjson.loads(body)
        )

    server = Server("sdk-floor", on_list_tools=list_tools, on_call_tool=call_tool)
    server.middleware.clear()
    manager = StreamableHTTPSessionManager(app=server, json_response=True, stateless=True)
    endpoint = StreamableHTTPASGIApp(manager)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        async with manager.run():
            yield

    return Starlette(routes=[Route("/mcp", endpoint=endpoint)], lifespan=lifespan)


if __name__ == "__main__":
    uvicorn.run(build(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]), loop="uvloop", http="httptools",
                access_log=False, log_level="warning", server_header=False)
