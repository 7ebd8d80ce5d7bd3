"""The bare forwarder naftiko is compared with: raw ASGI + one aiohttp session.

    uvicorn --app-dir bench forwarder:app --port 8081 --http httptools --loop uvloop --no-access-log
    (UPSTREAM=http://127.0.0.1:9999 in the environment)
"""

import os

import aiohttp

UPSTREAM = os.environ.get("UPSTREAM", "http://127.0.0.1:9999")
session: aiohttp.ClientSession | None = None


async def app(scope, receive, send):
    global session
    if scope["type"] != "http":
        return
    if session is None:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))
    path = scope["path"].removeprefix("/v1")
    async with session.get(UPSTREAM + path, headers={"Authorization": "Bearer x"}) as resp:
        body = await resp.read()
        status, ctype = resp.status, resp.headers.get("Content-Type", "application/json")
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", ctype.encode())]})
    await send({"type": "http.response.body", "body": body})
