"""The expose-kind registry (exposes/registry.py): every kind listed once with its aliases,
the compiler dispatching through it (an unregistered kind is a positioned error), and the plan
it builds frozen."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from conftest import MINIMAL_CAPABILITY
from naftiko.document.loader import load
from naftiko.engine.compiler import compile_plan
from naftiko.engine.plan import InputSpec, McpAdapterPlan, Options, Plan, RestAdapterPlan
from naftiko.errors import LoadError
from naftiko.exposes import control, mcp, rest, skill
from naftiko.exposes.registry import BY_TYPE, KINDS, kind_for, known_types
from naftiko.observability.telemetry import inactive_telemetry

WITH_MCP_AND_CONTROL = MINIMAL_CAPABILITY + """\
  - type: mcp
    namespace: tools
    port: 9090
    tools:
    - name: get-item
      description: one item
      call: up.get-item
  - type: control
    port: 9191
"""


def compiled(tmp_path: Path, text: str, **kwargs: object) -> Plan:
    path = tmp_path / "cap.yaml"
    path.write_text(text)
    return compile_plan(load(str(path)), Options(environ={}), **kwargs)  # type: ignore[arg-type]


def test_each_kind_is_listed_once_with_its_aliases():
    assert [k.type for k in KINDS] == ["rest", "mcp", "skill", "control"]
    assert len({id(k) for k in KINDS}) == len(KINDS)
    assert known_types() == ["control", "mcp", "rest", "skill"]
    # each package's KIND is the object the registry lists
    assert (rest.KIND, mcp.KIND, skill.KIND, control.KIND) == KINDS
    assert {t: k.aliases for t, k in BY_TYPE.items()} == {
        "rest": frozenset({"rest"}),
        "mcp": frozenset({"tools", "mcp"}),
        "skill": frozenset(),
        "control": frozenset(),
    }
    assert [t for t, k in BY_TYPE.items() if k.compiled_first] == ["control"]  # it configures the telemetry
    assert kind_for("graphql") is None


def test_the_compiler_dispatches_every_entry_through_its_kind(tmp_path):
    plan = compiled(tmp_path, WITH_MCP_AND_CONTROL)
    assert [(a.kind, a.namespace) for a in plan.adapters] == [("rest", "api"), ("mcp", "tools"), ("control", "control")]
    assert all(BY_TYPE[a.kind].serves(a) for a in plan.adapters)


def test_a_kind_missing_from_the_registry_is_a_positioned_error(tmp_path):
    text = WITH_MCP_AND_CONTROL
    kinds = {t: k for t, k in BY_TYPE.items() if t != "mcp"}
    with pytest.raises(LoadError) as info:
        compiled(tmp_path, text, kinds=kinds)
    [error] = [str(d) for d in info.value.diagnostics]
    line = text.splitlines().index("  - type: mcp") + 1
    assert error == (
        f"{tmp_path / 'cap.yaml'}:{line}:5: exposes type 'mcp' is not served by naftiko (known: control, rest, skill)"
    )
    # a kind compiled first (control) is reported the same way
    kinds = {t: k for t, k in BY_TYPE.items() if t != "control"}
    with pytest.raises(LoadError) as info:
        compiled(tmp_path, text, kinds=kinds)
    line = text.splitlines().index("  - type: control") + 1
    assert [str(d) for d in info.value.diagnostics] == [
        f"{tmp_path / 'cap.yaml'}:{line}:5: exposes type 'control' is not served by naftiko (known: mcp, rest, skill)"
    ]


def test_an_unknown_type_in_the_file_is_a_positioned_load_error(tmp_path):
    text = MINIMAL_CAPABILITY.replace("  - type: rest\n", "  - type: graphql\n")
    with pytest.raises(LoadError) as info:
        compiled(tmp_path, text)
    line = text.splitlines().index("  - type: graphql") + 1
    assert any(str(d).startswith(f"{tmp_path / 'cap.yaml'}:{line}:") and "graphql" in str(d) for d in info.value.diagnostics), [
        str(d) for d in info.value.diagnostics
    ]


def test_a_plan_is_frozen(tmp_path):
    plan = compiled(tmp_path, WITH_MCP_AND_CONTROL)
    rest_plan, mcp_plan, control_plan = plan.adapters
    assert isinstance(rest_plan, RestAdapterPlan) and isinstance(mcp_plan, McpAdapterPlan)
    route = rest_plan.routes[0]
    operation = route.operations["GET"]
    tool = mcp_plan.tools[0]
    for obj, name, value in [
        (plan, "adapters", []),
        (plan, "consumers", {}),
        (plan, "telemetry", inactive_telemetry()),
        (rest_plan, "port", 1),
        (route, "forward", None),
        (operation, "unit", None),
        (InputSpec("id", "path", "string", True), "required", False),
        (mcp_plan, "telemetry", None),
        (tool, "input_schema", {}),
        (control_plan, "port", 1),
    ]:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, name, value)
    with pytest.raises(dataclasses.FrozenInstanceError):
        del plan.label
    plan.telemetry = plan.telemetry  # re-stating the telemetry it was built with changes nothing
    assert plan.adapters == [rest_plan, mcp_plan, control_plan] and rest_plan.port == 8080


def test_pinning_ports_makes_a_copy(tmp_path):
    plan = compiled(tmp_path, WITH_MCP_AND_CONTROL)
    pinned = plan.with_ports({"api": 18080})
    assert [a.port for a in pinned.adapters] == [18080, 9090, 9191]
    assert [a.port for a in plan.adapters] == [8080, 9090, 9191]
    assert pinned.telemetry is plan.telemetry and plan.telemetry is not None and plan.telemetry.plan is pinned


def test_each_kind_says_how_the_http_observer_names_its_requests(tmp_path):
    """REST names a request by its operation and route template (matched as the router does),
    skill by its route; MCP is observed per tool call and control not at all: no classifier."""
    plan = compiled(tmp_path, WITH_MCP_AND_CONTROL)
    by_kind = {a.kind: a for a in plan.adapters}
    router = rest.KIND.build_app(by_kind["rest"], plan)
    classify = rest.KIND.classifier(router)
    def scope(path: str) -> dict[str, object]:
        return {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "headers": []}

    assert classify(scope("/items/7")) == ("get-/items/{id}", "/items/{id}")  # an unnamed operation: method, path
    assert classify(scope("/nowhere")) == ("unmatched", "unmatched")
    skill_scope = {"type": "http", "method": "GET", "path": "/skills/x/download", "raw_path": b"/skills/x/download"}
    assert skill.KIND.classifier(object())(skill_scope) == ("download", "/skills/{name}/download")  # type: ignore[arg-type]
    assert mcp.KIND.classifier(object()) is None  # type: ignore[arg-type]
    assert control.KIND.classifier(object()) is None  # type: ignore[arg-type]
    assert all(hasattr(kind, "classifier") for kind in KINDS)
