"""``naftiko export openapi``: an OpenAPI 3.1 description of one REST adapter.

Built from the compiled plan (so ``ref``, imports and aggregates are already resolved, and the
description matches what the server really routes) plus the document model for the words:
labels, descriptions and declared output parameters. Parameters come from the route's
placeholders, the declared inputs, and — when an operation declares none — from what its unit
reads (``with`` references and the consumed parameters filled by name), the same inference the
MCP adapter uses for tool schemas (reference §3, §7).
"""

from __future__ import annotations

import json
import re

import yaml

from naftiko import __version__
from naftiko.consumes.request import ParamSpec
from naftiko.document import SPEC_VERSION, JSONObject
from naftiko.document import model as m
from naftiko.document.loader import Loaded
from naftiko.engine.forward import ForwardPlan
from naftiko.engine.mock import MockUnit
from naftiko.engine.orchestrated import ScriptStep, StepsUnit
from naftiko.engine.plan import (
    InputSpec,
    Options,
    RestAdapterPlan,
    RestOperation,
    RestRoute,
    compile_plan,
)
from naftiko.engine.simple import Call, CallUnit, InputRef
from naftiko.expressions.names import normalise
from naftiko.expressions.template import MISSING, PATH_PLACEHOLDER

OPENAPI_VERSION = "3.1.0"
# OpenAPI ignores parameter objects for these headers: they are described elsewhere.
_RESERVED_HEADERS = {"accept", "content-type", "authorization"}
_SIMPLE_LOCATIONS = ("query", "header", "cookie")
_FORWARD_METHODS = ("get", "post", "put", "patch", "delete")
_PROBLEMS = {
    "400": ("BadRequest", "Invalid input: a missing or malformed parameter or body (problem+json)."),
    "404": ("NotFound", "No route for this path, or the upstream answered 404."),
    "405": ("MethodNotAllowed", "The method is not served on this path; see the Allow header."),
    "413": ("PayloadTooLarge", "The request body is larger than the adapter accepts."),
    "502": ("BadGateway", "The upstream API is unreachable or answered something unreadable."),
    "504": ("GatewayTimeout", "The upstream API did not answer in time."),
}


class ExportError(Exception):
    """The file cannot be exported (for example: it has no REST adapter)."""


def export_openapi(loaded: Loaded, adapter: str | None = None) -> JSONObject:
    """The OpenAPI 3.1 document (a plain dict) of the REST adapter named ``adapter``, or of the
    first REST adapter of the capability."""
    doc = loaded.document
    rests = [e for e in (doc.capability.exposes if doc.capability else []) if e.type == "rest"]
    if not rests:
        raise ExportError(f"{loaded.file}: the capability has no REST adapter to export")
    if adapter is None:
        spec = rests[0]
    else:
        found = next((e for e in rests if e.namespace == adapter), None)
        if found is None:
            known = ", ".join(e.namespace for e in rests)
            raise ExportError(f"{loaded.file}: no REST adapter '{adapter}' (REST adapters: {known})")
        spec = found
    plan = compile_plan(loaded, Options(dry_run=True), observe=False)  # binds become placeholders: nothing is sent
    rest = next(a for a in plan.adapters if isinstance(a, RestAdapterPlan) and a.namespace == spec.namespace)
    return _Exporter(doc, spec, rest).document()


class _Exporter:
    def __init__(self, doc: m.Document, spec: m.ExposesRest, plan: RestAdapterPlan) -> None:
        self.doc = doc
        self.spec = spec
        self.plan = plan
        self.operation_ids: set[str] = set()
        self.aggregates = {
            f"{a.namespace}.{f.name}": f
            for a in (doc.capability.aggregates if doc.capability else [])
            for f in a.functions
        }

    def document(self) -> JSONObject:
        info = self.doc.info or m.Info()
        out: JSONObject = {
            "openapi": OPENAPI_VERSION,
            "info": {
                "title": info.label or self.spec.namespace,
                "version": SPEC_VERSION,
                "x-naftiko": {"adapter": self.spec.namespace, "spec": SPEC_VERSION, "engine": f"naftiko {__version__}"},
            },
            "servers": [{"url": self._server_url(), "description": f"REST adapter '{self.spec.namespace}'"}],
        }
        if info.description:
            out["info"]["description"] = info.description
        tags = self._tags()
        if tags:
            out["tags"] = tags
        security = self._security_scheme()
        paths: JSONObject = {}
        for route in self.plan.routes:
            path, item = self._path_item(route, security is not None)
            if item:
                paths.setdefault(path, {}).update(item)
        out["paths"] = paths
        components: JSONObject = {
            "schemas": {"Problem": dict(_PROBLEM_SCHEMA)},
            "responses": _problem_responses(security is not None),
        }
        if security is not None:
            components["securitySchemes"] = {"inbound": security}
            out["security"] = [{"inbound": []}]
        out["components"] = components
        return out

    # ------------------------------------------------------------------ top level

    def _server_url(self) -> str:
        address = self.plan.address
        if address in ("0.0.0.0", "::", ""):
            address = "localhost"
        elif ":" in address:
            address = f"[{address}]"
        return f"http://{address}:{self.plan.port}"

    def _tags(self) -> list[JSONObject]:
        tags: list[JSONObject] = []
        seen: set[str] = set()
        for res in self.spec.resources:
            if res.name and res.name not in seen and res.operations:
                seen.add(res.name)
                tag: JSONObject = {"name": res.name}
                if res.description or res.label:
                    tag["description"] = res.description or res.label
                tags.append(tag)
        return tags

    def _security_scheme(self) -> JSONObject | None:
        auth = self.spec.authentication
        if auth is None:
            return None
        if auth.type == "basic":
            return {"type": "http", "scheme": "basic"}
        if auth.type == "digest":
            return {"type": "http", "scheme": "digest"}
        if auth.type == "apikey":
            return {"type": "apiKey", "name": auth.key or "X-API-Key", "in": auth.placement}
        scheme = {"type": "http", "scheme": "bearer"}
        if auth.type == "oauth2":
            scheme["bearerFormat"] = "JWT"
            if auth.authorizationServerUri:
                scheme["description"] = f"An access token issued by {auth.authorizationServerUri}."
        return scheme

    # ------------------------------------------------------------------ paths

    def _resources(self, route: RestRoute) -> list[m.ExposedResource]:
        return [r for r in self.spec.resources if r.path == route.path]

    def _path_item(self, route: RestRoute, secured: bool) -> tuple[str, JSONObject]:
        raw = route.path if route.path.startswith("/") else "/" + route.path
        names = [(mt.group(1) or mt.group(2)).strip() for mt in PATH_PLACEHOLDER.finditer(raw)]
        path = PATH_PLACEHOLDER.sub(lambda mt: "{" + (mt.group(1) or mt.group(2)).strip() + "}", raw)
        resources = self._resources(route)
        item: JSONObject = {}
        for method, operation in route.operations.items():
            op_spec, res_spec = self._operation_spec(resources, method)
            name = op_spec.name if op_spec is not None and op_spec.name else f"{method.lower()}-{_slug(path)}"
            item[method.lower()] = self._operation(name, operation, op_spec, res_spec, names, route, secured)
        if isinstance(route.forward, ForwardPlan):
            for method in _FORWARD_METHODS:
                if method.upper() not in route.operations:
                    item[method] = self._forward(route.forward, method, names, path, secured)
        return path, item

    def _operation_spec(
        self, resources: list[m.ExposedResource], method: str
    ) -> tuple[m.ExposedOperation | None, m.ExposedResource | None]:
        for res in resources:
            for op in res.operations:
                if op.method == method:
                    return self._resolve_ref(op), res
        return None, resources[0] if resources else None

    def _resolve_ref(self, op: m.ExposedOperation) -> m.ExposedOperation:
        """The function's fields under the operation's own, as the compiler merges them."""
        function = self.aggregates.get(op.ref) if op.ref else None
        if function is None:
            return op
        data = function.model_dump(by_alias=True, exclude_unset=True, exclude={"semantics", "name"})
        data.update(op.model_dump(by_alias=True, exclude_unset=True, exclude={"ref"}))
        return m.ExposedOperation.model_validate(data)

    def _operation_id(self, name: str) -> str:
        candidate, n = name, 2
        while candidate in self.operation_ids:
            candidate, n = f"{name}-{n}", n + 1
        self.operation_ids.add(candidate)
        return candidate

    def _operation(
        self,
        name: str,
        operation: RestOperation,
        spec: m.ExposedOperation | None,
        res: m.ExposedResource | None,
        names: list[str],
        route: RestRoute,
        secured: bool,
    ) -> JSONObject:
        out: JSONObject = {"operationId": self._operation_id(name)}
        summary, description = _words(spec, res)
        if summary:
            out["summary"] = summary
        if description:
            out["description"] = description
        if res is not None and res.name and res.operations:
            out["tags"] = [res.name]
        params, body = self._parameters(operation, names, route)
        if params:
            out["parameters"] = params
        if body is not None:
            out["requestBody"] = body
        out["responses"] = self._responses(operation, spec, body is not None, secured)
        return out

    # ------------------------------------------------------------------ parameters

    def _parameters(
        self, operation: RestOperation, names: list[str], route: RestRoute
    ) -> tuple[list[JSONObject], JSONObject | None]:
        """Path parameters, then the declared inputs; inferred from the unit when none is declared
        outside the path."""
        fed = _fed_params(operation.unit)
        last = len(names) - 1
        params = [
            _path_param(name, operation.inputs, fed, route.forward is not None and i == last)
            for i, name in enumerate(names)
        ]
        taken = {normalise(name) for name in names}  # normalised names already described
        declared, body = _declared_params(operation.inputs, taken)
        params.extend(declared)
        if not any(s.location != "path" for s in operation.inputs):
            inferred, inferred_body = _infer(operation.unit, taken)
            params.extend(inferred)
            body = body or inferred_body
        return params, body

    # ------------------------------------------------------------------ responses

    def _responses(
        self, operation: RestOperation, spec: m.ExposedOperation | None, has_body: bool, secured: bool
    ) -> JSONObject:
        schema = _result_schema(spec, operation.unit)
        if schema is None:
            ok = {
                "description": "The upstream response, relayed with its status, body and content type.",
                "content": {"*/*": {"schema": {}}},
            }
        else:
            ok = {"description": "Success.", "content": {"application/json": {"schema": schema}}}
        declared = _declared_responses(spec)
        responses: JSONObject = declared or {"200": ok}
        codes = ["400", "404", "405", "413", "502", "504"] if has_body else ["400", "404", "405", "502", "504"]
        if secured:
            codes.insert(0, "401")
        for code in codes:
            if code in responses:  # the file's own words for that status win
                continue
            responses[code] = {
                "$ref": f"#/components/responses/{_PROBLEMS[code][0] if code != '401' else 'Unauthorized'}"
            }
        responses["default"] = {
            "description": "An upstream error status, relayed with the upstream body.",
            "content": {"*/*": {"schema": {}}},
        }
        return responses

    def _forward(self, forward: ForwardPlan, method: str, names: list[str], path: str, secured: bool) -> JSONObject:
        target = forward.namespace
        params = [
            _param(
                name,
                "path",
                "string",
                True,
                "The rest of the path: it may span several segments." if i == len(names) - 1 else None,
            )
            for i, name in enumerate(names)
        ]
        out: JSONObject = {
            "operationId": self._operation_id(f"forward-{method}-{_slug(path)}"),
            "summary": f"Forwarded to '{target}'",
            "description": (
                f"Forwarded to the consumes namespace '{target}': the captured path is appended to its baseUri; "
                "the method, query string and body pass unchanged; only trusted headers are copied; the upstream "
                "status, body and safe headers come back."
            ),
            "x-naftiko-forward": {"targetNamespace": target},
        }
        if params:
            out["parameters"] = params
        if method in ("post", "put", "patch"):
            out["requestBody"] = {"required": False, "content": {"*/*": {"schema": {}}}}
        out["responses"] = {
            "default": {"description": "The upstream response, relayed.", "content": {"*/*": {"schema": {}}}},
            **({"401": {"$ref": "#/components/responses/Unauthorized"}} if secured else {}),
            "400": {"$ref": "#/components/responses/BadRequest"},
            "502": {"$ref": "#/components/responses/BadGateway"},
            "504": {"$ref": "#/components/responses/GatewayTimeout"},
        }
        return out


# ---------------------------------------------------------------------- helpers


def _path_param(name: str, inputs: list[InputSpec], fed: dict[str, ParamSpec], rest_of_path: bool) -> JSONObject:
    """One path placeholder: described by the input declared for it, else by the consumed parameter it feeds."""
    declared = {i.name: i for i in inputs}  # the last declaration of a name wins
    spec: InputSpec | ParamSpec | None = declared.get(name) or next(
        (d for d in inputs if normalise(d.name) == normalise(name)), None
    )
    spec = spec or fed.get(normalise(name))  # else the consumed parameter it feeds
    description = spec.description if spec and spec.description else None
    if rest_of_path:
        description = (description + " " if description else "") + "The rest of the path: it may span several segments."
    pattern = spec.pattern if isinstance(spec, InputSpec) else None
    return _param(name, "path", spec.type if spec else None, True, description, pattern)


def _declared_params(inputs: list[InputSpec], taken: set[str]) -> tuple[list[JSONObject], JSONObject | None]:
    """The declared inputs not already described (``taken``, updated), and the declared body."""
    params: list[JSONObject] = []
    body: JSONObject | None = None
    for spec in inputs:
        if spec.location == "body":
            body = _request_body(spec.type, spec.description, spec.required)
            continue
        if normalise(spec.name) in taken:
            continue
        location = spec.location if spec.location in _SIMPLE_LOCATIONS else "query"
        if location == "header" and spec.name.lower() in _RESERVED_HEADERS:
            continue
        taken.add(normalise(spec.name))
        params.append(_param(spec.name, location, spec.type, spec.required, spec.description, spec.pattern))
    return params, body


def _slug(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", path).strip("-").lower() or "root"


def _words(spec: m.ExposedOperation | None, res: m.ExposedResource | None) -> tuple[str | None, str | None]:
    """Summary: the label, else the first sentence of the description; description: the rest."""
    label = spec.label if spec is not None else None
    description = spec.description if spec is not None else None
    if not label and not description and res is not None:
        label, description = res.label, res.description
    if label:
        return label, description
    if description:
        first = description.strip().split("\n", 1)[0]
        summary = first if len(first) <= 120 else first[:117] + "…"
        return summary, description if description.strip() != summary else None
    return None, None


def _schema_for(type_: str | None, pattern: str | None = None) -> JSONObject:
    schema: JSONObject = {"type": type_} if type_ else {}
    if type_ == "array":
        schema["items"] = {"type": "string"}
    if pattern and type_ in (None, "string"):
        schema["pattern"] = pattern
    return schema


def _param(
    name: str, location: str, type_: str | None, required: bool, description: str | None, pattern: str | None = None
) -> JSONObject:
    param: JSONObject = {"name": name, "in": location}
    if description:
        param["description"] = description
    if required or location == "path":
        param["required"] = True
    param["schema"] = _schema_for(type_ or "string", pattern)  # untyped values arrive as text
    if type_ == "array" and location == "query":
        param["style"], param["explode"] = "form", True  # repeated keys: ?k=a&k=b
    return param


def _request_body(
    type_: str | None, description: str | None, required: bool, properties: JSONObject | None = None
) -> JSONObject:
    schema: JSONObject = {"type": type_ or "object"}
    if properties and schema["type"] == "object":
        schema["properties"] = properties
    body: JSONObject = {"required": bool(required), "content": {"application/json": {"schema": schema}}}
    if description:
        body["description"] = description
    return body


def _calls(unit: object) -> list[Call]:
    """The consumed operations a unit calls (mapped and orchestrated units; a mock calls none)."""
    calls: list[Call] = getattr(unit, "calls", [])
    return calls


def _input_refs(unit: object) -> list[tuple[InputRef, ParamSpec | None]]:
    """Every ``ns.name`` reference the unit reads, with the consumed parameter it feeds (or None)."""
    refs: list[tuple[InputRef, ParamSpec | None]] = []
    for call in _calls(unit):
        params = call.target.request.params
        refs += [(v, params.get(k)) for k, v in call.with_ if isinstance(v, InputRef)]
    if isinstance(unit, StepsUnit):
        for step in unit.steps:
            if isinstance(step, ScriptStep):
                refs += [(v, None) for _, v in step.with_ if isinstance(v, InputRef)]
        refs += [(v, None) for _, v in unit.mappings if isinstance(v, InputRef)]
    return refs


def _fed_params(unit: object) -> dict[str, ParamSpec]:
    """Normalised input name → the consumed parameter it feeds (by ``with`` or by name)."""
    out: dict[str, ParamSpec] = {}
    for ref, spec in _input_refs(unit):
        if spec is not None:
            out.setdefault(normalise(ref.path[0]), spec)
    for call in _calls(unit):
        for name, spec in call.target.request.params.items():
            out.setdefault(normalise(name), spec)
    return out


def _infer(unit: object, taken: set[str]) -> tuple[list[JSONObject], JSONObject | None]:
    """Query/header/cookie parameters and a body for an operation that declares no inputs."""
    params: list[JSONObject] = []
    body_props: JSONObject = {}
    body_spec: ParamSpec | None = None
    takes_body = False

    def add(name: str, spec: ParamSpec | None, location: str | None = None) -> None:
        if normalise(name) in taken:
            return
        where = location or (spec.location if spec is not None and spec.location in _SIMPLE_LOCATIONS else "query")
        if where == "header" and name.lower() in _RESERVED_HEADERS:
            return
        taken.add(normalise(name))
        required = spec is not None and (spec.location == "path" or spec.required)
        params.append(_param(name, where, spec.type if spec else None, required, spec.description if spec else None))

    for ref, spec in _input_refs(unit):
        if ref.path[0] == "body":
            takes_body = True
            if len(ref.path) > 1:
                body_props[ref.path[1]] = _schema_for(spec.type if spec else None)
            else:
                body_spec = body_spec or spec
            continue
        add(ref.path[0], spec)
    for call in _calls(unit):
        fed = {k for k, _ in call.with_}
        for name, spec in call.target.request.params.items():
            if name in fed or spec.value is not MISSING:
                continue
            if spec.location == "body" and name == "body":
                takes_body, body_spec = True, body_spec or spec
                continue
            add(name, spec)
    if isinstance(unit, MockUnit):
        for name, _kind in unit.template_inputs:
            add(name, None)
    body = None
    if takes_body:
        body = _request_body(
            body_spec.type if body_spec else None,
            body_spec.description if body_spec else None,
            bool(body_spec and body_spec.required),
            body_props,
        )
    return params, body


def _output_schema(p: m.OutputParameter) -> JSONObject:
    schema: JSONObject = {}
    if p.type:
        schema["type"] = p.type
    if p.description:
        schema["description"] = p.description
    if p.const is not None:
        schema["const"] = p.const
    if p.type == "string" and p.maxLength is not None:
        schema["maxLength"] = p.maxLength
    if p.type == "object" and p.properties:
        schema["properties"] = {name: _output_schema(sub) for name, sub in p.properties.items()}
    if p.type == "array" and p.items is not None:
        items = p.items
        if isinstance(items, list):
            if items and all(i.name for i in items):
                schema["items"] = {"type": "object", "properties": {i.name: _output_schema(i) for i in items}}
            elif len(items) == 1:
                schema["items"] = _output_schema(items[0])
        else:
            schema["items"] = _output_schema(items)
    return schema


def _declared_responses(spec: m.ExposedOperation | None) -> JSONObject:
    """beta5 ``responses`` (or the ``responseBinary`` shorthand) as OpenAPI responses: ``binary: true``
    content is ``{type: string, format: binary}``, an inline ``schema`` is copied; {} when none."""
    if spec is None:
        return {}
    declared = spec.responses
    if not declared and spec.responseBinary is not None:
        shorthand = spec.responseBinary
        content = m.RestResponseContent.model_validate({"binary": True})
        response = m.RestResponse.model_validate({"description": shorthand.description})
        response.content = {shorthand.mediaType: content}
        declared = {str(shorthand.status): response}
    out: JSONObject = {}
    for code, response in (declared or {}).items():
        entry: JSONObject = {"description": response.description or "Successful response"}
        if response.content:
            entry["content"] = {
                media: {"schema": {"type": "string", "format": "binary"} if c.binary else dict(c.schema_ or {})}
                for media, c in response.content.items()
            }
        out[code] = entry
    return out


def _result_schema(spec: m.ExposedOperation | None, unit: object) -> JSONObject | None:
    """The 200 body schema from declared outputs (mapped, orchestrated or mock); for steps
    without outputs, an object keyed by the mappings' targets; None when the upstream answer
    passes through as it came."""
    outputs = list(spec.outputParameters) if spec is not None else []
    if outputs:
        if len(outputs) == 1 and not outputs[0].name:
            schema = _output_schema(outputs[0])
            if isinstance(unit, CallUnit) and unit.passthrough and not schema.get("properties"):
                schema["description"] = "The upstream response body, passed through."
            return schema
        return {
            "type": "object",
            "properties": {p.name or f"output{i}": _output_schema(p) for i, p in enumerate(outputs)},
        }
    if isinstance(unit, StepsUnit) and unit.mappings:
        return {"type": "object", "properties": {target.split(".", 1)[0]: {} for target, _ in unit.mappings}}
    return None


_PROBLEM_SCHEMA = {
    "type": "object",
    "description": "An RFC 9457 problem document made by the engine itself.",
    "properties": {
        "type": {"type": "string", "description": "Always about:blank."},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "field": {"type": "string", "description": "The offending input, when there is one."},
    },
    "required": ["type", "title", "status", "detail"],
}


def _problem_responses(secured: bool) -> JSONObject:
    ref = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    out = {name: {"description": text, "content": ref} for name, text in _PROBLEMS.values()}
    if secured:
        out["Unauthorized"] = {
            "description": "Missing or wrong credentials; see the WWW-Authenticate header.",
            "content": ref,
        }
    return out


class _PlainDumper(yaml.SafeDumper):
    """No ``&id001`` anchors: shared sub-documents are written out each time."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def dump_yaml(data: JSONObject) -> str:
    return yaml.dump(data, Dumper=_PlainDumper, sort_keys=False, allow_unicode=True, width=110)


def render(document: JSONObject, output: str | None) -> str:
    """JSON when ``output`` ends in ``.json``, YAML otherwise (and on stdout)."""
    if output and output.lower().endswith(".json"):
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    return dump_yaml(document)
