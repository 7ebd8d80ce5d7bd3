"""MCP resources and prompts: compiled once at load, served by the low-level server.

Resources
- Static (``location: file:///dir``, relative ``file:///./dir`` against the capability file):
  every regular, non-hidden file under the directory, found at load, is one resource. Its uri
  is the declared ``uri`` + ``/`` + the file's path relative to the directory, each segment
  percent-encoded (``docs://guides`` + ``a b/x.md`` → ``docs://guides/a%20b/x.md``). A
  location naming a single file serves that file at the declared uri. A read looks the uri up
  in that table: a request never becomes a filesystem path, so ``..``, encoded traversal and
  links leading out of the directory reach nothing (links are checked at load and again at
  read). Text files are served as text, others as base64 blobs, with the media type guessed
  from the file name (the declared ``mimeType`` when it cannot be guessed). Files added after
  start-up are served after a restart.
- Dynamic (``call`` / ``steps``): a read runs the unit. A uri with ``{param}`` placeholders
  (RFC 6570 level 1; ``{{param}}`` is accepted and listed as ``{param}``) is a resource
  template: listed under ``resources/templates/list``, matched on read, the captured
  (percent-decoded) values are the unit's inputs. JSON results are JSON text (``mimeType`` or
  ``application/json``); binary upstream bodies are blobs with the upstream content type.
- An unknown uri is the JSON-RPC error -32602 "Resource not found" (SEP-2164; -32002 is
  retired); so is an upstream 404 behind a dynamic resource.

Prompts
- ``template`` messages, or ``location`` naming a file whose whole text is one ``user``
  message (read at load). ``{{arg}}`` and ``{arg}`` are replaced in one pass over the
  template, so an argument value containing ``{{other}}`` stays literal. Placeholders that
  name no declared argument are kept as written; a missing optional argument renders empty; a
  missing required one is an -32602 error naming it.
- A prompt with ``call``/``steps`` (extension fields) runs that unit with the arguments as
  inputs; its result is visible as ``{{result}}`` (objects and lists as compact JSON) and
  ``{{result.field}}``.
- EXT: a message ``content`` may be ``{type: resource | image | audio, uri: …}``: one of this
  adapter's own resources (static, dynamic or a template match), read when the prompt is got
  and embedded as an ``EmbeddedResource``, or as an image/audio block when its contents are a
  blob of that media type. The uri may hold ``{{arg}}`` placeholders; a literal one must name a
  declared resource (checked at load). An unknown uri is -32602 "Resource not found".

Completion (``completion/complete``, served and advertised when a prompt argument declares
``values``, EXT)
- ``ref/prompt``: the values the argument declares that start with the typed text,
  case-insensitively, at most 100 (``total`` and ``hasMore`` say how many matched); none
  declared → an empty list. ``ref/resource``: a template's placeholder → an empty list (nothing
  declares its values). An unknown prompt, template, argument or placeholder is -32602.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import re
from collections.abc import Iterator, Mapping, Sequence, Sized
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import quote, unquote

import mcp_types as types
from mcp import MCPError
from pydantic import ValidationError

from naftiko.binds.resolve import Binds, resolve_location
from naftiko.consumes.formats import parse_binary_size
from naftiko.document import model as m
from naftiko.document.source import Source
from naftiko.engine.binding import bind_unit_inputs
from naftiko.engine.result import Empty, JsonAnswer, Relayed, Result, UpstreamFailure
from naftiko.engine.simple import CallUnit, answers_binary
from naftiko.engine.unit import Unit
from naftiko.errors import EngineError
from naftiko.exposes.mcp.content import (
    MAX_BINARY_BYTES,
    Mask,
    as_text,
    blob_contents,
    content_type_essence,
    too_large,
    upstream_error_text,
)
from naftiko.expressions.template import MISSING, to_text
from naftiko.jsonio import dumps

if TYPE_CHECKING:
    from naftiko.engine.plan import Consumers, McpAdapterPlan

log = logging.getLogger("naftiko.mcp")
Role = Literal["user", "assistant"]
SpecPath = tuple[str | int, ...]
# A prompt message, compiled: text, and (argument, path) placeholders filled per request.
MessageParts = tuple[str | tuple[str, tuple[str, ...]], ...]
EMBED_KINDS = ("resource", "image", "audio")
MAX_COMPLETIONS = 100  # the most values one completion/complete answer may carry (MCP)
MAX_STATIC_FILES = 1000
_EXTRA_TYPES = {
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".toml": "application/toml",
    ".md": "text/markdown",
}
_SEGMENT_SAFE = "-._~!$&'()*+,;=:@"
_NAME = r"[A-Za-z0-9_-]+"
_MUSTACHE_PARAM = re.compile(r"\{\{\s*(" + _NAME + r")\s*\}\}")
_URI_EXPR = re.compile(r"\{([^{}]*)\}")
# One pass over a prompt message: {{name}} / {{name.path}} or {name} / {name.path}.
_PLACEHOLDER = re.compile(
    r"\{\{\s*(" + _NAME + r"(?:\." + _NAME + r")*)\s*\}\}|\{(" + _NAME + r"(?:\." + _NAME + r")*)\}"
)
_INVOCABLE_KEYS = ("call", "with", "steps", "mappings", "outputParameters", "ref")


# ------------------------------------------------------------------ plans


@dataclass
class StaticFile:
    """One file under a static resource's directory (``path`` unresolved, ``root`` real)."""

    uri: str
    path: Path
    root: Path
    mime: str | None
    listing: types.Resource
    cap: int = MAX_BINARY_BYTES  # the adapter's maxBinarySize when it declares one (beta5)


@dataclass
class DynamicResource:
    """A resource backed by a unit; ``pattern`` is set for templates."""

    uri: str
    mime: str | None
    unit: Unit
    listing: types.Resource | types.ResourceTemplate
    pattern: re.Pattern[str] | None = None
    params: tuple[str, ...] = ()


@dataclass(frozen=True)
class Embed:
    """A prompt message that embeds one of the adapter's resources (EXT): ``kind`` is
    ``resource``, ``image`` or ``audio``; ``uri`` is compiled like message text."""

    kind: str
    uri: MessageParts


@dataclass
class PromptPlan:
    name: str
    description: str | None
    listing: types.Prompt
    arguments: tuple[str, ...]
    required: tuple[str, ...]
    messages: list[tuple[Role, MessageParts | Embed]]  # role, text parts or an embedded resource
    unit: Unit | None
    values: dict[str, tuple[str, ...]] = field(default_factory=dict)  # argument → completion values (EXT)


# ------------------------------------------------------------------ compiling


class CompileContext(Protocol):
    """What compiling an MCP adapter's resources and prompts needs from the plan compiler."""

    @property
    def source(self) -> Source: ...

    @property
    def errors(self) -> Sized: ...

    def unit_scope(self) -> AbstractContextManager[int]:
        """Errors inside leave one unit out (tolerant mode); yields the error count at the start."""
        ...

    def error(self, path: SpecPath, message: str) -> None: ...

    def warn(self, path: SpecPath, message: str) -> None: ...

    def unit(
        self, name: str, spec: m.Invocable, path: SpecPath, consumers: Consumers, aliases: frozenset[str], binds: Binds
    ) -> Unit | None: ...


def compile_catalog(
    compiler: CompileContext,
    adapter: m.ExposesMcp,
    path: SpecPath,
    consumers: Consumers,
    aliases: frozenset[str],
    binds: Binds,
) -> tuple[list[StaticFile | DynamicResource], list[PromptPlan]]:
    """Return (resources, prompts) plans for an MCP adapter."""
    base_dir = Path(compiler.source.file).resolve().parent
    try:  # a bad size was reported by the compiler already
        file_cap = parse_binary_size(adapter.maxBinarySize) if adapter.maxBinarySize is not None else MAX_BINARY_BYTES
    except ValueError:
        file_cap = MAX_BINARY_BYTES
    resources: list[StaticFile | DynamicResource] = []
    names: set[str] = set()
    uris: set[str] = set()
    for i, res in enumerate(adapter.resources):
        with compiler.unit_scope() as start:  # a resource with an error is left out (tolerant mode)
            rpath = (*path, "resources", i)
            if res.name in names:
                compiler.error((*rpath, "name"), f"duplicate resource '{res.name}'")
                continue
            names.add(res.name)
            if res.location is not None:
                if res.call or res.steps or res.ref:
                    compiler.error(
                        (*rpath, "location"),
                        f"resource '{res.name}': 'location' cannot be combined with 'call' or 'steps'",
                    )
                    continue
                files = _static(compiler, res, rpath, base_dir)
                for file in files:
                    file.cap = file_cap
                entries: list[StaticFile | DynamicResource] = [*files]
            else:
                dynamic = _dynamic(compiler, res, rpath, consumers, aliases, binds)
                entries = [dynamic] if dynamic is not None else []
            for entry in entries:
                if entry.uri in uris:
                    compiler.error(
                        (*rpath, "uri"),
                        f"resource '{res.name}': uri '{entry.uri}' is already served by another resource",
                    )
            if len(compiler.errors) == start:
                uris.update(entry.uri for entry in entries)
                resources.extend(entries)
    prompts: list[PromptPlan] = []
    seen: set[str] = set()
    for i, prompt in enumerate(adapter.prompts):
        with compiler.unit_scope() as start:  # likewise a prompt
            ppath = (*path, "prompts", i)
            if prompt.name in seen:
                compiler.error((*ppath, "name"), f"duplicate prompt '{prompt.name}'")
                continue
            seen.add(prompt.name)
            plan = _prompt(compiler, prompt, ppath, base_dir, consumers, aliases, binds, resources)
            if plan is not None and len(compiler.errors) == start:
                prompts.append(plan)
    return resources, prompts


def _file_location(compiler: CompileContext, location: str, where: SpecPath, what: str, base_dir: Path) -> Path | None:
    if not location.startswith("file://"):
        compiler.error(where, f"{what}: only file:/// locations are supported, got {location!r}")
        return None
    try:
        return resolve_location(location, base_dir).resolve(strict=True)
    except OSError:
        compiler.error(where, f"{what}: {location} does not exist")
        return None


def _guess_type(name: str) -> str | None:
    suffix = os.path.splitext(name)[1].lower()
    return _EXTRA_TYPES.get(suffix) or mimetypes.guess_type(name, strict=False)[0]


def _static(compiler: CompileContext, res: m.McpResource, rpath: SpecPath, base_dir: Path) -> list[StaticFile]:
    what = f"resource '{res.name}'"
    root = _file_location(compiler, res.location or "", (*rpath, "location"), what, base_dir)
    if root is None:
        return []
    if _URI_EXPR.search(res.uri):
        compiler.error((*rpath, "uri"), f"{what}: a static resource's uri cannot have {{param}} placeholders")
        return []
    if root.is_file():
        listing = types.Resource(
            name=res.name,
            title=res.label,
            uri=res.uri,
            description=res.description,
            mime_type=_guess_type(root.name) or res.mimeType,
        )
        return [StaticFile(res.uri, root, root.parent, listing.mime_type, listing)]
    if not root.is_dir():
        compiler.error((*rpath, "location"), f"{what}: {res.location} is neither a file nor a directory")
        return []
    prefix = res.uri.rstrip("/")
    files: list[StaticFile] = []
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            if not d.startswith(".") and os.path.islink(os.path.join(dirpath, d)):
                rel = (Path(dirpath) / d).relative_to(root).as_posix()
                compiler.warn((*rpath, "location"), f"{what}: '{rel}' is a linked directory; it is not entered")
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith(".") and not os.path.islink(os.path.join(dirpath, d))
        )
        for fname in sorted(f for f in filenames if not f.startswith(".")):
            full = Path(dirpath) / fname
            rel = full.relative_to(root).as_posix()
            real = full.resolve()
            if not real.is_relative_to(root) or not real.is_file():
                compiler.warn(
                    (*rpath, "location"),
                    f"{what}: '{rel}' is not served (a link leading out of the directory, or not a regular file)",
                )
                continue
            if len(files) >= MAX_STATIC_FILES:
                compiler.warn(
                    (*rpath, "location"), f"{what}: more than {MAX_STATIC_FILES} files; the rest are not served"
                )
                return files
            uri = prefix + "/" + "/".join(quote(seg, safe=_SEGMENT_SAFE) for seg in rel.split("/"))
            mime = _guess_type(fname) or res.mimeType
            title = f"{res.label}: {rel}" if res.label else rel
            listing = types.Resource(
                name=f"{res.name}/{rel}", title=title, uri=uri, description=res.description, mime_type=mime
            )
            files.append(StaticFile(uri, full, root, mime, listing))
    if not files:
        compiler.warn((*rpath, "location"), f"{what}: {res.location} holds no files to serve")
    return files


def _uri_template(uri: str) -> tuple[str, re.Pattern[str] | None, tuple[str, ...]]:
    """Normalise ``{{x}}`` to ``{x}``; a uri with expressions becomes a matching pattern."""
    uri = _MUSTACHE_PARAM.sub(r"{\1}", uri)
    pattern: list[str] = []
    names: list[str] = []
    pos = 0
    for match in _URI_EXPR.finditer(uri):
        name = match.group(1).strip()
        if not re.fullmatch(_NAME, name):
            raise ValueError(f"'{{{name}}}' is not a simple {{param}} expression (RFC 6570 level 1)")
        if name in names:
            raise ValueError(f"placeholder '{{{name}}}' appears twice")
        pattern.append(re.escape(uri[pos : match.start()]))
        pattern.append("([^/?#]+)")
        names.append(name)
        pos = match.end()
    if not names:
        return uri, None, ()
    pattern.append(re.escape(uri[pos:]))
    return uri, re.compile("".join(pattern)), tuple(names)


def _dynamic(
    compiler: CompileContext,
    res: m.McpResource,
    rpath: SpecPath,
    consumers: Consumers,
    aliases: frozenset[str],
    binds: Binds,
) -> DynamicResource | None:
    try:
        uri, pattern, params = _uri_template(res.uri)
    except ValueError as exc:
        compiler.error((*rpath, "uri"), f"resource '{res.name}': {exc}")
        return None
    unit = compiler.unit(res.name, res, rpath, consumers, aliases, binds)
    if unit is None:
        return None
    if params:  # {customer-id} feeds customer_id: matched at load
        bind_unit_inputs(unit, params, lambda msg: compiler.warn(rpath, msg))
    if res.binary and not answers_binary(unit):
        compiler.error(
            (*rpath, "binary"),
            f"resource '{res.name}': binary: true needs a 'call' to a consumed operation declaring "
            "outputRawFormat: binary",
        )
        return None
    mime = res.mimeType
    listed: str | None = mime or "application/json"
    if isinstance(unit, CallUnit) and answers_binary(unit):  # listed with the declared type, when one is
        listed = mime or unit.media_type or unit.call.target.output_media_type
    listing: types.Resource | types.ResourceTemplate
    if pattern is None:
        listing = types.Resource(name=res.name, title=res.label, uri=uri, description=res.description, mime_type=listed)
    else:
        listing = types.ResourceTemplate(
            name=res.name,
            title=res.label,
            uri_template=uri,
            description=res.description,
            mime_type=listed,
        )
    return DynamicResource(uri, mime, unit, listing, pattern, params)


def _prompt(
    compiler: CompileContext,
    prompt: m.McpPrompt,
    ppath: SpecPath,
    base_dir: Path,
    consumers: Consumers,
    aliases: frozenset[str],
    binds: Binds,
    resources: Sequence[StaticFile | DynamicResource] = (),
) -> PromptPlan | None:
    what = f"prompt '{prompt.name}'"
    if prompt.location and prompt.template:
        compiler.error((*ppath, "location"), f"{what}: use either 'template' or 'location', not both")
        return None
    messages: list[tuple[Role, str | tuple[str, str]]] = []  # text, or (kind, uri) of an embedded resource
    if prompt.location:
        file = _file_location(compiler, prompt.location, (*ppath, "location"), what, base_dir)
        if file is None:
            return None
        try:
            messages.append(("user", file.read_text("utf-8").rstrip("\n")))
        except (OSError, UnicodeDecodeError) as exc:
            compiler.error((*ppath, "location"), f"{what}: cannot read {prompt.location}: {exc}")
            return None
    elif prompt.template:
        for j, message in enumerate(prompt.template):
            if isinstance(message.content, str):
                messages.append((message.role, message.content))
                continue
            embed = _embed_spec(message.content)
            if embed is None:
                compiler.error(
                    (*ppath, "template", j, "content"),
                    f"{what}: message content must be a string or {{type: resource|image|audio, uri: ...}}",
                )
                return None
            messages.append((message.role, embed))
    else:
        compiler.error(ppath, f"{what} needs a 'template' or a 'location'")
        return None

    unit: Unit | None = None
    extra = prompt.model_extra or {}
    if "call" in extra or "steps" in extra or "ref" in extra:
        try:
            spec = m.Invocable.model_validate({k: extra[k] for k in _INVOCABLE_KEYS if k in extra})
        except ValidationError as exc:
            compiler.error(ppath, f"{what}: invalid call/steps: {exc.errors()[0]['msg']}")
            return None
        unit = compiler.unit(prompt.name, spec, ppath, consumers, aliases, binds)
        if unit is None:
            return None
        bind_unit_inputs(unit, [a.name for a in prompt.arguments], lambda msg: compiler.warn(ppath, msg))
        if any(a.name == "result" for a in prompt.arguments):
            compiler.error((*ppath, "arguments"), f"{what}: an argument named 'result' would hide the call result")
            return None

    names = tuple(a.name for a in prompt.arguments)
    known = set(names) | ({"result"} if unit is not None else set())
    compiled: list[tuple[Role, MessageParts | Embed]] = []
    for j, (role, content) in enumerate(messages):
        where = ppath + (("template", j, "content") if prompt.template else ("location",))
        text = content if isinstance(content, str) else content[1]
        parts = _compile_message(text, known)
        for unknown in _unknown_mustache(text, known):
            compiler.warn(where, f"{what}: '{{{{{unknown}}}}}' names no argument; it is kept as written")
        if isinstance(content, str):
            compiled.append((role, parts))
            continue
        kind, uri = content
        if all(isinstance(p, str) for p in parts):  # a literal uri: it must name a declared resource now
            problem = _embed_problem(kind, uri, resources)
            if problem:
                compiler.error((*where, "uri"), f"{what}: {problem}")
                return None
        compiled.append((role, Embed(kind, parts)))
    values: dict[str, tuple[str, ...]] = {}
    for k, a in enumerate(prompt.arguments):
        declared = (a.model_extra or {}).get("values")
        if declared is None:
            continue
        if not isinstance(declared, list) or not all(isinstance(v, str) for v in declared):
            compiler.error(
                (*ppath, "arguments", k, "values"), f"{what}: argument '{a.name}': 'values' must be a list of strings"
            )
            return None
        values[a.name] = tuple(dict.fromkeys(declared))
    listing = types.Prompt(
        name=prompt.name,
        title=prompt.label,
        description=prompt.description,
        arguments=[
            types.PromptArgument(name=a.name, title=a.label, description=a.description, required=a.required)
            for a in prompt.arguments
        ],
    )
    required = tuple(a.name for a in prompt.arguments if a.required)
    return PromptPlan(prompt.name, prompt.description, listing, names, required, compiled, unit, values)


def _embed_spec(content: object) -> tuple[str, str] | None:
    """``{type: resource|image|audio, uri: '...'}`` → (kind, uri); anything else → None."""
    if not isinstance(content, Mapping) or set(content) != {"type", "uri"}:
        return None
    kind, uri = content.get("type"), content.get("uri")
    if kind not in EMBED_KINDS or not isinstance(uri, str) or not uri:
        return None
    return kind, uri


def _embed_problem(kind: str, uri: str, resources: Sequence[StaticFile | DynamicResource]) -> str | None:
    """Why a literal embedded uri cannot be served, or None: it must be a declared resource's uri
    (or match a template), and a static file embedded as an image or audio must be one."""
    for entry in resources:
        if isinstance(entry, DynamicResource) and entry.pattern is not None:
            if entry.pattern.fullmatch(uri):
                return None
        elif entry.uri == uri or unquote(entry.uri) == uri:
            if kind != "resource" and isinstance(entry, StaticFile):
                mime = entry.mime or ""
                if not mime.startswith(kind + "/"):
                    return f"resource '{uri}' is {mime or 'of unknown type'}, not an {kind} file"
            return None
    return f"'{uri}' names no resource of this adapter"


def _compile_message(content: str, known: set[str]) -> MessageParts:
    parts: list[str | tuple[str, tuple[str, ...]]] = []
    pos = 0
    for match in _PLACEHOLDER.finditer(content):
        ref = (match.group(1) or match.group(2)).split(".")
        if ref[0] not in known or (len(ref) > 1 and ref[0] != "result"):
            continue  # not ours: stays part of the surrounding text
        parts.append(content[pos : match.start()])
        parts.append((ref[0], tuple(ref[1:])))
        pos = match.end()
    parts.append(content[pos:])
    return tuple(p for p in parts if p != "")


def _unknown_mustache(content: str, known: set[str]) -> Iterator[str]:
    for match in _PLACEHOLDER.finditer(content):
        if match.group(1) and match.group(1).split(".")[0] not in known:
            yield match.group(1)


def _render(parts: MessageParts, values: dict[str, object]) -> str:
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        value = values.get(part[0], MISSING)
        for key in part[1]:
            if isinstance(value, dict):
                value = value.get(key, MISSING)
            elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
                value = value[int(key)]
            else:
                value = MISSING
        out.append(to_text(value))
    return "".join(out)


# ------------------------------------------------------------------ serving


def _not_found(uri: str) -> MCPError:
    return MCPError(code=types.INVALID_PARAMS, message=f"Resource not found: {uri}", data={"uri": uri})


def _engine_failure(exc: EngineError, mask: Mask) -> MCPError:
    code = types.INVALID_PARAMS if exc.status < 500 else types.INTERNAL_ERROR
    return MCPError(code=code, message=mask(exc.detail))


class McpCatalog:
    """The resource and prompt tables and the handlers the low-level server calls."""

    def __init__(self, plan: McpAdapterPlan, mask: Mask) -> None:
        self.mask = mask
        self.exact: dict[str, StaticFile | DynamicResource] = {}
        self.templates: list[DynamicResource] = []
        for entry in plan.resources:
            if isinstance(entry, DynamicResource) and entry.pattern is not None:
                self.templates.append(entry)
            else:
                self.exact[entry.uri] = entry
        for uri, entry in list(self.exact.items()):  # a client may send a listed uri decoded
            self.exact.setdefault(unquote(uri), entry)
        self.resource_listing = types.ListResourcesResult(
            resources=[e.listing for e in plan.resources if isinstance(e.listing, types.Resource)]
        )
        self.template_listing = types.ListResourceTemplatesResult(
            resource_templates=[t.listing for t in self.templates if isinstance(t.listing, types.ResourceTemplate)]
        )
        self.prompts = {p.name: p for p in plan.prompts}
        self.prompt_listing = types.ListPromptsResult(prompts=[p.listing for p in plan.prompts])
        self.has_resources = bool(plan.resources)

    def handlers(self) -> dict[str, Any]:  # keyword arguments of mcp.server.Server
        """Server keyword arguments for the declared groups only: capabilities follow handlers."""
        out: dict[str, Any] = {}
        if self.has_resources:
            out.update(
                on_list_resources=self.list_resources,
                on_list_resource_templates=self.list_resource_templates,
                on_read_resource=self.read_resource,
            )
        if self.prompts:
            out.update(on_list_prompts=self.list_prompts, on_get_prompt=self.get_prompt)
        if any(p.values for p in self.prompts.values()):  # advertised only when there is something to offer
            out.update(on_completion=self.complete)
        return out

    # -------------------------------------------------------------- resources

    async def list_resources(self, ctx: object, params: object) -> types.ListResourcesResult:
        return self.resource_listing

    async def list_resource_templates(self, ctx: object, params: object) -> types.ListResourceTemplatesResult:
        return self.template_listing

    async def read_resource(self, ctx: object, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        uri = params.uri
        entry = self.exact.get(uri)
        if isinstance(entry, StaticFile):
            return types.ReadResourceResult(contents=[self.read_file(entry)])
        if entry is not None:
            return types.ReadResourceResult(contents=[await self.read_dynamic(entry, uri, {})])
        for template in self.templates:
            match = template.pattern.fullmatch(uri) if template.pattern is not None else None
            if match:
                values = {name: unquote(value) for name, value in zip(template.params, match.groups(), strict=True)}
                if any(v in (".", "..") for v in values.values()):
                    raise _not_found(uri)  # a dot segment would climb the upstream path
                return types.ReadResourceResult(contents=[await self.read_dynamic(template, uri, dict(values))])
        raise _not_found(uri)

    def read_file(self, entry: StaticFile) -> types.TextResourceContents | types.BlobResourceContents:
        try:
            real = entry.path.resolve(strict=True)
            if not real.is_relative_to(entry.root) or not real.is_file():
                raise _not_found(entry.uri)
            size = real.stat().st_size
            if size > entry.cap:
                raise MCPError(
                    code=types.INTERNAL_ERROR,
                    message=f"resource {entry.uri} is too large to serve ({size} bytes; the limit is {entry.cap})",
                )
            raw = real.read_bytes()
        except OSError:
            raise _not_found(entry.uri) from None
        text = as_text(raw, entry.mime)
        if text is None:
            return blob_contents(entry.uri, raw, entry.mime)
        return types.TextResourceContents(uri=entry.uri, mime_type=entry.mime or "text/plain", text=text)

    async def read_dynamic(
        self, entry: DynamicResource, uri: str, inputs: dict[str, object]
    ) -> types.TextResourceContents | types.BlobResourceContents:
        try:
            result = await entry.unit.invoke(inputs)
        except EngineError as exc:
            raise _engine_failure(exc, self.mask) from None
        except Exception:
            log.exception("resource %s failed", uri)
            raise MCPError(code=types.INTERNAL_ERROR, message="the engine failed to read this resource") from None
        return _contents(uri, result, entry.mime, self.mask)

    # -------------------------------------------------------------- prompts

    async def list_prompts(self, ctx: object, params: object) -> types.ListPromptsResult:
        return self.prompt_listing

    async def get_prompt(self, ctx: object, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        prompt = self.prompts.get(params.name)
        if prompt is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown prompt: {params.name}")
        arguments = params.arguments or {}
        missing = [name for name in prompt.required if arguments.get(name) is None]
        if missing:
            listed = ", ".join(f"'{n}'" for n in missing)
            plural = "s" if len(missing) > 1 else ""
            raise MCPError(
                code=types.INVALID_PARAMS, message=f"prompt '{prompt.name}': missing required argument{plural} {listed}"
            )
        values: dict[str, object] = {name: arguments.get(name, "") for name in prompt.arguments}
        if prompt.unit is not None:
            values["result"] = await self.prompt_result(prompt, arguments)
        messages = []
        for role, parts in prompt.messages:
            content: types.TextContent | types.EmbeddedResource | types.ImageContent | types.AudioContent
            if isinstance(parts, Embed):
                content = await self.embedded(prompt, parts.kind, _render(parts.uri, values))
            else:
                content = types.TextContent(text=_render(parts, values))
            messages.append(types.PromptMessage(role=role, content=content))
        return types.GetPromptResult(description=prompt.description, messages=messages)

    async def embedded(
        self, prompt: PromptPlan, kind: str, uri: str
    ) -> types.EmbeddedResource | types.ImageContent | types.AudioContent:
        """One of this adapter's resources inside a prompt message: read as ``resources/read``
        reads it (an unknown uri is -32602), then embedded whole, or as an image/audio block."""
        contents = (await self.read_resource(None, types.ReadResourceRequestParams(uri=uri))).contents[0]
        if kind == "resource":
            return types.EmbeddedResource(resource=contents)
        mime = contents.mime_type or ""
        if not isinstance(contents, types.BlobResourceContents) or not mime.startswith(kind + "/"):
            raise MCPError(
                code=types.INTERNAL_ERROR,
                message=f"prompt '{prompt.name}': resource {uri} is {mime or 'of unknown type'}, not an {kind} file",
            )
        if kind == "image":
            return types.ImageContent(data=contents.blob, mime_type=mime)
        return types.AudioContent(data=contents.blob, mime_type=mime)

    # -------------------------------------------------------------- completion

    async def complete(self, ctx: object, params: types.CompleteRequestParams) -> types.CompleteResult:
        """Values for a prompt argument (those it declares) or a template placeholder (none)."""
        ref, argument = params.ref, params.argument
        declared: tuple[str, ...] = ()
        if isinstance(ref, types.PromptReference):
            prompt = self.prompts.get(ref.name)
            if prompt is None:
                raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown prompt: {ref.name}")
            if argument.name not in prompt.arguments:
                raise MCPError(
                    code=types.INVALID_PARAMS, message=f"prompt '{ref.name}' has no argument '{argument.name}'"
                )
            declared = prompt.values.get(argument.name, ())
        else:
            template = next((t for t in self.templates if t.uri == ref.uri), None)
            if template is None:
                raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown resource template: {ref.uri}")
            if argument.name not in template.params:
                raise MCPError(
                    code=types.INVALID_PARAMS, message=f"template '{ref.uri}' has no placeholder '{argument.name}'"
                )
        typed = argument.value.casefold()
        matched = [v for v in declared if v.casefold().startswith(typed)]
        return types.CompleteResult(
            completion=types.Completion(
                values=matched[:MAX_COMPLETIONS], total=len(matched), has_more=len(matched) > MAX_COMPLETIONS
            )
        )

    async def prompt_result(self, prompt: PromptPlan, arguments: Mapping[str, object]) -> object:
        if prompt.unit is None:
            return None
        try:
            result = await prompt.unit.invoke(dict(arguments))
        except EngineError as exc:
            raise _engine_failure(exc, self.mask) from None
        except Exception:
            log.exception("prompt %s failed", prompt.name)
            raise MCPError(code=types.INTERNAL_ERROR, message="the engine failed to build this prompt") from None
        match result:
            case UpstreamFailure():
                raise MCPError(code=types.INTERNAL_ERROR, message=upstream_error_text(result, self.mask))
            case Empty():
                return None
            case Relayed(body=body):
                if not body.strip():
                    return None
                is_json, value = result.json()
                return value if is_json else body.decode("utf-8", "replace")
            case JsonAnswer(value=value):
                return value


def _contents(
    uri: str, result: Result, declared: str | None, mask: Mask
) -> types.TextResourceContents | types.BlobResourceContents:
    """The one place a unit's :class:`Result` becomes resource contents: JSON text, upstream
    text, or a blob; an upstream 404 is "resource not found", any other failure an error."""
    match result:
        case UpstreamFailure(status=404):
            raise _not_found(uri)
        case UpstreamFailure():
            raise MCPError(code=types.INTERNAL_ERROR, message=upstream_error_text(result, mask))
        case Empty():
            return types.TextResourceContents(uri=uri, mime_type=declared or "text/plain", text="")
        case Relayed(body=body, binary=True):  # beta5 binary content: a blob, within its maxBinarySize
            return blob_contents(uri, body, declared or result.media_type())
        case Relayed(body=body, content_type=content_type):  # passed through as the upstream sent it
            if not body.strip():
                return types.TextResourceContents(uri=uri, mime_type=declared or "text/plain", text="")
            upstream = content_type_essence(result.declared_type or content_type)
            text = as_text(body, content_type)
            if text is not None:
                return types.TextResourceContents(uri=uri, mime_type=declared or upstream or "text/plain", text=text)
            if len(body) > MAX_BINARY_BYTES:
                raise MCPError(code=types.INTERNAL_ERROR, message=too_large(body))
            return blob_contents(uri, body, upstream or None)
        case JsonAnswer(value=value):
            mime = declared or "application/json"
            if isinstance(value, str) and not content_type_essence(mime).endswith("json"):
                return types.TextResourceContents(uri=uri, mime_type=mime, text=value)
            return types.TextResourceContents(uri=uri, mime_type=mime, text=dumps(value).decode())
