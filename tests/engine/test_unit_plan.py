"""Unit tests for compiling a loaded capability into a plan (reference §1, §2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import MINIMAL_CAPABILITY
from naftiko.document.loader import load
from naftiko.engine.plan import Options, compile_plan
from naftiko.errors import LoadError

BASE = MINIMAL_CAPABILITY

WITH_BIND = BASE.replace(
    "capability:",
    "binds:\n- namespace: secrets\n  keys:\n    TOKEN: NAFTIKO_TEST_TOKEN\ncapability:",
).replace(
    "    baseUri: https://api.example.com\n",
    "    baseUri: https://api.example.com\n    authentication:\n      type: bearer\n      token: '{{TOKEN}}'\n",
)


def pos(text: str, needle: str) -> tuple[int, int]:
    idx = text.index(needle)
    return text.count("\n", 0, idx) + 1, idx - (text.rfind("\n", 0, idx) + 1) + 1


def write(tmp_path: Path, text: str, name: str = "cap.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def plan_of(tmp_path: Path, text: str, options: Options | None = None, name: str = "cap.yaml"):
    path = write(tmp_path, text, name)
    return compile_plan(load(str(path)), options or Options(environ={}))


def plan_errors(tmp_path: Path, text: str, options: Options | None = None, name: str = "cap.yaml"):
    """The error diagnostics: the file refused, or (tolerant mode) the units left out of a plan that still serves."""
    try:
        plan = plan_of(tmp_path, text, options, name)
    except LoadError as exc:
        return exc.diagnostics
    assert plan.left_out, "expected errors, got a plan with nothing left out"
    return plan.left_out


def request_of(plan, ns="up", op="get-item"):
    return plan.consumers[ns][op].request


# ------------------------------------------------------------------ a valid plan


def test_valid_plan_has_consumer_and_rest_route(tmp_path):
    plan = plan_of(tmp_path, BASE)
    assert set(plan.consumers) == {"up"} and set(plan.consumers["up"]) == {"get-item"}
    (adapter,) = plan.adapters
    assert (adapter.kind, adapter.namespace, adapter.port, adapter.address) == ("rest", "api", 8080, "127.0.0.1")
    op = adapter.routes[0].operations["GET"]
    assert op.unit.call.target is plan.consumers["up"]["get-item"]
    # the undeclared {id} placeholder became a required path parameter
    spec = request_of(plan).params["id"]
    assert spec.location == "path" and spec.required


# ------------------------------------------------------------------ references checked at load


def test_call_to_missing_namespace_points_at_call_line(tmp_path):
    text = BASE.replace("call: up.get-item", "call: nope.get-item")
    (d,) = plan_errors(tmp_path, text)
    assert (d.line, d.col) == pos(text, "call: nope")
    assert "nope" in d.message and "up" in d.message
    assert str(d).startswith(f"{tmp_path / 'cap.yaml'}:{d.line}:{d.col}: ")


def test_call_to_missing_operation_points_at_call_line(tmp_path):
    text = BASE.replace("call: up.get-item", "call: up.get-thing")
    (d,) = plan_errors(tmp_path, text)
    assert (d.line, d.col) == pos(text, "call: up.get-thing")
    assert "get-thing" in d.message


def test_duplicate_exposes_namespace(tmp_path):
    text = BASE + "  - type: rest\n    namespace: api\n    port: 9090\n    resources: []\n"
    (d,) = plan_errors(tmp_path, text)
    assert (d.line, d.col) == pos(text, "namespace: api\n    port: 9090")
    assert "duplicate exposes namespace 'api'" in d.message


def test_duplicate_consumes_namespace(tmp_path):
    extra = "  - type: http\n    namespace: up\n    baseUri: https://other.example.com\n    resources: []\n"
    text = BASE.replace("  exposes:\n", extra + "  exposes:\n")
    diags = plan_errors(tmp_path, text)
    assert any("duplicate consumes namespace 'up'" in d.message and d.line == pos(text, "namespace: up\n    baseUri: https://other")[0] for d in diags)


def test_two_adapters_on_the_same_port(tmp_path):
    text = BASE + "  - type: mcp\n    namespace: tools\n    port: 8080\n    tools: []\n"
    (d,) = plan_errors(tmp_path, text)
    assert (d.line, d.col) == pos(text, "port: 8080\n    tools")
    assert "8080" in d.message and "'api'" in d.message


def test_port_zero_never_conflicts(tmp_path):
    text = BASE.replace("port: 8080", "port: 0") + "  - type: mcp\n    namespace: tools\n    port: 0\n    tools: []\n"
    plan = plan_of(tmp_path, text)
    assert [a.namespace for a in plan.adapters] == ["api", "tools"]


@pytest.mark.parametrize("tail", ["", "  exposes: []\n"])
def test_no_exposes_is_an_error(tmp_path, tail):
    text = BASE.split("  exposes:")[0] + tail
    diags = plan_errors(tmp_path, text)
    assert any("no 'exposes'" in d.message for d in diags)


# ------------------------------------------------------------------ binds


def test_missing_bind_variable_names_variable_and_namespace(tmp_path):
    (d,) = plan_errors(tmp_path, WITH_BIND, Options(environ={}))
    assert (d.line, d.col) == pos(WITH_BIND, "TOKEN: NAFTIKO_TEST_TOKEN")
    assert "TOKEN" in d.message and "'secrets'" in d.message and "NAFTIKO_TEST_TOKEN" in d.message
    assert "--env-file" in d.message or "export" in d.message


def test_missing_bind_variable_is_a_placeholder_under_dry_run(tmp_path):
    plan = plan_of(tmp_path, WITH_BIND, Options(dry_run=True, environ={}))
    assert plan.binds == {"secrets": {"TOKEN": "<TOKEN>"}}
    assert request_of(plan).auth.header == ("Authorization", "Bearer <TOKEN>")


def test_bind_from_environ_renders_bearer_token(tmp_path):
    plan = plan_of(tmp_path, WITH_BIND, Options(environ={"NAFTIKO_TEST_TOKEN": "s3cret-token"}))
    assert request_of(plan).auth.header == ("Authorization", "Bearer s3cret-token")
    assert plan.secrets.mask("x s3cret-token y") == "x **** y"


FILE_BIND = BASE.replace(
    "capability:",
    "binds:\n- namespace: vault\n  location: file:///./secrets.json\n  keys:\n    TOKEN: tok\n    HOST: host\ncapability:",
).replace(
    "    baseUri: https://api.example.com\n",
    "    baseUri: 'https://{{HOST}}/v1'\n    authentication:\n      type: bearer\n      token: '{{vault.TOKEN}}'\n",
)


def test_bind_file_location_is_relative_to_the_capability_file(tmp_path, monkeypatch):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "secrets.json").write_text(json.dumps({"tok": "from-file", "host": "h.example.com"}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # not the capability's directory
    plan = plan_of(tmp_path, FILE_BIND, name="sub/cap.yaml")
    req = request_of(plan)
    assert req.base_url == "https://h.example.com/v1"
    assert req.auth.header == ("Authorization", "Bearer from-file")


def test_bind_file_missing_key_names_key_and_location(tmp_path):
    (tmp_path / "secrets.json").write_text(json.dumps({"host": "h.example.com"}))
    (d,) = plan_errors(tmp_path, FILE_BIND)
    assert "TOKEN" in d.message and "'vault'" in d.message and "tok" in d.message
    assert "file:///./secrets.json" in d.message


def test_bind_file_that_does_not_exist_is_an_error(tmp_path):
    diags = plan_errors(tmp_path, FILE_BIND)
    assert any("'vault'" in d.message and "secrets.json" in d.message for d in diags)


ENV_BIND = BASE.replace(
    "capability:", "binds:\n- namespace: env\n  keys:\n    API_TOKEN: API_TOKEN\n    BASE: BASE\ncapability:"
).replace(
    "    baseUri: https://api.example.com\n",
    "    baseUri: '{{env.BASE}}'\n    authentication:\n      type: apikey\n      key: X-Key\n      value: '{{env.API_TOKEN}}'\n",
)


def test_env_file_provides_binds(tmp_path):
    env_file = tmp_path / "x.env"
    env_file.write_text("API_TOKEN=dot-secret\nBASE=https://dot.example.com/\n")
    plan = plan_of(tmp_path, ENV_BIND, Options(environ={}, env_file=str(env_file)))
    req = request_of(plan)
    assert req.base_url == "https://dot.example.com"  # {{env.BASE}} rendered, trailing / dropped
    assert req.auth.header == ("X-Key", "dot-secret")


def test_environment_overrides_env_file(tmp_path):
    env_file = tmp_path / "x.env"
    env_file.write_text("API_TOKEN=dot-secret\nBASE=https://dot.example.com\n")
    plan = plan_of(tmp_path, ENV_BIND, Options(environ={"API_TOKEN": "env-wins"}, env_file=str(env_file)))
    assert request_of(plan).auth.header == ("X-Key", "env-wins")


def test_missing_env_file_is_a_load_error(tmp_path):
    with pytest.raises(LoadError) as info:
        plan_of(tmp_path, ENV_BIND, Options(environ={}, env_file=str(tmp_path / "none.env")))
    assert "env file not found" in str(info.value)


def test_unqualified_and_qualified_bind_names_in_auth_and_base_uri(tmp_path):
    text = ENV_BIND.replace("'{{env.BASE}}'", "'{{BASE}}/api'").replace("'{{env.API_TOKEN}}'", "'k-{{API_TOKEN}}-{{env.API_TOKEN}}'")
    plan = plan_of(tmp_path, text, Options(environ={"API_TOKEN": "t", "BASE": "https://b.example.com"}))
    req = request_of(plan)
    assert req.base_url == "https://b.example.com/api"
    assert req.auth.header == ("X-Key", "k-t-t")


# ------------------------------------------------------------------ baseUri


def test_trailing_slash_on_base_uri_is_normalised(tmp_path):
    plan = plan_of(tmp_path, BASE.replace("baseUri: https://api.example.com", "baseUri: https://api.example.com/v2/"))
    assert request_of(plan).base_url == "https://api.example.com/v2"


def test_base_uri_override(tmp_path):
    plan = plan_of(tmp_path, BASE, Options(environ={}, base_uris={"up": "http://127.0.0.1:9/"}))
    assert request_of(plan).base_url == "http://127.0.0.1:9"


def test_base_uri_override_for_unknown_namespace_is_an_error(tmp_path):
    diags = plan_errors(tmp_path, BASE, Options(environ={}, base_uris={"other": "http://x"}))
    assert any("--base-uri other" in d.message and "'other'" in d.message for d in diags)


def test_port_override_for_unknown_adapter_is_an_error(tmp_path):
    diags = plan_errors(tmp_path, BASE, Options(environ={}, ports={"nope": 1}))
    assert any("--port nope" in d.message for d in diags)


def test_port_and_address_overrides(tmp_path):
    plan = plan_of(tmp_path, BASE, Options(environ={}, ports={"api": 0}, address="0.0.0.0"))
    (adapter,) = plan.adapters
    assert (adapter.port, adapter.address) == (0, "0.0.0.0")


def test_non_http_base_uri_is_an_error(tmp_path):
    text = BASE.replace("baseUri: https://api.example.com", "baseUri: ftp://api.example.com")
    diags = plan_errors(tmp_path, text)
    assert any("baseUri" in d.message and d.line == pos(text, "baseUri: ftp")[0] for d in diags)


def test_inbound_style_oauth2_on_a_consumes_entry_is_one_clear_load_error(tmp_path):
    text = BASE.replace("    baseUri: https://api.example.com\n", "    baseUri: https://api.example.com\n    authentication:\n      type: oauth2\n      authorizationServerUri: https://as.example\n      resource: https://api.example.com\n")
    (d,) = plan_errors(tmp_path, text)
    assert "needs grantType" in d.message and "inbound resource server" in d.message
    assert (d.line, d.col) == pos(text, "authentication:")


def test_disabled_scripting_refuses_script_steps(tmp_path):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "s.py").write_text("result = 1\n")
    text = BASE.replace(
        "      - method: GET\n        call: up.get-item\n",
        "      - method: GET\n        name: s\n        steps:\n        - {type: script, name: s, language: python, location: 'file:///./scripts', file: s.py}\n",
    ) + "  - type: control\n    port: 0\n    management:\n      scripting: {enabled: false}\n"
    (d,) = plan_errors(tmp_path, text)
    assert "script steps are disabled" in d.message


def test_unresolvable_inbound_secret_is_a_positioned_warning(tmp_path):
    text = BASE.replace("    port: 8080\n", "    port: 8080\n    authentication: {type: apikey, key: X-Key, value: '{{MISSING_KEY}}'}\n")
    plan = plan_of(tmp_path, text)
    (w,) = [w for w in plan.warnings if "deny every request" in w.message]
    assert (w.line, w.col) == pos(text, "value: '{{MISSING_KEY}}'")
