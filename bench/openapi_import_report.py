"""Import report: naftiko ``import openapi`` beside FastMCP ``from_openapi`` on public documents.

For every document under tests/fixtures/openapi/public (sources and licences in its README.md)
this prints, for naftiko and for FastMCP, what an agent gets in ``tools/list``:

- tools: tools listed;
- props: top-level properties of the input schemas, summed over the tools;
- enums: ``enum`` keywords anywhere in the input schemas (``$defs`` included);
- typed arrays: array schemas whose ``items`` say something (a type, a ``$ref``, properties…);
- titles: tools with a ``title``;
- import s: reading the document and building the tools (naftiko: read + import + YAML text;
  FastMCP: read + ``from_openapi``).

naftiko's counts come from a real ``tools/list``: the imported capability is written to a file,
loaded, compiled (dry run) and its MCP adapter is asked through the SDK's in-memory client.
FastMCP runs in its own venv (it is not a project dependency); give its Python with ``--fastmcp``
(default: /work/team/fastmcp-venv/bin/python, else bench/.venv-fastmcp/bin/python). Without one,
only naftiko's columns are printed.

    . .venv/bin/activate && python bench/openapi_import_report.py [--fastmcp PYTHON] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client

from naftiko.document.loader import load
from naftiko.engine.plan import Options, compile_plan
from naftiko.exposes.mcp.server import build_server
from naftiko.openapi.importer import import_openapi, read_spec, to_yaml

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = ROOT / "tests" / "fixtures" / "openapi" / "public"
FASTMCP_CANDIDATES = (Path("/work/team/fastmcp-venv/bin/python"), ROOT / "bench" / ".venv-fastmcp" / "bin" / "python")
COLUMNS = ("tools", "props", "enums", "typed arrays", "titles", "import s")


def _walk(node: object):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _is_array(schema: dict) -> bool:
    kind = schema.get("type")
    return kind == "array" or (isinstance(kind, list) and "array" in kind)


def counts(tools: list[dict], seconds: float) -> dict[str, object]:
    """The report's columns for one ``tools/list`` (each tool: name, title, inputSchema)."""
    props = enums = typed = 0
    for tool in tools:
        schema = tool.get("inputSchema") or {}
        props += len(schema.get("properties") or {})
        for node in _walk(schema):
            if isinstance(node.get("enum"), list):
                enums += 1
            if _is_array(node) and isinstance(node.get("items"), dict) and node["items"]:
                typed += 1
    titles = sum(1 for t in tools if t.get("title"))
    return {
        "tools": len(tools),
        "props": props,
        "enums": enums,
        "typed arrays": typed,
        "titles": titles,
        "import s": round(seconds, 3),
    }


async def _list_tools(server) -> list[dict]:
    async with Client(server) as client:
        listed = (await client.list_tools()).tools
    return [{"name": t.name, "title": t.title, "inputSchema": t.input_schema} for t in listed]


def naftiko_counts(path: Path, workdir: Path) -> dict[str, object]:
    started = time.perf_counter()
    imported = import_openapi(read_spec(str(path)), str(path))
    text = to_yaml(imported.capability, str(path))
    seconds = time.perf_counter() - started
    target = workdir / (path.stem + ".capability.yaml")
    target.write_text(text, encoding="utf-8")
    plan = compile_plan(load(str(target)), Options(dry_run=True, environ={}))
    mcp = next(a for a in plan.adapters if a.kind == "mcp")
    server, _ = build_server(mcp, plan.secrets.mask)
    tools = anyio.run(_list_tools, server)
    return counts(tools, seconds)


def fastmcp_counts(python: Path, path: Path) -> dict[str, object] | str:
    run = subprocess.run(
        [str(python), str(ROOT / "bench" / "fastmcp_tools.py"), str(path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    try:
        answer = json.loads(run.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return f"failed: {run.stderr.strip().splitlines()[-1:] or run.returncode}"
    if "error" in answer:
        return "refused: " + answer["error"].split(":", 1)[0]
    return counts(answer["tools"], answer["seconds"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fastmcp", type=Path, help="Python of a venv with fastmcp installed")
    parser.add_argument("--no-fastmcp", action="store_true", help="naftiko's columns only")
    parser.add_argument(
        "documents",
        nargs="*",
        type=Path,
        help=f"OpenAPI documents (default: every document in {DOCUMENTS.relative_to(ROOT)})",
    )
    args = parser.parse_args(argv)
    python = None
    if not args.no_fastmcp:
        python = args.fastmcp or next((p for p in FASTMCP_CANDIDATES if p.exists()), None)
        if python is None:
            print("no FastMCP venv found (--fastmcp PYTHON); naftiko only", file=sys.stderr)
    documents = args.documents or sorted(p for p in DOCUMENTS.iterdir() if p.suffix in (".yaml", ".yml", ".json"))
    header = (
        ["document", "KiB"] + [f"naftiko {c}" for c in COLUMNS] + ([f"FastMCP {c}" for c in COLUMNS] if python else [])
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    behind: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in documents:
            ours = naftiko_counts(path, Path(tmp))
            row = [path.name, str(round(path.stat().st_size / 1024))] + [str(ours[c]) for c in COLUMNS]
            if python:
                theirs = fastmcp_counts(python, path)
                if isinstance(theirs, str):
                    row += [theirs] + [""] * (len(COLUMNS) - 1)
                else:
                    row += [str(theirs[c]) for c in COLUMNS]
                    behind += [f"{path.name}: {c}" for c in COLUMNS[:-1] if ours[c] < theirs[c]]  # type: ignore[operator]
            print("| " + " | ".join(row) + " |", flush=True)
    if behind:
        print("\nnaftiko behind FastMCP on: " + ", ".join(behind))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
