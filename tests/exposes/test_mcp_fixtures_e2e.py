"""End to end: the conformance suite's reference fixtures (bench/conformance/everything.yml, the file
bench/conformance.sh serves) through the official client in both protocol eras, with the fixture
upstream (bench/conformance/upstream.py) on loopback; and the adapter behaviour they needed:
resources embedded in prompt messages (EXT) and ``completion/complete``."""

from __future__ import annotations

import base64
import importlib.util
import json
import threading

import pytest
import pytest_asyncio
from mcp import MCPError

from conftest import ROOT
from harness import serve_in_memory

BENCH = ROOT / "bench" / "conformance"
FIXTURE_FILE = BENCH / "everything.yml"
PIXEL = (BENCH / "files" / "pixel.png").read_bytes()
TONE = (BENCH / "files" / "tone.wav").read_bytes()
ADAPTER = "conformance-fixtures"
MODES = ["legacy", "auto"]
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603


@pytest.fixture(scope="module")
def fixture_upstream():
    """bench/conformance/upstream.py's server, on a free loopback port in a thread."""
    spec = importlib.util.spec_from_file_location("conformance_upstream", BENCH / "upstream.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    server = module.ThreadingHTTPServer(("127.0.0.1", 0), module.Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest_asyncio.fixture(scope="module")
async def served(fixture_upstream):
    n = await serve_in_memory(FIXTURE_FILE, fixture_upstream, consumes=["fixtures"], adapters=[ADAPTER])
    yield n
    assert await n.stop() == 0


def client(n, mode):
    return n.mcp(n.urls[ADAPTER], mode=mode)


# ------------------------------------------------------------------ tools


@pytest.mark.parametrize("mode", MODES)
async def test_fixture_tools_relay_text_image_audio_and_blob(served, mode):
    async with client(served, mode) as c:
        names = {t.name for t in (await c.list_tools()).tools}
        assert {"test_simple_text", "test_image_content", "test_audio_content", "test_embedded_resource"} <= names
        [text] = (await c.call_tool("test_simple_text", {})).content
        assert (text.type, text.text) == ("text", "This is a simple text response for testing.")
        [image] = (await c.call_tool("test_image_content", {})).content
        assert (image.type, image.mime_type, base64.b64decode(image.data)) == ("image", "image/png", PIXEL)
        [audio] = (await c.call_tool("test_audio_content", {})).content
        assert (audio.type, audio.mime_type, base64.b64decode(audio.data)) == ("audio", "audio/wav", TONE)
        [embedded] = (await c.call_tool("test_embedded_resource", {})).content
        assert embedded.type == "resource"
        assert embedded.resource.mime_type == "application/octet-stream"
        assert embedded.resource.uri == f"naftiko://{ADAPTER}/tools/test_embedded_resource/result"
        assert base64.b64decode(embedded.resource.blob) == bytes(range(256))


@pytest.mark.parametrize("mode", MODES)
async def test_fixture_error_tool_is_an_error_result(served, mode):
    async with client(served, mode) as c:
        result = await c.call_tool("test_error_handling", {})
    assert result.is_error is True
    assert result.content[0].text == (
        "upstream returned HTTP 500: This tool intentionally returns an error for testing"
    )


@pytest.mark.parametrize("mode", MODES)
async def test_fixture_custom_header_tool_declares_its_header(served, mode):
    async with client(served, mode) as c:
        tool = next(t for t in (await c.list_tools()).tools if t.name == "test_custom_header")
        assert tool.input_schema["properties"]["region"]["x-mcp-header"] == "Region"
        result = await c.call_tool("test_custom_header", {"region": "eu-west"})
    assert json.loads(result.content[0].text) == {"region": "eu-west"}


@pytest.mark.parametrize("mode", MODES)
async def test_fixture_greet_relays_the_upstream_greeting(served, mode):
    async with client(served, mode) as c:
        result = await c.call_tool("greet", {"name": "sep-2243"})
    assert [b.text for b in result.content] == ["Hello, sep-2243!"]


# ------------------------------------------------------------------ resources


@pytest.mark.parametrize("mode", MODES)
async def test_fixture_resources_and_template(served, mode):
    async with client(served, mode) as c:
        listed = {r.uri for r in (await c.list_resources()).resources}
        assert {"test://static-text", "test://static-binary", "test://watched-resource"} <= listed
        [template] = (await c.list_resource_templates()).resource_templates
        assert template.uri_template == "test://template/{id}/data"
        [text] = (await c.read_resource("test://static-text")).contents
        assert (text.mime_type, text.text) == ("text/plain", "This is the content of the static text resource.\n")
        [blob] = (await c.read_resource("test://static-binary")).contents
        assert (blob.mime_type, base64.b64decode(blob.blob)) == ("image/png", PIXEL)
        [data] = (await c.read_resource("test://template/123/data")).contents
    assert data.mime_type == "application/json"
    assert json.loads(data.text) == {"id": "123", "templateTest": True, "data": "Data for ID: 123"}


# ------------------------------------------------------------------ prompts


@pytest.mark.parametrize("mode", MODES)
async def test_fixture_prompts_text_and_arguments(served, mode):
    async with client(served, mode) as c:
        names = {p.name for p in (await c.list_prompts()).prompts}
        assert names == {
            "test_simple_prompt",
            "test_prompt_with_arguments",
            "test_prompt_with_embedded_resource",
            "test_prompt_with_image",
        }
        simple = await c.get_prompt("test_simple_prompt")
        assert [(m.role, m.content.text) for m in simple.messages] == [("user", "This is a simple prompt for testing.")]
        args = await c.get_prompt("test_prompt_with_arguments", {"arg1": "hello", "arg2": "world"})
    assert args.messages[0].content.text == "Prompt with arguments: arg1='hello', arg2='world'"


@pytest.mark.parametrize("mode", MODES)
async def test_prompt_embeds_the_resource_its_argument_names(served, mode):
    async with client(served, mode) as c:
        got = await c.get_prompt("test_prompt_with_embedded_resource", {"resourceUri": "test://example-resource"})
        first, second = got.messages
        assert (first.role, first.content.type) == ("user", "resource")
        assert first.content.resource.uri == "test://example-resource"
        assert first.content.resource.mime_type == "text/plain"
        assert first.content.resource.text == "Embedded resource content for testing.\n"
        assert second.content.text == "Please process the embedded resource above."
        # a template match is read as resources/read reads it: the unit runs with the captured id
        got = await c.get_prompt("test_prompt_with_embedded_resource", {"resourceUri": "test://template/7/data"})
        assert json.loads(got.messages[0].content.resource.text)["data"] == "Data for ID: 7"
        # a binary resource is embedded as a blob
        got = await c.get_prompt("test_prompt_with_embedded_resource", {"resourceUri": "test://static-binary"})
        assert base64.b64decode(got.messages[0].content.resource.blob) == PIXEL


@pytest.mark.parametrize("mode", MODES)
async def test_prompt_embedding_an_unknown_uri_is_resource_not_found(served, mode):
    async with client(served, mode) as c:
        with pytest.raises(MCPError) as err:
            await c.get_prompt("test_prompt_with_embedded_resource", {"resourceUri": "test://nowhere"})
        assert err.value.code == INVALID_PARAMS
        assert "Resource not found: test://nowhere" in err.value.message
        with pytest.raises(MCPError) as err:  # the argument is still required
            await c.get_prompt("test_prompt_with_embedded_resource", {})
        assert err.value.code == INVALID_PARAMS
        assert "missing required argument 'resourceUri'" in err.value.message


@pytest.mark.parametrize("mode", MODES)
async def test_prompt_with_image_holds_the_png(served, mode):
    async with client(served, mode) as c:
        got = await c.get_prompt("test_prompt_with_image")
    image, text = got.messages
    assert (image.content.type, image.content.mime_type) == ("image", "image/png")
    assert base64.b64decode(image.content.data) == PIXEL
    assert text.content.text == "Please analyze the image above."


# ------------------------------------------------------------------ completion


@pytest.mark.parametrize("mode", MODES)
async def test_completion_offers_declared_values_by_prefix(served, mode):
    from mcp_types import PromptReference, ResourceTemplateReference

    async with client(served, mode) as c:
        assert c.server_capabilities.completions is not None
        prompt = PromptReference(name="test_prompt_with_arguments")
        done = await c.complete(prompt, {"name": "arg1", "value": "PAR"})
        assert (done.completion.values, done.completion.total, done.completion.has_more) == (
            ["paris", "park", "party"],
            3,
            False,
        )
        assert (await c.complete(prompt, {"name": "arg1", "value": "park"})).completion.values == ["park"]
        assert (await c.complete(prompt, {"name": "arg1", "value": "test"})).completion.values == []
        assert (await c.complete(prompt, {"name": "arg2", "value": ""})).completion.values == []  # none declared
        template = ResourceTemplateReference(uri="test://template/{id}/data")
        assert (await c.complete(template, {"name": "id", "value": "1"})).completion.values == []
        for ref, argument, message in [
            (PromptReference(name="nope"), "arg1", "Unknown prompt: nope"),
            (prompt, "arg3", "has no argument 'arg3'"),
            (ResourceTemplateReference(uri="test://other/{id}"), "id", "Unknown resource template"),
            (template, "name", "has no placeholder 'name'"),
        ]:
            with pytest.raises(MCPError) as err:
                await c.complete(ref, {"name": argument, "value": ""})
            assert err.value.code == INVALID_PARAMS
            assert message in err.value.message


# ------------------------------------------------------------------ the extension, alone

SMALL = """\
naftiko: 1.0.0-alpha2
info: {label: Small, description: Embedded resources and completion values, tags: [t], created: '2026-12-07'}
capability:
  exposes:
    - type: mcp
      namespace: small
      port: 9999
      description: d
      resources:
        - {name: note, label: Note, uri: 'note://a', description: d, location: 'file:///./note.txt'}
        - {name: pic, label: Pic, uri: 'pic://a', description: d, location: 'file:///./pic.png'}
      prompts:
{prompts}
"""


def _write(tmp_path, prompts: str):
    (tmp_path / "note.txt").write_text("a note")
    (tmp_path / "pic.png").write_bytes(PIXEL)
    path = tmp_path / "small.yaml"
    path.write_text(SMALL.replace("{prompts}", prompts))
    return path


def _errors(tmp_path, prompts: str) -> list[str]:
    from naftiko.document.loader import load
    from naftiko.engine.plan import Options, compile_plan
    from naftiko.errors import LoadError

    try:
        plan = compile_plan(load(str(_write(tmp_path, prompts))), Options(environ={}))
    except LoadError as exc:
        return [str(d) for d in exc.diagnostics]
    return [str(d) for d in plan.left_out]


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        (
            "        - {name: p, description: d, template: [{role: user, content: {type: video, uri: 'note://a'}}]}",
            "message content must be a string or {type: resource|image|audio, uri: ...}",
        ),
        (
            "        - {name: p, description: d, template: [{role: user, content: {type: image}}]}",
            "message content must be a string or",
        ),
        (
            "        - {name: p, description: d, template: [{role: user, content: {type: resource, uri: 'note://b'}}]}",
            "'note://b' names no resource of this adapter",
        ),
        (
            "        - {name: p, description: d, template: [{role: user, content: {type: image, uri: 'note://a'}}]}",
            "resource 'note://a' is text/plain, not an image file",
        ),
        (
            "        - {name: p, description: d, template: [{role: user, content: {type: audio, uri: 'pic://a'}}]}",
            "resource 'pic://a' is image/png, not an audio file",
        ),
        (
            "        - {name: p, description: d, arguments: [{name: a, description: d, values: [1, 2]}],"
            " template: [{role: user, content: '{{a}}'}]}",
            "argument 'a': 'values' must be a list of strings",
        ),
    ],
)
def test_embedded_content_and_values_checked_at_load(tmp_path, prompt, message):
    errors = _errors(tmp_path, prompt)
    assert any(message in e for e in errors), errors
    assert all("small.yaml:" in e for e in errors)  # positioned in the file


async def test_embedding_the_wrong_media_type_at_request_time(tmp_path):
    from mcp_types import PromptReference

    many = ", ".join(f"v{i:03d}" for i in range(150))
    path = _write(
        tmp_path,
        "        - {name: show, description: d, arguments: [{name: uri, description: d, values: [" + many + "]}],"
        " template: [{role: user, content: {type: image, uri: '{{uri}}'}}]}",
    )
    n = await serve_in_memory(path, adapters=["small"])
    try:
        async with n.mcp(n.urls["small"], mode="auto") as c:
            got = await c.get_prompt("show", {"uri": "pic://a"})
            assert base64.b64decode(got.messages[0].content.data) == PIXEL
            with pytest.raises(MCPError) as err:  # a text resource is not an image
                await c.get_prompt("show", {"uri": "note://a"})
            assert err.value.code == INTERNAL_ERROR
            assert err.value.message == "prompt 'show': resource note://a is text/plain, not an image file"
            done = (await c.complete(PromptReference(name="show"), {"name": "uri", "value": "v"})).completion
            assert (len(done.values), done.total, done.has_more) == (100, 150, True)
            assert done.values[0] == "v000"
            assert (await c.list_prompts()).prompts[0].arguments[0].name == "uri"
    finally:
        assert await n.stop() == 0


async def test_completion_is_not_offered_without_declared_values(tmp_path):
    path = _write(
        tmp_path,
        "        - {name: p, description: d, arguments: [{name: a, description: d}],"
        " template: [{role: user, content: '{{a}}'}]}",
    )
    n = await serve_in_memory(path, adapters=["small"])
    try:
        for mode in MODES:
            async with n.mcp(n.urls["small"], mode=mode) as c:
                assert c.server_capabilities.completions is None
                assert c.server_capabilities.prompts is not None
                with pytest.raises(MCPError) as err:
                    await c.complete({"type": "ref/prompt", "name": "p"}, {"name": "a", "value": ""})
                assert err.value.code == -32601
    finally:
        assert await n.stop() == 0
