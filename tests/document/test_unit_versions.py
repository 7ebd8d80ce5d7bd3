"""Every published version read into one model (docs/reference.md, "Versions"): positions kept,
the version named before structural errors, mixed syntaxes warned once, migration both ways."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from naftiko.cli import main
from naftiko.document import versions
from naftiko.document.loader import load_source
from naftiko.document.migrate import dump
from naftiko.document.source import parse_yaml
from naftiko.errors import LoadError

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "versions"

BETA5 = """\
ikanos: "1.0.0-beta5"
capability:
  consumes:
  - namespace: registry
    type: http
    baseUri: "http://127.0.0.1:9/api"
    resources:
      ships:
        path: "/ships/{{imo}}"
        display: Ships
        operations:
          get-ship:
            method: GET
            inputParameters:
              imo:
                in: path
  exposes:
  - type: mcp
    port: 3001
    namespace: tools
    tools:
      get-ship:
        display: Get ship
        tags: [fleet]
        description: "One ship"
        inputParameters:
          imo:
            type: string
            required: true
            description: "IMO number"
        call: registry.get-ship
        with:
          imo: tools.imo
"""


def _pos(text: str, needle: str) -> tuple[int, int]:
    idx = text.index(needle)
    return text.count("\n", 0, idx) + 1, idx - text.rfind("\n", 0, idx)


def _load(text: str, strict: bool = False):
    return load_source(parse_yaml(text, "cap.yaml"), strict=strict)


def test_beta5_maps_become_named_lists_with_positions_of_their_keys():
    loaded = _load(BETA5)
    assert loaded.version == "1.0.0-beta5" and loaded.warnings == []
    tool = loaded.document.capability.exposes[0].tools[0]
    assert (tool.name, tool.label, tool.inputParameters[0].name) == ("get-ship", "Get ship", "imo")
    resource = loaded.document.capability.consumes[0].resources[0]
    assert (resource.name, resource.label, resource.operations[0].name) == ("ships", "Ships", "get-ship")
    # the invented `name` points at the author's map key
    at = loaded.source.locate(("capability", "exposes", 0, "tools", 0, "name"))
    assert at == _pos(BETA5, "get-ship:\n        display")


def test_structural_error_in_a_beta5_file_names_the_version_first_and_points_at_the_line():
    text = BETA5.replace("type: string\n", "type: strin\n")
    with pytest.raises(LoadError) as info:
        _load(text)
    first, second = info.value.diagnostics[:2]
    assert first.severity == "note" and "`ikanos: 1.0.0-beta5`" in first.message and first.line == 1
    assert second.severity == "error" and (second.line, second.col) == _pos(text, "type: strin")
    assert "strin" in second.message


def test_schema_deviation_of_a_beta5_file_is_checked_against_the_beta5_schema():
    loaded = _load(BETA5.replace("        tags: [fleet]\n", "        tags: [fleet]\n        colour: red\n"))
    unknown = [w for w in loaded.warnings if "colour" in w.message]
    assert len(unknown) == 1 and unknown[0].line == _pos(BETA5, "tags: [fleet]")[0] + 1
    assert _load(BETA5).warnings == []  # tags, display: known to beta5


def test_mixed_syntax_warns_once_at_the_first_disagreeing_container():
    text = (
        (DATA / "alpha2" / "step-2-shipyard-wiring.yml")
        .read_text()
        .replace('naftiko: "1.0.0-alpha2"', 'ikanos: "1.0.0-alpha3"')
    )
    loaded = _load(text)
    assert len(loaded.warnings) == 1
    warning = loaded.warnings[0]
    assert "`ikanos: 1.0.0-alpha3`" in warning.message and "'resources' is a list" in warning.message
    assert (warning.line, warning.col) == _pos(text, "resources:")
    assert [t.name for t in loaded.document.capability.exposes[0].tools] == ["list-ships", "get-ship"]


def test_unknown_version_is_a_warning_then_a_strict_error():
    text = BETA5.replace('"1.0.0-beta5"', '"1.0.0-beta9"')
    assert any("unknown version '1.0.0-beta9'" in w.message for w in _load(text).warnings)
    with pytest.raises(LoadError):
        _load(text, strict=True)


def test_v05_external_refs_become_binds():
    text = """\
naftiko: "0.5"
externalRefs:
  - name: "notion-env"
    type: "environment"
    resolution: file
    uri: "file:///tmp/notion_env.json"
    keys:
      notion_token: "NOTION_TOKEN"
capability:
  consumes:
  - namespace: notion
    type: http
    baseUri: "http://127.0.0.1:9"
    resources:
    - name: pages
      path: /pages
      operations:
      - name: list-pages
        method: GET
  exposes:
  - type: rest
    port: 8080
    namespace: api
    resources:
    - path: /pages
      operations:
      - method: GET
        call: notion.list-pages
"""
    loaded = _load(text)
    assert loaded.version == "0.5"
    (bind,) = loaded.document.binds
    assert (bind.namespace, bind.location, bind.keys) == (
        "notion-env",
        "file:///tmp/notion_env.json",
        {"notion_token": "NOTION_TOKEN"},
    )
    assert loaded.source.locate(("binds", 0, "namespace")) == _pos(text, 'name: "notion-env"')


def test_every_vendored_tutorial_file_round_trips_both_ways():
    count = 0
    for era, there, back in (("alpha2", "1.0.0-beta5", "1.0.0-alpha2"), ("beta5", "1.0.0-alpha2", "1.0.0-beta5")):
        for file in sorted((DATA / era).rglob("*.y*ml")):
            if file.name == "secrets.yaml":
                continue
            original = yaml.safe_load(file.read_text())
            once = versions.migrate(versions.normalise(parse_yaml(file.read_text(), str(file))), there)
            assert once.invented == [] and once.dropped == []
            twice = versions.migrate(versions.normalise(parse_yaml(dump(once.data), "x")), back)
            assert {k: v for k, v in twice.data.items() if k not in ("naftiko", "ikanos")} == {
                k: v for k, v in original.items() if k not in ("naftiko", "ikanos")
            }, file
            count += 1
    assert count == 34


def test_migrate_cli_reports_invented_keys_and_dropped_fields(tmp_path, capsys):
    alpha2 = tmp_path / "a.yaml"
    alpha2.write_text(
        "naftiko: 1.0.0-alpha2\ncapability:\n  exposes:\n  - type: rest\n    port: 8080\n    namespace: api\n"
        "    resources:\n    - path: /ships/{{imo}}\n      operations:\n      - method: GET\n        label: Ship\n"
        "        outputParameters:\n        - name: a\n          type: string\n          value: x\n"
    )
    assert main(["migrate", "--to", "1.0.0-beta5", str(alpha2)]) == 0
    out, err = capsys.readouterr()
    written = yaml.safe_load(out)
    assert written["ikanos"] == "1.0.0-beta5"
    resources = written["capability"]["exposes"][0]["resources"]
    assert list(resources) == ["ships-imo"]
    operation = resources["ships-imo"]["operations"]["get"]
    assert operation["display"] == "Ship" and operation["outputParameters"] == {"a": {"type": "string", "value": "x"}}
    assert f"{alpha2}:8:7: warning: invented the key 'ships-imo'" in err
    assert f"{alpha2}:10:9: warning: invented the key 'get'" in err
    beta5 = tmp_path / "b.yaml"
    beta5.write_text(out)
    assert main(["migrate", "--to", "1.0.0-alpha2", str(beta5), "-o", str(tmp_path / "c.yaml")]) == 0
    back = yaml.safe_load((tmp_path / "c.yaml").read_text())
    assert back["capability"]["exposes"][0]["resources"][0]["operations"][0]["name"] == "get"
    # beta5-only fields are dropped going back, each reported where the author wrote it
    (tmp_path / "d.yaml").write_text(BETA5)
    assert main(["migrate", "--to", "1.0.0-alpha2", str(tmp_path / "d.yaml")]) == 0
    out, err = capsys.readouterr()
    line, col = _pos(BETA5, "tags: [fleet]")
    assert f"{tmp_path / 'd.yaml'}:{line}:{col}: warning: dropped 'tags': 1.0.0-alpha2 has no such field" in err
    assert "tags" not in yaml.safe_load(out)["capability"]["exposes"][0]["tools"][0]
    assert main(["migrate", "--to", "0.5", str(tmp_path / "d.yaml")]) == 2


def test_schema_command_prints_each_versions_schema(capsys):
    for version in versions.VERSIONS:
        assert main(["schema", "--version", version]) == 0
        schema = json.loads(capsys.readouterr().out)
        key = "naftiko" if version in versions.LIST_ERA else "ikanos"
        assert schema["properties"][key]["const"] == version
    assert main(["schema", "--version", "2.0"]) == 2


SHARED_EXPOSES = """\
ikanos: "1.0.0-beta5"
exposes:
- namespace: weather-mcp
  type: mcp
  port: 3000
  tools:
    get-weather:
      description: "Weather via MCP"
      call: weather-api.get-forecast
"""
SHARED_BINDS = """\
ikanos: "1.0.0-beta5"
binds:
- namespace: weather-env
  keys:
    WEATHER_TOKEN: WEATHER_TOKEN
"""
MAIN = """\
ikanos: "1.0.0-beta5"
capability:
  binds:
  - from: ./shared.binds.yml
    import: weather-env
  consumes:
  - namespace: weather-api
    type: http
    baseUri: "http://127.0.0.1:9"
    resources:
      forecast:
        path: /forecast
        operations:
          get-forecast:
            method: GET
  exposes:
  - from: ./shared.exposes.yml
    import: weather-mcp
    as: tools
"""


def test_imports_in_binds_and_exposes_are_inlined_with_as_renaming(tmp_path):
    from naftiko.document.loader import load

    (tmp_path / "shared.exposes.yml").write_text(SHARED_EXPOSES)
    (tmp_path / "shared.binds.yml").write_text(SHARED_BINDS)
    (tmp_path / "main.yml").write_text(MAIN)
    loaded = load(str(tmp_path / "main.yml"))
    (mcp,) = loaded.document.capability.exposes
    assert mcp.namespace == "tools" and [t.name for t in mcp.tools] == ["get-weather"]
    assert loaded.document.capability.binds[0].namespace == "weather-env"
    # a diagnostic about an imported entry points at the line that imported it
    assert loaded.source.locate(("capability", "exposes", 0, "tools", 0, "call")) == _pos(
        MAIN, "from: ./shared.exposes.yml"
    )


def test_import_of_a_missing_namespace_or_file_is_an_error_at_the_import(tmp_path):
    from naftiko.document.loader import load

    (tmp_path / "shared.exposes.yml").write_text(SHARED_EXPOSES)
    (tmp_path / "shared.binds.yml").write_text(SHARED_BINDS)
    text = MAIN.replace("import: weather-mcp", "import: weather-rest").replace("./shared.binds.yml", "./nope.yml")
    (tmp_path / "main.yml").write_text(text)
    with pytest.raises(LoadError) as info:
        load(str(tmp_path / "main.yml"))
    errors = [d for d in info.value.diagnostics if d.severity == "error"]
    assert [(d.line, d.col) for d in errors] == [_pos(text, "from: ./nope.yml"), _pos(text, "import: weather-rest")]
    assert "not found" in errors[0].message
    assert "no exposes namespace 'weather-rest' (found: weather-mcp)" in errors[1].message


def test_tunnel_is_refused_by_name_at_its_line():
    text = BETA5.replace(
        '    baseUri: "http://127.0.0.1:9/api"\n',
        '    baseUri: "http://127.0.0.1:9/api"\n    tunnel:\n      type: ziti\n      service: registry\n',
    )
    with pytest.raises(LoadError) as info:
        _load(text)
    (error,) = [d for d in info.value.diagnostics if d.severity == "error"]
    assert (error.line, error.col) == _pos(text, "tunnel:")
    assert "Ziti 'tunnel' is not supported" in error.message and "openziti" in error.message


def test_standalone_section_documents_validate_and_are_leaves(tmp_path, capsys):
    (tmp_path / "shared.exposes.yml").write_text(SHARED_EXPOSES)
    assert main(["validate", str(tmp_path / "shared.exposes.yml")]) == 0
    assert "standalone section document: exposes weather-mcp" in capsys.readouterr().out
    nested = tmp_path / "nested.yml"
    nested.write_text('ikanos: "1.0.0-beta5"\nexposes:\n- from: ./shared.exposes.yml\n  import: weather-mcp\n')
    assert main(["validate", str(nested)]) == 1
    err = capsys.readouterr().err
    assert f"{nested}:3:3: a standalone exposes document cannot import: imported files must be leaves" in err
    missing = tmp_path / "missing.yml"
    missing.write_text(SHARED_EXPOSES.replace("- namespace: weather-mcp\n  type: mcp", "- type: mcp"))
    assert main(["validate", str(missing)]) == 1
    assert f"{missing}:3:3: missing required field 'namespace'" in capsys.readouterr().err
