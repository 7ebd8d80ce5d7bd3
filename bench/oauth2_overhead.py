"""Per-call cost of the outbound token wrapper and single-flight acquisition (docs/reference.md, "Outbound OAuth2").

In-process, no network: a plain transport vs the same wrapped in TokenAuthTransport with a cached
token, then 1000 concurrent first calls against a token source whose acquisition takes 50 ms.
Run: python bench/oauth2_overhead.py
"""

import asyncio
import time

from naftiko.binds.secrets import Secrets
from naftiko.consumes.oauth2 import TokenAuthTransport, TokenSource
from naftiko.consumes.transport import OutboundRequest, UpstreamResponse


class Inner:
    async def send(self, r):
        return UpstreamResponse(200, {}, b"{}")

    async def aclose(self):
        pass


class Src(TokenSource):
    label = "t"

    async def acquire(self):
        await asyncio.sleep(0.05)
        return "tok-abcdefgh", 3600


async def main():
    req = OutboundRequest("GET", "http://x/items?a=1", [("Accept", "application/json")])
    plain, wrapped = Inner(), TokenAuthTransport(Inner(), Src(safety_margin=60, secrets=Secrets()))
    await wrapped.send(req)
    for name, t in (("plain", plain), ("oauth2 (cached token)", wrapped)):
        n = 200_000
        s = time.perf_counter()
        for _ in range(n):
            await t.send(req)
        print(f"{name}: {(time.perf_counter() - s) / n * 1e6:.2f} us/call")
    src = Src(safety_margin=60, secrets=Secrets())
    w = TokenAuthTransport(Inner(), src)
    s = time.perf_counter()
    await asyncio.gather(*(w.send(req) for _ in range(1000)))
    print(f"1000 concurrent first calls: {src.acquisitions} token request(s), {time.perf_counter() - s:.3f}s")


asyncio.run(main())
