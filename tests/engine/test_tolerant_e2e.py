"""Tolerant mode (docs/reference.md, "Loading"): units that cannot compile are left out, the rest serves.

A capability with 40 MCP tools of which 3 are broken (a call to an operation that does not
exist, a call to a namespace that does not exist, a duplicate tool name) serves 37 and reports
3 positioned errors; ``--strict`` refuses it; ``naftiko validate`` exits 1; a file where every
unit is broken still refuses to start.
"""

from __future__ import annotations

import re

import pytest
from mcp import Client

from conftest import start_naftiko
from harness import run_cli
from naftiko.cli import main
from naftiko.document.loader import load
from naftiko.engine.plan import Options, compile_plan
from naftiko.errors import LoadError

HEAD = """\
naftiko: 1.0.0-alpha2
info:
  label: Forty tools
  description: three of them broken
capability:
  consumes:
  - type: http
    namespace: up
    baseUri: http://127.0.0.1:1
    resources:
    - name: items
      path: /items/{id}
      operations:
      - name: get-item
        method: GET
  exposes:
  - type: mcp
    namespace: forty
    port: 9090
    tools:
"""


def forty(broken: dict[int, str]) -> str:
    """40 tools; ``broken`` maps a tool index to the call it makes instead of ``up.get-item``."""
    out = HEAD
    for i in range(40):
        name = "tool-5" if i == 30 else f"tool-{i}"  # tool 30 repeats tool 5's name
        out += f"    - name: {name}\n      description: tool {i}\n      call: {broken.get(i, 'up.get-item')}\n"
    return out


BROKEN = {7: "up.no-such-op", 19: "nowhere.get-item"}


def line_of(text: str, needle: str, nth: int = 0) -> int:
    lines = [i for i, row in enumerate(text.splitlines(), 1) if needle in row]
    return lines[nth]


def test_forty_tools_three_broken_serve_thirty_seven(tmp_path):
    text = forty(BROKEN)
    path = tmp_path / "forty.yaml"
    path.write_text(text)
    plan = compile_plan(load(str(path)), Options(environ={}))
    (adapter,) = plan.adapters
    assert len(adapter.tools) == 37
    assert {t.name for t in adapter.tools} == {f"tool-{i}" for i in range(40)} - {"tool-7", "tool-19", "tool-30"}
    lines = [(d.line, d.severity) for d in plan.left_out]
    assert lines == [
        (line_of(text, "up.no-such-op"), "error"),
        (line_of(text, "nowhere.get-item"), "error"),
        (line_of(text, "name: tool-5", 1), "error"),
    ]
    messages = [d.message for d in plan.left_out]
    assert "has no operation 'no-such-op'" in messages[0] and "no consumes namespace 'nowhere'" in messages[1]
    assert messages[2] == "duplicate tool 'tool-5'"
    with pytest.raises(LoadError) as err:  # --strict keeps refusing the file
        compile_plan(load(str(path)), Options(environ={}, strict=True))
    assert len(err.value.diagnostics) == 3


async def test_served_process_announces_what_was_left_out(tmp_path):
    text = forty(BROKEN)
    path = tmp_path / "forty.yaml"
    path.write_text(text)
    n = start_naftiko(path, None, adapters=["forty"])
    try:
        assert n.sizes == {"forty": 37}
        async with Client(n.urls["forty"]) as client:
            names = {t.name for t in (await client.list_tools()).tools}
        assert len(names) == 37 and "tool-7" not in names
    finally:
        assert n.stop() == 0
    assert any(
        re.fullmatch(rf"{re.escape(str(path))}: left out 3 unit\(s\) with errors \(above\); serving the rest", line)
        for line in n.stdout_lines
    )
    errors = [line for line in n.stderr.splitlines() if line.startswith(f"{path}:") and "warning" not in line]
    assert len(errors) == 3 and errors[0].startswith(f"{path}:{line_of(text, 'up.no-such-op')}:")


def test_validate_exits_non_zero_either_way(tmp_path, capsys):
    path = tmp_path / "forty.yaml"
    path.write_text(forty(BROKEN))
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "invalid (3 error(s)); naftiko-run would leave those units out and serve mcp forty (37 tools)" in err
    assert main(["validate", "--strict", str(path)]) == 1


def test_a_file_where_every_unit_is_broken_refuses_to_start(tmp_path):
    path = tmp_path / "all-broken.yaml"
    path.write_text(forty({i: "up.nope" for i in range(40)}))
    proc = run_cli(["serve", "--dry-run", str(path)])  # the command's entry point, in this process: it ends before serving
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("has no operation 'nope'") == 39 and "duplicate tool 'tool-5'" in proc.stderr


REST_AND_SKILLS = """\
naftiko: 1.0.0-alpha2
info:
  label: Mixed
  description: broken route, broken consumed operation, missing skill directory
capability:
  consumes:
  - type: http
    namespace: up
    baseUri: http://127.0.0.1:1
    resources:
    - name: items
      path: /items
      operations:
      - name: list
        method: GET
      - name: list
        method: POST
      - name: bad-output
        method: GET
        outputParameters:
        - name: x
          value: $[?(
  exposes:
  - type: rest
    namespace: rest
    port: 8080
    resources:
    - path: /items
      operations:
      - method: GET
        call: up.list
      - method: GET
        call: up.list
    - path: /bad
      operations:
      - method: GET
        call: up.bad-output
  - type: skill
    namespace: skills
    port: 8081
    skills:
    - name: here
      description: exists
      location: file:///./here
    - name: gone
      description: its location is a file, not a directory
      location: file:///./gone.txt
"""


def test_routes_consumed_operations_and_skills_are_left_out_one_by_one(tmp_path):
    (tmp_path / "here").mkdir()
    (tmp_path / "here" / "SKILL.md").write_text("---\nname: here\ndescription: exists\n---\n")
    (tmp_path / "gone.txt").write_text("not a directory")
    path = tmp_path / "mixed.yaml"
    path.write_text(REST_AND_SKILLS)
    plan = compile_plan(load(str(path)), Options(environ={}))
    rest, skills = plan.adapters
    assert [(r.path, sorted(r.operations)) for r in rest.routes] == [("/items", ["GET"]), ("/bad", [])]
    assert list(skills.skills) == ["here"]
    assert list(plan.consumers["up"]) == ["list"]
    messages = [d.message for d in plan.left_out]
    assert len(messages) == 5, messages
    for text in (
        "duplicate operation 'list'",
        "invalid JSONPath",
        "duplicate GET operation on /items",
        f"operation 'bad-output' of consumes 'up' has an error ({line_of(REST_AND_SKILLS, 'outputParameters:')}:",
        "is not a directory",
    ):
        assert any(text in m for m in messages), (text, messages)


GENERATOR_SPELLINGS = """\
naftiko: 1.0.0-alpha2
info:
  label: Generator spellings
  description: form bodies, binary parameters, API keys in the body
binds:
- namespace: env
  keys:
    UP_KEY: UP_KEY
capability:
  consumes:
  - type: http
    namespace: up
    baseUri: http://127.0.0.1:1
    authentication:
      type: apikey
      key: api_key
      value: '{{env.UP_KEY}}'
      placement: body
    resources:
    - name: upload
      path: /upload
      operations:
      - name: upload
        method: POST
        inputParameters:
        - name: file
          in: body
          type: binary
        - name: name
          in: body
          type: string
      - name: login
        method: POST
        body:
          type: form
          data:
            user: '{{user}}'
    - name: raw
      path: /raw
      operations:
      - name: raw
        method: POST
        inputParameters:
        - name: file
          in: body
          type: binary
  exposes:
  - type: rest
    namespace: rest
    port: 8080
    resources:
    - path: /upload
      operations:
      - method: POST
        call: up.upload
        with:
          file: rest.body.file
          name: rest.body.name
    - path: /login
      operations:
      - method: POST
        call: up.login
        with:
          user: rest.user
    - path: /raw
      operations:
      - method: POST
        call: up.raw
        with:
          file: rest.body.file
"""


async def test_generator_spellings_are_accepted_with_warnings(tmp_path, upstream):
    import httpx

    from naftiko.runtime.serve import build_app

    path = tmp_path / "gen.yaml"
    path.write_text(GENERATOR_SPELLINGS)
    key = "up-key-5f5f5f5f"
    plan = compile_plan(load(str(path)), Options(environ={"UP_KEY": key}, base_uris={"up": upstream.url}))
    warned = [d.message for d in plan.warnings]
    assert any("placement 'body'" in w for w in warned) and any("read as formUrlEncoded" in w for w in warned)
    assert any("type 'binary' (EXT) is read as a string" in w for w in warned)
    assert not plan.left_out
    upstream.reset()
    app = build_app(plan.adapters[0], plan)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        uploaded = await http.post("/upload", json={"file": "aGVsbG8=", "name": "hello.txt"})
        form = await http.post("/login", params={"user": "ann&bob"})
        # one `in: body` parameter declared: its value is the whole body, here one JSON string
        string_body = await http.post("/raw", json={"file": "aGVsbG8="})
    await plan.aclose()
    assert uploaded.status_code == 200 and form.status_code == 200
    assert string_body.status_code == 500 and "placement body" in string_body.json()["detail"]
    assert key not in string_body.text
    first, second = upstream.requests  # nothing sent for the string body
    assert first.json() == {"file": "aGVsbG8=", "name": "hello.txt", "api_key": key}
    assert second.headers["content-type"] == "application/x-www-form-urlencoded"
    assert second.body == f"user=ann%26bob&api_key={key}".encode()
    upstream.reset()


def test_mcp_resources_and_prompts_are_left_out_one_by_one(tmp_path):
    text = forty({}).replace(
        "    tools:\n",
        """\
    resources:
    - name: good
      uri: data://good
      description: served
      call: up.get-item
    - name: bad
      uri: data://bad
      description: dangling
      call: up.missing
    prompts:
    - name: hello
      description: served
      template: [{role: user, content: hi}]
    - name: hello
      description: duplicate
      template: [{role: user, content: hi again}]
    tools:
""",
    )
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    plan = compile_plan(load(str(path)), Options(environ={}))
    (adapter,) = plan.adapters
    assert [r.uri for r in adapter.resources] == ["data://good"] and [p.name for p in adapter.prompts] == ["hello"]
    assert len(adapter.tools) == 39  # tool 30 repeats tool 5's name
    assert sorted(d.line for d in plan.left_out) == [
        line_of(text, "up.missing"),
        line_of(text, "name: hello", 1),
        line_of(text, "name: tool-5", 1),
    ]
