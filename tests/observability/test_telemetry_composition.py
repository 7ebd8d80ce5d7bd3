"""Observability is composed while the plan is built (engine/compiler.py), never patched in
afterwards: with it on, every transport in the plan is the observed one from the start and the
handlers that observe (steps, MCP tool calls) hold the telemetry; with it off, nothing is
wrapped, so the hot path pays nothing."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from conftest import MINIMAL_CAPABILITY
from naftiko.consumes.transport import AiohttpTransport
from naftiko.document.loader import load
from naftiko.engine.orchestrated import StepsUnit
from naftiko.engine.plan import McpAdapterPlan, Options, Plan, RestAdapterPlan, compile_plan
from naftiko.exposes.mcp.server import build_server
from naftiko.exposes.rest.router import RestRouter
from naftiko.observability.inbound import HttpObserver
from naftiko.observability.outbound import ObservedTransport
from naftiko.observability.telemetry import start_telemetry, telemetry_for
from naftiko.runtime.serve import build_app

EVERYTHING = MINIMAL_CAPABILITY + """\
    - path: /proxy/{{path}}
      forward:
        targetNamespace: up
    - path: /both/{id}
      operations:
      - method: GET
        name: both
        steps:
        - {type: call, name: first, call: up.get-item, with: {id: rest.id}}
  - type: mcp
    namespace: tools
    port: 9090
    tools:
    - name: get-item
      description: one item
      call: up.get-item
"""
CONTROL = "  - type: control\n    port: 9191\n"


@pytest.fixture
def request_log(request):
    """The naftiko.request logger at the level the test is parametrised with (INFO: request log on)."""
    logger = logging.getLogger("naftiko.request")
    old = logger.level
    logger.setLevel(getattr(request, "param", logging.WARNING))
    yield
    logger.setLevel(old)


def compiled(tmp_path: Path, text: str, observe: bool = True) -> Plan:
    path = tmp_path / "cap.yaml"
    path.write_text(text)
    return compile_plan(load(str(path)), Options(environ={}), observe=observe)


def parts(plan: Plan) -> tuple[RestAdapterPlan, McpAdapterPlan, object, object, StepsUnit]:
    rest, mcp = plan.adapters[:2]
    assert isinstance(rest, RestAdapterPlan) and isinstance(mcp, McpAdapterPlan)
    routes = {r.path: r for r in rest.routes}
    forward = routes["/proxy/{{path}}"].forward
    assert forward is not None
    steps = routes["/both/{id}"].operations["GET"].unit
    assert isinstance(steps, StepsUnit)
    return rest, mcp, plan.consumers["up"]["get-item"].transport, forward.transport, steps


def test_with_metrics_and_traces_the_plan_is_built_observed(tmp_path, request_log):
    plan = compiled(tmp_path, EVERYTHING + CONTROL)
    telemetry = plan.telemetry
    assert telemetry is not None and telemetry.active and telemetry.metrics is not None
    assert telemetry.plan is plan  # attached for the adapters' states; the plan itself untouched
    rest, mcp, operation, forward, steps = parts(plan)
    assert type(operation) is ObservedTransport and type(operation.inner) is AiohttpTransport
    assert (operation.telemetry, operation.namespace, operation.operation) == (telemetry, "up", "get-item")
    assert type(forward) is ObservedTransport and (forward.namespace, forward.operation) == ("up", "forward")
    assert forward.inner is operation.inner  # one pooled transport per consumes entry, observed per use
    assert steps.telemetry is telemetry and steps.calls[0].target.transport is operation
    assert mcp.telemetry is telemetry
    _, tools = build_server(mcp, plan.secrets.mask)
    assert tools.call_observed is not tools.call  # tool calls observed
    assert type(build_app(rest, plan)) is HttpObserver
    # the old entry points hand back what the plan was built with; nothing more is wrapped
    assert start_telemetry(plan) is telemetry and telemetry_for(plan) is telemetry
    assert plan.consumers["up"]["get-item"].transport is operation
    telemetry.shutdown()


@pytest.mark.parametrize("request_log", [logging.INFO], indirect=True)
def test_the_request_log_alone_observes_transports_but_times_no_steps(tmp_path, request_log):
    plan = compiled(tmp_path, EVERYTHING)
    assert plan.telemetry is not None and plan.telemetry.request_log is not None
    _, mcp, operation, forward, steps = parts(plan)
    assert type(operation) is ObservedTransport and type(forward) is ObservedTransport
    assert steps.telemetry is None  # steps are timed for metrics and traces only
    assert mcp.telemetry is plan.telemetry
    plan.telemetry.shutdown()


def test_with_observability_off_nothing_is_wrapped(tmp_path, request_log):
    plan = compiled(tmp_path, EVERYTHING)  # no control adapter, request log off
    assert plan.telemetry is not None and not plan.telemetry.active
    rest, mcp, operation, forward, steps = parts(plan)
    assert type(operation) is AiohttpTransport and forward is operation
    assert steps.telemetry is None and mcp.telemetry is None
    _, tools = build_server(mcp, plan.secrets.mask)
    assert tools.call_observed == tools.call  # the bare method: no wrapper per call
    assert type(build_app(rest, plan)) is RestRouter


def test_control_settings_off_or_not_observing_build_nothing_observed(tmp_path, request_log):
    off = compiled(tmp_path, EVERYTHING + CONTROL + "    observability: {enabled: false}\n")
    assert off.telemetry is not None and not off.telemetry.active
    assert type(off.consumers["up"]["get-item"].transport) is AiohttpTransport
    # validate and export compile without observing, whatever the file asks for
    unobserved = compiled(tmp_path, EVERYTHING + CONTROL, observe=False)
    assert unobserved.telemetry is not None and not unobserved.telemetry.active
    assert unobserved.telemetry.metrics is None and unobserved.telemetry.tracing is None
    assert type(unobserved.consumers["up"]["get-item"].transport) is AiohttpTransport
