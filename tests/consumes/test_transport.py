"""The aiohttp transport as an upstream sees it (consumes/transport.py): the User-Agent it sends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
import pytest_asyncio
from aiohttp import web

from loopback import on_loopback
from naftiko import __version__
from naftiko.consumes.transport import AiohttpTransport, OutboundRequest

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def echo() -> AsyncIterator[str]:
    """An upstream answering every request with its User-Agent header lines, all of them."""

    async def handle(request: web.Request) -> web.Response:
        return web.json_response({"user-agent": request.headers.getall("User-Agent", [])})

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    async with on_loopback(app) as url:
        yield url


async def _agents(url: str, headers: list[tuple[str, str]]) -> list[str]:
    transport = AiohttpTransport()
    try:
        response = await transport.send(OutboundRequest("GET", url + "/x", headers))
    finally:
        await transport.aclose()
    assert response.status == 200
    agents: list[str] = orjson.loads(response.body)["user-agent"]
    return agents


async def test_naftiko_names_itself_with_its_version(echo: str) -> None:
    assert await _agents(echo, [("Accept", "application/json")]) == [f"naftiko/{__version__}"]


@pytest.mark.parametrize("name", ["User-Agent", "user-agent"])
async def test_a_user_agent_the_capability_sends_replaces_it(echo: str, name: str) -> None:
    assert await _agents(echo, [(name, "acme-bot/2.0")]) == ["acme-bot/2.0"]
