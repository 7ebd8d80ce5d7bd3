"""Upstream cookies are never kept between calls (consumes/transport.py).

One aiohttp session serves every caller of a consumes entry, so a cookie jar on it would hand a
``Set-Cookie`` that one caller's call received to the calls of every caller after it. aiohttp's
default jar refuses cookies from IP-address hosts, which hides this against ``127.0.0.1``; the
upstream here is reached by the name ``localhost``, as a real upstream is reached by its name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from aiohttp import web

from loopback import on_loopback

CAPABILITY = """\
naftiko: 1.0.0-alpha2
info:
  label: Cookies
  description: One consumed operation that may send a declared cookie, and a forward, on one entry.
capability:
  consumes:
  - type: http
    namespace: up
    baseUri: https://api.example.com
    resources:
    - name: items
      path: /items/{id}
      operations:
      - name: get-item
        method: GET
        inputParameters:
        - {name: session, in: cookie}
  exposes:
  - type: rest
    namespace: api
    port: 8080
    resources:
    - path: /items/{id}
      operations:
      - method: GET
        call: up.get-item
        inputParameters:
        - {name: id, in: path, type: string, description: Item id.}
        - {name: session, in: query, type: string, required: false, description: A declared cookie.}
    - path: /fwd/{path}
      forward:
        targetNamespace: up
"""


@pytest_asyncio.fixture
async def upstream_by_name() -> AsyncIterator[tuple[str, list[str | None]]]:
    """An upstream that sets a cookie on every answer and records the Cookie header of each request."""
    seen: list[str | None] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Cookie"))
        response = web.json_response({"n": len(seen)})
        response.set_cookie("sid", f"caller-{len(seen)}-secret", path="/")
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    async with on_loopback(app) as url:
        yield url.replace("127.0.0.1", "localhost"), seen


async def test_a_cookie_one_call_received_is_not_sent_on_the_next(in_memory, tmp_path, upstream_by_name) -> None:
    url, seen = upstream_by_name
    file = tmp_path / "cookies.yaml"
    file.write_text(CAPABILITY)
    served = await in_memory(file, url, consumes=["up"], adapters=["api"])
    base = served.urls["api"]
    async with served.http() as http:
        first = await http.get(base + "items/1")  # caller A: the upstream answers with Set-Cookie
        second = await http.get(base + "items/2")  # caller B, by the same consumes entry
        forwarded = await http.get(base + "fwd/items/3")  # and by a forward on it
        declared = await http.get(base + "items/4", params={"session": "mine"})
    assert [r.status_code for r in (first, second, forwarded, declared)] == [200] * 4, second.text
    # none of the cookies the upstream set comes back to it; a cookie the capability declares still goes out
    assert seen == [None, None, None, "session=mine"]
