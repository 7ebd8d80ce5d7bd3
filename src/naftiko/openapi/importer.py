"""``naftiko import openapi``: Swagger 2.0 / OpenAPI 3.0 / 3.1 → runnable capabilities.

The result has one ``consumes`` entry for the API (plus one per distinct operation- or
path-level ``servers`` URL), one consumed resource per path, a REST adapter that re-exposes
the same paths and an MCP adapter with one tool per operation.

Tools are as rich as the document (docs/openapi.md): every argument carries the JSON Schema
the document gives it (``$ref``/``allOf``/``oneOf``/``anyOf`` resolved, enums, formats,
bounds, defaults, nullable, array items, descriptions, examples) in the ``schema`` extension
of its input parameter; a JSON request body object is flattened into one argument per
top-level property, bound to that body field, so the body is rebuilt exactly. Parameters keep
the document's serialisation (``style``/``explode`` extensions; form fields' ``encoding``).

What cannot be expressed is skipped or simplified with a warning that names the JSON pointer
of the construct, never guessed. ``$ref`` resolution is local and bounded: cycles stay open
(``{}``), depth and size are capped, so no document can hang the import or blow it up.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from naftiko.document import SPEC_VERSION, JSONObject
from naftiko.openapi.export import dump_yaml
from naftiko.openapi.schemas import JSON_TYPES, Refs, primary_type

METHODS = ("get", "post", "put", "patch", "delete")
UNSUPPORTED_METHODS = ("head", "options", "trace")
REST_PORT, MCP_PORT = 8080, 9090
_PARAM_NAME = re.compile(r"^[a-zA-Z0-9_*-]+$")  # the spec's IdentifierExtended
_FIELD_NAME = re.compile(r"^[A-Za-z0-9_-]+$")  # usable as `tools.NAME` and `{{NAME}}`
_BASE_URI = re.compile(r"^https?://[^/]+(/[^{]*)?$")
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_HINTS = {
    "GET": {"readOnly": True, "idempotent": True},
    "POST": {"readOnly": False},
    "PATCH": {"readOnly": False},
    "PUT": {"readOnly": False, "idempotent": True},
    "DELETE": {"readOnly": False, "destructive": True, "idempotent": True},
}
_JSON_MEDIA = ("application/json", "text/json")
_FORM = "application/x-www-form-urlencoded"
_MULTIPART = "multipart/form-data"
_COLLECTION = {
    "csv": ("form", False),
    "ssv": ("spaceDelimited", False),
    "pipes": ("pipeDelimited", False),
    "multi": ("form", True),
}
_DEFAULT_STYLE = {"query": "form", "cookie": "form", "path": "simple", "header": "simple"}


def _mapping(value: object) -> JSONObject:
    return value if isinstance(value, dict) else {}


def _var(name: str) -> str:
    return "{{" + name + "}}"


def _bind(name: str) -> str:
    return _var(f"env.{name}")


def pointer(*parts: object) -> str:
    """A JSON pointer (RFC 6901) in URI-fragment form: ``#/paths/~1items/get``."""
    return "#/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


class ImportFailed(Exception):
    """The document is not an OpenAPI/Swagger description naftiko can import."""


@dataclass
class ImportOptions:
    """What ``naftiko import openapi`` lets a user choose (docs/openapi.md)."""

    namespace: str | None = None
    env_prefix: str | None = None
    include_tags: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    include_paths: tuple[str, ...] = ()  # fnmatch patterns on the document's paths
    exclude_paths: tuple[str, ...] = ()
    port: int | None = None  # REST adapter port; the MCP adapter takes the next one
    base_uri: str | None = None
    split_by_tag: bool = False
    output_schemas: bool = False  # shape tool results to the 2xx response schema and declare it


@dataclass
class Imported:
    capability: JSONObject  # the only capability, or the first one when split by tag
    warnings: list[str] = field(default_factory=list)
    operations: int = 0
    parts: dict[str, JSONObject] = field(default_factory=dict)  # tag → capability, with --split-by-tag
    skipped: Counter[str] = field(default_factory=Counter)  # reason → operations skipped


def read_spec(path: str) -> JSONObject:
    """A YAML or JSON file (JSON is YAML) as a mapping; clear errors, never a traceback."""
    try:
        text = Path(path).read_text("utf-8")
    except FileNotFoundError:
        raise ImportFailed(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFailed(f"{path}: cannot read file: {exc}") from None
    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        data = json.loads(text) if path.endswith(".json") else yaml.load(text, Loader=loader)
    except (yaml.YAMLError, ValueError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        kind = "JSON" if path.endswith(".json") else "YAML"
        raise ImportFailed(f"{path}{where}: not valid {kind}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise ImportFailed(f"{path}: an OpenAPI document must be a mapping")
    return data


def kebab(text: str) -> str:
    """``getPetById`` / ``Pet Store API`` / ``/pets/{petId}`` → ``get-pet-by-id`` / ``pet-store-api`` /
    ``pets-pet-id``."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", str(text))
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1-\2", text)
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def humanise(op_id: str) -> str:
    """``GetCustomerById`` / ``list_items`` → ``Get customer by id`` / ``List items`` (a tool title)."""
    words = kebab(op_id).replace("-", " ").strip()
    return words[:1].upper() + words[1:]


def _unique(base: str, used: set[str], limit: int = 64) -> str:
    base = base[:limit].strip("-") or "op"
    name, n = base, 2
    while name in used:
        suffix = f"-{n}"
        name, n = base[: limit - len(suffix)].strip("-") + suffix, n + 1
    used.add(name)
    return name


def _arg_name(name: str, used: set[str]) -> str:
    """A tool argument name for a parameter: the name itself when ``tools.NAME`` can hold it."""
    base = name if _FIELD_NAME.match(name) else re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_") or "param"
    arg, n = base, 2
    while arg in used:
        arg, n = f"{base}_{n}", n + 1
    used.add(arg)
    return arg


@dataclass
class _Param:
    name: str  # as sent upstream (path placeholders may be renamed)
    arg: str  # the tool argument
    location: str  # path | query | header | cookie
    schema: JSONObject
    description: str
    required: bool
    style: str | None = None  # written only when the default encoding would differ
    explode: bool | None = None
    route: str | None = None  # the REST route's placeholder, when a body field took the name


@dataclass
class _Field:
    """A top-level property of a flattened JSON body, or a form / multipart field."""

    name: str
    schema: JSONObject
    description: str
    required: bool
    style: tuple[str, bool | None] | None = None  # form fields with an OpenAPI style
    file: bool = False
    content_type: str | None = None


@dataclass
class _Body:
    kind: str  # json | form | multipart | raw
    schema: JSONObject
    description: str
    required: bool
    media: str = "application/json"
    fields: list[_Field] | None = None  # flattened JSON, form and multipart fields


@dataclass
class _Op:
    name: str
    group: str | None  # the tag it is filed under with --split-by-tag
    namespace: str  # consumes namespace
    path: str  # the REST route
    consumed_path: str  # the consumed resource's path (a placeholder may be renamed)
    path_item: JSONObject
    consumed: JSONObject
    rest: JSONObject
    tool: JSONObject


class _Importer:
    def __init__(self, spec: JSONObject, source: str, options: ImportOptions):
        self.spec = spec
        self.source = source
        self.options = options
        self.warnings: list[str] = []
        self.skipped: Counter[str] = Counter()
        self.refs = Refs(spec, self.warnings)
        self.swagger = str(spec.get("swagger", "")).startswith("2")
        version = str(spec.get("openapi", ""))
        if not self.swagger and not version.startswith("3"):
            raise ImportFailed(
                f"{source}: not a Swagger 2.0 or OpenAPI 3.x document (no 'swagger: 2.0' or 'openapi: 3.x')"
            )
        info: JSONObject = _mapping(spec.get("info"))
        self.info = info
        self.title = str(info.get("title") or Path(source).stem)
        self.namespace = options.namespace or kebab(self.title)[:48].strip("-") or "api"
        self.used_ops: set[str] = set()
        self.servers: dict[str, str] = {}  # extra base URI → consumes namespace

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    # ------------------------------------------------------------------ top level

    def run(self) -> Imported:
        paths = self.spec.get("paths")
        if not isinstance(paths, dict) or not paths:
            hooks = self.spec.get("webhooks")
            if isinstance(hooks, dict) and hooks:
                raise ImportFailed(
                    f"{self.source}: the document declares only webhooks ({len(hooks)}): "
                    "requests the API sends to you, "
                    "not operations to call; nothing to import"
                )
            raise ImportFailed(f"{self.source}: the document has no 'paths' to import")
        if "webhooks" in self.spec:
            self.warn(f"{pointer('webhooks')}: webhooks are requests the API sends, not operations to call; skipped")
        self.base = (
            self.options.base_uri.rstrip("/")
            if self.options.base_uri
            else self.base_uri(self.spec.get("servers"), pointer("servers"), True)
        )
        ops: list[_Op] = []
        for raw_path, item in paths.items():
            if not isinstance(raw_path, str):
                continue
            item = self.refs.resolve(item)
            if isinstance(item, dict):
                ops.extend(self.path_item(raw_path, item))
        if not ops:
            reasons = "; ".join(f"{n} {why}" for why, n in self.skipped.items())
            raise ImportFailed(
                f"{self.source}: no operation to import"
                + (f" ({reasons})" if reasons else " (no GET/POST/PUT/PATCH/DELETE operation)")
            )
        auth, binds, fixed = self.security()
        groups: dict[str | None, list[_Op]] = {}
        for op in ops:
            groups.setdefault(op.group, []).append(op)
        parts: dict[str, JSONObject] = {}  # file stem (the tag, kebab-cased, unique) → capability
        stems: set[str] = set()
        for i, (group, members) in enumerate(groups.items()):
            stem = _unique(kebab(group or "") or "untagged", stems)
            parts[stem] = self.capability(group, stem, members, auth, binds, fixed, i)
        first = next(iter(parts.values()))
        return Imported(first, self.warnings, len(ops), parts if self.options.split_by_tag else {}, self.skipped)

    def capability(
        self,
        group: str | None,
        stem: str,
        ops: list[_Op],
        auth: JSONObject | None,
        binds: JSONObject,
        fixed: list[JSONObject],
        index: int,
    ) -> JSONObject:
        """One capability file: the consumed API(s), a REST and an MCP adapter over ``ops``."""
        namespace = self.namespace if group is None else f"{self.namespace}-{stem}"[:60].strip("-")
        description = str(self.info.get("description") or "").strip()
        consumes_entries = self.consumes_entries(ops, auth, fixed, description)
        rest_resources = _resources(ops, consumes_entries)
        if not consumes_entries[self.namespace]["resources"]:
            del consumes_entries[self.namespace]  # every operation of this part has its own server
        doc_info = self.doc_info(group, description)
        capability: JSONObject = {"naftiko": SPEC_VERSION, "info": doc_info}
        if binds:
            capability["binds"] = [
                {"namespace": "env", "description": "Credentials for the upstream API.", "keys": dict(binds)}
            ]
        if self.options.port is not None:
            rest_port, mcp_port = self.options.port + 2 * index, self.options.port + 2 * index + 1
        else:
            rest_port, mcp_port = REST_PORT + index, MCP_PORT + index
        capability["capability"] = {
            "consumes": list(consumes_entries.values()),
            "exposes": [
                {
                    "type": "rest",
                    "namespace": f"{namespace}-rest",
                    "port": rest_port,
                    "resources": list(rest_resources.values()),
                },
                {
                    "type": "mcp",
                    "namespace": f"{namespace}-mcp",
                    "port": mcp_port,
                    "description": f"Tools for {doc_info['label']}: one per API operation.",
                    "tools": [op.tool for op in ops],
                },
            ],
        }
        return capability

    def consumes_entries(
        self, ops: list[_Op], auth: JSONObject | None, fixed: list[JSONObject], description: str
    ) -> dict[str, JSONObject]:
        """The consumes entries, by namespace: the API's own, then one per other server ``ops`` use."""
        consumes_entries: dict[str, JSONObject] = {}
        used = [self.namespace] + [ns for url, ns in self.servers.items() if any(o.namespace == ns for o in ops)]
        urls = {ns: url for url, ns in self.servers.items()}
        for ns in dict.fromkeys(used):
            base = self.base if ns == self.namespace else urls[ns]
            entry: JSONObject = {"type": "http", "namespace": ns, "baseUri": base}
            if description and ns == self.namespace:
                entry["description"] = description
            elif ns != self.namespace:
                entry["description"] = f"{self.title}: operations served from {urls[ns]}."
            if fixed:
                entry["inputParameters"] = copy.deepcopy(fixed)
            if auth:
                entry["authentication"] = copy.deepcopy(auth)
            entry["resources"] = []
            consumes_entries[ns] = entry
        return consumes_entries

    def doc_info(self, group: str | None, description: str) -> JSONObject:
        """The capability's ``info``: its label, description and tags (the tag of a split part)."""
        doc_info: JSONObject = {
            "label": self.title if group is None else f"{self.title}: {group}",
            "description": description or f"{self.title}, imported from its OpenAPI description.",
        }
        tags = [str(t["name"]) for t in self.spec.get("tags") or [] if isinstance(t, dict) and t.get("name")]
        if group is not None:
            tags = [group]
        if tags:
            doc_info["tags"] = tags
        return doc_info

    def base_uri(self, servers: object, where: str, main: bool) -> str:
        if self.swagger:
            schemes = [s for s in self.spec.get("schemes") or [] if s in ("http", "https")]
            scheme = "https" if "https" in schemes or not schemes else schemes[0]
            host = self.spec.get("host")
            if not host:
                self.warn(
                    f"{pointer('host')}: no 'host': baseUri set to http://localhost (override it with --base-uri)"
                )
                scheme, host = "http", "localhost"
            url = f"{scheme}://{host}{self.spec.get('basePath') or ''}"
        else:
            listed = (
                [s for s in servers or [] if isinstance(s, dict) and s.get("url")] if isinstance(servers, list) else []
            )
            if not listed:
                self.warn(f"{where}: no 'servers': baseUri set to http://localhost (override it with --base-uri)")
                return "http://localhost"
            if len(listed) > 1 and main:
                self.warn(
                    f"{where}: {len(listed)} servers; using the first, {listed[0]['url']} (another one with --base-uri)"
                )
            server = listed[0]
            url = str(server["url"])
            for name, var in (server.get("variables") or {}).items():
                if isinstance(var, dict) and "default" in var:
                    url = url.replace("{" + str(name) + "}", str(var["default"]))
            if url.startswith("/"):
                self.warn(
                    f"{where}: server url {url!r} is relative: baseUri set to http://localhost{url} "
                    "(override it with --base-uri)"
                )
                url = "http://localhost" + url
        url = url.rstrip("/")
        if not _BASE_URI.match(url):
            self.warn(f"{where}: server url {url!r} is not a plain http(s) URL: baseUri set to http://localhost")
            url = "http://localhost"
        return url

    def consumes_for(self, op: JSONObject, item: JSONObject, where_op: str, where_item: str) -> str:
        """The consumes namespace of an operation: its own ``servers``, its path's, else the API's."""
        if self.swagger:
            return self.namespace
        for servers, where in (
            (op.get("servers"), where_op + "/servers"),
            (item.get("servers"), where_item + "/servers"),
        ):
            if isinstance(servers, list) and servers:
                url = self.base_uri(servers, where, False)
                if url == self.base:
                    return self.namespace
                if url not in self.servers:
                    host = re.sub(r"^https?://", "", url)
                    base = f"{self.namespace}-{kebab(host)}"[:60].strip("-")
                    names = set(self.servers.values()) | {self.namespace}
                    self.servers[url] = _unique(base, names)
                return self.servers[url]
        return self.namespace

    # ------------------------------------------------------------------ security

    def security(self) -> tuple[JSONObject | None, JSONObject, list[JSONObject]]:
        """The consumes authentication for the first scheme the API requires, its bind keys,
        and consumes-level parameters (an API key in a cookie)."""
        if self.swagger:
            schemes = self.spec.get("securityDefinitions") or {}
        else:
            schemes = (self.spec.get("components") or {}).get("securitySchemes") or {}
        required = self.required_security()
        if not required:
            return None, {}, []
        names = list(required[0])
        if len(required) > 1 or len(names) > 1:
            self.warn(f"{pointer('security')}: several security schemes are required or offered; using '{names[0]}'")
        scheme = self.refs.resolve(schemes.get(names[0]) if isinstance(schemes, dict) else None)
        where = pointer(
            "securityDefinitions" if self.swagger else "components",
            *([] if self.swagger else ["securitySchemes"]),
            names[0],
        )
        if not isinstance(scheme, dict) or not scheme:
            self.warn(f"{where}: security scheme '{names[0]}' is not defined; no authentication")
            return None, {}, []
        return self.authentication(scheme, names[0], where)

    def required_security(self) -> list[JSONObject]:
        """The document's security requirements, else those of its operations."""
        required = [r for r in self.spec.get("security") or [] if isinstance(r, dict) and r]
        if required:
            return required
        for item in (self.spec.get("paths") or {}).values():
            for method in METHODS:
                op = item.get(method) if isinstance(item, dict) else None
                if isinstance(op, dict):
                    required += [r for r in op.get("security") or [] if isinstance(r, dict) and r]
        return required

    def env_prefix(self) -> str:
        """The prefix of the credential variables: --env-prefix, else the namespace, upper-cased."""
        prefix = self.options.env_prefix or re.sub(r"[^A-Z0-9]+", "_", self.namespace.upper()).strip("_")
        prefix = re.sub(r"[^A-Za-z0-9_]+", "_", prefix).strip("_").upper()
        if not prefix or not prefix[0].isalpha():
            prefix = "API_" + prefix
        return prefix

    def authentication(
        self, scheme: JSONObject, name: str, where: str
    ) -> tuple[JSONObject | None, JSONObject, list[JSONObject]]:
        """The consumes authentication, bind keys and cookie parameters for one security scheme."""
        prefix = self.env_prefix()
        kind = scheme.get("type")
        http_scheme = str(scheme.get("scheme", "")).lower()
        if kind == "apiKey":
            var = f"{prefix}_API_KEY"
            placement = scheme.get("in", "header")
            if placement == "cookie":
                return None, {var: var}, [{"name": str(scheme.get("name")), "in": "cookie", "value": _bind(var)}]
            auth = {
                "type": "apikey",
                "key": str(scheme.get("name")),
                "value": _bind(var),
                "placement": "query" if placement == "query" else "header",
            }
            return auth, {var: var}, []
        if kind == "basic" or (kind == "http" and http_scheme in ("basic", "digest")):
            user, password = f"{prefix}_USERNAME", f"{prefix}_PASSWORD"
            auth = {
                "type": "digest" if http_scheme == "digest" else "basic",
                "username": _bind(user),
                "password": _bind(password),
            }
            return auth, {user: user, password: password}, []
        if (kind == "http" and http_scheme == "bearer") or kind in ("oauth2", "openIdConnect"):
            if kind != "http":
                self.warn(f"{where}: security scheme '{name}' is {kind}: sent as a bearer token you obtain yourself")
            var = f"{prefix}_TOKEN"
            return {"type": "bearer", "token": _bind(var)}, {var: var}, []
        self.warn(f"{where}: security scheme '{name}' ({kind} {http_scheme}) is not supported; no authentication")
        return None, {}, []

    # ------------------------------------------------------------------ paths and operations

    def path_item(self, raw_path: str, item: JSONObject) -> list[_Op]:
        where_item = pointer("paths", raw_path)
        renames: dict[str, str] = {}

        def rename(m: re.Match[str]) -> str:
            original = m.group(1).strip()
            safe = re.sub(r"[^A-Za-z0-9_-]", "_", original)
            renames[original] = safe
            return "{" + safe + "}"

        path = _PLACEHOLDER.sub(rename, raw_path if raw_path.startswith("/") else "/" + raw_path)
        out: list[_Op] = []
        for method in UNSUPPORTED_METHODS:
            if isinstance(item.get(method), dict):
                self.warn(f"{where_item}/{method}: {method.upper()} operations are not supported; skipped")
                self.skipped[f"{method.upper()} (not a capability method)"] += 1
        for method in METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            if not self.selected(raw_path, op):
                continue
            where_op = f"{where_item}/{method}"
            namespace = self.consumes_for(op, item, where_op, where_item)
            built = self.operation(method.upper(), raw_path, path, renames, item, op, where_item, where_op)
            tags = [str(t) for t in op.get("tags") or [] if isinstance(t, (str, int))]
            group = (tags[0] if tags else "untagged") if self.options.split_by_tag else None
            consumed, rest, tool, consumed_path = built
            rest["call"] = tool["call"] = f"{namespace}.{consumed['name']}"
            out.append(_Op(consumed["name"], group, namespace, path, consumed_path, item, consumed, rest, tool))
        return out

    def selected(self, raw_path: str, op: JSONObject) -> bool:
        o = self.options
        tags = {str(t) for t in op.get("tags") or []}
        if o.include_paths and not any(fnmatch.fnmatchcase(raw_path, p) for p in o.include_paths):
            self.skipped["not matched by --include-path"] += 1
            return False
        if any(fnmatch.fnmatchcase(raw_path, p) for p in o.exclude_paths):
            self.skipped["matched by --exclude-path"] += 1
            return False
        if o.include_tags and not tags & set(o.include_tags):
            self.skipped["no tag named by --include-tag"] += 1
            return False
        if tags & set(o.exclude_tags):
            self.skipped["tagged as --exclude-tag says"] += 1
            return False
        return True

    def parameters(
        self, item: JSONObject, op: JSONObject, where_item: str, where_op: str
    ) -> list[tuple[JSONObject, str]]:
        """Path-level parameters overridden by operation-level ones with the same name and location."""
        merged: dict[tuple[str, object], tuple[JSONObject, str]] = {}
        listed = [(p, f"{where_item}/parameters/{i}") for i, p in enumerate(item.get("parameters") or [])]
        listed += [(p, f"{where_op}/parameters/{i}") for i, p in enumerate(op.get("parameters") or [])]
        for raw, where in listed:
            param = self.refs.resolve(raw)
            if isinstance(param, dict) and param.get("name") and param.get("in"):
                merged[(str(param["name"]), param["in"])] = (param, where)
            elif param:
                self.warn(f"{where}: a parameter without 'name' or 'in'; skipped")
        return list(merged.values())

    def param_schema(self, param: JSONObject, where: str) -> JSONObject:
        if self.swagger and param.get("in") != "body":
            return self.refs.schema(
                {k: v for k, v in param.items() if k not in ("name", "in", "required", "description")}, where
            )
        if "schema" not in param and isinstance(param.get("content"), dict):
            media = next(iter(param["content"].values()), None)  # a JSON-encoded parameter: sent as JSON text
            return self.refs.schema(media.get("schema") if isinstance(media, dict) else None, where)
        return self.refs.schema(param.get("schema"), where)

    def param_style(
        self, param: JSONObject, location: str, schema: JSONObject, where: str
    ) -> tuple[str | None, bool | None]:
        """``style``/``explode`` to write, only where the request builder's own rules would differ."""
        kind = primary_type(schema)
        if self.swagger:
            if kind != "array":
                return None, None
            fmt = param.get("collectionFormat", "csv")
            if fmt not in _COLLECTION:
                self.warn(f"{where}: collectionFormat '{fmt}' is not supported; values are sent as repeated keys")
                return None, None
            style, explode = _COLLECTION[fmt]
            if location == "query" and (style, explode) == ("form", True):
                return None, None
            if location in ("header", "path"):
                return "simple", None
            return style, explode
        if "content" in param and "schema" not in param:
            return None, None  # JSON text, the builder's rule for structured values
        style = param.get("style") or _DEFAULT_STYLE[location]
        declared = param.get("explode")
        explode = declared if isinstance(declared, bool) else style == "form"
        allowed = {
            "query": ("form", "spaceDelimited", "pipeDelimited", "deepObject"),
            "path": ("simple", "label", "matrix"),
            "header": ("simple",),
            "cookie": ("form",),
        }[location]
        if style not in allowed:
            self.warn(f"{where}: style '{style}' is not defined for {location} parameters; the default is used")
            style, explode = _DEFAULT_STYLE[location], _DEFAULT_STYLE[location] == "form"
        if kind in ("array", "object") or style in ("label", "matrix", "deepObject"):
            if location == "query" and style == "form" and explode and kind == "array":
                return None, None  # repeated keys: the builder's own rule
            return style, explode if explode != (style == "form") else None
        return None, None

    def operation(
        self,
        method: str,
        raw_path: str,
        path: str,
        renames: JSONObject,
        item: JSONObject,
        op: JSONObject,
        where_item: str,
        where_op: str,
    ) -> tuple[JSONObject, JSONObject, JSONObject, str]:
        """The consumed operation, REST operation and MCP tool for one OpenAPI operation, and the
        consumed path (placeholders renamed)."""
        op_id = op.get("operationId")
        name = _unique(kebab(op_id) if op_id else kebab(f"{method}-{path}"), self.used_ops)
        params: list[_Param] = []
        args: set[str] = set()
        swagger_body: _Body | None = None
        form_fields: list[_Field] = []
        for p, where in self.parameters(item, op, where_item, where_op):
            location = p["in"]
            if location in ("path", "query", "header", "cookie"):
                param = self.simple_param(p, where, raw_path, renames, args)
                if param is not None:
                    params.append(param)
            elif location == "body":  # Swagger 2
                swagger_body = self.swagger_body(p, op, where)
            elif location == "formData":
                form_fields.append(self.form_field(p, where))
            else:
                self.warn(f"{where}: parameter '{p['name']}' in '{location}' is not supported; skipped")
        declared = {p.name for p in params if p.location == "path"}
        for placeholder in dict.fromkeys(renames.values()):  # used in the path but not declared
            if placeholder not in declared:
                args.add(placeholder)
                params.insert(0, _Param(placeholder, placeholder, "path", {"type": "string"}, "", True))
        body = self.form_body(op, form_fields) if form_fields else swagger_body
        if "requestBody" in op:
            body = self.request_body(op["requestBody"], f"{where_op}/requestBody") or body
        if body is not None and body.kind == "json":
            body, taken = self.flatten(body, params)
            path = _rename_placeholders(path, params, taken, args)
        if body is not None and body.fields is not None:
            body.fields = self.usable_fields(body, params, where_op)
        if body is not None and body.fields is None:
            for clash in [q for q in params if q.arg == "body"]:
                self.warn(
                    f"{where_op}: {clash.location} parameter 'body' clashes with the request body argument; skipped"
                )
            params = [q for q in params if q.arg != "body"]
        return (*self.build(method, name, op, path, params, body), path)

    def simple_param(
        self, p: JSONObject, where: str, raw_path: str, renames: JSONObject, args: set[str]
    ) -> _Param | None:
        """A path, query, header or cookie parameter; None (with a warning) for a path parameter
        that is not in the path."""
        location, pname = p["in"], str(p["name"])
        schema = self.param_schema(p, where)
        description = str(p.get("description") or "").strip() or str(schema.pop("description", "")).strip()
        schema.pop("description", None)
        style, explode = self.param_style(p, location, schema, where)
        if location == "path":
            pname = renames.get(pname, pname)
            if pname not in renames.values():
                self.warn(f"{where}: path parameter '{p['name']}' is not in the path {raw_path}; skipped")
                return None
        required = location == "path" or bool(p.get("required"))
        return _Param(pname, _arg_name(pname, args), location, schema, description, required, style, explode)

    def swagger_body(self, p: JSONObject, op: JSONObject, where: str) -> _Body:
        """A Swagger 2 ``in: body`` parameter."""
        description = str(p.get("description") or "").strip()
        schema = self.refs.schema(p.get("schema"), where)
        media = self.swagger_media(op)
        kind = "json" if media in _JSON_MEDIA or media.endswith("+json") else "raw"
        if kind == "raw":
            schema = {"type": "string", **({"format": "binary"} if "octet" in media or "tar" in media else {})}
        return _Body(kind, schema, description or str(schema.get("description", "")), bool(p.get("required")), media)

    def form_field(self, p: JSONObject, where: str) -> _Field:
        """A Swagger 2 ``in: formData`` parameter."""
        schema = self.param_schema(p, where)
        style, explode = self.param_style(p, "query", schema, where)
        is_file = p.get("type") == "file"
        return _Field(
            str(p["name"]),
            schema,
            str(p.get("description") or "").strip(),
            bool(p.get("required")),
            (style, explode) if style else None,
            is_file,
            "application/octet-stream" if is_file else None,
        )

    def form_body(self, op: JSONObject, form_fields: list[_Field]) -> _Body:
        """The body Swagger 2 ``formData`` parameters make: multipart when the operation consumes it."""
        multipart = _MULTIPART in (op.get("consumes") or self.spec.get("consumes") or []) and _FORM not in (
            op.get("consumes") or []
        )
        return _Body(
            "multipart" if multipart else "form",
            {},
            "",
            any(f.required for f in form_fields),
            _MULTIPART if multipart else _FORM,
            form_fields,
        )

    def swagger_media(self, op: JSONObject) -> str:
        types = [str(t) for t in op.get("consumes") or self.spec.get("consumes") or []]
        if not types or any(t in _JSON_MEDIA or t.endswith("+json") for t in types):
            return "application/json"
        return types[0]

    def usable_fields(self, body: _Body, params: list[_Param], where: str) -> list[_Field]:
        taken = {p.arg for p in params} | {normalise_name(p.arg) for p in params}
        out = []
        for f in body.fields or []:
            if not _FIELD_NAME.match(f.name):
                self.warn(f"{where}/requestBody: field '{f.name}' has a name a capability cannot bind; skipped")
            elif f.name in taken or normalise_name(f.name) in taken:
                self.warn(f"{where}/requestBody: field '{f.name}' has the name of a parameter; skipped")
            else:
                out.append(f)
        return out

    def flatten(self, body: _Body, params: list[_Param]) -> tuple[_Body, set[str]]:
        """Top-level properties as arguments when that is exact: an object of at least two named,
        bindable properties, none named like a query, header or cookie parameter (a path
        parameter gives way). Otherwise the whole body is one argument."""
        props = body.schema.get("properties")
        if (
            primary_type(body.schema) != "object"
            or not isinstance(props, dict)
            or len(props) < 2
            or "anyOf" in body.schema
        ):
            return body, set()
        taken = {normalise_name(p.arg) for p in params if p.location != "path"} | {"body"}
        if any(not _FIELD_NAME.match(n) or normalise_name(n) in taken for n in props):
            return body, set()
        needed = set(body.schema.get("required") or []) if body.required else set()
        fields = []
        for n, s in props.items():
            s = dict(s)
            description = str(s.pop("description", "")).strip()
            fields.append(_Field(n, s, description, n in needed))
        return _Body("json", body.schema, body.description, body.required, body.media, fields), {
            normalise_name(n) for n in props
        }

    def request_body(self, raw: object, where: str) -> _Body | None:
        """An OpenAPI 3 ``requestBody``: JSON first, then a form, multipart or any other type sent raw."""
        request = self.refs.resolve(raw)
        if not isinstance(request, dict):
            return None
        content = request.get("content") or {}
        if not isinstance(content, dict) or not content:
            return None
        required = bool(request.get("required"))
        description = str(request.get("description") or "").strip()
        media, kind = _body_media(content)
        others = [t for t in content if t != media]
        if others:
            self.warn(f"{where}/content: {', '.join(others)} also accepted; the capability sends {media}")
        entry: JSONObject = _mapping(content.get(media))
        where_media = f"{where}/content/{pointer(media)[2:]}"
        if kind == "raw":
            return _raw_body(media, description, required)
        schema = self.refs.schema(entry.get("schema"), f"{where_media}/schema")
        if kind == "json":
            return _Body(
                "json", schema, description or str(schema.get("description", "")).strip(), required, str(media)
            )
        encodings: JSONObject = _mapping(entry.get("encoding"))
        needed = set(schema.get("required") or [])
        fields = [
            self.encoded_field(
                kind, str(n), dict(s), _mapping(encodings.get(n)), n in needed and required, where, media
            )
            for n, s in _mapping(schema.get("properties")).items()
        ]
        return _Body(kind, schema, description, required, str(media), fields)

    def encoded_field(
        self, kind: str, name: str, s: JSONObject, enc: JSONObject, required: bool, where: str, media: str
    ) -> _Field:
        """One field of a form or multipart body, with its OpenAPI ``encoding``."""
        style: tuple[str, bool | None] | None = None
        kind_n = primary_type(s)
        if kind == "form" and ("style" in enc or kind_n in ("object", "array")):
            st = enc.get("style", "form")
            if st not in ("form", "spaceDelimited", "pipeDelimited", "deepObject"):
                self.warn(
                    f"{where}/content/{pointer(media)[2:]}/encoding/{name}: style '{st}' is not supported; form is used"
                )
                st = "form"
            ex = enc.get("explode")
            style = (st, ex if isinstance(ex, bool) else None)
            if style == ("form", None) and kind_n == "array":
                style = None  # repeated keys: the builder's own rule
        is_file = (
            s.get("format") in ("binary", "base64")
            or "contentMediaType" in s
            or (kind_n == "array" and isinstance(s.get("items"), dict) and s["items"].get("format") == "binary")
        )
        ctype = enc.get("contentType") if isinstance(enc.get("contentType"), str) else None
        if kind == "multipart" and kind_n == "array" and is_file:
            self.warn(f"{where}: multipart field '{name}' takes several files; one part with one file is sent")
        return _Field(
            name,
            s,
            str(s.pop("description", "")).strip(),
            required,
            style,
            kind == "multipart" and is_file,
            ctype or ("application/octet-stream" if is_file else None),
        )

    # ------------------------------------------------------------------ the three views of one operation

    def build(
        self, method: str, name: str, op: JSONObject, path: str, params: list[_Param], body: _Body | None
    ) -> tuple[JSONObject, JSONObject, JSONObject]:
        """The consumed operation, the REST operation and the MCP tool for one OpenAPI operation."""
        summary = str(op.get("summary") or "").strip()
        title = summary or (humanise(str(op["operationId"])) if op.get("operationId") else f"{method} {path}")
        description = str(op.get("description") or "").strip() or summary or f"{method} {path}"
        consumed = _consumed_operation(method, name, title, description, params, body)
        rest = _rest_operation(method, name, title, description, params, body)
        tool = self.tool(method, name, title, description, params, body)
        if self.options.output_schemas:
            shaped = self.output(op, f"{method} {path}")
            if shaped is not None:
                tool["outputParameters"] = [shaped]
        return consumed, rest, tool

    def tool(
        self, method: str, name: str, title: str, description: str, params: list[_Param], body: _Body | None
    ) -> JSONObject:
        """The MCP tool: one argument per parameter and per body field (or the whole body)."""
        tool_inputs = []
        with_ = {}
        for p in params:
            tool_inputs.append(
                self.tool_input(
                    p.arg, p.schema, p.description or f"{p.location.capitalize()} parameter {p.name}.", p.required
                )
            )
            with_[p.name] = f"tools.{p.arg}"
        fields = body.fields if body is not None else None
        if body is not None and fields is not None:
            for f in fields:
                fallback = f"Field {f.name} of the request body." if body.kind == "json" else f"Form field {f.name}."
                tool_inputs.append(self.tool_input(f.name, f.schema, f.description or fallback, f.required))
                with_[f.name] = f"tools.{f.name}"
        elif body is not None:
            schema = dict(body.schema)
            schema.pop("description", None)
            tool_inputs.append(
                self.tool_input("body", schema, body.description or f"The request body ({body.media}).", body.required)
            )
            with_["body"] = "tools.body"
        tool: JSONObject = {"name": name}
        if title:
            tool["label"] = title
        tool["description"] = description
        tool["inputParameters"] = tool_inputs
        tool["call"] = ""
        if with_:
            tool["with"] = with_
        tool["hints"] = dict(_HINTS[method])
        return tool

    def output(self, op: JSONObject, where: str) -> JSONObject | None:
        """With --output-schemas: mapped outputs for the first 2xx JSON response, when its schema is
        an object typed all the way down (what a tool's outputSchema can state); else None."""
        responses: dict[Any, Any] = _mapping(op.get("responses"))  # YAML reads `200:` as an int key
        for code in sorted(str(c) for c in responses):
            if not (code.startswith("2") and len(code) == 3):
                continue
            response = _mapping(
                self.refs.resolve(responses.get(code) if code in responses else responses.get(int(code)))
            )
            raw = response.get("schema") if self.swagger else None
            for media, entry in _mapping(response.get("content")).items():
                if media in _JSON_MEDIA or str(media).endswith("+json"):
                    raw = _mapping(entry).get("schema")
                    break
            if raw is None:
                return None
            schema = self.refs.schema(raw, f"{where}: response {code}", request=False)
            shaped = _mapped(schema, "$", 0)
            return shaped if shaped is not None and shaped["type"] == "object" else None
        return None

    @staticmethod
    def tool_input(name: str, schema: JSONObject, description: str, required: bool) -> JSONObject:
        entry: JSONObject = {"name": name}
        kind = primary_type(schema)
        schema = dict(schema)
        if kind is None and "type" not in schema and "anyOf" not in schema:
            schema["type"] = list(JSON_TYPES)  # any JSON value, as the document says
        entry["type"] = kind or "object"
        entry["description"] = description
        entry["required"] = required
        extra = {k: v for k, v in schema.items() if k != "description" and not (k == "type" and v == kind)}
        if extra:
            entry["schema"] = extra
        return entry


_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _mapped(schema: JSONObject, mapping: str, depth: int) -> JSONObject | None:
    """A mapped output parameter for a JSON Schema, or None when part of it cannot be typed."""
    kind = primary_type(schema)
    if depth > 8 or kind is None or "anyOf" in schema:
        return None
    if kind in ("string", "number", "boolean"):
        return {"type": kind, "mapping": mapping}
    if kind == "integer":
        return {"type": "number", "mapping": mapping}
    if kind == "array":
        items = _mapped(_mapping(schema.get("items")), "$", depth + 1)
        return None if items is None else {"type": "array", "mapping": mapping, "items": items}
    properties = _mapping(schema.get("properties"))
    if not properties or schema.get("additionalProperties") not in (None, False):
        return None
    shaped: JSONObject = {}
    for name, sub in properties.items():
        path = f"$.{name}" if _PLAIN_KEY.match(name) else "$[" + json.dumps(name) + "]"
        inner = _mapped(_mapping(sub), path, depth + 1)
        if inner is None:
            return None
        shaped[name] = inner
    return {"type": "object", "mapping": mapping, "properties": shaped}


def normalise_name(name: str) -> str:
    return name.replace("-", "").replace("_", "").lower()


def _resources(ops: list[_Op], consumes_entries: dict[str, JSONObject]) -> dict[str, JSONObject]:
    """Group ``ops`` into consumed resources (added to their consumes entry) and REST resources
    (returned, by path), both named after their path."""
    resources: dict[tuple[str, str], JSONObject] = {}
    rest_resources: dict[str, JSONObject] = {}
    used_names: dict[str, set[str]] = {ns: set() for ns in consumes_entries}
    rest_names: set[str] = set()
    for op in ops:
        key = (op.namespace, op.consumed_path)
        if key not in resources:
            name = _unique(kebab(op.path) or "root", used_names[op.namespace])
            resources[key] = {"name": name, "path": op.consumed_path, "operations": []}
            consumes_entries[op.namespace]["resources"].append(resources[key])
        resources[key]["operations"].append(op.consumed)
        if op.path not in rest_resources:
            rest: JSONObject = {"path": op.path, "name": _unique(kebab(op.path) or "root", rest_names)}
            words = op.path_item.get("description") or op.path_item.get("summary")
            if isinstance(words, str) and words.strip():
                rest["description"] = words.strip()
            rest["operations"] = []
            rest_resources[op.path] = rest
        rest_resources[op.path]["operations"].append(op.rest)
    return rest_resources


def _body_media(content: JSONObject) -> tuple[str, str]:
    """The media type a request body is sent as, and its kind: JSON first, then a form, then
    multipart, else the first type listed, sent raw (``*/*`` too)."""
    media = next((t for t in content if t in _JSON_MEDIA or str(t).endswith("+json")), None)
    if media is None and "*/*" in content:
        media = "*/*"
    if media and media != "*/*":
        return media, "json"
    for candidate, kind in ((_FORM, "form"), (_MULTIPART, "multipart")):
        if candidate in content:
            return candidate, kind
    return media or next(iter(content)), "raw"


def _raw_body(media: str, description: str, required: bool) -> _Body:
    """A body sent as it comes: text for text and XML types, else binary."""
    schema = {"type": "string"}
    if not str(media).startswith("text/") and "xml" not in str(media):
        schema["format"] = "binary"
    return _Body(
        "raw",
        schema,
        description or f"The request body, sent as {media}.",
        required,
        "application/octet-stream" if media == "*/*" else str(media),
    )


def _rename_placeholders(path: str, params: list[_Param], taken: set[str], args: set[str]) -> str:
    """A path placeholder named like a body field is renamed (``id`` → ``id_path``), as it never
    travels by name; the param keeps the old name as its REST route. Returns the renamed path."""
    for param in params:
        if param.location == "path" and normalise_name(param.arg) in taken:
            new = param.name + "_path"
            while normalise_name(new) in taken or new in args:
                new += "_"
            path = path.replace("{" + param.name + "}", "{" + new + "}")
            param.route, param.name, param.arg = param.name, new, new
            args.add(new)
    return path


def _consumed_operation(
    method: str, name: str, title: str, description: str, params: list[_Param], body: _Body | None
) -> JSONObject:
    """The consumed operation: its parameters as sent upstream and how the body is encoded."""
    consumed: JSONObject = {"name": name, "method": method}
    if title:
        consumed["label"] = title
    consumed["description"] = description
    inputs: list[JSONObject] = []
    for p in params:
        entry: dict[str, object] = {"name": p.name, "in": p.location}
        if p.style:
            entry["style"] = p.style
        if p.explode is not None:
            entry["explode"] = p.explode
        inputs.append(entry)
    fields = body.fields if body is not None else None
    if body is not None and body.kind == "json":
        if fields is not None:
            inputs.extend({"name": f.name, "in": "body"} for f in fields)
        else:
            inputs.append({"name": "body", "in": "body"})
    if inputs:
        consumed["inputParameters"] = inputs
    encoded = _consumed_body(body) if body is not None else None
    if encoded is not None:
        consumed["body"] = encoded
    return consumed


def _consumed_body(body: _Body) -> JSONObject | None:
    """A form, multipart or raw request body of a consumed operation (None for JSON: its fields are inputs)."""
    fields = body.fields or []
    if body.kind == "form":
        out: JSONObject = {"type": "formUrlEncoded", "data": {f.name: _var(f.name) for f in fields}}
        styled = {
            f.name: {"style": f.style[0], **({"explode": f.style[1]} if f.style[1] is not None else {})}
            for f in fields
            if f.style
        }
        if styled:
            out["encoding"] = styled
        return out
    if body.kind == "multipart":
        parts = []
        for f in fields:
            part = {"name": f.name, "value": _var(f.name)}
            if f.file:
                part["filename"] = f.name
            if f.content_type:
                part["contentType"] = f.content_type
            parts.append(part)
        return {"type": "multipartForm", "data": parts}
    if body.kind == "raw":
        return {"type": "text", "data": _var("body"), "contentType": body.media}
    return None


def _rest_operation(
    method: str, name: str, title: str, description: str, params: list[_Param], body: _Body | None
) -> JSONObject:
    """The REST operation: the same path; parameters by location, the body as ``body``, its fields
    bound by name (``call`` is filled in by the caller)."""
    rest_inputs = []
    rest_with = {}
    for p in params:
        if not _PARAM_NAME.match(p.name):
            continue  # read by its own name from the request (a capability file cannot declare it)
        route = p.route or p.name
        entry = {
            "name": route,
            "in": p.location,
            "type": primary_type(p.schema) or "string",
            "description": p.description or f"{p.location} parameter {route}",
        }
        rest_inputs.append(entry)
        rest_with[p.name] = f"rest.{route}"
    if body is not None:
        fields = body.fields
        kind = "object" if body.kind != "raw" else "string"
        if body.kind == "json" and fields is None:
            kind = primary_type(body.schema) or "object"
        rest_inputs.append(
            {"name": "body", "in": "body", "type": kind, "description": body.description or "The request body."}
        )
        if fields is not None:
            rest_with.update({f.name: f"rest.body.{f.name}" for f in fields})
        else:
            rest_with["body"] = "rest.body"
    rest: JSONObject = {"method": method, "name": name}
    if title:
        rest["label"] = title
    rest["description"] = description
    if rest_inputs:
        rest["inputParameters"] = rest_inputs
    rest["call"] = ""
    if rest_with:
        rest["with"] = rest_with
    return rest


def import_openapi(spec: JSONObject, source: str = "openapi", options: ImportOptions | None = None) -> Imported:
    """The capability (a plain dict, ready for YAML) for an OpenAPI/Swagger document."""
    return _Importer(spec, source, options or ImportOptions()).run()


def is_openapi(data: object) -> bool:
    """A mapping that is an OpenAPI or Swagger description rather than a capability."""
    return isinstance(data, dict) and "naftiko" not in data and ("openapi" in data or "swagger" in data)


def to_yaml(capability: JSONObject, source: str) -> str:
    header = (
        f"# Imported from {Path(source).name} by `naftiko import openapi`.\n"
        "# Credentials come from the environment variables named under binds; check and edit before serving.\n"
    )
    return header + dump_yaml(capability)
