"""Servers on a free loopback port for the tests: an aiohttp app (the fake upstreams, token
servers and collectors the tests talk to), or an ASGI app behind naftiko's own inbound protocol."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import uvicorn
from aiohttp import web
from starlette.types import ASGIApp, Receive

from naftiko.exposes.http.limits import InboundLimits
from naftiko.runtime.httpserver import ConnectionBudget, protocol_for


@contextlib.asynccontextmanager
async def on_loopback(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 at a port the OS picks; yields its base URL (no trailing ``/``)
    and stops it afterwards."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def with_limits(app: ASGIApp, limits: InboundLimits, budget: ConnectionBudget) -> AsyncIterator[int]:
    """Serve ``app`` under uvicorn with naftiko's inbound protocol (runtime/httpserver.py), its
    ``limits`` and connection ``budget``, on 127.0.0.1 at a port the OS picks; yields the port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    config = uvicorn.Config(
        app, http=protocol_for(limits, budget), ws="none", lifespan="off", log_config=None,
        timeout_keep_alive=limits.keepalive_timeout,  # type: ignore[arg-type]
    )
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110  # uvicorn has no start-up event to await
        await asyncio.sleep(0.01)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task
        sock.close()


async def body_size(receive: Receive) -> int | None:
    """Read a request's whole body as an ASGI app does; its length, or None when the caller left first."""
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            return size
