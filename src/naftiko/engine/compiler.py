"""Compiling a loaded capability into a ready-to-run plan (:mod:`naftiko.engine.plan`), once, at start-up.

The steps, in order: aggregates and imports, binds and secrets, the observability settings
(the control adapter, compiled first) and with them the capability's telemetry, consumes
entries (one transport each, observed when the telemetry is active), then every ``exposes``
entry through its kind in :mod:`naftiko.exposes.registry`. Every reference (``call``,
``forward``) is checked here so a broken file fails at load with ``file:line:col``, not at
request time (reference §1, FIX). The :class:`_Compiler` is the
:class:`~naftiko.exposes.registry.CompileContext` the kinds compile through.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import CodeType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urljoin, urlsplit

from naftiko.binds.resolve import Binds, read_env_file, resolve_binds, resolve_location
from naftiko.binds.secrets import Secrets
from naftiko.consumes.auth import BodyFieldTransport, compile_auth
from naftiko.consumes.formats import check_format, check_media_type, parse_binary_size
from naftiko.consumes.oauth2 import (
    BEARER,
    TOKEN_RESPONSE_CAP,
    CustomTokenSource,
    DryRunTokenTransport,
    OAuth2TokenSource,
    Placement,
    TokenAuthTransport,
    TokenSource,
)
from naftiko.consumes.request import (
    BodyPlan,
    ParamSpec,
    RequestPlan,
    compile_value,
    split_path,
)
from naftiko.consumes.transport import AiohttpTransport, DryRunTransport, Limits, OutboundRequest, Transport
from naftiko.document import model as m
from naftiko.document.loader import Loaded
from naftiko.engine.mock import compile_mock, is_mock
from naftiko.engine.orchestrated import CallStep, LookupStep, ScriptStep, Step, StepsUnit
from naftiko.engine.pagination import Caps, PagedCallUnit, Paging, simple_path
from naftiko.engine.plan import AdapterPlan, Consumers, Options, PathPart, Plan, SpecPath
from naftiko.engine.script import PythonScript
from naftiko.engine.shaping import (
    compile_consumed,
    compile_orchestrated,
    compile_outputs,
    is_passthrough,
)
from naftiko.engine.simple import Call, CallUnit, ConsumedOperation, compile_with_value
from naftiko.engine.unit import Unit
from naftiko.errors import Diagnostic, LoadError
from naftiko.exposes.registry import BY_TYPE, ExposeKind, Upstream, known_types
from naftiko.expressions.jsonpath import JsonPath, JsonPathError
from naftiko.expressions.template import MISSING, Scope, Template, TemplateError
from naftiko.observability.settings import OFF, ObservabilitySettings
from naftiko.observability.telemetry import Telemetry, inactive_telemetry, start_telemetry

if TYPE_CHECKING:
    from naftiko.consumes.auth import OutboundAuth

__all__ = ["compile_plan", "unknown_overrides"]

_I = TypeVar("_I", bound=m.Invocable)
_DEFAULT_CAPS = m.ExposedPagination(maxPages=10, maxItems=1000, timeout=30.0)
_FRAGMENT = re.compile(r"(?<!\{)#")  # a URL fragment, not a {{#section}}


def _valid_authority(url: str) -> bool:
    """A host and, if any, a numeric port: checked here so a bad one is a load error, not a failure per call."""
    parts = urlsplit(url)
    try:
        _ = parts.port  # parsed lazily: raises on a non-numeric or out-of-range port
    except ValueError:
        return False
    return bool(parts.hostname)


class _Compiler:
    """The compile steps, and the :class:`~naftiko.exposes.registry.CompileContext` every expose
    kind compiles its adapter through (``binds``, ``consumers`` and ``telemetry`` are set by
    :meth:`compile` before the first kind runs)."""

    def __init__(
        self,
        loaded: Loaded,
        options: Options,
        *,
        observe: bool = True,
        kinds: Mapping[str, ExposeKind[Any, Any]] = BY_TYPE,
    ) -> None:
        self.loaded = loaded
        self.source = loaded.source
        self.doc = loaded.document
        self.options = options
        self.observe = observe
        self.kinds = kinds
        self.errors: list[Diagnostic] = []
        self.warnings: list[Diagnostic] = list(loaded.warnings)
        self.upstreams: dict[str, Upstream] = {}  # consumes namespace → its entry as forward reaches it
        # custom-token sources waiting for their call target: (namespace, source, call, path)
        self.token_calls: list[tuple[str, CustomTokenSource, str, SpecPath]] = []
        # each consumed operation's transport before observation: token calls are not observed
        self.unobserved: dict[tuple[str, str], Transport] = {}
        # consumed operations left out for their own errors: a call to one names where that error is
        self.broken_ops: dict[tuple[str, str], Diagnostic] = {}
        self.left_out: list[Diagnostic] = []  # errors of units left out (docs/reference.md, "Loading")
        self.adapter_binary: tuple[int | None, str] = (None, "")  # the adapter being compiled: maxBinarySize
        self.binds: Binds = {}
        self.consumers: Consumers = {}
        self.telemetry: Telemetry = inactive_telemetry()
        # exposes entries compiled before the consumes entries (kinds with compiled_first), by index
        self.early: dict[int, AdapterPlan | None] = {}

    @contextmanager
    def unit_scope(self) -> Iterator[int]:
        """One unit (consumed operation, REST operation, MCP tool, skill): the errors found while
        compiling it leave it out instead of refusing the file, unless ``--strict``. Yields the
        error count at the start, so the caller adds the unit only when it stayed the same."""
        start = len(self.errors)
        try:
            yield start
        finally:
            if len(self.errors) > start:
                self.left_out.extend(self.errors[start:])
                del self.errors[start:]

    def error(self, path: SpecPath, message: str) -> None:
        self.errors.append(self.source.diagnostic(path, message))

    def warn(self, path: SpecPath, message: str) -> None:
        self.warnings.append(self.source.diagnostic(path, message, "warning"))

    def warner(self, path: SpecPath) -> Callable[[int, str], None]:
        """``warn(index, message)`` for the items of the list at ``path``."""
        return lambda index, message: self.warn((*path, index), message)

    # -------------------------------------------------------------- binds

    def read_binds(self) -> Binds:
        """The file's binds, plus those of imported consumes files (the importing file wins)."""
        env_file = read_env_file(self.options.env_file) if self.options.env_file else None
        merged: Binds = {}
        for loaded in [*self.imports.values(), self.loaded]:
            doc = loaded.document
            pairs: list[tuple[m.Binding, SpecPath]] = [(b, ("binds", i)) for i, b in enumerate(doc.binds)]
            if doc.capability is not None:
                pairs += [(b, ("capability", "binds", i)) for i, b in enumerate(doc.capability.binds)]
            resolved = resolve_binds(
                pairs, loaded.source, environ=self.options.environ, env_file=env_file, dry_run=self.options.dry_run
            )
            for ns, values in resolved.items():
                merged.setdefault(ns, {}).update(values)
        return merged

    def load_imports(self) -> dict[str, Loaded]:
        """Read every consumes file named by an ``import`` entry, relative to this file."""
        from naftiko.document.loader import load

        cap = self.doc.capability
        entries: list[tuple[m.ConsumesHttp | m.ImportedConsumesHttp, SpecPath]]
        entries = [(c, ("consumes", i)) for i, c in enumerate(self.doc.consumes)]
        if cap is not None:
            entries += [(c, ("capability", "consumes", i)) for i, c in enumerate(cap.consumes)]
        base = Path(self.source.file).resolve().parent
        imports: dict[str, Loaded] = {}
        for entry, path in entries:
            if not isinstance(entry, m.ImportedConsumesHttp) or entry.location in imports:
                continue
            loc = entry.location
            file = resolve_location(loc, base) if "://" in loc else (base / loc).resolve()
            if not file.is_file():
                self.error((*path, "location"), f"imported consumes file not found: {file}")
                continue
            try:
                imports[loc] = load(str(file), strict=self.options.strict)
            except LoadError as exc:
                self.errors.extend(exc.diagnostics)
                continue
            self.warnings.extend(imports[loc].warnings)
        return imports

    # -------------------------------------------------------------- consumes

    def consumes(self, binds: Binds, secrets: Secrets) -> tuple[Consumers, list[Transport]]:
        cap = self.doc.capability
        entries: list[tuple[m.ConsumesHttp | m.ImportedConsumesHttp, SpecPath]]
        entries = [(c, ("consumes", i)) for i, c in enumerate(self.doc.consumes)]
        if cap is not None:
            entries += [(c, ("capability", "consumes", i)) for i, c in enumerate(cap.consumes)]
        consumers: Consumers = {}
        transports: list[Transport] = []
        dry = DryRunTransport(secrets.mask) if self.options.dry_run else None
        if dry is not None:
            transports.append(dry)
        for original, path in entries:
            if isinstance(original, m.ImportedConsumesHttp):
                imported = self.imported(original, path)
                if imported is None:
                    continue
                entry = imported
            else:
                entry = original
            if entry.namespace in consumers:
                self.error((*path, "namespace"), f"duplicate consumes namespace '{entry.namespace}'")
                continue
            base = self.options.base_uris.get(entry.namespace) or Template(entry.baseUri).bind(binds).render_constant()
            base = base.rstrip("/")  # normalised, not rejected (FIX)
            if not base.startswith(("http://", "https://")) or not _valid_authority(base):
                self.error(
                    (*path, "baseUri"),
                    f"baseUri must be an http(s) URL with a host and a valid port, got {entry.baseUri!r}",
                )
                continue
            # positions are this file's; a shared consumes file gets binds from its importers
            if not isinstance(original, m.ImportedConsumesHttp) and self.doc.capability is not None:
                self.check_outbound_variables(entry, path, binds)
            auth = compile_auth(entry.authentication, binds)
            if auth is not None and auth.kind in ("bearer", "basic") and auth.header is not None:
                # the token as sent (basic: base64 of user:pass)
                secrets.add(auth.header[1].partition(" ")[2])
            transport: Transport
            if dry is not None:
                transport = dry
            else:
                digest = auth.digest if auth and auth.kind == "digest" else None
                transport = AiohttpTransport(digest=digest, limits=Limits.from_model(entry.resilience))
                transports.append(transport)
            if auth is not None and auth.body is not None:
                self.warn(
                    (*path, "authentication", "placement"),
                    "apikey placement 'body' (EXT): the key is sent as a field of the JSON or form body",
                )
                secrets.add(auth.body[1])
                transport = BodyFieldTransport(transport, *auth.body)
            if isinstance(entry.authentication, (m.AuthOAuth2Client, m.AuthCustomToken)):
                wrapped = self.token_transport(entry, (*path, "authentication"), transport, binds, secrets, base)
                if wrapped is None:
                    continue
                transport = wrapped
                transports.append(transport)
            ops: dict[str, ConsumedOperation] = {}
            for ri, res in enumerate(entry.resources):
                rpath = (*path, "resources", ri)
                for oi, op in enumerate(res.operations):
                    opath = (*rpath, "operations", oi)
                    with self.unit_scope() as start:
                        if op.name in ops:
                            self.error(
                                (*opath, "name"), f"duplicate operation '{op.name}' in consumes '{entry.namespace}'"
                            )
                            continue
                        observed = self.telemetry.observe_transport(transport, entry.namespace, op.name, base)
                        compiled = self.consumed_operation(entry, res, op, opath, base, auth, observed, binds)
                        if compiled is not None and len(self.errors) == start:
                            ops[op.name] = compiled
                            self.unobserved[(entry.namespace, op.name)] = transport
                        elif len(self.errors) > start:
                            self.broken_ops.setdefault((entry.namespace, op.name), self.errors[start])
            consumers[entry.namespace] = ops
            self.upstreams[entry.namespace] = (entry, base, transport, auth)
        self.attach_token_calls(consumers, binds)
        return consumers, transports

    def check_outbound_variables(self, entry: m.ConsumesHttp, path: SpecPath, binds: Binds) -> None:
        """A variable that nothing can ever provide would be sent empty (``Authorization: Bearer ``
        for a typo in a token's bind name): an error naming it where it is used, under --dry-run
        and ``validate`` too (there an unset but declared bind variable is a placeholder; a name no
        bind declares is a mistake). Auth templates can read only binds; elsewhere, ``ns.VAR``
        with ``ns`` a bind namespace can read only that namespace (binds resolve before inputs)."""
        report = self.error
        known = ", ".join(sorted(f"{ns}.{k}" for ns, values in binds.items() for k in values)) or "none"
        auth = entry.authentication
        for name in (
            "token",
            "key",
            "value",
            "username",
            "password",
            "tokenEndpoint",
            "clientId",
            "clientSecret",
            "refreshToken",
        ):
            text = getattr(auth, name, None) if auth is not None else None
            if isinstance(text, str) and "{{" in text:
                for var in Template(text).bind(binds).variables():
                    report(
                        (*path, "authentication", name),
                        f"authentication {name}: '{{{{{var.name}}}}}' names no bind variable (known: {known})",
                    )
        for ri, res in enumerate(entry.resources):
            levels: list[tuple[list[m.InputParameter], SpecPath]] = [(res.inputParameters, (*path, "resources", ri))]
            levels += [
                (op.inputParameters, (*path, "resources", ri, "operations", oi)) for oi, op in enumerate(res.operations)
            ]
            for params, where in [(entry.inputParameters, path), *levels]:
                for pi, p in enumerate(params):
                    if isinstance(p.value, str) and "{{" in p.value:
                        try:
                            variables = list(Template(p.value).variables())
                        except TemplateError:
                            continue  # reported where the value is compiled
                        for var in variables:
                            if len(var.path) > 1 and var.path[0] in binds and var.path[1] not in binds[var.path[0]]:
                                report(
                                    (*where, "inputParameters", pi, "value"),
                                    f"'{{{{{var.name}}}}}': bind '{var.path[0]}' has no variable '{var.path[1]}' "
                                    f"(known: {known})",
                                )

    # -------------------------------------------------------------- outbound tokens

    def token_transport(
        self, entry: m.ConsumesHttp, path: SpecPath, inner: Transport, binds: Binds, secrets: Secrets, base: str
    ) -> Transport | None:
        """Wrap the entry's transport so each request carries a token naftiko obtains itself
        (docs/reference.md, "Outbound OAuth2"); None after reporting an error."""
        model = entry.authentication
        if not isinstance(model, (m.AuthOAuth2Client, m.AuthCustomToken)):
            return inner  # no token to obtain (the caller checks this already)

        def render(value: str | None) -> str:
            return Template(value).bind(binds).render_constant() if value else ""

        placement = BEARER
        if isinstance(model, m.AuthOAuth2Client):
            endpoint = render(model.tokenEndpoint)
            if endpoint.startswith("/"):  # a path on the API's own host (m3ter): follows --base-uri
                endpoint = urljoin(base + "/", endpoint)
            if not endpoint.startswith(("http://", "https://")) or not _valid_authority(endpoint):
                self.error(
                    (*path, "tokenEndpoint"),
                    f"tokenEndpoint must be an http(s) URL with a host, got {model.tokenEndpoint!r}",
                )
                return None
            if endpoint.startswith("http://") and urlsplit(endpoint).hostname not in ("127.0.0.1", "localhost", "::1"):
                self.warn(
                    (*path, "tokenEndpoint"),
                    "tokenEndpoint is plain http: client credentials would cross the network unencrypted",
                )
            secret, refresh = render(model.clientSecret), render(model.refreshToken)
            if model.grantType == "refresh-token" and not model.refreshToken:
                self.error((*path, "grantType"), "grantType refresh-token needs a refreshToken")
                return None
            if model.grantType == "client-credentials" and not model.clientSecret:
                self.error((*path, "grantType"), "grantType client-credentials needs a clientSecret")
                return None
            for value in (secret, refresh):
                secrets.add(value)  # also when written literally in the file
            source: TokenSource = OAuth2TokenSource(
                endpoint=endpoint,
                grant=model.grantType,
                client_id=render(model.clientId),
                client_secret=secret or None,
                refresh_token=refresh or None,
                scope=render(model.scope) or None,
                audience=render(model.audience) or None,
                client_auth=model.clientAuthentication,
                transport=inner
                if self.options.dry_run
                else AiohttpTransport(limits=Limits(max_response_bytes=TOKEN_RESPONSE_CAP)),
                timeout=self.options.timeout,
                safety_margin=model.safetyMargin,
                secrets=secrets,
            )
        else:
            acquire = model.acquire
            try:
                token_field = JsonPath(acquire.tokenField)
                expires_field = JsonPath(acquire.expiresInField) if acquire.expiresInField else None
            except JsonPathError as exc:
                self.error((*path, "acquire"), str(exc))
                return None
            if model.placement == "header":
                if not model.headerName:
                    self.error((*path, "placement"), "placement header needs a headerName")
                    return None
                placement = Placement("header", model.headerName)
                secrets.add_credential_header(model.headerName)
            elif model.placement == "query":
                if not model.paramName:
                    self.error((*path, "placement"), "placement query needs a paramName")
                    return None
                placement = Placement("query", model.paramName)
            arguments = {k: render(v) if isinstance(v, str) else v for k, v in (acquire.with_ or {}).items()}
            source = CustomTokenSource(
                call=acquire.call,
                arguments=arguments,
                token_field=token_field,
                expires_field=expires_field,
                safety_margin=model.safetyMargin,
                secrets=secrets,
            )
            self.token_calls.append((entry.namespace, source, acquire.call, (*path, "acquire", "call")))
        wrapper = DryRunTokenTransport if self.options.dry_run else TokenAuthTransport
        return wrapper(inner, source, placement)

    def attach_token_calls(self, consumers: Consumers, binds: Binds) -> None:
        """``custom-token`` calls resolve once every consumes entry is compiled; the called entry
        must not itself need a token naftiko obtains (that would be circular)."""
        for namespace, source, call, path in self.token_calls:
            ns = call.partition(".")[0]
            if ns == namespace or ns in self.token_namespaces():
                self.error(
                    path,
                    f"acquire.call '{call}': the token call must go to a consumes entry "
                    "without oauth2 or custom-token authentication",
                )
                continue
            target = self.target(consumers, call, path[:-1])
            if target is None:
                continue
            # the token call's own transport, unobserved (a token fetch is not a call of the request)
            transport = self.unobserved[(ns, call.partition(".")[2])]
            source.attach(_builder(target.request, Scope(binds=binds)), transport)

    def token_namespaces(self) -> set[str]:
        return {
            ns
            for ns, (entry, *_rest) in self.upstreams.items()
            if isinstance(entry.authentication, (m.AuthOAuth2Client, m.AuthCustomToken))
        }

    def imported(self, entry: m.ImportedConsumesHttp, path: SpecPath) -> m.ConsumesHttp | None:
        """The entry named ``import`` in the imported file, renamed to ``as`` when given."""
        loaded = self.imports.get(entry.location)
        if loaded is None:
            return None  # already reported
        doc = loaded.document
        candidates = [*doc.consumes, *(doc.capability.consumes if doc.capability else [])]
        for candidate in candidates:
            if isinstance(candidate, m.ConsumesHttp) and candidate.namespace == entry.import_:
                return candidate.model_copy(update={"namespace": entry.as_ or entry.import_})
        names = ", ".join(c.namespace for c in candidates if isinstance(c, m.ConsumesHttp)) or "none"
        self.error((*path, "import"), f"{entry.location} has no consumes namespace '{entry.import_}' (found: {names})")
        return None

    def params(self, levels: list[tuple[list[m.InputParameter], SpecPath]]) -> dict[str, ParamSpec]:
        out: dict[str, ParamSpec] = {}
        for params, _where in levels:  # later levels override earlier ones
            for p in params:
                location = p.in_ or "query"
                if location == "environment":
                    continue
                value = MISSING if p.value is None else compile_value(p.value)
                out[p.name] = ParamSpec(
                    p.name, location, p.type, bool(p.required), p.description, value, p.style, p.explode
                )
        return out

    def bind_path(
        self, parts: list[PathPart], names: list[str], binds: Binds, path: SpecPath
    ) -> tuple[list[PathPart], list[str]]:
        """Placeholders that name a bind (``{{env.TENANT}}``) become literal, encoded segments."""
        scope = Scope(binds=binds)
        out: list[PathPart] = []
        for part in parts:
            ref = tuple(part[0].split(".")) if isinstance(part, tuple) else ()
            if (len(ref) == 2 and ref[0] in binds) or (len(ref) == 1 and ref[0] in scope.flat_binds):
                value = scope.lookup(ref)
                if value is MISSING:
                    self.error(path, f"path placeholder '{part[0]}': bind '{ref[0]}' has no variable '{ref[-1]}'")
                    continue
                out.append(quote(str(value), safe=""))
            else:
                out.append(part)
        return out, [p[0] for p in out if isinstance(p, tuple)]

    def consumed_operation(
        self,
        entry: m.ConsumesHttp,
        res: m.ConsumedHttpResource,
        op: m.ConsumedHttpOperation,
        opath: SpecPath,
        base: str,
        auth: OutboundAuth | None,
        transport: Transport,
        binds: Binds,
    ) -> ConsumedOperation | None:
        full_path = res.path
        if full_path and not full_path.startswith("/"):
            full_path = "/" + full_path
        hash_at = _FRAGMENT.search(full_path)
        if hash_at is not None:  # generated AWS-style paths: /#X-Amz-Target=…; a fragment never reaches a server
            full_path, fragment = full_path[: hash_at.start()], full_path[hash_at.start() :]
            self.warn(
                opath,
                f"consumed path {res.path!r}: the fragment '{fragment}' is not sent (URL fragments never "
                "reach the server); declare it as a header or query parameter if the upstream needs it",
            )
        parts, names = split_path(full_path)
        parts, names = self.bind_path(parts, names, binds, opath)
        params = self.params(
            [
                (entry.inputParameters, ()),
                (res.inputParameters, ()),
                (op.inputParameters, ()),
            ]
        )
        for name in names:
            spec = params.get(name)
            if spec is None or spec.location != "path":
                params[name] = ParamSpec(name, "path", "string", True, spec.description if spec else None)
        body: BodyPlan | None = None
        if op.body is not None:
            if isinstance(op.body, str):
                body = BodyPlan("template", Template(op.body))
            else:
                kind = op.body.type
                if kind == "form":
                    self.warn((*opath, "body", "type"), "body type 'form' (EXT) is read as formUrlEncoded")
                    kind = "formUrlEncoded"
                encoding: dict[str, tuple[str, bool | None]] = {
                    k: (e.style, e.explode) for k, e in (op.body.encoding or {}).items()
                }
                body = BodyPlan(kind, compile_value(op.body.data), encoding=encoding, content_type=op.body.contentType)
        output_schema = op.outputSchema
        if (op.outputRawFormat or "").lower() in ("avro", "protobuf") and output_schema:
            # a schema file (protobuf: optionally #Message): relative to this file, then the cwd
            file, hash_, message = output_schema.partition("#")
            if not Path(file).is_absolute():
                location = file if "://" in file else "file:///./" + file
                file = str(resolve_location(location, Path(self.source.file).resolve().parent))
            output_schema = file + hash_ + message
        problem = check_format(op.outputRawFormat, output_schema)
        if problem:
            self.error((*opath, "outputSchema" if problem.startswith("outputSchema") else "outputRawFormat"), problem)
        max_binary = self.binary_size(op.maxBinarySize, (*opath, "maxBinarySize"))
        if max_binary is not None and (op.outputRawFormat or "").lower() != "binary":
            self.warn((*opath, "maxBinarySize"), "maxBinarySize applies to outputRawFormat: binary only; ignored")
        self.media_type(op.outputMediaType, (*opath, "outputMediaType"))
        try:
            shape = compile_consumed(op.outputParameters)
        except (JsonPathError, TemplateError) as exc:
            self.error((*opath, "outputParameters"), str(exc))
            return None
        request = RequestPlan(
            namespace=entry.namespace,
            operation=op.name,
            method=op.method,
            base_url=base,
            path_parts=parts,
            params=params,
            auth=auth,
            body=body,
            timeout=self.options.timeout,
            body_object=sum(1 for p in params.values() if p.location == "body") > 1,
        )
        paging = self.paging(op.pagination, params, (*opath, "pagination")) if op.pagination is not None else None
        return ConsumedOperation(
            request,
            transport,
            shape,
            op.outputRawFormat,
            output_schema,
            paging,
            op.outputMediaType,
            max_binary,
            self.options.dry_run,
        )

    def media_type(self, value: str | None, path: SpecPath) -> None:
        """A declared media type (beta5 ``outputMediaType`` and response contracts) that a
        ``Content-Type`` header can carry, or a positioned error."""
        problem = check_media_type(value, str(path[-1])) if value is not None else None
        if problem:
            self.error(path, problem)

    def binary_size(self, value: str | int | None, path: SpecPath) -> int | None:
        """A ``maxBinarySize`` in bytes (beta5), or a positioned error."""
        if value is None:
            return None
        try:
            return parse_binary_size(value)
        except ValueError as exc:
            self.error(path, str(exc))
            return None

    def paging(self, spec: m.ConsumedPagination, params: dict[str, ParamSpec], path: SpecPath) -> Paging | None:
        """A consumed operation's ``pagination`` (docs/reference.md, "Pagination"), checked at load."""
        items = simple_path(spec.items)
        if items is None:
            self.error((*path, "items"), f"pagination items must be a plain path like $.data, got {spec.items!r}")
            return None
        nxt: tuple[str, ...] = ()
        if spec.style == "cursor":
            found = simple_path(spec.next) if spec.next else None
            if not found:
                self.error(
                    path, "pagination style cursor needs 'next', a plain path like $.next_page to the next cursor"
                )
                return None
            nxt = found
        if spec.style in ("cursor", "page") and not spec.param:
            self.error(path, f"pagination style {spec.style} needs 'param', the request parameter that carries it")
            return None
        body_param = ""
        if spec.in_ == "body":
            bodies = [name for name, p in params.items() if p.location == "body"]
            if len(bodies) != 1:
                self.error(
                    (*path, "in"),
                    "pagination in: body needs the operation to have exactly one 'in: body' parameter "
                    "(the JSON object the field goes in)",
                )
                return None
            body_param = bodies[0]
        return Paging(spec.style, items, nxt, spec.param or "", spec.in_ == "body", body_param, spec.start)

    # -------------------------------------------------------------- exposes

    def target(self, consumers: Consumers, call: str | None, path: SpecPath) -> ConsumedOperation | None:
        if not call:
            self.error(path, "missing 'call' (mock mode, steps and ref are not supported yet)")
            return None
        ns, _, op = call.partition(".")
        if ns not in consumers:
            known = ", ".join(sorted(consumers)) or "none"
            self.error((*path, "call"), f"call '{call}': no consumes namespace '{ns}' (known: {known})")
            return None
        if op not in consumers[ns]:
            broken = self.broken_ops.get((ns, op))
            if broken is not None:
                why = f"operation '{op}' of consumes '{ns}' has an error ({broken.line}:{broken.col})"
                self.error((*path, "call"), f"call '{call}': {why}")
            else:
                self.error((*path, "call"), f"call '{call}': consumes '{ns}' has no operation '{op}'")
            return None
        return consumers[ns][op]

    def resolve_ref(
        self, spec: _I, path: SpecPath
    ) -> tuple[_I, m.Semantics | None, frozenset[str] | None] | tuple[None, None, None]:
        """``ref: ns.function`` → the spec with the function's fields merged under the adapter's
        own (field-level, adapter wins), the function's semantics, and the aggregate namespace."""
        if not spec.ref:
            return spec, None, None
        found = self.aggregates.get(spec.ref)
        if found is None:
            known = ", ".join(sorted(self.aggregates)) or "none"
            self.error((*path, "ref"), f"ref '{spec.ref}': no aggregate function of that name (known: {known})")
            return None, None, None
        function = found
        data = function.model_dump(by_alias=True, exclude_unset=True, exclude={"semantics"})
        data.update(spec.model_dump(by_alias=True, exclude_unset=True, exclude={"ref"}))
        merged = type(spec).model_validate(data)
        return merged, function.semantics, frozenset({spec.ref.partition(".")[0]})

    def unit(
        self, name: str, spec: m.Invocable, path: SpecPath, consumers: Consumers, aliases: frozenset[str], binds: Binds
    ) -> Unit | None:
        """Compile how a REST operation, MCP tool/resource/prompt or function runs: ``ref``,
        then ``steps`` (orchestrated), ``call`` (simple) or output values (mock)."""
        if spec.ref:
            resolved, _, namespace = self.resolve_ref(spec, path)
            if resolved is None:
                return None
            spec, aliases = resolved, aliases | (namespace or frozenset())
        try:
            if spec.steps:
                return self.steps_unit(name, spec, path, consumers, aliases, binds)
            if spec.call:
                target = self.target(consumers, spec.call, path)
                if target is None:
                    return None
                call = Call(target, self.with_entries(spec.with_, aliases))
                call.set_adapter_binary_cap(*self.adapter_binary)
                if target.binary and spec.outputParameters:
                    self.warn(
                        (*path, "outputParameters"),
                        f"call '{spec.call}' answers binary content (outputRawFormat: binary): "
                        "outputParameters are not applied, the bytes are relayed as they come",
                    )
                shape = compile_outputs(spec.outputParameters)
                unit: CallUnit = CallUnit(
                    name,
                    call,
                    shape,
                    is_passthrough(spec.outputParameters),
                    aliases,
                    binds,
                    mapped=bool(spec.outputParameters),
                    media_type=spec.outputMediaType,
                )
                if spec.pagination:
                    if target.binary:
                        self.error((*path, "pagination"), f"call '{spec.call}' answers binary content: no pages")
                        return None
                    if target.paging is None:
                        self.error(
                            (*path, "pagination"), f"call '{spec.call}': the consumed operation declares no pagination"
                        )
                        return None
                    caps = spec.pagination if isinstance(spec.pagination, m.ExposedPagination) else _DEFAULT_CAPS
                    return PagedCallUnit(unit, target.paging, Caps(caps.maxPages, caps.maxItems, caps.timeout))
                return unit
            if spec.pagination:
                self.error((*path, "pagination"), "pagination applies to a unit with a 'call' (simple mode)")
                return None
            if is_mock(spec.outputParameters):
                return compile_mock(name, spec.outputParameters, aliases, binds)
        except (JsonPathError, TemplateError) as exc:
            self.error(path, str(exc))
            return None
        self.error(path, f"'{name}' has no 'call', 'steps', 'ref' or output values to answer with")
        return None

    def with_entries(self, with_: dict[str, object] | None, aliases: frozenset[str]) -> list[tuple[str, object]]:
        return [(k, compile_with_value(v, aliases)) for k, v in (with_ or {}).items()]

    def steps_unit(
        self, name: str, spec: m.Invocable, path: SpecPath, consumers: Consumers, aliases: frozenset[str], binds: Binds
    ) -> StepsUnit | None:
        steps: list[Step] = []
        seen: set[str] = set()
        for i, step in enumerate(spec.steps):
            spath = (*path, "steps", i)
            if step.name in seen:
                self.error((*spath, "name"), f"duplicate step name '{step.name}'")
                continue
            if isinstance(step, m.StepCall):
                target = self.target(consumers, step.call, spath)
                if target is not None and target.binary:
                    self.error(
                        (*spath, "call"),
                        f"step '{step.name}': call '{step.call}' answers binary content (outputRawFormat: binary), "
                        "which steps cannot map; expose it with a simple 'call'",
                    )
                elif target is not None:
                    steps.append(CallStep(step.name, Call(target, self.with_entries(step.with_, aliases))))
            elif isinstance(step, m.StepLookup):
                if step.index not in seen:
                    self.error((*spath, "index"), f"lookup index '{step.index}' is not an earlier step of '{name}'")
                else:
                    steps.append(
                        LookupStep(step.name, step.index, step.match, JsonPath(step.lookupValue), step.outputParameters)
                    )
            else:
                script = self.script(step, spath)
                if script is not None:
                    steps.append(ScriptStep(step.name, script, self.with_entries(step.with_, aliases)))
            seen.add(step.name)
        mappings = [(mp.targetName, compile_with_value(mp.value, aliases)) for mp in spec.mappings]
        timed = self.telemetry.metrics is not None or self.telemetry.tracing is not None  # steps are timed, not logged
        return StepsUnit(
            name,
            steps,
            mappings,
            compile_orchestrated(spec.outputParameters),
            aliases,
            binds,
            telemetry=self.telemetry if timed else None,
        )

    def script(self, step: m.StepScript, path: SpecPath) -> PythonScript | None:
        settings = self.scripting
        if settings is not None and not settings.enabled:
            self.error(path, "script steps are disabled (management.scripting.enabled: false)")
            return None
        language = step.language or (settings.defaultLanguage if settings else None) or "python"
        if language != "python":
            self.error((*path, "language"), f"unsupported script language '{language}' (naftiko runs python scripts)")
            return None
        if settings is not None and settings.allowedLanguages and language not in settings.allowedLanguages:
            self.error(
                (*path, "language"), f"script language '{language}' is not in management.scripting.allowedLanguages"
            )
            return None
        location = step.location or (settings.defaultLocation if settings else None)
        if not location or not step.file:
            self.error(path, "a script step needs 'file' and a 'location' (or management.scripting.defaultLocation)")
            return None
        base = resolve_location(location, Path(self.source.file).resolve().parent)
        code: list[CodeType] = []
        for rel in [*step.dependencies, step.file]:
            file = (base / rel).resolve()
            if base.resolve() not in file.parents:
                self.error((*path, "file"), f"script '{rel}' is outside {location}")
                return None
            try:
                code.append(compile(file.read_text("utf-8"), str(file), "exec"))
            except OSError as exc:
                self.error((*path, "file"), f"cannot read script {file}: {exc.strerror}")
                return None
            except SyntaxError as exc:
                self.error((*path, "file"), f"script {file}:{exc.lineno}: {exc.msg}")
                return None
        timeout = (settings.timeout if settings else 60000) / 1000
        limit = settings.statementLimit if settings else 100000
        return PythonScript(step.name, code, timeout, limit)

    def address(self, adapter: m.Exposes) -> str:
        return self.options.address or adapter.address or "127.0.0.1"

    def port(self, adapter: m.Exposes) -> int | None:
        return self.options.ports.get(adapter.namespace, adapter.port)

    def upstream(self, namespace: str) -> Upstream | None:
        """The consumes entry ``forward`` reaches, its transport observed as ``forward``."""
        found = self.upstreams.get(namespace)
        if found is None:
            return None
        entry, base, transport, auth = found
        return entry, base, self.telemetry.observe_transport(transport, namespace, "forward", base), auth

    def upstream_names(self) -> list[str]:
        return list(self.upstreams)

    def check_inbound_secrets(self, adapter: m.Exposes, path: SpecPath) -> None:
        """An inbound secret that binds cannot resolve makes the adapter deny every request
        (FIX); say so at load, where the author can see the position."""
        auth = getattr(adapter, "authentication", None)
        if auth is None or auth.type == "oauth2":
            return
        for name in ("token", "value", "username", "password"):
            text = getattr(auth, name, None)
            if isinstance(text, str) and not Template(text).bind(self.binds).constant:
                self.warn(
                    (*path, "authentication", name),
                    f"authentication {name} {text!r} names no bind variable; "
                    f"adapter '{getattr(adapter, 'namespace', adapter.type)}' will deny every request",
                )

    def exposed(self) -> list[tuple[int, m.Exposes, SpecPath]]:
        cap = self.doc.capability
        entries = cap.exposes if cap is not None else []
        return [(i, adapter, ("capability", "exposes", i)) for i, adapter in enumerate(entries)]

    def kind(self, adapter: m.Exposes, path: SpecPath) -> ExposeKind[Any, Any] | None:
        """The registered kind of an ``exposes`` entry; an error at its ``type`` when none is."""
        kind = self.kinds.get(adapter.type)
        if kind is None:
            known = ", ".join(t for t in known_types() if t in self.kinds) or "none"
            self.error((*path, "type"), f"exposes type '{adapter.type}' is not served by naftiko (known: {known})")
        return kind

    def compile_first(self) -> ObservabilitySettings:
        """Compile the entries whose kind configures observability (control), before any transport
        exists; return the settings of the first such adapter (off without one)."""
        settings: ObservabilitySettings | None = None
        for i, adapter, path in self.exposed():
            kind = self.kinds.get(adapter.type)
            if kind is None or not kind.compiled_first:
                continue
            self.check_inbound_secrets(adapter, path)
            plan = self.early[i] = kind.compile(adapter, path, self)
            if plan is not None and settings is None:
                settings = kind.observability(plan)
        return settings or OFF

    def exposes(self) -> list[AdapterPlan]:
        cap = self.doc.capability
        if cap is None and self.doc.consumes:
            if not self.options.consumes_only_ok:
                self.error(
                    (),
                    "this is a shared consumes file with nothing to serve; "
                    "import it from a capability (consumes: - import: NS, location: FILE)",
                )
            return []
        if cap is None or not cap.exposes:
            where = ("capability",) if cap is not None else ()
            self.error(where, "nothing to serve: the capability has no 'exposes'")
            return []
        adapters: list[AdapterPlan] = []
        namespaces: dict[str, SpecPath] = {}
        ports: dict[int, str] = {}
        for i, adapter, path in self.exposed():
            ns = getattr(adapter, "namespace", None) or adapter.type
            if ns in namespaces:
                self.error((*path, "namespace"), f"duplicate exposes namespace '{ns}'")
                continue
            namespaces[ns] = path
            plan: AdapterPlan | None
            if i in self.early:
                plan = self.early[i]
            else:
                kind = self.kind(adapter, path)
                if kind is None:
                    continue
                self.check_inbound_secrets(adapter, path)
                plan = kind.compile(adapter, path, self)
            if plan is None:
                continue
            if plan.port:  # 0 = any free port, never a conflict
                other = ports.get(plan.port)
                if other is not None:
                    self.error((*path, "port"), f"port {plan.port} is already used by adapter '{other}'")
                    continue
                ports[plan.port] = ns
            adapters.append(plan)
        return adapters

    def serves(self, adapter: AdapterPlan) -> bool:
        """Whether an adapter has anything left to answer with (its kind says)."""
        return bool(self.kinds[adapter.kind].serves(adapter))

    def start_telemetry(self, settings: ObservabilitySettings, secrets: Secrets) -> Telemetry:
        """The telemetry the plan is built with: inactive when observing is not asked for
        (validate, export) or when metrics, traces and the request log are all off."""
        if not self.observe:
            return inactive_telemetry(secrets)
        label = self.doc.info.label if self.doc.info else None
        environ = os.environ if self.options.environ is None else self.options.environ
        return start_telemetry(settings, secrets, label or Path(self.source.file).stem, environ)

    def collect_aggregates(self) -> None:
        """``namespace.function`` → function, checked for duplicates; and the scripting settings."""
        self.aggregates: dict[str, m.AggregateFunction] = {}
        self.scripting = None
        cap = self.doc.capability
        if cap is None:
            return
        for ai, aggregate in enumerate(cap.aggregates):
            for fi, function in enumerate(aggregate.functions):
                key = f"{aggregate.namespace}.{function.name}"
                if key in self.aggregates:
                    self.error(
                        ("capability", "aggregates", ai, "functions", fi, "name"),
                        f"duplicate aggregate function '{key}'",
                    )
                self.aggregates[key] = function
                fpath = ("capability", "aggregates", ai, "functions", fi, "outputMediaType")
                self.media_type(function.outputMediaType, fpath)
        for adapter in cap.exposes:
            if (
                adapter.type == "control"
                and adapter.management is not None
                and adapter.management.scripting is not None
            ):
                self.scripting = adapter.management.scripting

    def warn_binary_parameters(self, node: object, path: SpecPath = ()) -> None:
        """EXT: ``type: binary`` on a parameter is read as a string (the model maps it); say so where it is."""
        if isinstance(node, dict):
            if node.get("type") == "binary" and len(path) >= 2 and path[-2] == "inputParameters":
                self.warn((*path, "type"), "parameter type 'binary' (EXT) is read as a string (base64 or raw text)")
            for key, value in node.items():
                self.warn_binary_parameters(value, (*path, key))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                self.warn_binary_parameters(value, (*path, i))

    def compile(self) -> Plan:
        self.collect_aggregates()
        self.warn_binary_parameters(self.source.data)
        self.imports = self.load_imports()
        self.binds = binds = self.read_binds()
        secrets = Secrets(v for ns in binds.values() for v in ns.values())
        self.telemetry = self.start_telemetry(self.compile_first(), secrets)
        try:
            plan = self.compile_rest_of_plan(binds, secrets)
        except BaseException:
            self.telemetry.shutdown()  # nothing will serve with it
            raise
        self.telemetry.attach(plan)
        return plan

    def compile_rest_of_plan(self, binds: Binds, secrets: Secrets) -> Plan:
        consumers, transports = self.consumes(binds, secrets)
        self.consumers = consumers
        adapters = self.exposes()
        if not self.options.several_files:  # with several files, the CLI checks them together
            for message in unknown_overrides(self.options, set(consumers), {a.namespace for a in adapters}):
                self.errors.append(Diagnostic(self.source.file, 1, 1, message))
        if self.errors or (self.left_out and (self.options.strict or not any(self.serves(a) for a in adapters))):
            # a file-level error, --strict, or nothing left to serve: refuse the whole file
            raise LoadError(sorted(self.errors + self.left_out, key=lambda d: (d.line, d.col)))
        label = self.doc.info.label if self.doc.info else None
        left_out = sorted(self.left_out, key=lambda d: (d.line, d.col))
        return Plan(
            self.source.file,
            label,
            binds,
            secrets,
            consumers,
            transports,
            adapters,
            self.warnings,
            self.options,
            telemetry=self.telemetry,
            left_out=left_out,
        )


def unknown_overrides(options: Options, consumes: set[str], exposes: set[str]) -> list[str]:
    """``--base-uri``/``--port`` entries that name no namespace: almost always a typo."""
    messages = [f"--base-uri {ns}=…: no consumes namespace '{ns}'" for ns in sorted(set(options.base_uris) - consumes)]
    messages += [f"--port {ns}=…: no exposes namespace '{ns}'" for ns in sorted(set(options.ports) - exposes)]
    return messages


def _builder(request: RequestPlan, scope: Scope) -> Callable[[dict[str, object]], OutboundRequest]:
    """A custom-token call's request, built from the token source's arguments with binds in scope."""
    return lambda args: request.build(args, scope)


def compile_plan(
    loaded: Loaded,
    options: Options | None = None,
    *,
    observe: bool = True,
    kinds: Mapping[str, ExposeKind[Any, Any]] = BY_TYPE,
) -> Plan:
    """The plan of a loaded capability (``LoadError`` listing every problem otherwise).

    ``observe``: build the plan with the capability's telemetry (its control adapter's
    observability settings and whether the ``naftiko.request`` log is on at INFO, read now);
    consumed operations' and forwards' transports are then observed ones and MCP tool calls and
    steps are wrapped as the plan is built. False (``validate``, ``export openapi``) or all parts
    off: an inactive telemetry, nothing wrapped. ``kinds``: the expose kinds by ``type``
    (:data:`naftiko.exposes.registry.BY_TYPE`)."""
    return _Compiler(loaded, options or Options(), observe=observe, kinds=kinds).compile()
