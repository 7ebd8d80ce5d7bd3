"""Generate a large capability (and the equivalent OpenAPI document) for the start-up benchmark.

    python bench/gen_capability.py OUT_DIR [--operations 320]

Writes OUT_DIR/large.yaml (one consumes namespace ``large``, a REST adapter ``large-rest`` and an MCP
adapter ``large-mcp`` exposing every operation) and OUT_DIR/large.openapi.json (the same operations,
for FastMCP ``from_openapi``). Operations cycle through three shapes real API descriptions are made
of: GET by path id, GET with query parameters, POST with a JSON body. Deterministic: same input,
same files.
"""

import argparse
import json
from pathlib import Path

import yaml

NAMESPACE = "large"


def _operation(i: int) -> dict:
    """One operation's shape; ``kind`` picks among the three."""
    kind = i % 3
    if kind == 0:
        return {"kind": kind, "name": f"getthing{i}", "tool": f"get-thing-{i}", "method": "GET",
                "path": f"/v1/things{i}/{{thing_id}}", "params": [("thing_id", "path")]}
    if kind == 1:
        return {"kind": kind, "name": f"listthings{i}", "tool": f"list-things-{i}", "method": "GET",
                "path": f"/v1/things{i}", "params": [("q", "query"), ("limit", "query")]}
    return {"kind": kind, "name": f"actthing{i}", "tool": f"act-thing-{i}", "method": "POST",
            "path": f"/v1/things{i}/actions", "params": [("body", "body")]}


def capability(ops: list[dict]) -> dict:
    consumes, rest, tools = [], [], []
    for op in ops:
        inputs = [{"name": n, "in": where} for n, where in op["params"] if where != "path"]
        consumed = {"name": op["name"], "method": op["method"], "description": f"Operation {op['name']}",
                    "outputRawFormat": "json",
                    "outputParameters": [{"name": "result", "type": "object", "value": "$."}]}
        if inputs:
            consumed["inputParameters"] = inputs
        consumes.append({"name": f"r-{op['name']}", "path": op["path"], "operations": [consumed]})
        with_rest = {n: f"rest.{n}" for n, where in op["params"] if where != "path"}
        with_tools = {n: f"tools.{n}" for n, where in op["params"] if where != "path"}
        exposed = {"method": op["method"], "name": op["name"], "description": f"Operation {op['name']}",
                   "call": f"{NAMESPACE}.{op['name']}"}
        if with_rest:
            exposed["with"] = with_rest
        rest.append({"path": op["path"], "name": f"r-{op['name']}", "operations": [exposed]})
        tool = {"name": op["tool"], "description": f"Operation {op['name']}",
                "hints": {"readOnly": op["method"] == "GET", "destructive": False, "idempotent": op["method"] == "GET"},
                "call": f"{NAMESPACE}.{op['name']}"}
        if with_tools:
            tool["with"] = with_tools
        tools.append(tool)
    return {
        "naftiko": "1.0.0-alpha2",
        "info": {"label": "Large generated capability", "description": f"{len(ops)} generated operations (benchmark)."},
        "binds": [{"namespace": "env", "keys": {"LARGE_API_KEY": "LARGE_API_KEY"}}],
        "capability": {
            "consumes": [{"type": "http", "namespace": NAMESPACE, "baseUri": "https://api.example.com",
                          "resources": consumes,
                          "authentication": {"type": "bearer", "token": "{{env.LARGE_API_KEY}}"}}],
            "exposes": [
                {"type": "rest", "namespace": f"{NAMESPACE}-rest", "port": 8080, "resources": rest},
                {"type": "mcp", "namespace": f"{NAMESPACE}-mcp", "port": 9090, "transport": "http", "tools": tools},
            ],
        },
    }


def openapi(ops: list[dict]) -> dict:
    paths: dict[str, dict] = {}
    for op in ops:
        entry = {"operationId": op["tool"], "summary": f"Operation {op['name']}",
                 "responses": {"200": {"description": "OK",
                                       "content": {"application/json": {"schema": {"type": "object"}}}}}}
        params = [{"name": n, "in": where, "required": where == "path", "schema": {"type": "string"}}
                  for n, where in op["params"] if where != "body"]
        if params:
            entry["parameters"] = params
        if op["kind"] == 2:
            entry["requestBody"] = {"required": False,
                                    "content": {"application/json": {"schema": {"type": "object"}}}}
        paths.setdefault(op["path"], {})[op["method"].lower()] = entry
    return {"openapi": "3.1.0", "info": {"title": "Large generated API", "version": "1.0.0"},
            "servers": [{"url": "https://api.example.com"}], "paths": paths}


def generate(out_dir: Path, operations: int = 320) -> tuple[Path, Path]:
    """Write both files; return (capability path, OpenAPI path)."""
    ops = [_operation(i) for i in range(operations)]
    out_dir.mkdir(parents=True, exist_ok=True)
    cap, spec = out_dir / "large.yaml", out_dir / "large.openapi.json"
    cap.write_text(yaml.safe_dump(capability(ops), sort_keys=False, allow_unicode=True), encoding="utf-8")
    spec.write_text(json.dumps(openapi(ops), indent=1), encoding="utf-8")
    return cap, spec


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--operations", type=int, default=320)
    args = parser.parse_args()
    for path in generate(args.out_dir, args.operations):
        print(path)
