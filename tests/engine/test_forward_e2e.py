"""End to end: ``forward`` resources proxy to their consumes namespace (reference §8).

The caller picks only the path below the target ``baseUri`` (raw, never normalised, never
``..``), its query string is kept byte for byte, method and body pass unchanged, only trusted
headers go out and the capability's own credentials are added. Only safe response headers
come back. Operations on the same resource win for their methods.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio

from conftest import FIXTURES, Reply
from harness import run_cli, serve_in_memory

FILE = FIXTURES / "forward.yaml"
REST = "fwd-rest"
SECRETS = {"FWD_NOTION_TOKEN": "notion-token-7d1e", "FWD_LEGACY_KEY": "legacy-key-93af"}


@pytest_asyncio.fixture(scope="module")
async def served(upstream):
    n = await serve_in_memory(
        FILE, upstream.url, consumes=["legacy", "items"], adapters=[REST],
        extra=["--base-uri", f"notion={upstream.url}/v1/", "--timeout", "1"],
        env=SECRETS,
    )
    yield n
    assert await n.stop() == 0
    for secret in SECRETS.values():
        assert secret not in n.stderr


async def _send(n, method, path, **kw) -> httpx.Response:
    async with n.http() as http:
        return await http.request(method, n.urls[REST] + path.lstrip("/"), **kw)


def _problem(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    return r.json()


def test_start_up_line_counts_forwards(served):
    line = next(out for out in served.stdout_lines if out.startswith("rest"))
    assert line.endswith("1 operations, 5 forward")
    assert "trusted header 'Connection' is connection-specific" in served.stderr
    assert "forward.yaml:67:41: warning" in served.stderr


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
async def test_methods_and_multi_segment_paths(served, fresh_upstream, method):
    body = b'{"title": "Caf\xc3\xa9", "n": 1}' if method in ("POST", "PUT", "PATCH") else None
    headers = {"Content-Type": "application/json"} if body else {}
    r = await _send(served, method, "/notion/pages/abc-123/children", content=body, headers=headers)
    assert r.status_code == 200, r.text
    rec = fresh_upstream.last
    assert rec.method == method
    assert rec.raw_path == "/v1/pages/abc-123/children"
    assert r.json()["path"] == "/v1/pages/abc-123/children"  # the upstream's answer came back
    if body:
        assert rec.body == body  # unchanged, byte for byte
        assert rec.headers["content-type"] == "application/json"
    else:
        assert rec.body == b""


async def test_path_encoding_kept_and_trailing_slash(served, fresh_upstream):
    await _send(served, "GET", "/notion/databases/a%20b%2Fc/query%3F/")
    assert fresh_upstream.last.raw_path == "/v1/databases/a%20b%2Fc/query%3F/"


async def test_query_string_kept_as_is(served, fresh_upstream):
    r = await _send(served, "GET", "/notion/search?q=a%20b&tag=x&tag=y&tag=&flag")
    assert r.status_code == 200
    q = fresh_upstream.last.query
    assert q.getall("tag") == ["x", "y", ""]
    assert q["q"] == "a b" and "flag" in q
    assert r.json()["query"] == [["q", "a b"], ["tag", "x"], ["tag", "y"], ["tag", ""], ["flag", ""]]


async def test_headers_trusted_only_and_bearer_from_bind(served, fresh_upstream):
    r = await _send(
        served, "GET", "/notion/users/me",
        headers={
            "notion-version": "2022-06-28",
            "X-Request-Id": "req-1",
            "X-Untrusted": "nope",
            "Authorization": "Bearer caller-token",
            "Cookie": "session=s1",
            "Proxy-Authorization": "Basic eDp5",
            "X-Client": "caller-spoof",
        },
    )
    assert r.status_code == 200
    h = fresh_upstream.last.headers
    assert h["notion-version"] == "2022-06-28" and h["x-request-id"] == "req-1"
    assert h["authorization"] == "Bearer notion-token-7d1e"  # the consumes auth, not the caller's
    assert h["x-client"] == "naftiko-forward"  # consumes-level header parameter
    for name in ("x-untrusted", "cookie", "proxy-authorization"):
        assert name not in h
    assert h["host"] == urlsplit(fresh_upstream.url).netloc  # never the caller's Host


async def test_explicitly_trusted_authorization_and_hop_by_hop(served, fresh_upstream):
    r = await _send(served, "GET", "/legacy/acme/reports/2024?api_key=caller-key&x=1",
                    headers={"Authorization": "Bearer caller-token", "X-Hint": "h"})
    assert r.status_code == 200
    rec = fresh_upstream.last
    assert rec.raw_path == "/reports/2024"  # only the last placeholder is appended
    assert rec.headers["authorization"] == "Bearer caller-token"  # listed in trustedHeaders
    assert rec.query.getall("api_key") == ["legacy-key-93af"]  # the capability's key, once
    assert rec.query["x"] == "1"
    # A header the caller names in Connection is connection-specific: dropped even when trusted.
    await _send(served, "GET", "/legacy/acme/r", headers={"Connection": "keep-alive, authorization", "Authorization": "Bearer c"})
    assert "authorization" not in fresh_upstream.last.headers
    assert fresh_upstream.last.headers.get("connection", "").lower() != "keep-alive, authorization"


async def test_literal_forward_goes_to_base_uri(served, fresh_upstream):
    r = await _send(served, "GET", "/ping?x=1")
    assert r.status_code == 200
    assert fresh_upstream.last.raw_path == "/" and fresh_upstream.last.query["x"] == "1"


async def test_response_safe_headers_only_and_status(served, fresh_upstream):
    fresh_upstream.reply("/v1/files/f1", Reply(201, b"file-bytes", "application/octet-stream", headers={
        "ETag": '"v1"', "Cache-Control": "no-store", "Location": "/v1/files/f1",
        "Content-Disposition": 'attachment; filename="f1.bin"',
        "Set-Cookie": "upstream=1", "X-Internal-Trace": "t-1", "WWW-Authenticate": "Bearer",
    }))
    r = await _send(served, "POST", "/notion/files/f1", content=b"raw", headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 201 and r.content == b"file-bytes"
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["etag"] == '"v1"' and r.headers["cache-control"] == "no-store"
    assert r.headers["location"] == "/v1/files/f1"
    assert r.headers["content-disposition"] == 'attachment; filename="f1.bin"'
    for name in ("set-cookie", "x-internal-trace", "www-authenticate"):
        assert name not in r.headers
    assert fresh_upstream.last.body == b"raw"


async def test_upstream_errors_pass_through(served, fresh_upstream):
    fresh_upstream.reply("/v1/pages/missing", Reply(404, b'{"object":"error","code":"object_not_found"}'))
    r = await _send(served, "GET", "/notion/pages/missing")
    assert r.status_code == 404 and r.json() == {"object": "error", "code": "object_not_found"}


async def test_unreachable_is_502_and_timeout_504(served, fresh_upstream):
    body = _problem(await _send(served, "GET", "/dead/x"), 502)
    assert "127.0.0.1:1" in body["detail"]
    fresh_upstream.reply("/v1/slow", Reply(delay=1.5))
    _problem(await _send(served, "GET", "/notion/slow"), 504)


async def test_body_over_limit_is_413(served, fresh_upstream):
    r = await _send(served, "POST", "/notion/blobs", content=b"x" * (4 * 1024 * 1024 + 1))
    _problem(r, 413)
    assert fresh_upstream.requests == []


async def test_operation_wins_over_forward_for_its_method(served, fresh_upstream):
    r = await _send(served, "GET", "/hybrid/a/b")
    assert r.status_code == 200
    assert fresh_upstream.last.raw_path == "/status/a%2Fb"  # the operation: one encoded segment
    r = await _send(served, "POST", "/hybrid/a/b", json={"k": 1})
    assert r.status_code == 200
    assert fresh_upstream.last.raw_path == "/v1/a/b" and fresh_upstream.last.json() == {"k": 1}


@pytest.mark.parametrize("path", ["/notion/%2e%2e/admin", "/notion/pages/%2E/x", "/notion/a/%2e%2e%2f%2e%2e%2fadmin",
                                  "/notion/a/..%5cadmin", "/notion/a/.%2e"])
async def test_dot_segments_refused(served, fresh_upstream, path):
    body = _problem(await _send(served, "GET", path), 400)
    assert body["field"] == "path"
    assert fresh_upstream.requests == []


async def test_raw_dot_dot_refused(served, fresh_upstream):
    """httpx removes literal dot segments itself, so send the request line as is."""
    target = b"/notion/pages/../../admin"
    async with served.http() as http:
        answer = await http.get(served.urls[REST].rstrip("/") + "/notion/pages/admin", extensions={"target": target})
    assert answer.status_code == 400, answer.text[:200]
    assert fresh_upstream.requests == []


def test_missing_target_namespace_is_a_load_error():
    proc = run_cli(["serve", str(FIXTURES / "forward-missing-target.yaml")])  # the command's entry point, in this process
    assert proc.returncode == 2
    assert "forward-missing-target.yaml:17:9: forward.targetNamespace 'notoin'" in proc.stderr
    assert "known: notion" in proc.stderr and "Traceback" not in proc.stderr


async def test_dry_run_describes_the_forwarded_request(fresh_upstream):
    n = await serve_in_memory(FILE, None, adapters=[REST], extra=["--dry-run"], env=SECRETS)
    try:
        r = await _send(n, "POST", "/notion/pages/p%201?a=1&a=2", json={"title": "T"},
                        headers={"Notion-Version": "2022-06-28", "X-Untrusted": "u"})
        assert r.status_code == 200
        d = r.json()
        assert d["dryRun"] is True and d["method"] == "POST"
        assert d["url"] == "http://127.0.0.1:1/v1/pages/p%201?a=1&a=2"
        assert d["query"] == {"a": ["1", "2"]}
        assert d["headers"]["Authorization"] == "Bearer ****"
        assert d["headers"]["Notion-Version"] == "2022-06-28" and "X-Untrusted" not in d["headers"]
        assert d["body"] == {"title": "T"}
        assert SECRETS["FWD_NOTION_TOKEN"] not in r.text
        r = await _send(n, "GET", "/legacy/t/x")
        assert SECRETS["FWD_LEGACY_KEY"] not in r.text and "api_key" in r.json()["query"]
    finally:
        assert await n.stop() == 0
    assert fresh_upstream.requests == []
    for secret in SECRETS.values():
        assert secret not in n.stderr
