"""Files of the reference repositories naftiko used to reject although they are valid (the census,
docs/reference.md "Versions"), vendored under tests/fixtures/versions/<tag>/: each is read as
the reference engine reads it, checked end to end where it answers without a real upstream."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import run_cli, serve_in_memory
from naftiko.cli import main
from naftiko.document.loader import load
from naftiko.engine.simple import compile_with_value
from naftiko.expressions.jsonpath import JsonPath, JsonPathError
from naftiko.expressions.template import Scope, Template

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "versions"
V04 = DATA / "v0.4"
V05 = DATA / "v0.5"
ALPHA1 = DATA / "v1.0.0-alpha1"


def _line(file: Path, needle: str) -> int:
    text = file.read_text()
    return text.count("\n", 0, text.index(needle)) + 1


@pytest.mark.parametrize(
    "file",
    [
        V04 / "step3c-encapsulate.yml",
        V04 / "csv-capability.yaml",
        V05 / "step-3-encapsulating-headers.yml",
        V05 / "notion.yml",
        V05 / "multi-consumes-rest-adapter.yml",
        V05 / "no-adapter.yml",
        ALPHA1 / "no-adapter.yml",
    ],
    ids=lambda f: f"{f.parent.name}/{f.name}",
)
def test_valid_reference_file_validates(file, capsys):
    assert main(["validate", str(file)]) == 0, capsys.readouterr().err
    assert "valid" in capsys.readouterr().out


def test_v04_api_adapter_is_rest_checked_against_the_04_schema():
    loaded = load(str(V04 / "step3c-encapsulate.yml"))
    assert loaded.version == "0.4"
    assert [e.type for e in loaded.document.capability.exposes] == ["rest"]
    assert loaded.warnings == []  # checked against the bundled 0.4 schema, where `type: api` is right


def test_schema_command_prints_the_04_schema(capsys):
    assert main(["schema", "--version", "0.4"]) == 0
    assert '"const":"0.4"' in capsys.readouterr().out.replace(" ", "")


def test_call_object_of_the_03_and_04_engines_is_the_call():
    loaded = load(str(V04 / "csv-capability.yaml"))
    op = loaded.document.capability.exposes[0].resources[0].operations[0]
    assert op.call == "mock-csv.get-users"
    file = V04 / "csv-capability.yaml"
    assert loaded.source.locate(("capability", "exposes", 0, "resources", 0, "operations", 0, "call"))[0] == _line(
        file, 'operation: "mock-csv.get-users"'
    )


def test_environment_input_is_a_bind_positioned_at_the_input():
    file = V05 / "step-3-encapsulating-headers.yml"
    loaded = load(str(file))
    binds = loaded.source.data["binds"]
    assert binds == [{"namespace": "environment", "keys": {"notion_api_key": "notion_api_key"}}]
    at = loaded.source.locate(("binds", 0, "keys", "notion_api_key"))
    assert at[0] == _line(file, '- name: "notion_api_key"')


def test_environment_input_unset_fails_start_up_at_the_input_line():
    file = V04 / "step3c-encapsulate.yml"
    ran = run_cli(["serve", "--port", "sample=0", str(file)])
    assert ran.returncode == 2
    line = _line(file, '- name: "notion_api_key"')
    assert f"{file}:{line}:" in ran.stderr and "notion_api_key is not set" in ran.stderr


async def test_v04_forward_sends_the_environment_variable_as_bearer_token(upstream):
    upstream.reset()
    secret = "notion-k-5c1e0f"
    n = await serve_in_memory(
        V04 / "step3c-encapsulate.yml",
        None,
        adapters=["sample"],
        extra=["--base-uri", f"notion={upstream.url}/v1/"],
        env={"notion_api_key": secret},
    )
    try:
        async with n.http() as http:
            r = await http.get(n.urls["sample"].rstrip("/") + "/notion/pages", headers={"Notion-Version": "2022-06-28"})
        assert r.status_code == 200, r.text
        assert upstream.last.raw_path == "/v1/pages"
        assert upstream.last.headers["authorization"] == f"Bearer {secret}"
    finally:
        assert await n.stop() == 0
    assert secret not in n.stderr


def test_jsonpath_key_with_spaces_is_read_as_the_reference_reads_it():
    doc = {"properties": {"Participation Status": {"select": {"name": "Committed"}}, "Name": 1}}
    assert JsonPath("$.properties.Participation Status.select.name").find(doc) == "Committed"
    assert JsonPath("$.properties.Name").find(doc) == 1
    with pytest.raises(JsonPathError):
        JsonPath("$.properties[")  # still an error when bracketing keys does not help


def test_with_value_mixing_this_and_a_template_renders_as_text():
    compiled = compile_with_value("$this.sample.{{user_name}}", frozenset({"sample"}))
    assert isinstance(compiled, Template)
    assert compiled.render(Scope({"user_name": "alice"})) == "$this.sample.alice"
    with pytest.raises(JsonPathError):
        compile_with_value("$.a[", frozenset())  # a broken JSONPath without a template is still an error


@pytest.mark.parametrize("file", [V05 / "no-adapter.yml", ALPHA1 / "no-adapter.yml"], ids=["0.5", "alpha1"])
async def test_mock_array_with_const_items_answers_one_element(file):
    n = await serve_in_memory(file, None, adapters=["sample"])
    try:
        async with n.http() as http:
            r = await http.get(n.urls["sample"].rstrip("/") + "/notion/pre-release")
        assert r.status_code == 200, r.text
        assert r.json() == [
            {
                "name": "John Doe",
                "company": "Example Corp",
                "title": "Persona",
                "location": "Earth",
                "owner": "Naftiko",
                "participation_status": "Committed",
                "comments": "For mocking purposes only",
            }
        ]
    finally:
        assert await n.stop() == 0


# Deliberately broken fixtures of naftiko/ikanos (the census's class (a)): reported with positions.


def test_empty_standalone_section_is_an_error_at_the_section(tmp_path, capsys):
    # modules/ikanos-engine/src/test/resources/imports/invalid/empty-section.consumes.yml
    file = tmp_path / "empty-section.consumes.yml"
    file.write_text('ikanos: "1.0.0-beta5"\nconsumes: []\n')
    assert main(["validate", str(file)]) == 1
    err = capsys.readouterr().err
    assert f"{file}:2:1: empty 'consumes' section: a standalone consumes document holds at least one entry" in err
    assert "nothing to serve" not in err


def test_item_of_the_wrong_kind_is_named_with_its_container(tmp_path, capsys):
    # the shape of modules/ikanos-spec/src/test/resources/capabilities/capability-spurious-name.yml
    file = tmp_path / "spurious.yml"
    file.write_text(
        'ikanos: "1.0.0-beta5"\n'
        "capability:\n"
        "  exposes:\n"
        "  - type: rest\n"
        "    port: 8080\n"
        "    namespace: api\n"
        "    resources:\n"
        "      ships:\n"
        "        path: /ships\n"
        "        operations:\n"
        "          list:\n"
        "            method: GET\n"
        "            outputParameters:\n"
        "              name: spurious-property\n"
    )
    assert main(["validate", str(file)]) == 1
    assert f"{file}:14:15: 'outputParameters[0]' must be a mapping, got str" in capsys.readouterr().err
