"""End to end: orchestrated mode (call, lookup and script steps, mappings, orchestrated
outputs), aggregates with ref, simple-mode nested shaping, request body templates and mock
mode — over REST and MCP against a fake catalog upstream."""

from __future__ import annotations

import orjson
import pytest
import pytest_asyncio

from conftest import FIXTURES, Reply
from harness import run_cli, serve_in_memory
from naftiko import cli

BOOK = {"title": 'Dune "1965"', "pages": 412, "authors": [{"id": "a1"}, {"id": "a3"}]}
AUTHORS = [
    {"id": "a1", "fullName": "Frank Herbert", "country": "US", "born": 1920},
    {"id": "a2", "fullName": "Ursula K. Le Guin", "country": "US", "born": 1929},
    {"id": "a3", "fullName": "Brian Herbert", "country": "US", "born": 1947},
]
TOKEN = "catalog-token-77"
EXPECTED = {
    "title": 'Dune "1965"',
    "authors": [{"name": "Frank Herbert", "country": "US"}, {"name": "Brian Herbert", "country": "US"}],
    "stats": {"author_count": 2, "label": 'Dune "1965" (412 pages)'},
}


@pytest_asyncio.fixture(scope="module")
async def library(upstream):
    n = await serve_in_memory(FIXTURES / "library.yaml", upstream.url, consumes=["catalog"], adapters=["library-rest", "library-mcp"], env={"CATALOG_TOKEN": TOKEN})
    yield n
    assert await n.stop() == 0


@pytest.fixture
def catalog(fresh_upstream):
    fresh_upstream.reply("/books/978-0441", Reply(200, orjson.dumps(BOOK)))
    fresh_upstream.reply("/authors", Reply(200, orjson.dumps(AUTHORS)))
    return fresh_upstream


async def test_rest_ref_runs_steps_lookup_and_mappings(library, catalog):
    async with library.http() as http:
        r = await http.get(library.urls["library-rest"] + "books/978-0441")
    assert r.status_code == 200, r.text
    assert r.json() == EXPECTED
    assert [rec.raw_path for rec in catalog.requests] == ["/books/978-0441", "/authors"]
    assert all(rec.headers["authorization"] == f"Bearer {TOKEN}" for rec in catalog.requests)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_mcp_ref_tool_from_aggregate(library, catalog, mode):
    async with library.mcp(library.urls["library-mcp"], mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        tool = tools["book-with-authors"]
        assert tool.description == "A book with its authors resolved by name and country."
        assert tool.input_schema["required"] == ["isbn"]
        # semantics safe + idempotent → read-only, not destructive, idempotent
        assert (tool.annotations.read_only_hint, tool.annotations.destructive_hint, tool.annotations.idempotent_hint) == (True, False, True)
        # the orchestrated outputs type the whole result, so the tool declares it (reference §7)
        schema = tool.output_schema
        assert schema["type"] == "object" and set(schema["properties"]) == {"title", "authors", "stats"}
        assert schema["properties"]["authors"]["items"]["properties"] == {"name": {"type": ["string", "null"]}, "country": {"type": ["string", "null"]}}
        assert tools["book-title"].output_schema["properties"]["size"] == {"type": ["number", "null"]}
        assert tools["greet"].output_schema is not None
        result = await client.call_tool("book-with-authors", {"isbn": "978-0441"})
    assert not result.is_error, result.content
    assert result.structured_content == EXPECTED
    assert orjson.loads(result.content[0].text) == EXPECTED


async def test_step_upstream_failure_fails_the_operation(library, fresh_upstream):
    fresh_upstream.reply("/books/missing", Reply(404, b'{"error":"no such book"}'))
    async with library.http() as http:
        r = await http.get(library.urls["library-rest"] + "books/missing")
    assert r.status_code == 404 and r.json() == {"error": "no such book"}
    assert [rec.raw_path for rec in fresh_upstream.requests] == ["/books/missing"]  # later steps never ran
    async with library.mcp(library.urls["library-mcp"], mode="auto") as client:
        result = await client.call_tool("book-with-authors", {"isbn": "missing"})
    assert result.is_error and "404" in result.content[0].text


async def test_script_step_with_dependencies(library, catalog):
    async with library.http() as http:
        r = await http.get(library.urls["library-rest"] + "books/978-0441/score", params={"bonus": "4"})
    assert r.status_code == 200, r.text
    assert r.json() == {"isbn": "978-0441", "score": 210.0}  # 412 * 0.5 + 4


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_simple_mode_nested_object_shaping(library, catalog, mode):
    async with library.mcp(library.urls["library-mcp"], mode=mode) as client:
        result = await client.call_tool("book-title", {"isbn": "978-0441"})
    assert result.structured_content == {"name": 'Dune "1965"', "size": 412, "first_author": "a1"}


async def test_body_template_is_json_escaped_and_lists_render_as_json(library, fresh_upstream):
    async with library.http() as http:
        r = await http.post(library.urls["library-rest"] + "loans", json={"x": 1}, params={"isbn": "978", "reader": 'Ann "the reader"', "tags": ["a", "b"]})
    assert r.status_code == 200, r.text
    rec = fresh_upstream.last
    assert rec.headers["content-type"] == "application/json"
    assert rec.json() == {"isbn": "978", "reader": 'Ann "the reader"', "tags": ["a", "b"]}


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_mock_tool_answers_typed_values(library, fresh_upstream, mode):
    async with library.mcp(library.urls["library-mcp"], mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tools["greet"].input_schema["properties"] == {"count": {"type": "number"}, "name": {"type": "string"}}
        result = await client.call_tool("greet", {"name": "Ada", "count": 3})
    assert result.structured_content == {"message": "Hello Ada!", "visits": 3, "member": True}
    assert fresh_upstream.requests == []


async def test_capability_without_consumes_runs_offline():
    n = await serve_in_memory(FIXTURES / "mock-only.yaml", None, adapters=["status-rest"])
    try:
        async with n.http() as http:
            r = await http.get(n.urls["status-rest"] + "status/billing", params={"oncall": "kim"})
            assert r.status_code == 200
            assert r.json() == {"service": "billing", "up": True, "latency_ms": 12.5, "window": None, "owner": {"team": "platform", "oncall": "kim"}}
            r = await http.get(n.urls["status-rest"] + "status/billing", params={"window": "15"})
            assert r.json()["window"] == 15
            r = await http.get(n.urls["status-rest"] + "status/billing", params={"window": "soon"})
            assert r.status_code == 400 and r.json()["field"] == "window"
    finally:
        assert await n.stop() == 0


def _serve_fails(tmp_path, capsys, text: str) -> str:
    """``naftiko validate FILE`` run in this process (the command's own entry point)."""
    file = tmp_path / "cap.yaml"
    file.write_text(text)
    capsys.readouterr()
    assert cli.main(["validate", str(file)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_bad_ref_and_lookup_index_are_load_errors(tmp_path, capsys):
    base = (FIXTURES / "library.yaml").read_text()
    err = _serve_fails(tmp_path, capsys, base.replace("ref: books.book-with-authors\n        inputParameters", "ref: books.nope\n        inputParameters"))
    assert "ref 'books.nope': no aggregate function" in err and "cap.yaml:" in err
    err = _serve_fails(tmp_path, capsys, base.replace("index: list-authors", "index: list-writers"))
    assert "lookup index 'list-writers' is not an earlier step" in err
    err = _serve_fails(tmp_path, capsys, base.replace("language: python", "language: javascript"))
    assert "unsupported script language 'javascript'" in err


async def test_runaway_script_is_stopped(tmp_path, upstream, fresh_upstream):
    text = (FIXTURES / "library.yaml").read_text().replace("file: score.py", "file: forever.py").replace("location: file:///./scripts", f"location: file://{FIXTURES / 'scripts'}")
    text = text.replace("  - type: mcp\n", "  - type: control\n    port: 0\n    management:\n      scripting: {timeout: 300, statementLimit: 100000000}\n  - type: mcp\n")
    file = tmp_path / "runaway.yaml"
    file.write_text(text)
    n = await serve_in_memory(file, upstream.url, consumes=["catalog"], adapters=["library-rest", "library-mcp"], env={"CATALOG_TOKEN": TOKEN})
    try:
        fresh_upstream.reply("/books/1", Reply(200, orjson.dumps(BOOK)))
        async with n.http() as http:
            r = await http.get(n.urls["library-rest"] + "books/1/score", timeout=10)
        assert r.status_code == 500
        assert "time limit of 0.3s" in r.json()["detail"]
    finally:
        assert await n.stop() == 0


async def test_imported_consumes_file_with_its_own_binds(upstream, fresh_upstream):
    env = {"CATALOG_TOKEN": "tok-imported", "CATALOG_VERSION": "2026-01"}
    n = await serve_in_memory(FIXTURES / "imports.yaml", upstream.url, consumes=["books-api"], adapters=["imports-rest"], env=env)
    try:
        async with n.http() as http:
            r = await http.get(n.urls["imports-rest"] + "books/b%201")
        assert r.status_code == 200, r.text
        rec = fresh_upstream.last
        assert rec.raw_path == "/books/b%201"
        assert rec.query["lang"] == "en"  # resource-level parameter value
        assert rec.headers["catalog-version"] == "2026-01"  # consumes-level header from the imported file's bind
        assert rec.headers["authorization"] == "Bearer tok-imported"
    finally:
        assert await n.stop() == 0


def test_import_naming_a_missing_namespace_is_a_load_error(tmp_path, capsys):
    text = (FIXTURES / "imports.yaml").read_text().replace("import: catalog", "import: nothing").replace("./shared/", f"{FIXTURES}/shared/")
    err = _serve_fails(tmp_path, capsys, text)
    assert "has no consumes namespace 'nothing' (found: catalog)" in err


def test_shared_consumes_file_validates_but_does_not_serve(capsys):
    file = str(FIXTURES / "shared" / "catalog-consumes.yaml")
    assert cli.main(["validate", file]) == 0
    assert "shared consumes file: catalog (1 operations)" in capsys.readouterr().out
    served = run_cli(["serve", "--dry-run", file])
    assert served.returncode == 2 and "nothing to serve; import it" in served.stderr


async def test_several_files_in_one_process_with_overrides(upstream, fresh_upstream):
    args = [str(FIXTURES / "library.yaml"), str(FIXTURES / "mock-only.yaml"), "--base-uri", f"catalog={upstream.url}",
            "--port", "library-rest=0", "--port", "library-mcp=0", "--port", "status-rest=0"]
    n = await serve_in_memory(args[:2], extra=args[2:], env={"CATALOG_TOKEN": TOKEN})
    assert len(n.urls) == 3
    try:
        fresh_upstream.reply("/books/42", Reply(200, orjson.dumps(BOOK)))
        async with n.http() as http:
            assert (await http.get(n.urls["status-rest"] + "status/x")).json()["service"] == "x"
            assert (await http.get(n.urls["library-rest"] + "books/42/score")).json()["score"] == 206.0
    finally:
        assert await n.stop() == 0
    typo = run_cli(["serve", *args[:2], "--dry-run", "--port", "nope=0"])
    assert typo.returncode == 2 and "no exposes namespace 'nope'" in typo.stderr
