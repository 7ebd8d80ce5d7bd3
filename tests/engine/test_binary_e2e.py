"""End to end: beta5 binary content (``outputRawFormat: binary``, ``outputMediaType``, ``maxBinarySize``,
REST ``responses``/``responseBinary``, MCP resource ``binary``), as a user runs it.

An ``ikanos: 1.0.0-beta5`` capability in map syntax, a fake upstream on loopback serving a PNG, a
PDF, a WAV, bytes without a type or with a lying one, and bodies over the caps (announced by
Content-Length, or chunked so the cap is found while reading); served in memory through REST
(httpx) and MCP (the official SDK client). docs/reference.md, "Binary content", states the rules.
"""

from __future__ import annotations

import base64
import struct
import zlib

import pytest
import pytest_asyncio
from aiohttp import web
from mcp import MCPError

from harness import run_cli, serve_in_memory
from loopback import on_loopback


def _png() -> bytes:
    """A valid 2×2 RGBA PNG whose pixel data holds every byte value (no text decoding survives it)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + bytes(range(i * 8, i * 8 + 8)) for i in range(2))
    ihdr = struct.pack(">IIBBBBB", 2, 2, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


PNG = _png()
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256))
RAW = bytes(range(255, -1, -1)) * 4  # 1 KiB, no type declared anywhere
BLANKS = b" \r\n\t "  # whitespace only: still content when the operation says binary
BIG = bytes(range(256)) * 16  # 4 KiB, over the 1 KiB cap
TEN_K = bytes(range(256)) * 40  # 10 KiB: over the REST adapter's 8 KiB cap, under the MCP default 10 MiB


async def _upstream_handler(request: web.Request) -> web.StreamResponse:
    kind = request.match_info["kind"]
    if kind == "png":
        return web.Response(body=PNG, content_type="image/png")
    if kind == "pdf":
        return web.Response(body=PDF, headers={"Content-Type": "application/pdf", "Content-Disposition": "inline"})
    if kind == "wav":
        return web.Response(body=WAV, content_type="audio/wav")
    if kind == "octet":  # a generic type: the declared one must win
        return web.Response(body=PNG, content_type="application/octet-stream")
    if kind == "untyped":
        resp = web.Response(body=RAW)
        resp.headers.pop("Content-Type", None)
        resp.content_type = ""  # aiohttp would add application/octet-stream
        return resp
    if kind == "blanks":
        return web.Response(body=BLANKS, content_type="application/octet-stream")
    if kind == "ten-k":
        return web.Response(body=TEN_K, content_type="application/octet-stream")
    if kind == "announced":  # Content-Length says it all: refused before reading
        return web.Response(body=BIG, content_type="image/png")
    if kind == "chunked":  # no Content-Length: refused while reading
        resp = web.StreamResponse(headers={"Content-Type": "image/png"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i in range(0, len(BIG), 512):
            await resp.write(BIG[i : i + 512])
        await resp.write_eof()
        return resp
    if kind == "missing":
        return web.json_response({"error": "no such file"}, status=404)
    if kind == "meta":
        return web.json_response({"name": "cover.png", "size": len(PNG)})
    raise web.HTTPNotFound()


@pytest_asyncio.fixture(scope="module")
async def files_upstream():
    app = web.Application()
    app.router.add_get("/files/{kind}", _upstream_handler)
    async with on_loopback(app) as url:
        yield url


CAPABILITY = """\
ikanos: "1.0.0-beta5"
info:
  display: Binary files
  description: Images, documents and sounds relayed as bytes.
capability:
  consumes:
    - type: http
      namespace: files
      baseUri: http://127.0.0.1:9
      resources:
        file:
          path: /files/{kind}
          inputParameters:
            kind:
              in: path
          operations:
            get-file:
              method: GET
              outputRawFormat: binary
            get-png-declared:
              method: GET
              outputRawFormat: binary
              outputMediaType: image/png
            get-small:
              method: GET
              outputRawFormat: binary
              maxBinarySize: 1KiB
            get-json:
              method: GET
            get-meta:
              method: GET
              outputMediaType: application/vnd.files.meta+json
  aggregates:
    - namespace: library
      display: Library
      flows:
        cover:
          description: The cover, advertised as WebP whatever the upstream says.
          outputMediaType: image/webp
          call: files.get-png-declared
          with:
            kind: png
  exposes:
    - type: rest
      namespace: files-rest
      port: 18431
      maxBinarySize: 8KiB
      resources:
        file:
          path: /files/{kind}
          operations:
            get:
              method: GET
              call: files.get-file
        declared:
          path: /declared/{kind}
          operations:
            get:
              method: GET
              call: files.get-png-declared
              responseBinary:
                mediaType: image/jpeg
        contract:
          path: /contract/{kind}
          operations:
            get:
              method: GET
              call: files.get-file
              responses:
                "200":
                  description: The document.
                  content:
                    application/pdf:
                      binary: true
                "404":
                  description: No such document.
                  content:
                    application/json:
                      schema:
                        type: object
        small:
          path: /small/{kind}
          operations:
            get:
              method: GET
              call: files.get-small
        cover:
          path: /cover
          operations:
            get:
              method: GET
              ref: library.cover
        meta:
          path: /meta/{kind}
          operations:
            get:
              method: GET
              call: files.get-meta
    - type: mcp
      namespace: files-mcp
      port: 18432
      tools:
        get-file:
          description: A file, as bytes.
          call: files.get-file
          inputParameters:
            kind:
              type: string
              description: png, pdf, wav, untyped, blanks, ten-k
        get-small:
          description: A file under 1 KiB.
          call: files.get-small
          inputParameters:
            kind:
              type: string
              description: which file
        cover:
          description: The cover.
          ref: library.cover
      resources:
        document:
          display: Document
          description: The PDF.
          uri: files://document.pdf
          mimeType: application/pdf
          binary: true
          call: files.get-file
          with:
            kind: pdf
        by-kind:
          display: Any file
          description: A file by kind.
          uri: files://{kind}
          binary: true
          call: files.get-file
        small:
          display: Small file
          description: A file under 1 KiB.
          uri: small://{kind}
          binary: true
          call: files.get-small
      prompts:
        look-at:
          display: Look at a file
          description: Look at a file.
          arguments:
            kind:
              description: png or pdf
          template:
            - role: user
              content: "Describe this file:"
            - role: user
              content: {type: resource, uri: "files://{{kind}}"}
    - type: mcp
      namespace: files-capped
      port: 18434
      maxBinarySize: 2KiB
      tools:
        shaped:
          description: Outputs declared on a binary call are not applied (warned at load).
          call: files.get-file
          inputParameters:
            kind:
              type: string
              description: which file
          outputParameters:
            - type: object
              mapping: $
              properties:
                caption:
                  type: string
                  mapping: $.caption
      resources:
        static:
          display: Static files
          description: Files from a directory, within the adapter's maxBinarySize.
          uri: static://files
          location: file:///./static
"""


@pytest_asyncio.fixture(scope="module")
async def served(files_upstream, tmp_path_factory):
    path = tmp_path_factory.mktemp("binary") / "files.yaml"
    path.write_text(CAPABILITY)
    (path.parent / "static").mkdir()
    (path.parent / "static" / "small.png").write_bytes(PNG)
    (path.parent / "static" / "big.bin").write_bytes(BIG)
    n = await serve_in_memory(
        path, files_upstream, consumes=["files"], adapters=["files-rest", "files-mcp", "files-capped"]
    )
    yield n
    assert await n.stop() == 0


async def _get(n, path: str):
    async with n.http() as http:
        return await http.get(n.urls["files-rest"] + path.lstrip("/"))


# ------------------------------------------------------------------ REST


@pytest.mark.parametrize(
    ("kind", "body", "ctype"),
    [
        ("png", PNG, "image/png"),
        ("pdf", PDF, "application/pdf"),
        ("wav", WAV, "audio/wav"),
        ("untyped", RAW, "application/octet-stream"),  # nothing declared, nothing sent: the default
        ("blanks", BLANKS, "application/octet-stream"),  # whitespace is content, not "no body"
    ],
)
async def test_rest_relays_the_bytes_with_the_upstream_type(served, kind, body, ctype):
    r = await _get(served, f"/files/{kind}")
    assert r.status_code == 200, r.text
    assert r.content == body
    assert r.headers["content-type"] == ctype
    assert r.headers["content-length"] == str(len(body))


async def test_rest_head_gives_the_type_and_length_without_the_bytes(served):
    async with served.http() as http:
        r = await http.head(served.urls["files-rest"] + "files/pdf")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["content-length"] == str(len(PDF))
    assert r.content == b""


async def test_rest_keeps_safe_headers_of_a_binary_answer(served):
    r = await _get(served, "/files/pdf")
    assert r.headers["content-disposition"] == "inline"


async def test_rest_declared_output_media_type_wins_over_upstream_and_contract(served):
    # the upstream says octet-stream, the REST contract says image/jpeg, the operation declares image/png
    r = await _get(served, "/declared/octet")
    assert r.status_code == 200
    assert r.content == PNG
    assert r.headers["content-type"] == "image/png"


async def test_rest_contract_type_wins_over_the_upstream_type(served):
    r = await _get(served, "/contract/octet")  # nothing declared on the operation
    assert r.headers["content-type"] == "application/pdf"
    assert r.content == PNG
    r = await _get(served, "/contract/untyped")
    assert r.headers["content-type"] == "application/pdf"
    assert r.content == RAW


async def test_rest_flow_output_media_type_wins_over_the_operation(served):
    r = await _get(served, "/cover")
    assert r.status_code == 200
    assert r.content == PNG
    assert r.headers["content-type"] == "image/webp"


@pytest.mark.parametrize("mode", ["announced", "chunked"])
async def test_rest_over_the_operation_cap_is_a_problem_and_nothing_partial(served, mode):
    r = await _get(served, f"/small/{mode}")
    assert r.status_code == 502
    assert r.headers["content-type"] == "application/problem+json"
    detail = r.json()["detail"]
    assert "'files.get-small'" in detail
    assert "1KiB (1024 bytes, the operation's maxBinarySize)" in detail
    assert "nothing was relayed" in detail
    assert BIG[:16] not in r.content


async def test_rest_adapter_cap_applies_when_the_operation_has_none(served):
    r = await _get(served, "/files/ten-k")  # 10 KiB over the REST adapter's maxBinarySize 8KiB
    assert r.status_code == 502
    detail = r.json()["detail"]
    assert "'files.get-file'" in detail and "8KiB (8192 bytes, the maxBinarySize of adapter 'files-rest')" in detail


async def test_rest_upstream_error_of_a_binary_operation_is_relayed(served):
    r = await _get(served, "/files/missing")
    assert r.status_code == 404
    assert r.json() == {"error": "no such file"}
    assert r.headers["content-type"].startswith("application/json")


async def test_rest_output_media_type_also_labels_a_relayed_json_answer(served):
    r = await _get(served, "/meta/meta")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.files.meta+json"
    assert r.json() == {"name": "cover.png", "size": len(PNG)}


# ------------------------------------------------------------------ MCP tools


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_mcp_tool_image_audio_and_embedded_blob(served, mode):
    async with served.mcp("files-mcp", mode=mode) as c:
        png = await c.call_tool("get-file", {"kind": "png"})
        wav = await c.call_tool("get-file", {"kind": "wav"})
        pdf = await c.call_tool("get-file", {"kind": "pdf"})
        blanks = await c.call_tool("get-file", {"kind": "blanks"})
    assert not png.is_error and len(png.content) == 1
    assert png.content[0].type == "image"
    assert png.content[0].mime_type == "image/png"
    assert png.content[0].data == _b64(PNG)
    assert wav.content[0].type == "audio" and wav.content[0].mime_type == "audio/wav"
    assert base64.b64decode(wav.content[0].data) == WAV
    assert pdf.content[0].type == "resource"
    blob = pdf.content[0].resource
    assert blob.mime_type == "application/pdf"
    assert blob.blob == _b64(PDF)
    assert blob.uri == "naftiko://files-mcp/tools/get-file/result"
    assert blanks.content[0].type == "resource"  # never read as (blank) text
    assert base64.b64decode(blanks.content[0].resource.blob) == BLANKS


async def test_mcp_tool_flow_media_type_picks_the_block(served):
    async with served.mcp("files-mcp") as c:
        cover = await c.call_tool("cover", {})
    assert cover.content[0].type == "image"
    assert cover.content[0].mime_type == "image/webp"
    assert base64.b64decode(cover.content[0].data) == PNG


async def test_mcp_tool_over_the_cap_is_an_error_naming_operation_and_cap(served):
    async with served.mcp("files-mcp") as c:
        for mode in ("announced", "chunked"):
            r = await c.call_tool("get-small", {"kind": mode})
            assert r.is_error
            assert len(r.content) == 1 and r.content[0].type == "text"
            text = r.content[0].text
            assert "'files.get-small'" in text and "1KiB" in text and "nothing was relayed" in text
        # the MCP adapter declares no cap: the default 10 MiB lets 10 KiB through (REST's 8 KiB does not)
        ok = await c.call_tool("get-file", {"kind": "ten-k"})
    assert not ok.is_error
    assert base64.b64decode(ok.content[0].resource.blob) == TEN_K


# ------------------------------------------------------------------ MCP resources


async def test_mcp_binary_resources_are_exact_blobs(served):
    async with served.mcp("files-mcp") as c:
        listed = {r.uri: r for r in (await c.list_resources()).resources}
        templates = {t.uri_template: t for t in (await c.list_resource_templates()).resource_templates}
        doc = (await c.read_resource("files://document.pdf")).contents
        png = (await c.read_resource("files://png")).contents
        octet = (await c.read_resource("files://untyped")).contents
    assert listed["files://document.pdf"].mime_type == "application/pdf"
    assert templates["files://{kind}"].mime_type is None  # nothing declared: no type is claimed
    assert doc[0].uri == "files://document.pdf"
    assert doc[0].mime_type == "application/pdf"
    assert doc[0].blob == _b64(PDF)
    assert png[0].mime_type == "image/png" and base64.b64decode(png[0].blob) == PNG
    assert octet[0].mime_type == "application/octet-stream" and base64.b64decode(octet[0].blob) == RAW


async def test_mcp_prompt_embeds_a_binary_resource_exactly(served):
    async with served.mcp("files-mcp") as c:
        got = await c.get_prompt("look-at", {"kind": "pdf"})
    embedded = got.messages[1].content
    assert embedded.type == "resource"
    assert embedded.resource.uri == "files://pdf"
    assert embedded.resource.mime_type == "application/pdf"
    assert base64.b64decode(embedded.resource.blob) == PDF


async def test_mcp_binary_resource_over_the_cap_is_an_error(served):
    async with served.mcp("files-mcp") as c:
        with pytest.raises(MCPError) as err:
            await c.read_resource("small://chunked")
    assert "'files.get-small'" in err.value.message and "1KiB" in err.value.message


async def test_mcp_adapter_cap_governs_tools_and_static_files(served):
    async with served.mcp("files-capped") as c:
        tools = {t.name: t for t in (await c.list_tools()).tools}
        shaped = await c.call_tool("shaped", {"kind": "png"})  # 2 KiB cap, PNG is smaller
        over = await c.call_tool("shaped", {"kind": "pdf"})
        small = (await c.read_resource("static://files/small.png")).contents
        with pytest.raises(MCPError) as err:
            await c.read_resource("static://files/big.bin")
    assert tools["shaped"].output_schema is None  # bytes: no structured content is promised
    assert not shaped.is_error
    assert shaped.content[0].type == "image" and base64.b64decode(shaped.content[0].data) == PNG
    assert over.is_error and "2KiB (2048 bytes, the maxBinarySize of adapter 'files-capped')" in over.content[0].text
    assert base64.b64decode(small[0].blob) == PNG
    assert "too large to serve (4096 bytes; the limit is 2048)" in err.value.message


async def test_dry_run_describes_the_call_as_json(files_upstream, tmp_path):
    path = tmp_path / "files.yaml"
    path.write_text(CAPABILITY)
    (tmp_path / "static").mkdir()
    n = await serve_in_memory(path, files_upstream, consumes=["files"], adapters=["files-rest"], extra=["--dry-run"])
    try:
        async with n.http() as http:
            r = await http.get(n.urls["files-rest"] + "declared/png")
    finally:
        assert await n.stop() == 0
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"  # not image/png: it is a description
    assert r.json()["dryRun"] is True and r.json()["url"].endswith("/files/png")


# ------------------------------------------------------------------ load-time checks


def _validate(tmp_path, text: str):
    (tmp_path / "static").mkdir(exist_ok=True)
    (tmp_path / "static" / "small.png").write_bytes(PNG)
    path = tmp_path / "cap.yaml"
    path.write_text(text)
    return run_cli(["validate", str(path)])


def _with(old: str, new: str) -> str:
    assert CAPABILITY.count(old) == 1, old
    return CAPABILITY.replace(old, new)


def test_the_capability_is_valid_with_two_expected_warnings(tmp_path):
    ran = _validate(tmp_path, CAPABILITY)
    assert ran.returncode == 0, ran.stderr
    assert "valid with 2 warning(s)" in ran.stdout, ran.stdout + ran.stderr
    assert "outputParameters are not applied" in ran.stderr  # the shaped tool
    assert "is not of type 'string' (schema, at $.capability.exposes[1].prompts.look-at" in ran.stderr  # EXT embed


@pytest.mark.parametrize("size", ["10MB", "ten", "0B", "2GiB"])
def test_bad_max_binary_size_is_a_positioned_error(tmp_path, size):
    ran = _validate(tmp_path, _with("maxBinarySize: 1KiB", f"maxBinarySize: {size}"))
    assert ran.returncode == 1
    assert "cap.yaml:27:15: maxBinarySize" in ran.stderr, ran.stderr


def test_media_types_that_no_header_can_carry_are_positioned_errors(tmp_path):
    lines = CAPABILITY.splitlines()
    text = _with("              outputMediaType: image/png\n", "              outputMediaType: png\n")
    ran = _validate(tmp_path, text)
    line = lines.index("              outputMediaType: image/png") + 1
    assert f"cap.yaml:{line}:15: outputMediaType 'png' is not a media type" in ran.stderr, ran.stderr
    ran = _validate(tmp_path, _with("                    application/pdf:\n", "                    pdf:\n"))
    line = lines.index("                    application/pdf:") + 1
    assert f"cap.yaml:{line}:21: pdf 'pdf' is not a media type" in ran.stderr, ran.stderr
    ran = _validate(tmp_path, _with("outputMediaType: image/webp", "outputMediaType: webp"))
    assert "outputMediaType 'webp' is not a media type" in ran.stderr


def test_max_binary_size_on_a_text_operation_is_warned_about(tmp_path):
    text = _with("            get-json:\n              method: GET\n", "            get-json:\n              method: GET\n"
                 "              maxBinarySize: 1KiB\n")
    ran = _validate(tmp_path, text)
    assert ran.returncode == 0
    assert "warning: maxBinarySize applies to outputRawFormat: binary only; ignored" in ran.stderr


def test_binary_contract_on_a_text_operation_is_an_error(tmp_path):
    text = _with(
        "              call: files.get-png-declared\n              responseBinary:",
        "              call: files.get-json\n              responseBinary:",
    )
    ran = _validate(tmp_path, text)
    assert "responseBinary declares binary content (image/jpeg), which needs a 'call' to a consumed operation" in (
        ran.stderr
    )


def test_binary_resource_on_a_text_operation_is_an_error(tmp_path):
    text = _with(
        "          binary: true\n          call: files.get-file\n          with:",
        "          binary: true\n          call: files.get-json\n          with:",
    )
    ran = _validate(tmp_path, text)
    assert "resource 'document': binary: true needs a 'call' to a consumed operation" in ran.stderr


def test_output_parameters_on_a_binary_call_are_warned_about(tmp_path):
    ran = _validate(tmp_path, CAPABILITY)
    assert ran.returncode == 0, ran.stderr
    line = CAPABILITY.splitlines().index("          outputParameters:") + 1
    assert (
        f"cap.yaml:{line}:11: warning: call 'files.get-file' answers binary content (outputRawFormat: binary): "
        "outputParameters are not applied" in ran.stderr
    )


def test_binary_call_in_steps_or_pages_is_an_error(tmp_path):
    text = _with(
        "              call: files.get-small\n",
        "              steps:\n                fetch:\n                  type: call\n"
        "                  call: files.get-small\n",
    )
    ran = _validate(tmp_path, text)
    assert "step 'fetch': call 'files.get-small' answers binary content (outputRawFormat: binary), which steps" in (
        ran.stderr
    )
    ran = _validate(tmp_path, _with("              call: files.get-small\n", "              call: files.get-small\n"
                                    "              pagination: true\n"))
    assert "call 'files.get-small' answers binary content: no pages" in ran.stderr
