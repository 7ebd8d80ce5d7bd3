"""Unit tests for loading: YAML with positions, the document model, diagnostics, and the CLI's
behaviour on broken files (reference §1, §10)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from conftest import MINIMAL_CAPABILITY
from harness import run_cli
from naftiko.document.loader import load, load_source
from naftiko.document.source import parse_yaml, read_source
from naftiko.errors import Diagnostic, LoadError

ROOT = Path(__file__).resolve().parents[2]
METRONOME = ROOT / "capabilities" / "metronome-customers.yaml"

VALID = MINIMAL_CAPABILITY


def pos(text: str, needle: str, occurrence: int = 1) -> tuple[int, int]:
    """1-based (line, col) of the ``occurrence``-th ``needle`` in ``text``."""
    idx = -1
    for _ in range(occurrence):
        idx = text.index(needle, idx + 1)
    line = text.count("\n", 0, idx) + 1
    col = idx - (text.rfind("\n", 0, idx) + 1) + 1
    return line, col


def load_text(text: str, strict: bool = False, file: str = "cap.yaml"):
    return load_source(parse_yaml(text, file), strict=strict)


def load_errors(text: str, strict: bool = False, file: str = "cap.yaml") -> list[Diagnostic]:
    with pytest.raises(LoadError) as info:
        load_text(text, strict=strict, file=file)
    assert info.value.diagnostics, "a LoadError must carry at least one diagnostic"
    return info.value.diagnostics


# ------------------------------------------------------------------ YAML syntax


@pytest.mark.parametrize(
    "text, line, col",
    [
        ("a: 1\n  b: 2\n", 2, 4),  # mapping value where none is allowed
        ("key: value\n\tbad: x\n", 2, 1),  # a tab used for indentation
        ("a: 1\nb: *nope\n", 2, 4),  # undefined alias
        ("naftiko: 1.0.0-alpha2\ncapability:\n  exposes: [\n", 4, 1),  # unclosed flow sequence
    ],
)
def test_yaml_syntax_error_has_file_line_col(text, line, col):
    with pytest.raises(LoadError) as info:
        parse_yaml(text, "broken.yaml")
    (d,) = info.value.diagnostics
    assert (d.file, d.line, d.col) == ("broken.yaml", line, col)
    assert str(d).startswith(f"broken.yaml:{line}:{col}: YAML syntax error")
    assert str(info.value) == str(d)


def test_yaml_syntax_error_through_load_names_the_path(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("naftiko: 1.0.0-alpha2\ninfo:\n  label: [x\n")
    with pytest.raises(LoadError) as info:
        load(str(f))
    (d,) = info.value.diagnostics
    assert d.file == str(f)
    assert re.match(rf"^{re.escape(str(f))}:\d+:\d+: YAML syntax error", str(d))


def test_python_tags_are_refused_with_a_position():
    with pytest.raises(LoadError) as info:
        parse_yaml("ok: 1\nboom: !!python/object:os.system x\n", "t.yaml")
    (d,) = info.value.diagnostics
    assert (d.line, d.col) == (2, 7)
    assert "YAML error" in d.message


def test_non_scalar_mapping_key_is_an_error():
    with pytest.raises(LoadError) as info:
        parse_yaml("? [1, 2]\n: x\n", "t.yaml")
    assert "mapping keys must be scalars" in str(info.value)


def test_missing_file_is_a_load_error(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(LoadError) as info:
        read_source(str(missing))
    assert str(info.value) == f"{missing}:1:1: file not found"


# ------------------------------------------------------------------ positions


def test_positions_are_recorded_for_keys_and_items():
    src = parse_yaml(VALID, "cap.yaml")
    assert src.locate(("capability", "exposes", 0, "port")) == pos(VALID, "port:")
    assert src.locate(("capability", "consumes", 0, "resources", 0, "operations", 0, "name")) == pos(
        VALID, "name: get-item"
    )
    # an unknown path falls back to its nearest known ancestor
    assert src.locate(("capability", "exposes", 0, "nothing", "here")) == pos(VALID, "type: rest")
    assert src.locate(("no-such-key",)) == (1, 1)


def test_dates_are_kept_as_strings():
    src = parse_yaml("created: 2026-05-19\n", "t.yaml")
    assert src.data == {"created": "2026-05-19"}


# ------------------------------------------------------------------ wrong types and kinds


def test_port_not_an_integer_names_port_at_its_line():
    text = VALID.replace("port: 8080", "port: abc")
    (d,) = load_errors(text)
    assert (d.line, d.col) == pos(text, "port: abc")
    assert "'port'" in d.message and "'abc'" in d.message
    assert d.severity == "error"


def test_unknown_http_method_is_an_error_at_its_line():
    text = VALID.replace("        method: GET\n  exposes", "        method: FETCH\n  exposes")
    (d,) = load_errors(text)
    assert (d.line, d.col) == pos(text, "method: FETCH")
    assert "'method'" in d.message and "FETCH" in d.message


def test_resources_not_a_list_is_an_error():
    text = VALID.replace(
        "    port: 8080\n    resources:\n    - path: /items/{id}\n"
        "      operations:\n      - method: GET\n        call: up.get-item\n",
        "    port: 8080\n    resources: 5\n",
    )
    (d,) = load_errors(text)
    assert (d.line, d.col) == pos(text, "resources: 5")
    assert "'resources' must be a list" in d.message


def test_several_errors_are_all_reported_in_line_order():
    text = VALID.replace("port: 8080", "port: abc").replace(
        "        method: GET\n  exposes", "        method: FETCH\n  exposes"
    )
    diags = load_errors(text)
    assert [d.line for d in diags] == sorted(d.line for d in diags)
    assert {pos(text, "method: FETCH")[0], pos(text, "port: abc")[0]} <= {d.line for d in diags}


def test_unknown_exposes_type():
    text = VALID.replace("type: rest", "type: graphql")
    (d,) = load_errors(text)
    assert d.line == pos(text, "type: graphql")[0]
    assert "unknown type 'graphql'" in d.message and "'rest'" in d.message


def test_unknown_auth_type():
    text = VALID.replace("    baseUri:", "    authentication:\n      type: magic\n    baseUri:")
    (d,) = load_errors(text)
    assert "unknown type 'magic'" in d.message and "'bearer'" in d.message
    assert d.line in (pos(text, "authentication:")[0], pos(text, "type: magic")[0])


def test_unknown_step_type():
    text = VALID.replace("        call: up.get-item", "        steps:\n        - type: teleport\n          name: s")
    (d,) = load_errors(text)
    assert d.line == pos(text, "type: teleport")[0]
    assert "unknown type 'teleport'" in d.message and "'call'" in d.message


def test_unknown_type_points_at_the_type_line_even_when_type_is_not_the_first_key():
    """Regression (fixed in d4e2894): unknown exposes/auth/step ``type`` errors used to point at
    the enclosing mapping (or the parent ``authentication:`` key) instead of the ``type:`` line."""
    cases = {
        "exposes": (
            VALID.replace("  - type: rest\n    namespace: api\n", "  - namespace: api\n    type: graphql\n"),
            "type: graphql",
        ),
        "auth": (
            VALID.replace("    baseUri:", "    authentication:\n      token: x\n      type: magic\n    baseUri:"),
            "type: magic",
        ),
        "step": (
            VALID.replace("        call: up.get-item", "        steps:\n        - name: s\n          type: teleport"),
            "type: teleport",
        ),
    }
    wrong = {}
    for kind, (text, needle) in cases.items():
        (d,) = load_errors(text)
        assert "unknown type" in d.message
        if (d.line, d.col) != pos(text, needle):
            wrong[kind] = f"got {d.line}:{d.col}, expected {pos(text, needle)} ({needle!r})"
    assert not wrong, f"unknown-type diagnostics do not point at the 'type:' line: {wrong}"


# ------------------------------------------------------------------ empty and non-mapping documents


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file(text):
    with pytest.raises(LoadError) as info:
        load_text(text)
    assert str(info.value) == "cap.yaml:1:1: the file is empty"


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_non_mapping_document(text):
    (d,) = load_errors(text)
    assert (d.line, d.col) == (1, 1)
    assert "must be a YAML mapping" in d.message


# ------------------------------------------------------------------ tolerant vs strict


def test_valid_file_loads_without_warnings():
    loaded = load_text(VALID)
    assert loaded.warnings == []
    assert loaded.document.capability.exposes[0].port == 8080
    assert loaded.file == "cap.yaml"


def test_unknown_field_is_a_positioned_warning_in_tolerant_mode():
    text = VALID.replace("  label: T\n", "  label: T\n  colour: red\n")
    loaded = load_text(text)
    warnings = [w for w in loaded.warnings if "colour" in w.message]
    assert len(warnings) == 1
    w = warnings[0]
    assert w.severity == "warning"
    assert str(w).startswith(f"cap.yaml:{w.line}:{w.col}: warning: ")
    assert pos(text, "info:")[0] <= w.line <= pos(text, "colour:")[0]


def test_unknown_field_warning_points_at_the_unknown_key():
    """Regression (fixed in d4e2894): unknown-field warnings used to point at the enclosing
    object (``info:``) instead of the unknown key itself (``colour:``)."""
    text = VALID.replace("  label: T\n", "  label: T\n  colour: red\n")
    (w,) = [w for w in load_text(text).warnings if "colour" in w.message]
    assert (w.line, w.col) == pos(text, "colour:"), (
        f"warning at {w.line}:{w.col}, the unknown key is at {pos(text, 'colour:')}"
    )


def test_strict_mode_turns_unknown_field_into_load_error():
    text = VALID.replace("  label: T\n", "  label: T\n  colour: red\n")
    diags = load_errors(text, strict=True)
    assert any("colour" in d.message and d.severity == "error" for d in diags)
    assert all(not str(d).split(": ", 1)[1].startswith("warning") for d in diags)


def test_wrong_spec_version_is_a_warning_then_a_strict_error():
    text = VALID.replace("naftiko: 1.0.0-alpha2", "naftiko: 1.0.0-alpha9")
    loaded = load_text(text)
    assert any(w.line == 1 and "1.0.0-alpha9" in w.message for w in loaded.warnings)
    diags = load_errors(text, strict=True)
    assert any(d.line == 1 and "1.0.0-alpha2" in d.message for d in diags)


def test_duplicate_key_warns_with_position_and_last_wins():
    text = VALID.replace("  label: T\n", "  label: T\n  label: U\n")
    loaded = load_text(text)
    dups = [w for w in loaded.warnings if "duplicate key" in w.message]
    assert len(dups) == 1
    assert (dups[0].line, dups[0].col) == pos(text, "label: U")
    assert "'label'" in dups[0].message
    assert loaded.document.info.label == "U"


# ------------------------------------------------------------------ CLI on broken files

MISSING_BIND = VALID.replace(
    "capability:", "binds:\n- namespace: env\n  keys:\n    TOKEN: NAFTIKO_UNIT_TEST_SURELY_UNSET_VAR\ncapability:"
)


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """Run every CLI case through the command's entry point in this process (``harness.run_cli``;
    test_errors_e2e keeps the exit status of a real process) and collect the results."""
    d = tmp_path_factory.mktemp("cli")
    files = {
        "syntax": "naftiko: 1.0.0-alpha2\ncapability:\n  exposes: [\n",
        "port": VALID.replace("port: 8080", "port: abc"),
        "bind": MISSING_BIND,
    }
    paths = {}
    for name, text in files.items():
        paths[name] = d / f"{name}.yaml"
        paths[name].write_text(text)
    cases = {
        "serve-syntax": ["serve", str(paths["syntax"])],
        "serve-port": ["serve", str(paths["port"])],
        "validate-broken": ["validate", str(paths["syntax"]), str(paths["port"])],
        "validate-strict": ["validate", "--strict", str(METRONOME)],
        "validate-default": ["validate", str(METRONOME)],
    }
    os.environ.pop("NAFTIKO_UNIT_TEST_SURELY_UNSET_VAR", None)
    results = {}
    for name, args in cases.items():
        ran = run_cli(args)
        results[name] = (ran.returncode, ran.stdout, ran.stderr)
    return paths, results


def _no_traceback(err: str) -> None:
    assert "Traceback" not in err, err


def test_cli_serve_yaml_syntax_error_exits_2(cli):
    paths, results = cli
    code, _out, err = results["serve-syntax"]
    assert code == 2, err
    _no_traceback(err)
    assert f"{paths['syntax']}:4:1: YAML syntax error" in err


def test_cli_serve_wrong_type_exits_2(cli):
    paths, results = cli
    code, _out, err = results["serve-port"]
    assert code == 2, err
    _no_traceback(err)
    line, col = pos(VALID, "port: 8080")
    assert f"{paths['port']}:{line}:{col}: 'port' must be an integer" in err


def test_cli_serve_missing_bind_exits_2_and_names_the_variable(cli, capsys, monkeypatch):
    """In-process (the same ``main`` the console script runs) to keep the suite fast."""
    from naftiko.cli import main

    paths, _ = cli
    monkeypatch.delenv("NAFTIKO_UNIT_TEST_SURELY_UNSET_VAR", raising=False)
    code = main(["serve", str(paths["bind"]), "--port", "api=0"])
    err = capsys.readouterr().err
    assert code == 2, err
    _no_traceback(err)
    line, col = pos(MISSING_BIND, "TOKEN:")
    assert f"{paths['bind']}:{line}:{col}:" in err
    assert "TOKEN" in err and "NAFTIKO_UNIT_TEST_SURELY_UNSET_VAR" in err and "'env'" in err


def test_cli_validate_broken_files_exits_1_with_positions(cli):
    paths, results = cli
    code, _out, err = results["validate-broken"]
    assert code == 1, err
    _no_traceback(err)
    assert f"{paths['syntax']}:4:1: YAML syntax error" in err
    assert re.search(rf"{re.escape(str(paths['port']))}:\d+:\d+: 'port' must be an integer", err)
    assert f"{paths['syntax']}: invalid" in err and f"{paths['port']}: invalid" in err


def test_cli_validate_strict_rejects_metronome(cli):
    _, results = cli
    code, _out, err = results["validate-strict"]
    assert code == 1, err
    _no_traceback(err)
    assert re.search(r"metronome-customers\.yaml:\d+:\d+: ", err)
    assert "invalid" in err


def test_cli_validate_default_accepts_metronome_with_warnings(cli):
    _, results = cli
    code, out, err = results["validate-default"]
    assert code == 0, err
    _no_traceback(err)
    assert "valid with" in out
    assert re.search(r"metronome-customers\.yaml:\d+:\d+: warning: ", err)


def test_schema_deviations_remembered_per_document_are_positioned_per_file(tmp_path):
    """The schema check is remembered by the document's content: a second file holding the same
    document in another layout still gets warnings at its own lines, and a changed document is
    checked anew."""
    block = MINIMAL_CAPABILITY.replace("info:\n", "info:\n  colour: blue\n", 1)
    first, second, third = tmp_path / "a.yaml", tmp_path / "b.yaml", tmp_path / "c.yaml"
    first.write_text(block)
    second.write_text("\n\n" + block)  # same document, two lines lower
    third.write_text(block.replace("colour: blue", "shade: blue"))

    def unknown(path: Path) -> list[str]:
        return [str(w) for w in load(str(path)).warnings if "unknown field" in w.message]

    line = block.splitlines().index("  colour: blue") + 1
    assert [w.split(": ")[0] for w in unknown(first)] == [f"{first}:{line}:3"]
    assert [w.split(": ")[0] for w in unknown(second)] == [f"{second}:{line + 2}:3"]
    assert unknown(first)[0].endswith("unknown field 'colour' (schema, at $.info.colour)")
    assert ["shade" in w for w in unknown(third)] == [True]
