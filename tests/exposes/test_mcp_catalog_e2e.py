"""End to end: MCP resources (static files, dynamic, templates), prompts, binary tool results and
capability advertisement, through the official client in both protocol eras."""

from __future__ import annotations

import base64

import pytest
import pytest_asyncio
from mcp import MCPError

from conftest import FIXTURES, Reply
from harness import serve_in_memory

ADAPTERS = ["catalog-mcp", "catalog-tools", "catalog-prompts"]
MODES = ["legacy", "auto"]
DOCS = FIXTURES / "catalog" / "docs"
SECRET = "TOP-SECRET"
NOT_FOUND = -32602


@pytest_asyncio.fixture(scope="module")
async def served(upstream):
    n = await serve_in_memory(FIXTURES / "mcp-catalog.yaml", upstream.url, consumes=["catalog-api"], adapters=ADAPTERS)
    yield n
    assert await n.stop() == 0


def client(n, mode, adapter="catalog-mcp"):
    return n.mcp(n.urls[adapter], mode=mode)


# ------------------------------------------------------------------ capabilities


@pytest.mark.parametrize("mode", MODES)
async def test_capabilities_advertise_only_declared_groups(served, mode):
    async with client(served, mode) as c:
        caps = c.server_capabilities
        assert caps.tools is not None and caps.resources is not None and caps.prompts is not None
    async with client(served, mode, "catalog-tools") as c:
        caps = c.server_capabilities
        assert caps.tools is not None
        assert caps.resources is None and caps.prompts is None
        with pytest.raises(MCPError) as err:
            await c.list_prompts()
        assert err.value.code == -32601
    async with client(served, mode, "catalog-prompts") as c:
        caps = c.server_capabilities
        assert caps.prompts is not None
        assert caps.tools is None and caps.resources is None
        hello = await c.get_prompt("hello", {"who": "Ada"})
        assert hello.messages[0].content.text == "Say hello to Ada."


# ------------------------------------------------------------------ static resources


@pytest.mark.parametrize("mode", MODES)
async def test_static_resources_listed(served, mode):
    async with client(served, mode) as c:
        listed = {r.uri: r for r in (await c.list_resources()).resources}
    assert set(listed) == {
        "docs://guides/intro.md",
        "docs://guides/pixel.png",
        "docs://guides/guides/getting%20started.txt",
        "config://settings",
        "status://service",
    }  # no hidden file, no link leading out of the directory, no template
    assert listed["docs://guides/intro.md"].mime_type == "text/markdown"
    assert listed["docs://guides/intro.md"].title == "Guides: intro.md"
    assert listed["docs://guides/pixel.png"].mime_type == "image/png"
    assert listed["config://settings"].name == "settings"
    assert listed["config://settings"].mime_type == "application/json"
    assert listed["status://service"].description == "The upstream service status."


@pytest.mark.parametrize("mode", MODES)
async def test_static_text_and_blob_read(served, mode):
    async with client(served, mode) as c:
        intro = (await c.read_resource("docs://guides/intro.md")).contents
        png = (await c.read_resource("docs://guides/pixel.png")).contents
        spaced = (await c.read_resource("docs://guides/guides/getting%20started.txt")).contents
        settings = (await c.read_resource("config://settings")).contents
    assert intro[0].text == (DOCS / "intro.md").read_text()
    assert "{{topic}}" in intro[0].text  # files are served as they are, never rendered
    assert intro[0].mime_type == "text/markdown"
    assert base64.b64decode(png[0].blob) == (DOCS / "pixel.png").read_bytes()
    assert png[0].mime_type == "image/png"
    assert spaced[0].text == "Step 1: read the intro.\n"
    assert settings[0].text.strip() == '{"theme": "dark", "pageSize": 20}'
    assert settings[0].mime_type == "application/json"


TRAVERSALS = [
    "docs://guides/../secret.txt",
    "docs://guides/%2e%2e/secret.txt",
    "docs://guides/..%2Fsecret.txt",
    "docs://guides/guides/../../secret.txt",
    "docs://guides/escape.txt",  # a link to ../secret.txt
    "docs://guides/parent-link/secret.txt",  # a link to the parent directory
    "docs://guides/.hidden-notes.txt",
    "docs://guides/",
    "docs://guides",
    "file:///etc/passwd",
]


@pytest.mark.parametrize("mode", MODES)
async def test_traversal_and_unknown_uris_are_refused(served, mode):
    async with client(served, mode) as c:
        for uri in TRAVERSALS:
            with pytest.raises(MCPError) as err:
                await c.read_resource(uri)
            assert err.value.code == NOT_FOUND, uri
            assert "Resource not found" in err.value.message
            assert SECRET not in str(err.value.message) + str(err.value.data)


# ------------------------------------------------------------------ dynamic resources


@pytest.mark.parametrize("mode", MODES)
async def test_resource_template_reads_upstream_with_captured_param(served, fresh_upstream, mode):
    async with client(served, mode) as c:
        templates = (await c.list_resource_templates()).resource_templates
        assert {t.uri_template: t.name for t in templates} == {
            "weather://{city}/current": "city-weather",
            "photo://{photo_id}": "photo",  # {{photo_id}} is listed in RFC 6570 form
        }
        fresh_upstream.reply("/cities/paris/weather", Reply(body=b'{"temp": 21, "sky": "clear"}'))
        contents = (await c.read_resource("weather://paris/current")).contents
        assert fresh_upstream.last.raw_path == "/cities/paris/weather"
        assert contents[0].uri == "weather://paris/current"
        assert contents[0].mime_type == "application/json"
        assert contents[0].text == '{"temp": 21, "sky": "clear"}'
        # the captured value is percent-decoded, then encoded again as one path segment upstream
        await c.read_resource("weather://S%C3%A3o%20Paulo%2FSP/current")
        assert fresh_upstream.last.raw_path == "/cities/S%C3%A3o%20Paulo%2FSP/weather"
        sent = len(fresh_upstream.requests)
        for dots in ("weather://../current", "weather://%2e%2e/current", "weather://./current"):
            with pytest.raises(MCPError) as err:
                await c.read_resource(dots)
            assert err.value.code == NOT_FOUND
        assert len(fresh_upstream.requests) == sent  # nothing reached the upstream


@pytest.mark.parametrize("mode", MODES)
async def test_fixed_dynamic_resource_and_upstream_errors(served, fresh_upstream, mode):
    async with client(served, mode) as c:
        contents = (await c.read_resource("status://service")).contents
        assert contents[0].text == '{"seen_path":"/status"}'
        assert fresh_upstream.last.raw_path == "/status"
        fresh_upstream.reply("/cities/atlantis/weather", Reply(status=404, body=b'{"error": "no such city"}'))
        with pytest.raises(MCPError) as err:
            await c.read_resource("weather://atlantis/current")
        assert err.value.code == NOT_FOUND
        fresh_upstream.reply("/cities/down/weather", Reply(status=503, body=b"maintenance"))
        with pytest.raises(MCPError) as err:
            await c.read_resource("weather://down/current")
        assert err.value.code == -32603
        assert "upstream returned HTTP 503: maintenance" in err.value.message


@pytest.mark.parametrize("mode", MODES)
async def test_binary_dynamic_resource_is_a_blob(served, fresh_upstream, mode):
    png = (DOCS / "pixel.png").read_bytes()
    fresh_upstream.reply("/photos/7", Reply(body=png, content_type="image/png"))
    async with client(served, mode) as c:
        contents = (await c.read_resource("photo://7")).contents
    assert contents[0].mime_type == "image/png"
    assert base64.b64decode(contents[0].blob) == png


# ------------------------------------------------------------------ prompts


@pytest.mark.parametrize("mode", MODES)
async def test_prompts_listed(served, mode):
    async with client(served, mode) as c:
        prompts = {p.name: p for p in (await c.list_prompts()).prompts}
    assert set(prompts) == {"summarize", "review", "briefing"}
    summarize = prompts["summarize"]
    assert summarize.title == "Summarize"
    assert summarize.description == "Summarize a topic for an audience."
    assert [(a.name, a.required) for a in summarize.arguments] == [("topic", True), ("audience", False)]


@pytest.mark.parametrize("mode", MODES)
async def test_prompt_placeholders_in_one_pass(served, mode):
    async with client(served, mode) as c:
        got = await c.get_prompt("summarize", {"topic": "{{audience}} and {audience}", "audience": "devs"})
        assert got.description == "Summarize a topic for an audience."
        assert [m.role for m in got.messages] == ["user", "assistant"]
        # both spellings substituted; the value's own placeholders stay literal; unknown names kept
        assert got.messages[0].content.text == (
            "Summarize {{audience}} and {audience} for devs. Keep {{ unknown }} and {other} as written."
        )
        assert got.messages[1].content.text == "A summary of {{audience}} and {audience} for devs:"
        optional = await c.get_prompt("summarize", {"topic": "tides"})
        assert optional.messages[1].content.text == "A summary of tides for :"


@pytest.mark.parametrize("mode", MODES)
async def test_prompt_missing_required_argument(served, mode):
    async with client(served, mode) as c:
        with pytest.raises(MCPError) as err:
            await c.get_prompt("summarize", {"audience": "devs"})
        assert err.value.code == -32602
        assert "missing required argument 'topic'" in err.value.message
        with pytest.raises(MCPError) as err:
            await c.get_prompt("review", {})
        assert "'language', 'code'" in err.value.message
        with pytest.raises(MCPError) as err:
            await c.get_prompt("no-such-prompt", {})
        assert err.value.code == -32602 and "Unknown prompt" in err.value.message


@pytest.mark.parametrize("mode", MODES)
async def test_prompt_from_file(served, mode):
    async with client(served, mode) as c:
        got = await c.get_prompt("review", {"language": "Python", "code": "print({x})"})
    assert len(got.messages) == 1 and got.messages[0].role == "user"
    assert got.messages[0].content.text == "Review this Python code for bugs and style:\n\nprint({x})"


@pytest.mark.parametrize("mode", MODES)
async def test_prompt_with_call_sees_result(served, fresh_upstream, mode):
    fresh_upstream.reply("/briefing/tides", Reply(body=b'{"headline": "Spring tides", "points": ["high", "low"]}'))
    async with client(served, mode) as c:
        got = await c.get_prompt("briefing", {"topic": "tides"})
    assert fresh_upstream.last.raw_path == "/briefing/tides"
    assert got.messages[0].content.text == (
        'Brief me on tides. Latest: Spring tides (high). All: {"headline":"Spring tides","points":["high","low"]}'
    )


# ------------------------------------------------------------------ binary tool results


@pytest.mark.parametrize("mode", MODES)
async def test_binary_tool_results(served, fresh_upstream, mode):
    png = (DOCS / "pixel.png").read_bytes()
    fresh_upstream.reply("/photos/1", Reply(body=png, content_type="image/png"))
    fresh_upstream.reply("/files/song", Reply(body=b"OggS\x00\x02fake-audio", content_type="audio/ogg"))
    fresh_upstream.reply("/files/doc", Reply(body=b"%PDF-1.7 fake", content_type="application/pdf"))
    fresh_upstream.reply("/files/raw", Reply(body=b"\xff\xfe\x00binary", content_type=""))
    fresh_upstream.reply("/files/note", Reply(body="café\n".encode(), content_type="text/plain; charset=utf-8"))
    async with client(served, mode) as c:
        image = await c.call_tool("get-photo", {"photo_id": "1"})
        audio = await c.call_tool("get-file", {"file_id": "song"})
        pdf = await c.call_tool("get-file", {"file_id": "doc"})
        raw = await c.call_tool("get-file", {"file_id": "raw"})
        note = await c.call_tool("get-file", {"file_id": "note"})
    assert not image.is_error
    assert image.content[0].type == "image"
    assert image.content[0].mime_type == "image/png"
    assert base64.b64decode(image.content[0].data) == png
    assert image.structured_content is None
    assert audio.content[0].type == "audio" and audio.content[0].mime_type == "audio/ogg"
    assert base64.b64decode(audio.content[0].data) == b"OggS\x00\x02fake-audio"
    assert pdf.content[0].type == "resource"
    assert pdf.content[0].resource.mime_type == "application/pdf"
    assert base64.b64decode(pdf.content[0].resource.blob) == b"%PDF-1.7 fake"
    assert pdf.content[0].resource.uri == "naftiko://catalog-mcp/tools/get-file/result"
    assert raw.content[0].type == "resource"
    assert base64.b64decode(raw.content[0].resource.blob) == b"\xff\xfe\x00binary"
    assert note.content[0].type == "text" and note.content[0].text == "café\n"


async def test_binary_tool_result_too_large(served, fresh_upstream):
    fresh_upstream.reply("/photos/huge", Reply(body=b"\x89PNG" + b"\x00" * (5 * 1024 * 1024), content_type="image/png"))
    async with client(served, "legacy") as c:
        result = await c.call_tool("get-photo", {"photo_id": "huge"})
    assert result.is_error
    assert "too large" in result.content[0].text


# ------------------------------------------------------------------ load-time checks

CATALOG_BASE = """\
naftiko: 1.0.0-alpha2
info: {label: T, description: test}
capability:
  consumes:
  - type: http
    namespace: up
    baseUri: https://api.example.com
    resources:
    - name: items
      path: /items/{id}
      operations:
      - {name: get-item, method: GET}
  exposes:
  - type: mcp
    namespace: m
    port: 9400
    tools:
    - {name: t, description: d, call: up.get-item}
"""


def _plan(tmp_path, extra: str):
    from naftiko.document.loader import load
    from naftiko.engine.plan import Options, compile_plan

    path = tmp_path / "cap.yaml"
    path.write_text(CATALOG_BASE + extra)
    return compile_plan(load(str(path)), Options(environ={}))


def _errors(tmp_path, extra: str) -> list[str]:
    from naftiko.errors import LoadError

    try:  # refused, or (tolerant mode) served with the broken resources/prompts left out
        plan = _plan(tmp_path, extra)
    except LoadError as exc:
        return [str(d) for d in exc.diagnostics]
    assert plan.left_out
    return [str(d) for d in plan.left_out]


def test_relative_location_resolves_against_the_capability_file(tmp_path, monkeypatch):
    (tmp_path / "kb" / "sub").mkdir(parents=True)
    (tmp_path / "kb" / "sub" / "a b.txt").write_text("x")
    monkeypatch.chdir("/")
    plan = _plan(tmp_path, """\
    resources:
    - {name: kb, label: KB, uri: 'kb://root/', description: d, location: 'file:///./kb'}
""")
    [entry] = plan.adapters[0].resources
    assert entry.uri == "kb://root/sub/a%20b.txt"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("    resources:\n    - {name: r, label: L, uri: 'x://{+path}', description: d, call: up.get-item}\n",
         "not a simple {param} expression"),
        ("    resources:\n    - {name: r, label: L, uri: 'x://{a}/{a}', description: d, call: up.get-item}\n",
         "appears twice"),
        ("    resources:\n    - {name: r, label: L, uri: 'x://r', description: d, location: 'file:///./nowhere'}\n",
         "does not exist"),
        ("    resources:\n    - {name: r, label: L, uri: 'x://r', description: d, call: up.nope}\n",
         "has no operation 'nope'"),
        ("    resources:\n    - {name: r, label: L, uri: 'x://r', description: d, call: up.get-item}\n"
         "    - {name: s, label: L, uri: 'x://r', description: d, call: up.get-item}\n",
         "already served"),
        ("    prompts:\n    - {name: p, label: L, description: d, arguments: [{name: a, description: d}]}\n",
         "needs a 'template' or a 'location'"),
        ("    prompts:\n    - {name: p, label: L, description: d, location: 'file:///./missing.md',"
         " arguments: [{name: a, description: d}]}\n",
         "does not exist"),
        ("    prompts:\n    - {name: p, label: L, description: d, call: up.get-item,"
         " arguments: [{name: result, description: d}], template: [{role: user, content: '{{result}}'}]}\n",
         "would hide the call result"),
    ],
)
def test_catalog_load_errors(tmp_path, extra, message):
    errors = _errors(tmp_path, extra)
    assert any(message in e for e in errors), errors
    assert all(e.startswith(str(tmp_path / "cap.yaml") + ":") for e in errors)
