"""One list of relayed upstream response headers (consumes/transport.py), used by operations and forwards.

An operation and a forward on the same resource (``/hybrid/{path}`` in forward.yaml: GET is the
operation, other methods are forwarded) hand the caller the same upstream headers: ``Retry-After``
and ``Last-Modified`` included, ``Set-Cookie`` and internal headers never.
"""

from __future__ import annotations

import pytest_asyncio

from conftest import FIXTURES, Reply
from harness import serve_in_memory
from naftiko.consumes.transport import RELAYED_RESPONSE_HEADERS, UpstreamResponse

REST = "fwd-rest"
UPSTREAM_HEADERS = {
    "Retry-After": "7",
    "Last-Modified": "Wed, 21 Oct 2026 07:28:00 GMT",
    "ETag": '"v2"',
    "Set-Cookie": "upstream=1",
    "X-Internal-Trace": "t-1",
}


@pytest_asyncio.fixture(scope="module")
async def served(upstream):
    n = await serve_in_memory(
        FIXTURES / "forward.yaml", upstream.url, consumes=["legacy", "items"], adapters=[REST],
        extra=["--base-uri", f"notion={upstream.url}/v1/", "--timeout", "1"],
        env={"FWD_NOTION_TOKEN": "notion-token-7d1e", "FWD_LEGACY_KEY": "legacy-key-93af"},
    )
    yield n
    assert await n.stop() == 0


def test_relayed_headers_keep_only_the_listed_ones() -> None:
    response = UpstreamResponse(503, {k.lower(): v for k, v in UPSTREAM_HEADERS.items()}, b"")
    assert response.relayed_headers() == {
        "retry-after": "7", "last-modified": "Wed, 21 Oct 2026 07:28:00 GMT", "etag": '"v2"',
    }
    assert "retry-after" in RELAYED_RESPONSE_HEADERS and "set-cookie" not in RELAYED_RESPONSE_HEADERS


async def test_operation_and_forward_on_one_resource_relay_the_same_headers(served, fresh_upstream):
    reply = Reply(503, b'{"busy": true}', "application/json", headers=UPSTREAM_HEADERS)
    fresh_upstream.reply("/status/r1", reply)
    fresh_upstream.reply("/v1/r1", reply)
    async with served.http() as http:
        by_operation = await http.get(served.urls[REST] + "hybrid/r1")
        by_forward = await http.post(served.urls[REST] + "hybrid/r1", content=b"{}",
                                     headers={"Content-Type": "application/json"})
    assert [rec.raw_path for rec in fresh_upstream.requests] == ["/status/r1", "/v1/r1"]
    for r in (by_operation, by_forward):
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "7"
        assert r.headers["last-modified"] == "Wed, 21 Oct 2026 07:28:00 GMT"
        assert r.headers["etag"] == '"v2"'
        assert "set-cookie" not in r.headers and "x-internal-trace" not in r.headers
