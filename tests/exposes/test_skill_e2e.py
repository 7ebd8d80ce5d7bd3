"""End to end: the skill adapter serves its catalog, details, file listings, files and zips,
and never a byte from outside a skill's directory.

The fixture capability is copied to a temporary directory so each run can add what a real
skill directory may hold but a repository should not: hidden files, a symlink that leads
outside, one that stays inside and a symlinked directory. The copy keeps the relative
``file:///./skills/…`` locations, so they resolve against the capability file as binds do.
"""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from conftest import FIXTURES
from harness import run_cli, serve_in_memory
from naftiko.document.loader import load
from naftiko.engine.plan import Options, compile_plan
from naftiko.errors import LoadError

REST, MCP, SKILL = "orders-rest", "orders-mcp", "orders-skills"
SECRET = "TOP-SECRET-7c1d"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("skills")
    shutil.copy(FIXTURES / "skill.yaml", base / "skill.yaml")
    shutil.copytree(FIXTURES / "skills", base / "skills")
    desk = base / "skills" / "order-desk"
    (desk / ".draft.md").write_text(f"hidden draft {SECRET}\n")
    (desk / ".git").mkdir()
    (desk / ".git" / "config").write_text(f"[core] {SECRET}\n")
    (base / "outside.txt").write_text(f"{SECRET}\n")
    (base / "outside-dir").mkdir()
    (base / "outside-dir" / "data.txt").write_text(f"{SECRET}\n")
    (desk / "leak.txt").symlink_to(base / "outside.txt")
    (desk / "outside-dir").symlink_to(base / "outside-dir", target_is_directory=True)
    (desk / "refunds-link.md").symlink_to(desk / "guides" / "refunds.md")
    return base


@pytest_asyncio.fixture(scope="module")
async def served(workdir):
    n = await serve_in_memory(workdir / "skill.yaml", None, adapters=[REST, MCP, SKILL])
    yield n
    assert await n.stop() == 0
    assert "Traceback" not in n.stderr


@pytest_asyncio.fixture
async def http(served):
    base = served.urls[SKILL].removesuffix("/skills")
    async with served.http(base_url=base) as client:
        yield client


def _problem(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"]
    assert SECRET not in r.text
    return body


async def _raw_get(http: httpx.AsyncClient, target: str) -> httpx.Response:
    """Send ``target`` as the request line exactly, without the client normalising ``..``."""
    return await http.get(target, extensions={"target": target.encode()})


EXPECTED_FILES = ["SKILL.md", "guides/refunds.md", "refunds-link.md", "schemas/order.json"]


# ------------------------------------------------------------------ catalog and detail


def test_startup_line_names_the_skills_url(served):
    assert served.urls[SKILL].endswith("/skills")
    assert served.sizes[SKILL] == 3


async def test_catalog_lists_every_skill_with_tool_names(http):
    r = await http.get("/skills")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json() == {
        "count": 3,
        "skills": [
            {"name": "order-desk", "description": "Look up orders and handle refund questions", "license": "Apache-2.0",
             "tools": ["list-orders", "get-order", "fetch-order", "refund-policy"]},
            {"name": "style-guide", "description": "House style for customer replies", "tools": []},
            {"name": "escalation", "description": "When to hand a case to a person (no files)", "tools": []},
        ],
    }
    assert (await http.get("/skills/")).json()["count"] == 3
    head = await http.head("/skills")
    assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) == len(r.content)


async def test_detail_has_frontmatter_and_tool_catalog(http):
    body = (await http.get("/skills/order-desk")).json()
    tools = body.pop("tools")
    assert body == {
        "name": "order-desk",
        "description": "Look up orders and handle refund questions",
        "license": "Apache-2.0",
        "compatibility": "Needs the orders-rest or orders-mcp adapter",
        "argument-hint": "an order id or a customer question",
        "allowed-tools": "list-orders fetch-order",
        "user-invocable": False,  # set in the file; disable-model-invocation is not, so it is absent
        "metadata": {"author": "desk-team", "category": "support"},
    }
    by_name = {t["name"]: t for t in tools}
    assert [t["name"] for t in tools] == ["list-orders", "get-order", "fetch-order", "refund-policy"]
    rest = by_name["list-orders"]
    assert rest["type"] == "derived" and rest["description"] == "List orders, optionally by status"
    assert rest["invocationRef"] == {"targetNamespace": REST, "action": "list-orders", "mode": "rest", "method": "GET", "path": "/orders"}
    assert rest["inputSchema"]["properties"]["status"] == {"type": "string", "description": "Only orders in this status"}
    by_id = by_name["get-order"]  # an undeclared path variable is still a required input
    assert by_id["invocationRef"]["path"] == "/orders/{id}"
    assert by_id["inputSchema"] == {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}
    mcp = by_name["fetch-order"]
    assert mcp["invocationRef"] == {"targetNamespace": MCP, "action": "fetch-order", "mode": "mcp"}
    assert mcp["inputSchema"] == {"type": "object", "properties": {"id": {"type": "string", "description": "The order id"}}, "required": ["id"]}
    assert by_name["refund-policy"] == {
        "name": "refund-policy", "description": "How to answer refund questions", "type": "instruction", "instruction": "guides/refunds.md",
    }
    assert "location" not in body  # a server path is not the client's business


async def test_descriptive_skill_detail_is_minimal(http):
    assert (await http.get("/skills/style-guide")).json() == {
        "name": "style-guide", "description": "House style for customer replies", "tools": [],
    }


async def test_every_instruction_in_a_detail_can_be_fetched(http, workdir):
    for tool in (await http.get("/skills/order-desk")).json()["tools"]:
        if tool["type"] == "instruction":
            r = await http.get(f"/skills/order-desk/contents/{tool['instruction']}")
            assert r.status_code == 200
            assert r.content == (workdir / "skills" / "order-desk" / tool["instruction"]).read_bytes()


# ------------------------------------------------------------------ contents and download


async def test_contents_lists_visible_files_inside_the_directory(http, workdir):
    body = (await http.get("/skills/order-desk/contents")).json()
    assert body["name"] == "order-desk"
    assert [f["path"] for f in body["files"]] == EXPECTED_FILES
    desk = workdir / "skills" / "order-desk"
    for f in body["files"]:
        assert f["size"] == (desk / f["path"]).stat().st_size
    types = {f["path"]: f["type"] for f in body["files"]}
    assert types["SKILL.md"] == "text/markdown" and types["schemas/order.json"] == "application/json"
    assert (await http.get("/skills/style-guide/contents/")).json()["files"] == [
        {"path": "SKILL.md", "size": (workdir / "skills/style-guide/SKILL.md").stat().st_size, "type": "text/markdown"},
        {"path": "tone.txt", "size": (workdir / "skills/style-guide/tone.txt").stat().st_size, "type": "text/plain"},
    ]


async def test_single_files_with_their_content_type(http, workdir):
    desk = workdir / "skills" / "order-desk"
    r = await http.get("/skills/order-desk/contents/SKILL.md")
    assert r.status_code == 200 and r.headers["content-type"] == "text/markdown; charset=utf-8"
    assert r.content == (desk / "SKILL.md").read_bytes() and r.text.startswith("---\nname: order-desk\n")
    r = await http.get("/skills/order-desk/contents/schemas/order.json")
    assert r.headers["content-type"] == "application/json" and r.json()["required"] == ["id", "status"]
    r = await http.get("/skills/style-guide/contents/tone.txt")
    assert r.headers["content-type"] == "text/plain; charset=utf-8" and "Friendly" in r.text
    r = await http.get("/skills/order-desk/contents/refunds-link.md")  # a symlink that stays inside
    assert r.status_code == 200 and r.content == (desk / "guides" / "refunds.md").read_bytes()
    r = await http.head("/skills/order-desk/contents/SKILL.md")
    assert r.status_code == 200 and r.content == b"" and int(r.headers["content-length"]) == (desk / "SKILL.md").stat().st_size


async def test_download_is_a_zip_of_the_visible_files(http, workdir):
    r = await http.get("/skills/order-desk/download")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert r.headers["content-disposition"] == 'attachment; filename="order-desk.zip"'
    desk = workdir / "skills" / "order-desk"
    with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
        assert archive.testzip() is None
        assert sorted(archive.namelist()) == EXPECTED_FILES
        for name in archive.namelist():
            assert archive.read(name) == (desk / name).read_bytes()
    assert SECRET.encode() not in r.content


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    "tail",
    [
        "../../skill.yaml",
        "guides/../../../skill.yaml",
        "%2e%2e/%2e%2e/skill.yaml",
        "%2e%2e%2f%2e%2e%2fskill.yaml",
        "guides%2f..%2f..%2f..%2fskill.yaml",
        "..%5c..%5cskill.yaml",
        "%2fetc%2fpasswd",
        "guides//refunds.md",
        "./SKILL.md",
        "%00",
    ],
)
async def test_traversal_is_refused(http, tail):
    for skill in ("order-desk", "style-guide"):
        r = await _raw_get(http, f"/skills/{skill}/contents/{tail}")
        body = _problem(r, 400)
        assert body["field"] == "file"
        assert "naftiko" not in r.text  # nothing of the capability file


@pytest.mark.parametrize(
    "tail", [".draft.md", "%2edraft.md", ".git/config", "leak.txt", "outside-dir/data.txt", "guides/missing.md", "guides"]
)
async def test_hidden_escaping_and_missing_files_are_not_found(http, tail):
    _problem(await _raw_get(http, f"/skills/order-desk/contents/{tail}"), 404)


async def test_unknown_skill_is_404_on_every_endpoint(http):
    for path in ("/skills/nope", "/skills/nope/download", "/skills/nope/contents", "/skills/nope/contents/SKILL.md"):
        body = _problem(await http.get(path), 404)
        assert "nope" in body["detail"]


async def test_skill_without_location_has_no_files(http):
    assert (await http.get("/skills/escalation")).status_code == 200
    for path in ("/skills/escalation/download", "/skills/escalation/contents", "/skills/escalation/contents/SKILL.md"):
        assert "no location" in _problem(await http.get(path), 404)["detail"]


async def test_unknown_routes_and_methods(http):
    for path in ("/", "/skill", "/skills/order-desk/files", "/skills/order-desk/download/x"):
        _problem(await http.get(path), 404)
    for method in ("POST", "PUT", "DELETE"):
        r = await http.request(method, "/skills/order-desk")
        _problem(r, 405)
        assert r.headers["allow"] == "GET, HEAD"


# ------------------------------------------------------------------ load errors


BROKEN = """\
naftiko: 1.0.0-alpha2
info:
  label: Broken skills
  description: every skill reference here is wrong
capability:
  consumes:
  - type: http
    namespace: up
    baseUri: https://up.example.com
    resources:
    - name: items
      path: /items
      operations:
      - name: list-items
        method: GET
  exposes:
  - type: mcp
    namespace: tools-mcp
    port: 9001
    tools:
    - name: list-items
      description: List items
      call: up.list-items
  - type: skill
    namespace: broken-skills
    port: 9002
    skills:
    - name: lost
      description: its directory is missing
      location: file:///./no-such-dir
    - name: wrong-tool
      description: names a tool the MCP adapter does not have
      tools:
      - name: ghost
        description: not there
        from:
          sourceNamespace: tools-mcp
          action: delete-items
"""


def _pos(text: str, needle: str) -> str:
    idx = text.index(needle)
    return f"{text.count(chr(10), 0, idx) + 1}:{idx - (text.rfind(chr(10), 0, idx) + 1) + 1}"


def test_missing_tool_fails_startup_and_a_missing_location_is_a_positioned_warning(tmp_path):
    cap = tmp_path / "broken.yaml"
    cap.write_text(BROKEN)
    # --strict: in tolerant mode the broken skill is left out and the rest serves (test_tolerant_e2e.py)
    proc = run_cli(["serve", "--strict", str(cap)])  # the command's entry point, in this process
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert not [line for line in lines if "no-such-dir" in line]  # a warning, not among the errors
    action = next(line for line in lines if "delete-items" in line)
    assert action.startswith(f"{cap}:{_pos(BROKEN, 'action: delete-items')}:")
    assert "has no tool 'delete-items'" in action and "known: list-items" in action


async def test_a_missing_location_is_served_404_until_the_directory_appears(tmp_path):
    """The reference serves a skill whose directory is absent (a deployment path such as /opt or
    /tmp) and answers 404 for its files; naftiko does the same and serves them once it exists."""
    cap = tmp_path / "cap.yaml"
    tool = "      tools:\n      - name: guide\n        description: the guide\n        instruction: SKILL.md\n"
    cap.write_text(_skill_doc("    - name: later\n      description: mounted later\n      location: file:///./later\n" + tool))
    plan = compile_plan(load(str(cap)), Options(environ={}))
    assert not plan.left_out
    warning = next(w for w in plan.warnings if "does not exist" in w.message)
    assert "404" in warning.message and str(warning).startswith(f"{cap}:{_pos(cap.read_text(), 'location: file:///./later')}:")
    n = await serve_in_memory(cap, None, adapters=["broken-skills"])
    try:
        async with n.http(base_url=n.urls["broken-skills"].removesuffix("/skills")) as http:
            assert (await http.get("/skills")).json()["count"] == 1
            detail = (await http.get("/skills/later")).json()
            assert [t["instruction"] for t in detail["tools"]] == ["SKILL.md"]
            body = _problem(await http.get("/skills/later/contents"), 404)
            assert "does not exist" in body["detail"]
            (tmp_path / "later").mkdir()
            (tmp_path / "later" / "SKILL.md").write_text("---\nname: later\ndescription: mounted later\n---\nhello\n")
            listing = await http.get("/skills/later/contents")
            assert listing.status_code == 200, listing.text
            assert "SKILL.md" in listing.text
            assert (await http.get("/skills/later/contents/SKILL.md")).text.endswith("hello\n")
    finally:
        assert await n.stop() == 0


def _errors(tmp_path: Path, text: str) -> list[str]:
    cap = tmp_path / "cap.yaml"
    cap.write_text(text)
    try:  # refused, or (tolerant mode) served with the broken skills left out
        plan = compile_plan(load(str(cap)), Options(environ={}))
    except LoadError as exc:
        return [d.message for d in exc.diagnostics]
    assert plan.left_out
    return [d.message for d in plan.left_out]


def _skill_doc(skill_yaml: str) -> str:
    head = BROKEN[: BROKEN.index("    skills:\n")]
    return head + "    skills:\n" + skill_yaml


def test_other_load_errors(tmp_path):
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "SKILL.md").write_text("---\nname: a\n---\n")
    (tmp_path / "dir" / ".hidden.md").write_text("x")
    (tmp_path / "secret.md").write_text("outside")
    (tmp_path / "plain-file").write_text("not a directory")
    skills = """\
    - name: a
      description: a
      location: file:///./dir
      tools:
      - name: escape
        description: leaves the directory
        instruction: ../secret.md
      - name: missing
        description: no such file
        instruction: nope.md
      - name: hidden
        description: hidden file
        instruction: .hidden.md
      - name: both
        description: both kinds
        instruction: SKILL.md
        from: {sourceNamespace: tools-mcp, action: list-items}
      - name: neither
        description: no source
      - name: to-self
        description: names a skill adapter
        from: {sourceNamespace: broken-skills, action: a}
      - name: unknown-ns
        description: names nothing
        from: {sourceNamespace: nowhere, action: x}
    - name: not-a-dir
      description: a file
      location: file:///./plain-file
    - name: no-location
      description: instruction without a location
      tools:
      - name: guide
        description: guide
        instruction: guide.md
    - name: a
      description: duplicate
"""
    messages = _errors(tmp_path, _skill_doc(skills))
    expect = [
        "instruction '../secret.md' must be a plain path",
        "instruction file 'nope.md' not found",
        "'.hidden.md': hidden files are not served",
        "'both' in skill 'a' cannot define both 'from' and 'instruction'",
        "'neither' in skill 'a' must define either 'from' or 'instruction'",
        "source namespace 'broken-skills' is a skill adapter",
        "source namespace 'nowhere' does not exist",
        "is not a directory",
        "uses 'instruction' but skill 'no-location' has no 'location'",
        "duplicate skill 'a'",
    ]
    for text in expect:
        assert any(text in m for m in messages), (text, messages)
    assert len(messages) == len(expect), messages


def test_valid_file_loads_with_a_warning_for_a_missing_skill_md(tmp_path):
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "notes.md").write_text("notes")
    cap = tmp_path / "cap.yaml"
    cap.write_text(_skill_doc("    - name: bare\n      description: no SKILL.md\n      location: file:///./bare\n"))
    plan = compile_plan(load(str(cap)), Options(environ={}))
    skill = next(a for a in plan.adapters if a.kind == "skill")
    assert skill.size == "1 skills" and skill.skills["bare"].root == (tmp_path / "bare").resolve()
    assert any("has no SKILL.md" in w.message for w in plan.warnings)
