"""YAML loading within bounds: an alias bomb fails fast with ``file:line:col`` (exit 2 when
serving) and ``--reload`` refuses it while the last good version keeps serving; a syntax error
names where the problem starts as well as where the parser gave up."""

from __future__ import annotations

import logging

import pytest

from conftest import MINIMAL_CAPABILITY
from harness import run_cli
from naftiko.document.loader import load
from naftiko.document.source import MAX_ALIAS_EXPANSION, parse_yaml
from naftiko.engine.plan import Options, compile_plan
from naftiko.errors import LoadError
from naftiko.runtime.reload import Reloader


def _bomb(levels: int = 7) -> str:
    """10**levels leaves in a few hundred bytes."""
    lines = ["naftiko: 1.0.0-alpha2", "l0: &l0 [x,x,x,x,x,x,x,x,x,x]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 10) + "]")
    lines.append(f"capability: {{exposes: *l{levels - 1}}}")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_with_the_anchor_position():
    text = _bomb()
    assert len(text) < 1024
    with pytest.raises(LoadError) as info:
        parse_yaml(text, "bomb.yaml")
    (d,) = info.value.diagnostics
    assert (d.file, d.line) == ("bomb.yaml", 5)  # the anchor being repeated when the budget ran out
    assert f"aliases (*name) expand to more than {MAX_ALIAS_EXPANSION} values" in str(d)


def test_aliases_within_the_budget_are_expanded():
    src = parse_yaml(_bomb(4), "ok.yaml")  # 10,000 leaves
    assert len(src.data["l3"]) == 10 and src.data["l3"][9][9][9] == ["x"] * 10


def test_serving_an_alias_bomb_exits_2_without_a_traceback(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(_bomb())
    ran = run_cli(["serve", str(path)])
    assert ran.returncode == 2
    assert ran.stderr.startswith(f"{path}:5:") and "alias" in ran.stderr and "Traceback" not in ran.stderr


async def test_reload_refuses_an_alias_bomb_and_keeps_the_last_good_version(tmp_path, caplog):
    path = tmp_path / "capability.yaml"
    path.write_text(MINIMAL_CAPABILITY)
    options = Options(environ={})
    plans = [compile_plan(load(str(path)), options)]
    good = plans[0]
    reloader = Reloader([str(path)], plans, options)
    path.write_text(_bomb())
    with caplog.at_level(logging.ERROR, logger="naftiko.runtime.reload"):
        assert await reloader.reload(0) is False
    assert plans[0] is good
    assert any(
        "alias" in r.getMessage() and "still serving the last good version" in r.getMessage() for r in caplog.records
    )


def test_a_syntax_error_names_where_the_problem_starts_and_where_the_parser_stopped():
    text = 'naftiko: 1.0.0-alpha2\ninfo:\n  label: "unclosed\n  description: x\n'
    with pytest.raises(LoadError) as info:
        parse_yaml(text, "q.yaml")
    (d,) = info.value.diagnostics
    assert (d.line, d.col) == (5, 1)  # where the parser gave up: the end of the file
    assert "that starts at line 3, column 10" in d.message  # the opening quote
