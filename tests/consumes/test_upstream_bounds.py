"""Upstream bodies and connections within bounds, in process against loopback aiohttp servers:
a default cap on decompressed bodies (a gzip bomb, an endless chunked body), a bounded pool whose
waits read as "busy", and accurate messages for TLS failures and header values HTTP forbids.
"""

from __future__ import annotations

import asyncio
import datetime
import gc
import gzip
import ssl
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from loopback import on_loopback
from naftiko.consumes.transport import (
    DEFAULT_MAX_RESPONSE_BYTES,
    AiohttpTransport,
    Limits,
    OutboundRequest,
    ResponseTooLarge,
    UpstreamBusy,
)
from naftiko.document.model import Resilience
from naftiko.errors import InvalidInput, UpstreamUnavailable

BOMB = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)  # 64 MiB inflated, about 64 KiB sent


async def _bomb(request: web.Request) -> web.Response:
    return web.Response(body=BOMB, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})


async def _endless(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    chunk = b"x" * 65536
    try:
        while True:
            await response.write(chunk)
    except (ConnectionError, RuntimeError):
        return response


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(1.0)
    return web.json_response({"ok": True})


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/bomb", _bomb)
    app.router.add_get("/endless", _endless)
    app.router.add_get("/slow", _slow)
    async with on_loopback(app) as url:
        yield url


async def test_a_gzip_bomb_is_cut_at_the_default_cap_counted_after_decompression(server):
    transport = AiohttpTransport()  # no resilience block: the defaults
    try:
        with pytest.raises(ResponseTooLarge) as caught:
            await transport.send(OutboundRequest("GET", server + "/bomb"))
    finally:
        await transport.aclose()
    assert caught.value.status == 502
    assert f"larger than {DEFAULT_MAX_RESPONSE_BYTES} bytes" in caught.value.detail
    assert len(caught.value.partial) == DEFAULT_MAX_RESPONSE_BYTES


async def test_an_endless_chunked_body_is_cut_and_its_memory_freed(server):
    transport = AiohttpTransport(limits=Limits(max_response_bytes=4 * 1024 * 1024))
    try:
        for _ in range(2):
            with pytest.raises(ResponseTooLarge) as caught:
                await transport.send(OutboundRequest("GET", server + "/endless", timeout=10))
            assert len(caught.value.partial) == 4 * 1024 * 1024
            del caught
    finally:
        await transport.aclose()
    gc.collect()
    big = [o for o in gc.get_objects() if isinstance(o, (bytes, bytearray)) and len(o) >= 1024 * 1024]
    assert big == []  # nothing of either read is still referenced


async def test_waiting_for_a_pooled_connection_is_busy_not_a_timeout(server):
    transport = AiohttpTransport(limits=Limits.from_model(Resilience(poolSize=1)))
    try:
        first = asyncio.create_task(transport.send(OutboundRequest("GET", server + "/slow", timeout=5)))
        await asyncio.sleep(0.1)
        with pytest.raises(UpstreamBusy) as caught:
            await transport.send(OutboundRequest("GET", server + "/slow", timeout=0.3))
        assert (await first).status == 200
    finally:
        await transport.aclose()
    assert caught.value.status == 503
    assert "busy: all 1 connections of its pool in use (resilience.poolSize), no slot within 0.3s" in caught.value.detail


async def test_max_concurrency_below_the_pool_keeps_its_own_message(server):
    transport = AiohttpTransport(limits=Limits.from_model(Resilience(maxConcurrency=1, queueTimeout=0.2)))
    try:
        first = asyncio.create_task(transport.send(OutboundRequest("GET", server + "/slow", timeout=5)))
        await asyncio.sleep(0.1)
        with pytest.raises(UpstreamBusy, match=r"busy: 1 calls in flight, no slot within 0\.2s"):
            await transport.send(OutboundRequest("GET", server + "/slow", timeout=5))
        await first
    finally:
        await transport.aclose()


def test_the_defaults_bound_every_entry():
    limits = Limits.from_model(None)
    assert (limits.pool_size, limits.max_response_bytes) == (100, 16 * 1024 * 1024)
    limits = Limits.from_model(Resilience(poolSize=7, maxResponseBytes=1000))
    assert (limits.pool_size, limits.max_response_bytes) == (7, 1000)


async def test_a_header_value_with_a_control_character_is_refused_naming_the_header(server):
    transport = AiohttpTransport()
    try:
        with pytest.raises(InvalidInput) as caught:
            await transport.send(OutboundRequest("GET", server + "/slow", headers=[("X-Trace", "a\x0bb")]))
    finally:
        await transport.aclose()
    assert caught.value.status == 400 and caught.value.field == "X-Trace"
    assert "control character" in caught.value.detail and "URL" not in caught.value.detail


def _self_signed(tmp_path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return context


async def test_a_refused_tls_certificate_says_so(tmp_path):
    app = web.Application()
    app.router.add_get("/", _slow)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=_self_signed(tmp_path))
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    transport = AiohttpTransport()
    try:
        with pytest.raises(UpstreamUnavailable) as caught:
            await transport.send(OutboundRequest("GET", f"https://127.0.0.1:{port}/"))
    finally:
        await transport.aclose()
        await runner.cleanup()
    assert caught.value.detail.startswith(f"upstream 127.0.0.1:{port}: its TLS certificate was refused (")
    assert "self-signed" in caught.value.detail or "self signed" in caught.value.detail
