"""The skill adapter (``type: skill``): a read-only catalog of agent skills over HTTP.

It describes, never executes: a skill's tools either point at a sibling REST operation or
MCP tool (``from``) or at an instruction file in the skill's ``location`` directory. Routes
and JSON keys follow the reference engine (REF):

- ``GET /skills`` → ``{count, skills: [{name, description, license?, tools: [names]}]}``
- ``GET /skills/{name}`` → the skill's frontmatter fields (only those set), ``metadata``, and
  ``tools``: ``{name, description, type: "derived", invocationRef: {targetNamespace, action,
  mode}}`` or ``{name, description, type: "instruction", instruction}``
- ``GET /skills/{name}/download`` → a zip of the location directory (entries relative to it)
- ``GET /skills/{name}/contents`` → ``{name, files: [{path, size, type}]}``
- ``GET /skills/{name}/contents/{file…}`` → the file, typed by its extension

Where we differ: every reference (namespace *and* action, instruction files, the location
directory) is checked at load (FIX); derived tools also carry the spec's ``inputSchema`` and,
for REST, the ``method`` and ``path`` to call (EXT); errors are problem+json like every other
engine-made error (the reference answers HTML error pages). File access is confined to the
location directory: ``.``/``..``/empty or slash-holding segments (also percent-encoded) are a
400, a symlink that leads outside is a 404, and hidden files (any segment starting with ``.``)
are never listed, zipped or served — they are usually VCS or editor state, not skill content.
"""

from __future__ import annotations

import io
import mimetypes
import os
import zipfile
from collections.abc import Iterable, Mapping, Sized
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol
from urllib.parse import unquote

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from naftiko.binds.resolve import resolve_location
from naftiko.engine.plan import McpAdapterPlan, RestAdapterPlan
from naftiko.exposes.http.asgi import serve_lifespan
from naftiko.expressions.template import PATH_PLACEHOLDER

if TYPE_CHECKING:
    from naftiko.document.model import (
        AggregateFunction,
        Authentication,
        Document,
        ExposedOperation,
        ExposedSkill,
        Exposes,
        ExposesSkill,
        McpTool,
        SkillTool,
    )
    from naftiko.document.source import Source
    from naftiko.engine.plan import Options, Plan, RestOperation

SpecPath = tuple[str | int, ...]
"""Where a value sits in the capability file, for diagnostics."""

Sibling = RestAdapterPlan | McpAdapterPlan
"""A REST or MCP adapter of the same capability, which a derived skill tool points at."""


class CompileContext(Protocol):
    """What compiling a skill adapter needs from the plan compiler."""

    @property
    def doc(self) -> Document: ...

    @property
    def source(self) -> Source: ...

    @property
    def options(self) -> Options: ...

    @property
    def aggregates(self) -> Mapping[str, AggregateFunction]: ...

    @property
    def errors(self) -> Sized: ...

    def unit_scope(self) -> AbstractContextManager[int]:
        """Errors inside leave one unit out (tolerant mode); yields the error count at the start."""
        ...

    def error(self, path: SpecPath, message: str) -> None: ...

    def warn(self, path: SpecPath, message: str) -> None: ...

    def address(self, adapter: ExposesSkill) -> str: ...

    def port(self, adapter: ExposesSkill) -> int | None: ...

ALLOW = "GET, HEAD"
_TYPES = {
    ".md": "text/markdown", ".markdown": "text/markdown", ".txt": "text/plain", ".json": "application/json",
    ".yaml": "application/yaml", ".yml": "application/yaml", ".py": "text/x-python", ".sh": "text/x-shellscript",
    ".js": "text/javascript", ".ts": "text/plain", ".html": "text/html", ".css": "text/css", ".csv": "text/csv",
    ".xml": "application/xml", ".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg", ".gif": "image/gif", ".pdf": "application/pdf", ".zip": "application/zip",
}


def guess_media_type(name: str) -> str:
    """A file's media type from its extension; a fixed table first so answers do not depend
    on the host's mime.types."""
    ext = os.path.splitext(name)[1].lower()
    return _TYPES.get(ext) or mimetypes.guess_type(name, strict=True)[0] or "application/octet-stream"


# ------------------------------------------------------------------ plan


@dataclass(frozen=True)
class SkillToolPlan:
    name: str
    description: str | None
    source: tuple[str, str] | None = None  # (sibling namespace, action)
    mode: str | None = None  # "rest" | "mcp"
    instruction: str | None = None


@dataclass
class SkillPlan:
    name: str
    description: str | None
    fields: dict[str, Any]  # frontmatter fields that were set, under their spec names
    root: Path | None  # the resolved location directory
    tools: list[SkillToolPlan]


@dataclass(frozen=True)
class SkillAdapterPlan:
    kind: ClassVar[Literal["skill"]] = "skill"
    url_path: ClassVar[str] = "/skills"
    namespace: str
    address: str
    port: int
    description: str | None
    skills: dict[str, SkillPlan] = field(default_factory=dict)
    authentication: Authentication | None = None

    @property
    def size(self) -> str:
        return f"{len(self.skills)} skills"


_FRONTMATTER = (
    ("license", "license"), ("compatibility", "compatibility"), ("argument_hint", "argument-hint"),
    ("allowed_tools", "allowed-tools"), ("user_invocable", "user-invocable"),
    ("disable_model_invocation", "disable-model-invocation"),
)


def _actions(
    exposes: Iterable[Exposes], functions: Mapping[str, AggregateFunction]
) -> dict[str, tuple[str, set[str]]]:
    """Sibling namespace → (adapter type, the names a ``from.action`` may use). A unit that
    only has ``ref`` is known by its aggregate function's name, as its adapter names it."""

    def named(unit: ExposedOperation | McpTool) -> str | None:
        function = functions.get(unit.ref) if unit.ref else None
        return unit.name or (function.name if function is not None else None)

    out: dict[str, tuple[str, set[str]]] = {}
    for adapter in exposes:
        if adapter.type == "rest":
            # an unnamed operation is known by the same fallback name the REST plan gives it
            names = {
                named(op) or f"{op.method.lower()}-{res.name or res.path}"
                for res in adapter.resources
                for op in res.operations
            }
            out[adapter.namespace] = ("rest", names)
        elif adapter.type == "mcp":
            out[adapter.namespace] = ("mcp", {n for t in adapter.tools if (n := named(t))})
        else:
            out[getattr(adapter, "namespace", None) or adapter.type] = (adapter.type, set())
    return out


def _location(compiler: CompileContext, skill: ExposedSkill, location: str, spath: SpecPath) -> Path | None:
    where = (*spath, "location")
    if not location.startswith("file://"):
        compiler.error(where, f"skill '{skill.name}': location must be a file:/// URI, got {location!r}")
        return None
    base = Path(compiler.source.file).resolve().parent
    path = resolve_location(location, base)
    if not path.is_absolute():
        path = base / path
    if not path.exists():
        # Where the directory lives is the deployment's business (a mounted volume, /opt, /tmp): the
        # skill is served and its files answer 404 until the directory appears, as in the reference.
        relative = location.startswith(("file:///./", "file:///../"))
        if relative:  # where it will be looked for: beside the capability file
            path = base / unquote(location.removeprefix("file:///"))
        looked = f"relative to {base} or the working directory" if relative else str(path)
        message = f"skill '{skill.name}': location {location} does not exist ({looked})"
        compiler.warn(where, f"{message}; its files answer 404 until it does")
        return path.resolve()
    if not path.is_dir():
        compiler.error(where, f"skill '{skill.name}': location {location} is not a directory ({path})")
        return None
    root = path.resolve()
    if not (root / "SKILL.md").is_file():
        compiler.warn(where, f"skill '{skill.name}': location {location} has no SKILL.md")
    return root


def _instruction(
    compiler: CompileContext, skill: ExposedSkill, root: Path | None, tool: SkillTool, instruction: str, tpath: SpecPath
) -> bool:
    where = (*tpath, "instruction")
    if root is None:
        if skill.location is None:
            message = f"skill tool '{tool.name}' uses 'instruction' but skill '{skill.name}' has no 'location'"
            compiler.error(where, message)
        return False
    rel = instruction.replace("\\", "/")
    parts = rel.split("/")
    if rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        compiler.error(where, f"instruction {instruction!r} must be a plain path relative to the skill location")
        return False
    if any(p.startswith(".") for p in parts):
        compiler.error(where, f"instruction {instruction!r}: hidden files are not served")
        return False
    if not root.exists():  # the location's own warning covers its files: checked when it appears
        return True
    target = (root / rel).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        compiler.error(where, f"instruction file {instruction!r} not found in {root}")
        return False
    return True


def _from(
    compiler: CompileContext, tool: SkillTool, tpath: SpecPath, siblings: Mapping[str, tuple[str, set[str]]]
) -> tuple[tuple[str, str], str] | None:
    ref = tool.from_ or {}
    where = (*tpath, "from")
    ns = ref.get("sourceNamespace")
    if ns is None and "namespace" in ref:  # the wiki's older spelling (EXT)
        ns = ref["namespace"]
        compiler.warn((*where, "namespace"), "'from.namespace' is the older spelling of 'from.sourceNamespace'")
    action = ref.get("action")
    if not isinstance(ns, str) or not isinstance(action, str):
        compiler.error(where, f"skill tool '{tool.name}': 'from' needs 'sourceNamespace' and 'action'")
        return None
    ns_path = where + (("sourceNamespace",) if "sourceNamespace" in ref else ("namespace",))
    sibling = siblings.get(ns)
    if sibling is None or sibling[0] not in ("rest", "mcp"):
        known = ", ".join(sorted(k for k, (mode, _) in siblings.items() if mode in ("rest", "mcp"))) or "none"
        what = f"is a {sibling[0]} adapter" if sibling else "does not exist"
        compiler.error(
            ns_path,
            f"skill tool '{tool.name}': source namespace '{ns}' {what}; "
            f"it must name a rest or mcp adapter (known: {known})",
        )
        return None
    mode, actions = sibling
    if action not in actions:
        kind = "operation" if mode == "rest" else "tool"
        known = ", ".join(sorted(actions)) or "none"
        message = f"skill tool '{tool.name}': {mode} adapter '{ns}' has no {kind} '{action}' (known: {known})"
        compiler.error((*where, "action"), message)
        return None
    return (ns, action), mode


def compile_skill(
    compiler: CompileContext, adapter: ExposesSkill, path: SpecPath, binds: dict[str, dict[str, str]]
) -> SkillAdapterPlan:
    """Check every skill at load (locations, instruction files, ``from`` targets) and plan it."""
    capability = compiler.doc.capability
    siblings = _actions(capability.exposes if capability is not None else [], compiler.aggregates)
    port = compiler.port(adapter)
    plan = SkillAdapterPlan(
        adapter.namespace,
        compiler.address(adapter),
        adapter.port if port is None else port,  # the model requires a port
        adapter.description,
        authentication=adapter.authentication,
    )
    if not adapter.skills:
        compiler.warn((*path, "skills"), f"skill adapter '{adapter.namespace}' declares no skills")
    names: set[str] = set()  # also of skills left out, so a duplicate is still reported
    for si, skill in enumerate(adapter.skills):
        with compiler.unit_scope() as start:
            spath = (*path, "skills", si)
            if skill.name in names:
                compiler.error((*spath, "name"), f"duplicate skill '{skill.name}'")
                continue
            names.add(skill.name)
            root = _location(compiler, skill, skill.location, spath) if skill.location is not None else None
            tools: list[SkillToolPlan] = []
            seen: set[str] = set()
            for ti, tool in enumerate(skill.tools):
                tpath = (*spath, "tools", ti)
                if tool.name in seen:
                    compiler.error((*tpath, "name"), f"duplicate tool '{tool.name}' in skill '{skill.name}'")
                    continue
                seen.add(tool.name)
                if (tool.from_ is None) == (tool.instruction is None):
                    how = "cannot define both 'from' and" if tool.from_ is not None else "must define either 'from' or"
                    compiler.error(tpath, f"skill tool '{tool.name}' in skill '{skill.name}' {how} 'instruction'")
                    continue
                if tool.instruction is not None:
                    if _instruction(compiler, skill, root, tool, tool.instruction, tpath):
                        instruction = tool.instruction.replace("\\", "/")
                        tools.append(SkillToolPlan(tool.name, tool.description, instruction=instruction))
                    continue
                resolved = _from(compiler, tool, tpath, siblings)
                if resolved is not None:
                    tools.append(SkillToolPlan(tool.name, tool.description, source=resolved[0], mode=resolved[1]))
            fields = {key: getattr(skill, attr) for attr, key in _FRONTMATTER if attr in skill.model_fields_set}
            if skill.metadata:
                fields["metadata"] = dict(skill.metadata)
            if len(compiler.errors) == start:  # a skill with an error is left out whole (tolerant mode)
                plan.skills[skill.name] = SkillPlan(skill.name, skill.description, fields, root, tools)
    return plan


# ------------------------------------------------------------------ bodies, built once


def _rest_schema(operation: RestOperation, route_path: str) -> dict[str, Any]:
    properties: dict[str, dict[str, Any]] = {}
    required: list[str] = []
    for spec in operation.inputs:
        prop: dict[str, Any] = {"type": spec.type} if spec.type else {}
        if spec.description:
            prop["description"] = spec.description
        properties[spec.name] = prop
        if spec.required:
            required.append(spec.name)
    for m in PATH_PLACEHOLDER.finditer(route_path):
        name = (m.group(1) or m.group(2)).strip()
        if name not in properties:
            properties[name] = {"type": "string"}
            required.append(name)
    return {"type": "object", "properties": properties, "required": required}


def _invocation(
    tool: SkillToolPlan, source: tuple[str, str], siblings: Mapping[str, Sibling]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    ns, action = source
    ref: dict[str, Any] = {"targetNamespace": ns, "action": action, "mode": tool.mode}
    sibling = siblings.get(ns)
    if tool.mode == "rest" and isinstance(sibling, RestAdapterPlan):
        for route in sibling.routes:
            for op in route.operations.values():
                if op.name == action:
                    ref["method"], ref["path"] = op.method, route.path
                    return ref, _rest_schema(op, route.path)
    if tool.mode == "mcp" and isinstance(sibling, McpAdapterPlan):
        for t in sibling.tools:
            if t.name == action:
                return ref, t.input_schema
    return ref, None


def _detail(skill: SkillPlan, siblings: Mapping[str, Sibling]) -> dict[str, Any]:
    body: dict[str, Any] = {"name": skill.name, "description": skill.description, **skill.fields}
    tools: list[dict[str, Any]] = []
    for tool in skill.tools:
        entry: dict[str, Any] = {"name": tool.name, "description": tool.description}
        if tool.source is not None:
            ref, schema = _invocation(tool, tool.source, siblings)
            entry["type"] = "derived"
            entry["invocationRef"] = ref
            if schema is not None:
                entry["inputSchema"] = schema
        else:
            entry["type"] = "instruction"
            entry["instruction"] = tool.instruction
        tools.append(entry)
    body["tools"] = tools
    return body


def _catalog(skills: dict[str, SkillPlan]) -> dict[str, Any]:
    entries: list[dict[str, Any]] = []
    for skill in skills.values():
        entry: dict[str, Any] = {"name": skill.name, "description": skill.description}
        if "license" in skill.fields:
            entry["license"] = skill.fields["license"]
        entry["tools"] = [t.name for t in skill.tools]
        entries.append(entry)
    return {"count": len(entries), "skills": entries}


# ------------------------------------------------------------------ files


class UnsafePath(Exception):
    pass


def safe_segments(raw_segments: list[str]) -> list[str]:
    """Percent-decode each raw path segment and refuse anything that could step outside."""
    out: list[str] = []
    for raw in raw_segments:
        seg = unquote(raw, errors="strict") if "%" in raw else raw
        if seg in ("", ".", "..") or any(c in seg for c in "/\\\x00"):
            raise UnsafePath(raw)
        out.append(seg)
    return out


def _inside(root: Path, path: Path) -> Path | None:
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    return real if real.is_relative_to(root) else None


def list_files(root: Path) -> list[tuple[str, Path]]:
    """Visible regular files under ``root`` whose real path stays inside it, sorted by path."""
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):  # symlinked directories are not entered
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            real = _inside(root, path)
            if real is not None and real.is_file():
                found.append((path.relative_to(root).as_posix(), real))
    found.sort()
    return found


def zip_bytes(root: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for rel, real in list_files(root):
            archive.write(real, rel)
    return buffer.getvalue()


def contents_body(name: str, root: Path) -> dict[str, Any]:
    files: list[dict[str, Any]] = []
    for rel, real in list_files(root):
        try:
            size = real.stat().st_size
        except OSError:
            continue
        files.append({"path": rel, "size": size, "type": guess_media_type(rel)})
    return {"name": name, "files": files}


# ------------------------------------------------------------------ the app


class SkillRouter:
    """ASGI app: catalog and detail bodies are serialised once; files are read per request so
    edits to a skill directory show without a restart (as in the reference)."""

    def __init__(self, plan: SkillAdapterPlan, siblings: Mapping[str, Sibling]) -> None:
        import orjson

        self.plan = plan
        self.catalog = orjson.dumps(_catalog(plan.skills))
        self.details = {name: orjson.dumps(_detail(skill, siblings)) for name, skill in plan.skills.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await serve_lifespan(receive, send)
        if scope["type"] != "http":
            return
        response = await self.handle(scope)
        await response(scope, receive, send)

    async def handle(self, scope: Scope) -> Response:
        from naftiko.exposes.http.problems import problem

        parts = _route_parts(scope)
        if parts is None:
            return problem(404, f"no route for {scope['path']}")
        if scope["method"] not in ("GET", "HEAD"):
            return problem(405, f"{scope['method']} is not allowed on {scope['path']}", headers={"Allow": ALLOW})
        if len(parts) == 1:
            return Response(self.catalog, media_type="application/json")
        name = unquote(parts[1])
        skill = self.plan.skills.get(name)
        if skill is None:
            return problem(404, f"skill '{name}' not found", field="name")
        if len(parts) == 2:
            return Response(self.details[name], media_type="application/json")
        if skill.root is None:
            return problem(404, f"skill '{name}' has no location configured")
        if not skill.root.is_dir():
            return problem(404, f"the location directory of skill '{name}' does not exist")
        return await self._from_directory(name, skill.root, parts[2:])

    async def _from_directory(self, name: str, root: Path, rest: list[str]) -> Response:
        """``download`` (a zip), ``contents`` (the listing) or ``contents/<file>`` of a skill whose
        directory exists; directory work runs in the thread pool."""
        from starlette.concurrency import run_in_threadpool

        if rest[0] == "download":
            data = await run_in_threadpool(zip_bytes, root)
            headers = {"Content-Disposition": f'attachment; filename="{name}.zip"'}
            return Response(data, media_type="application/zip", headers=headers)
        if len(rest) == 1:
            import orjson

            body = await run_in_threadpool(contents_body, name, root)
            return Response(orjson.dumps(body), media_type="application/json")
        return _file(name, root, rest[1:])


def _route_parts(scope: Scope) -> list[str] | None:
    """The raw path's segments below ``/skills`` (trailing ``/`` ignored), or None when the path is
    not one the skill adapter serves: ``/skills``, ``/skills/{name}``, ``…/download``, ``…/contents[/…]``."""
    raw: bytes | None = scope.get("raw_path")
    raw_path: str = raw.decode("latin-1").split("?", 1)[0] if raw else scope["path"]
    if len(raw_path) > 1:
        raw_path = raw_path.rstrip("/")
    parts = raw_path.split("/")[1:]
    if not parts or parts[0] != "skills":
        return None
    if len(parts) > 2 and parts[2] not in ("download", "contents"):
        return None
    if len(parts) > 3 and parts[2] != "contents":
        return None
    return parts


def _file(name: str, root: Path, raw_segments: list[str]) -> Response:
    """One file of a skill directory: segments percent-decoded and refused when unsafe, hidden
    files refused, and the real path (links resolved) checked to be inside the directory."""
    from starlette.responses import FileResponse

    from naftiko.exposes.http.problems import problem

    try:
        segments = safe_segments(raw_segments)
    except (UnsafePath, UnicodeDecodeError):
        return problem(400, "unsafe file path: it must stay inside the skill directory", field="file")
    rel = "/".join(segments)
    real = None if any(s.startswith(".") for s in segments) else _inside(root, root.joinpath(*segments))
    if real is None or not real.is_file():
        return problem(404, f"file '{rel}' not found in skill '{name}'", field="file")
    return FileResponse(real, media_type=guess_media_type(rel))


def build_skill_app(adapter: SkillAdapterPlan, plan: Plan) -> SkillRouter:
    """The router is the whole ASGI app, like the REST adapter's; sibling plans are consulted
    once here for invocation details and input schemas."""
    siblings = {a.namespace: a for a in plan.adapters if a.kind in ("rest", "mcp")}
    return SkillRouter(adapter, siblings)
