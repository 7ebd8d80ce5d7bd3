"""Small ASGI pieces shared by the adapters that are plain ASGI apps (REST, skill)."""

from __future__ import annotations

from starlette.types import Receive, Send


async def serve_lifespan(receive: Receive, send: Send) -> None:
    """Answer the lifespan protocol: these apps have nothing to set up, plans are compiled
    before serving, so startup and shutdown complete at once."""
    while (await receive())["type"] != "lifespan.shutdown":
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})
