"""``naftiko import openapi``: Swagger 2.0 / OpenAPI 3.0 / 3.1 → a runnable capability.

The result has one ``consumes`` entry for the API (one resource per path, one operation per
method), a REST adapter that re-exposes the same paths and an MCP adapter with one tool per
operation. Every parameter is injected explicitly with ``with`` and typed on the exposed side;
consumed parameters carry only ``name``/``in``, as the schema wants, so the output passes
``naftiko validate --strict``. What cannot be expressed (a parameter name the spec forbids, a
HEAD operation, a multipart body) is skipped or simplified with a warning, never guessed.

``$ref`` resolution is local (``#/…``) and bounded: chains are followed with a seen-set and
schemas are only inspected a few levels deep, so circular specs cannot hang the import.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..spec import SPEC_VERSION
from .export import dump_yaml

METHODS = ("get", "post", "put", "patch", "delete")
UNSUPPORTED_METHODS = ("head", "options", "trace")
TYPES = ("string", "number", "integer", "boolean", "array", "object")
REST_PORT, MCP_PORT = 8080, 9090
MAX_SCHEMA_DEPTH = 8
_PARAM_NAME = re.compile(r"^[a-zA-Z0-9_*-]+$")  # the spec's IdentifierExtended
_BASE_URI = re.compile(r"^https?://[^/]+(/[^{]*)?$")
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_HINTS = {
    "GET": {"readOnly": True, "idempotent": True},
    "POST": {"readOnly": False},
    "PATCH": {"readOnly": False},
    "PUT": {"readOnly": False, "idempotent": True},
    "DELETE": {"readOnly": False, "destructive": True, "idempotent": True},
}
_JSON_TYPES = ("application/json", "text/json")
_FORM = "application/x-www-form-urlencoded"


def _var(name: str) -> str:
    return "{{" + name + "}}"


def _bind(name: str) -> str:
    return _var(f"env.{name}")


class ImportFailed(Exception):
    """The document is not an OpenAPI/Swagger description naftiko can import."""


@dataclass
class Imported:
    capability: dict
    warnings: list[str] = field(default_factory=list)
    operations: int = 0


def read_spec(path: str) -> dict:
    """A YAML or JSON file (JSON is YAML) as a mapping; clear errors, never a traceback."""
    try:
        text = Path(path).read_text("utf-8")
    except FileNotFoundError:
        raise ImportFailed(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFailed(f"{path}: cannot read file: {exc}") from None
    try:
        data = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except (yaml.YAMLError, ValueError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise ImportFailed(f"{path}{where}: not valid {'JSON' if path.endswith('.json') else 'YAML'}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise ImportFailed(f"{path}: an OpenAPI document must be a mapping")
    return data


def kebab(text: str) -> str:
    """``getPetById`` / ``Pet Store API`` / ``/pets/{petId}`` → ``get-pet-by-id`` / ``pet-store-api`` / ``pets-pet-id``."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", str(text))
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1-\2", text)
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def _unique(base: str, used: set[str], limit: int = 64) -> str:
    base = base[:limit].strip("-") or "op"
    name, n = base, 2
    while name in used:
        suffix = f"-{n}"
        name, n = base[: limit - len(suffix)].strip("-") + suffix, n + 1
    used.add(name)
    return name


class _Refs:
    """Local ``$ref`` resolution with a guard against cycles."""

    def __init__(self, root: dict, warnings: list[str]):
        self.root = root
        self.warnings = warnings
        self.reported: set[str] = set()

    def _warn(self, message: str) -> None:
        if message not in self.reported:
            self.reported.add(message)
            self.warnings.append(message)

    def _pointer(self, ref: str) -> object:
        node: object = self.root
        for raw in ref[2:].split("/"):
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return None
        return node

    def resolve(self, node: object) -> object:
        seen: set[str] = set()
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not isinstance(ref, str) or not ref.startswith("#/"):
                self._warn(f"$ref {ref!r} is not a local reference; ignored")
                return {}
            if ref in seen:
                self._warn(f"$ref {ref!r} refers to itself; ignored")
                return {}
            seen.add(ref)
            target = self._pointer(ref)
            if target is None:
                self._warn(f"$ref {ref!r} does not resolve; ignored")
                return {}
            node = target
        return node

    def schema_type(self, schema: object, depth: int = 0) -> str | None:
        schema = self.resolve(schema)
        if not isinstance(schema, dict) or depth > MAX_SCHEMA_DEPTH:
            return None
        kind = schema.get("type")
        if isinstance(kind, list):  # 3.1: ["string", "null"]
            kind = next((k for k in kind if k != "null"), None)
        if kind in TYPES:
            return kind
        if kind == "file":
            return "string"
        for key in ("allOf", "oneOf", "anyOf"):
            for sub in schema.get(key) or []:
                found = self.schema_type(sub, depth + 1)
                if found:
                    return found
        if "properties" in schema:
            return "object"
        if "items" in schema:
            return "array"
        return None

    def properties(self, schema: object, depth: int = 0) -> dict[str, dict]:
        """Top-level properties of an object schema, through ``allOf``."""
        schema = self.resolve(schema)
        if not isinstance(schema, dict) or depth > MAX_SCHEMA_DEPTH:
            return {}
        out: dict[str, dict] = {}
        for sub in schema.get("allOf") or []:
            out.update(self.properties(sub, depth + 1))
        for name, prop in (schema.get("properties") or {}).items():
            out[str(name)] = self.resolve(prop) if isinstance(prop, dict) else {}
        return out


@dataclass
class _Param:
    name: str  # as sent upstream (path placeholders may be renamed)
    location: str  # path | query | header | cookie | body | form
    type: str
    description: str
    required: bool


class _Importer:
    def __init__(self, spec: dict, source: str):
        self.spec = spec
        self.source = source
        self.warnings: list[str] = []
        self.refs = _Refs(spec, self.warnings)
        self.swagger = str(spec.get("swagger", "")).startswith("2")
        version = str(spec.get("openapi", ""))
        if not self.swagger and not version.startswith("3"):
            raise ImportFailed(f"{source}: not a Swagger 2.0 or OpenAPI 3.x document (no 'swagger: 2.0' or 'openapi: 3.x')")
        info = spec.get("info") if isinstance(spec.get("info"), dict) else {}
        self.title = str(info.get("title") or Path(source).stem)
        self.namespace = kebab(self.title)[:48].strip("-") or "api"
        self.info = info
        self.used_ops: set[str] = set()
        self.used_resources: set[str] = set()

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    # ------------------------------------------------------------------ top level

    def run(self) -> Imported:
        consumed, rest, tools = [], [], []
        paths = self.spec.get("paths")
        if not isinstance(paths, dict) or not paths:
            raise ImportFailed(f"{self.source}: the document has no 'paths' to import")
        for raw_path, item in paths.items():
            item = self.refs.resolve(item)
            if not isinstance(item, dict):
                continue
            resource = self.resource(str(raw_path), item)
            if resource is not None:
                consumed.append(resource[0])
                rest.append(resource[1])
                tools.extend(resource[2])
        if not consumed:
            raise ImportFailed(f"{self.source}: no GET/POST/PUT/PATCH/DELETE operation to import")
        auth, binds, fixed = self.security()
        consumes: dict = {"type": "http", "namespace": self.namespace, "baseUri": self.base_uri()}
        description = self.info.get("description")
        if description:
            consumes["description"] = str(description).strip()
        if fixed:
            consumes["inputParameters"] = fixed
        if auth:
            consumes["authentication"] = auth
        consumes["resources"] = consumed
        doc_info: dict = {
            "label": self.title,
            "description": str(description).strip() if description else f"{self.title}, imported from its OpenAPI description.",
        }
        tags = [str(t["name"]) for t in self.spec.get("tags") or [] if isinstance(t, dict) and t.get("name")]
        if tags:
            doc_info["tags"] = tags
        capability: dict = {"naftiko": SPEC_VERSION, "info": doc_info}
        if binds:
            capability["binds"] = [{"namespace": "env", "description": "Credentials for the upstream API.", "keys": binds}]
        capability["capability"] = {
            "consumes": [consumes],
            "exposes": [
                {"type": "rest", "namespace": f"{self.namespace}-rest", "port": REST_PORT, "resources": rest},
                {
                    "type": "mcp",
                    "namespace": f"{self.namespace}-mcp",
                    "port": MCP_PORT,
                    "description": f"Tools for {self.title}: one per API operation.",
                    "tools": tools,
                },
            ],
        }
        return Imported(capability, self.warnings, len(tools))

    def base_uri(self) -> str:
        if self.swagger:
            schemes = [s for s in self.spec.get("schemes") or [] if s in ("http", "https")]
            scheme = "https" if "https" in schemes or not schemes else schemes[0]
            host = self.spec.get("host")
            if not host:
                self.warn("no 'host': baseUri set to http://localhost (override it with --base-uri)")
                scheme, host = "http", "localhost"
            url = f"{scheme}://{host}{self.spec.get('basePath') or ''}"
        else:
            servers = [s for s in self.spec.get("servers") or [] if isinstance(s, dict) and s.get("url")]
            if not servers:
                self.warn("no 'servers': baseUri set to http://localhost (override it with --base-uri)")
                return "http://localhost"
            server = servers[0]
            url = str(server["url"])
            for name, var in (server.get("variables") or {}).items():
                if isinstance(var, dict) and "default" in var:
                    url = url.replace("{" + str(name) + "}", str(var["default"]))
            if url.startswith("/"):
                self.warn(f"server url {url!r} is relative: baseUri set to http://localhost{url} (override it with --base-uri)")
                url = "http://localhost" + url
        url = url.rstrip("/")
        if not _BASE_URI.match(url):
            self.warn(f"server url {url!r} is not a plain http(s) URL: baseUri set to http://localhost")
            url = "http://localhost"
        return url

    # ------------------------------------------------------------------ security

    def security(self) -> tuple[dict | None, dict, list]:
        """The consumes authentication for the first scheme the API requires, its bind keys,
        and consumes-level parameters (an API key in a cookie)."""
        if self.swagger:
            schemes = self.spec.get("securityDefinitions") or {}
        else:
            schemes = (self.spec.get("components") or {}).get("securitySchemes") or {}
        required = [r for r in self.spec.get("security") or [] if isinstance(r, dict) and r]
        if not required:
            for item in (self.spec.get("paths") or {}).values():
                for method in METHODS:
                    op = item.get(method) if isinstance(item, dict) else None
                    if isinstance(op, dict):
                        required += [r for r in op.get("security") or [] if isinstance(r, dict) and r]
        if not required:
            return None, {}, []
        names = list(required[0])
        if len(required) > 1 or len(names) > 1:
            self.warn(f"several security schemes are required or offered; using '{names[0]}'")
        scheme = self.refs.resolve(schemes.get(names[0]))
        if not isinstance(scheme, dict) or not scheme:
            self.warn(f"security scheme '{names[0]}' is not defined; no authentication")
            return None, {}, []
        prefix = re.sub(r"[^A-Z0-9]+", "_", self.namespace.upper()).strip("_")
        if not prefix or not prefix[0].isalpha():
            prefix = "API_" + prefix
        kind = scheme.get("type")
        http_scheme = str(scheme.get("scheme", "")).lower()
        if kind == "apiKey":
            var = f"{prefix}_API_KEY"
            where = scheme.get("in", "header")
            if where == "cookie":
                return None, {var: var}, [{"name": str(scheme.get("name")), "in": "cookie", "value": _bind(var)}]
            return {"type": "apikey", "key": str(scheme.get("name")), "value": _bind(var), "placement": "query" if where == "query" else "header"}, {var: var}, []
        if kind == "basic" or (kind == "http" and http_scheme in ("basic", "digest")):
            user, password = f"{prefix}_USERNAME", f"{prefix}_PASSWORD"
            auth = {"type": "digest" if http_scheme == "digest" else "basic", "username": _bind(user), "password": _bind(password)}
            return auth, {user: user, password: password}, []
        if (kind == "http" and http_scheme == "bearer") or kind in ("oauth2", "openIdConnect"):
            if kind != "http":
                self.warn(f"security scheme '{names[0]}' is {kind}: sent as a bearer token you obtain yourself")
            var = f"{prefix}_TOKEN"
            return {"type": "bearer", "token": _bind(var)}, {var: var}, []
        self.warn(f"security scheme '{names[0]}' ({kind} {http_scheme}) is not supported; no authentication")
        return None, {}, []

    # ------------------------------------------------------------------ paths and operations

    def resource(self, raw_path: str, item: dict):
        renames: dict[str, str] = {}

        def rename(m: re.Match) -> str:
            original = m.group(1).strip()
            safe = re.sub(r"[^A-Za-z0-9_-]", "_", original)
            renames[original] = safe
            return "{" + safe + "}"

        path = _PLACEHOLDER.sub(rename, raw_path if raw_path.startswith("/") else "/" + raw_path)
        name = _unique(kebab(path) or "root", self.used_resources)
        common = item.get("parameters") or []
        consumed_ops, rest_ops, tools = [], [], []
        for method in UNSUPPORTED_METHODS:
            if isinstance(item.get(method), dict):
                self.warn(f"{method.upper()} {raw_path}: {method.upper()} operations are not supported; skipped")
        for method in METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            built = self.operation(method.upper(), raw_path, path, renames, common, op, item)
            if built is not None:
                consumed_ops.append(built[0])
                rest_ops.append(built[1])
                tools.append(built[2])
        if not consumed_ops:
            return None
        consumed = {"name": name, "path": path, "operations": consumed_ops}
        rest: dict = {"path": path, "name": name}
        words = item.get("description") or item.get("summary")
        if words:
            rest["description"] = str(words).strip()
        rest["operations"] = rest_ops
        return consumed, rest, tools

    def parameters(self, common: list, op: dict, where: str) -> list[dict]:
        """Path-level parameters overridden by operation-level ones with the same name and location."""
        merged: dict[tuple, dict] = {}
        for raw in [*common, *(op.get("parameters") or [])]:
            param = self.refs.resolve(raw)
            if isinstance(param, dict) and param.get("name") and param.get("in"):
                merged[(str(param["name"]), param["in"])] = param
            elif param:
                self.warn(f"{where}: a parameter without 'name' or 'in'; skipped")
        return list(merged.values())

    def param_type(self, param: dict) -> str:
        if self.swagger and param.get("in") != "body":
            kind = param.get("type")
            return "string" if kind == "file" else kind if kind in TYPES else "string"
        return self.refs.schema_type(param.get("schema")) or "string"

    def operation(self, method: str, raw_path: str, path: str, renames: dict, common: list, op: dict, item: dict):
        where = f"{method} {raw_path}"
        op_id = op.get("operationId")
        name = _unique(kebab(op_id) if op_id else kebab(f"{method}-{path}"), self.used_ops)
        params: list[_Param] = []
        body: _Param | None = None
        form: list[_Param] = []
        for p in self.parameters(common, op, where):
            location, pname = p["in"], str(p["name"])
            description = str(p.get("description") or "").strip()
            if location == "path":
                pname = renames.get(pname, pname)
                if pname not in renames.values():
                    self.warn(f"{where}: path parameter '{p['name']}' is not in the path; skipped")
                    continue
                params.append(_Param(pname, "path", self.param_type(p), description or f"The {pname} path segment.", True))
            elif location in ("query", "header", "cookie"):
                if not _PARAM_NAME.match(pname):
                    self.warn(f"{where}: {location} parameter '{pname}' has a name capability files cannot hold; skipped")
                    continue
                params.append(_Param(pname, location, self.param_type(p), description or f"The {pname} {location} parameter.", bool(p.get("required"))))
            elif location == "body":  # Swagger 2
                body = _Param("body", "body", self.param_type(p), description or "The request body (JSON).", bool(p.get("required")))
            elif location == "formData":
                if self._multipart(op):
                    self.warn(f"{where}: multipart form data is sent as a URL-encoded form")
                form.append(_Param(pname, "form", self.param_type(p), description or f"The {pname} form field.", bool(p.get("required"))))
            else:
                self.warn(f"{where}: parameter '{pname}' in '{location}' is not supported; skipped")
        declared = {p.name for p in params if p.location == "path"}
        for placeholder in dict.fromkeys(renames.values()):  # used in the path but not declared
            if placeholder not in declared:
                params.insert(0, _Param(placeholder, "path", "string", f"The {placeholder} path segment.", True))
        if "requestBody" in op:
            body, form = self.request_body(op["requestBody"], where, body, form)
        form = [f for f in form if self._form_field_ok(f, where)]
        names = {normalise_name(p.name) for p in params}
        if body is not None or form:
            clash = [p for p in params if normalise_name(p.name) == "body"]
            for p in clash:
                self.warn(f"{where}: {p.location} parameter 'body' clashes with the request body; skipped")
            params = [p for p in params if normalise_name(p.name) != "body"]
        form = [f for f in form if normalise_name(f.name) not in names or self._dup(f, where)]
        return self.build(method, name, op, path, params, body, form)

    def _dup(self, field_: _Param, where: str) -> bool:
        self.warn(f"{where}: form field '{field_.name}' has the name of a parameter; skipped")
        return False

    def _form_field_ok(self, field_: _Param, where: str) -> bool:
        if _PARAM_NAME.match(field_.name):
            return True
        self.warn(f"{where}: form field '{field_.name}' has a name capability files cannot hold; skipped")
        return False

    def _multipart(self, op: dict) -> bool:
        consumes = op.get("consumes") or self.spec.get("consumes") or []
        return "multipart/form-data" in consumes and _FORM not in consumes

    def request_body(self, raw: object, where: str, body, form):
        request = self.refs.resolve(raw)
        if not isinstance(request, dict):
            return body, form
        content = request.get("content") or {}
        required = bool(request.get("required"))
        description = str(request.get("description") or "The request body (JSON).").strip()
        json_type = next((t for t in content if t in _JSON_TYPES or t.endswith("+json")), None)
        if json_type is not None:
            schema = (content[json_type] or {}).get("schema")
            return _Param("body", "body", self.refs.schema_type(schema) or "object", description, required), form
        form_type = _FORM if _FORM in content else "multipart/form-data" if "multipart/form-data" in content else None
        if form_type is not None:
            if form_type != _FORM:
                self.warn(f"{where}: multipart form data is sent as a URL-encoded form")
            schema = (content[form_type] or {}).get("schema")
            resolved = self.refs.resolve(schema)
            needed = set(resolved.get("required") or []) if isinstance(resolved, dict) else set()
            fields = [
                _Param(n, "form", self.refs.schema_type(p) or "string", str(p.get("description") or f"The {n} form field.").strip(), n in needed)
                for n, p in self.refs.properties(schema).items()
            ]
            return body, form + fields
        if content:
            self.warn(f"{where}: request body type {', '.join(content)} is sent as JSON")
            return _Param("body", "body", "string", description, required), form
        return body, form

    # ------------------------------------------------------------------ the three views of one operation

    def build(self, method: str, name: str, op: dict, path: str, params: list[_Param], body: _Param | None, form: list[_Param]):
        summary = str(op.get("summary") or "").strip()
        description = str(op.get("description") or "").strip() or summary or f"{method} {path}"
        consumed: dict = {"name": name, "method": method}
        if summary:
            consumed["label"] = summary
        consumed["description"] = description
        inputs = [{"name": p.name, "in": p.location} for p in params]
        if body is not None:
            inputs.append({"name": "body", "in": "body"})
        if inputs:
            consumed["inputParameters"] = inputs
        if form:
            consumed["body"] = {"type": "formUrlEncoded", "data": {f.name: _var(f.name) for f in form}}

        rest_inputs = [{"name": p.name, "in": p.location, "type": p.type, "description": p.description} for p in params]
        rest_with = {p.name: f"rest.{p.name}" for p in params}
        if body is not None:
            rest_inputs.append({"name": "body", "in": "body", "type": body.type, "description": body.description})
            rest_with["body"] = "rest.body"
        if form:
            fields = ", ".join(f.name for f in form)
            rest_inputs.append({"name": "body", "in": "body", "type": "object", "description": f"Form fields as a JSON object or a URL-encoded form: {fields}."})
            rest_with.update({f.name: f"rest.body.{f.name}" for f in form})
        rest: dict = {"method": method, "name": name}
        if summary:
            rest["label"] = summary
        rest["description"] = description
        if rest_inputs:
            rest["inputParameters"] = rest_inputs
        rest["call"] = f"{self.namespace}.{name}"
        if rest_with:
            rest["with"] = rest_with

        tool_inputs = [{"name": p.name, "type": p.type, "description": p.description, "required": p.required} for p in [*params, *form]]
        if body is not None:
            tool_inputs.append({"name": "body", "type": body.type, "description": body.description, "required": body.required})
        tool: dict = {"name": name}
        if summary:
            tool["label"] = summary
        tool["description"] = description
        if tool_inputs:
            tool["inputParameters"] = tool_inputs
        tool["call"] = f"{self.namespace}.{name}"
        with_ = {p.name: f"tools.{p.name}" for p in [*params, *form]}
        if body is not None:
            with_["body"] = "tools.body"
        if with_:
            tool["with"] = with_
        tool["hints"] = dict(_HINTS[method])
        return consumed, rest, tool


def normalise_name(name: str) -> str:
    return name.replace("-", "").replace("_", "").lower()


def import_openapi(spec: dict, source: str = "openapi") -> Imported:
    """The capability (a plain dict, ready for YAML) for an OpenAPI/Swagger document."""
    return _Importer(spec, source).run()


def to_yaml(imported: Imported, source: str) -> str:
    header = (
        f"# Imported from {Path(source).name} by `naftiko import openapi`.\n"
        "# Credentials come from the environment variables named under binds; check and edit before serving.\n"
    )
    return header + dump_yaml(imported.capability)
