"""REST inputs checked against their declared type (exposes/rest/router.py ``collect``): the path
values that need no check are left out at load (``InputPlan.checked``); every typed one is still
parsed, and a bad one is a 400 naming it with nothing sent upstream."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from naftiko.document.loader import load
from naftiko.engine.plan import Options, compile_plan
from naftiko.exposes.rest.router import build_rest_app, compile_inputs

CAPABILITY = """\
naftiko: 1.0.0-alpha2
info:
  label: Typed inputs
  description: typed path and query inputs
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
    - name: names
      path: /names/{name}
      operations:
      - {name: get-name, method: GET, inputParameters: [{name: full, in: query}]}
  exposes:
  - type: rest
    namespace: api
    port: 0
    resources:
    - path: /items/{id}
      name: items
      operations:
      - method: GET
        name: get-item
        inputParameters:
        - {name: id, in: path, type: integer, required: true}
        call: up.get-item
        with: {id: '{{id}}'}
    - path: /names/{name}
      name: names
      operations:
      - method: GET
        name: get-name
        inputParameters:
        - {name: name, in: path, type: string, required: true}
        - {name: full, in: query, type: boolean, required: false}
        call: up.get-name
        with: {name: '{{name}}', full: '{{full}}'}
"""


@pytest.fixture
async def served(tmp_path: Path, fresh_upstream):
    cap = tmp_path / "cap.yaml"
    cap.write_text(CAPABILITY)
    plan = compile_plan(load(str(cap)), Options(base_uris={"up": fresh_upstream.url}))
    rest = next(a for a in plan.adapters if a.kind == "rest")
    app = build_rest_app(rest, plan.secrets.mask)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as http:
        yield http, rest
    await plan.aclose()


async def test_a_typed_path_value_is_parsed_and_a_bad_one_refused_before_any_call(served, fresh_upstream):
    http, _ = served
    r = await http.get("/items/007")
    assert r.status_code == 200, r.text
    assert fresh_upstream.last.path == "/items/7"  # parsed as the integer it is declared to be
    before = len(fresh_upstream.requests)
    bad = await http.get("/items/seven")
    assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["field"] == "id"
    assert len(fresh_upstream.requests) == before  # nothing sent upstream


async def test_a_text_path_value_is_passed_as_sent_and_typed_query_values_still_checked(served, fresh_upstream):
    http, _ = served
    assert (await http.get("/names/007")).status_code == 200
    assert fresh_upstream.last.path == "/names/007"
    bad = await http.get("/names/ann", params={"full": "maybe"})
    assert bad.status_code == 400 and bad.json()["field"] == "full"


def test_only_the_inputs_a_check_could_change_are_checked_per_request(served):
    _, rest = served
    checked = {}
    for route in rest.routes:
        names = [part.strip("{}") for part in route.path.split("/") if part.startswith("{")]
        for operation in route.operations.values():
            checked[operation.name] = [spec.name for spec in compile_inputs(operation, names).checked]
    assert checked == {"get-item": ["id"], "get-name": ["full"]}
