"""Small ASGI pieces shared by the adapters that are plain ASGI apps (REST, skill)."""

from __future__ import annotations

from starlette.types import Receive, Send

ANSWERED = "naftiko.answered"
"""Scope key: the status an app answered with, set by apps whose class says ``reports_status =
True`` (the REST router, and the inbound auth guard in front of it). The HTTP observer reads it
after the call instead of wrapping ``send`` to watch for it (observability/inbound.py)."""


async def serve_lifespan(receive: Receive, send: Send) -> None:
    """Answer the lifespan protocol: these apps have nothing to set up, plans are compiled
    before serving, so startup and shutdown complete at once."""
    while (await receive())["type"] != "lifespan.shutdown":
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})
