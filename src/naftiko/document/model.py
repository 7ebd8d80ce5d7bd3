"""The Naftiko 1.0.0-alpha2 document model.

Every construct of the specification has a model here, named as the spec's JSON Schema names
it. Models are tolerant: unknown fields are kept (``extra="allow"``) so the loader can warn
about them with a position instead of refusing the file (reference §1); wrong *types* and
unknown *kinds* (expose, auth or step ``type``) are errors. Strict conformance is checked
separately against the bundled JSON Schema (:mod:`naftiko.document.schema`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
MAX_TTL_MS = 2**53 - 1
ParamType = Literal["string", "number", "integer", "boolean", "array", "object"]


class Node(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, str_strip_whitespace=False)


def _upper_method(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


# ---------------------------------------------------------------- info & binds


class Person(Node):
    role: str | None = None
    fullName: str | None = None
    email: str | None = None


class Info(Node):
    label: str | None = None
    description: str | None = None
    tags: list[str] = []
    created: str | None = None
    modified: str | None = None
    version: str | None = None  # 1.0.0-beta4 on: the capability's version, sent as the MCP serverInfo.version
    stakeholders: list[Person] = []


class Binding(Node):
    namespace: str
    description: str | None = None
    location: str | None = None
    keys: dict[str, str] = {}


# ---------------------------------------------------------------- authentication


class AuthBasic(Node):
    type: Literal["basic"]
    username: str | None = None
    password: str | None = None


class AuthApiKey(Node):
    type: Literal["apikey"]
    key: str | None = None
    value: str | None = None
    placement: Literal["header", "query", "body"] = "header"  # body: EXT, a field of the JSON or form body


class AuthBearer(Node):
    type: Literal["bearer"]
    token: str | None = None


class AuthDigest(Node):
    type: Literal["digest"]
    username: str | None = None
    password: str | None = None


class AuthOAuth2(Node):
    type: Literal["oauth2"]
    authorizationServerUri: str | None = None
    resource: str | None = None
    scopes: list[str] = []
    audience: str | None = None
    tokenEndpoint: str | None = None
    tokenValidation: Literal["jwks", "introspection"] = "jwks"


Authentication = Annotated[
    AuthBasic | AuthApiKey | AuthBearer | AuthDigest | AuthOAuth2, Field(discriminator="type")
]


class _AuthExtension(BaseModel):
    """Outbound token schemes (naftiko extensions, docs/reference.md "Outbound OAuth2"): typos are errors."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class AuthOAuth2Client(_AuthExtension):
    """``type: oauth2`` on a consumes entry: naftiko obtains and refreshes the access token itself."""

    type: Literal["oauth2"]
    grantType: Literal["client-credentials", "refresh-token"]
    tokenEndpoint: str
    clientId: str
    clientSecret: str | None = None
    refreshToken: str | None = None
    scope: str | None = None
    audience: str | None = None
    clientAuthentication: Literal["basic", "body"] = "body"
    safetyMargin: float = Field(60, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _outbound_form(cls, data: object) -> object:
        if isinstance(data, dict) and "grantType" not in data:
            raise ValueError(
                "oauth2 on a consumes entry obtains tokens itself and needs grantType (client-credentials or "
                "refresh-token), tokenEndpoint and clientId; authorizationServerUri/resource describe an inbound "
                "resource server (docs/reference.md, \"Outbound OAuth2\")"
            )
        return data


class CustomTokenAcquire(_AuthExtension):
    call: str
    with_: dict[str, Any] | None = Field(None, alias="with")
    tokenField: str
    expiresInField: str | None = None


class AuthCustomToken(_AuthExtension):
    """``type: custom-token``: the token comes from calling another consumed operation."""

    type: Literal["custom-token"]
    acquire: CustomTokenAcquire
    placement: Literal["bearer", "header", "query"] = "bearer"
    headerName: str | None = None
    paramName: str | None = None
    safetyMargin: float = Field(60, ge=0)


ConsumesAuthentication = Annotated[
    AuthBasic | AuthApiKey | AuthBearer | AuthDigest | AuthOAuth2Client | AuthCustomToken,
    Field(discriminator="type"),
]


# ---------------------------------------------------------------- parameters


class InputParameter(Node):
    """Consumed, exposed and MCP tool input parameters share one shape; the schema differs
    only in which fields are required and allowed, which strict validation reports."""

    name: str
    in_: Literal["query", "header", "path", "cookie", "body", "environment"] | None = Field(None, alias="in")
    type: ParamType | None = None

    @field_validator("type", mode="before")
    @classmethod
    def _binary_is_a_string(cls, value: object) -> object:
        """EXT: generators write ``type: binary`` for file contents; here it is a (base64 or raw) string."""
        return "string" if value == "binary" else value
    description: str | None = None
    required: bool | None = None
    pattern: str | None = None
    value: Any = None
    # naftiko extensions (docs/reference.md): OpenAPI serialisation of a consumed parameter, and
    # the full JSON Schema of an exposed or tool input (enums, formats, bounds, items…)
    style: Literal["form", "spaceDelimited", "pipeDelimited", "deepObject", "simple", "label", "matrix"] | None = None
    explode: bool | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")


class OutputParameter(Node):
    """Consumed (``name``+``value`` JSONPath), mapped (``mapping``/``const``, nested
    ``properties``/``items``), orchestrated and mock output parameters."""

    name: str | None = None
    type: Literal["string", "number", "integer", "boolean", "object", "array"] | None = None
    value: Any = None
    mapping: str | None = None
    const: Any = None
    properties: dict[str, OutputParameter] | None = None
    items: OutputParameter | list[OutputParameter] | None = None
    maxLength: int | None = None
    description: str | None = None


# ---------------------------------------------------------------- request bodies


class MultipartPart(Node):
    name: str
    value: str
    filename: str | None = None
    contentType: str | None = None


class FieldEncoding(Node):
    style: Literal["form", "spaceDelimited", "pipeDelimited", "deepObject"] = "form"
    explode: bool | None = None


class RequestBodyTyped(Node):
    # form: EXT = formUrlEncoded
    type: Literal["json", "text", "xml", "sparql", "formUrlEncoded", "multipartForm", "form"]
    data: Any = None
    # naftiko extensions (docs/reference.md): OpenAPI styles of form fields, and the Content-Type sent
    encoding: dict[str, FieldEncoding] | None = None
    contentType: str | None = None


RequestBody = str | RequestBodyTyped


# ---------------------------------------------------------------- consumes


class ConsumedPagination(BaseModel):
    """naftiko extension on a consumed operation: how its upstream paginates (docs/reference.md, "Pagination")."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    style: Literal["cursor", "page", "link"]
    items: str = "$"
    next: str | None = None
    param: str | None = None
    in_: Literal["query", "body"] | None = Field(None, alias="in")
    start: int = Field(1, ge=0)


class ExposedPagination(BaseModel):
    """naftiko extension on an exposed unit: lets callers ask for several pages, within these caps."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    maxPages: int = Field(10, ge=1, le=1000)
    maxItems: int = Field(1000, ge=1, le=1_000_000)
    timeout: float = Field(30, gt=0, le=600)


class ConsumedHttpOperation(Node):
    name: str
    label: str | None = None
    description: str | None = None
    method: HttpMethod = "GET"
    inputParameters: list[InputParameter] = []
    outputRawFormat: str = "json"
    outputSchema: str | None = None
    outputMediaType: str | None = None  # beta5: the media type the answer is advertised with
    maxBinarySize: str | int | None = None  # beta5: cap on a binary body (e.g. 5MiB), see engine/simple.py
    outputParameters: list[OutputParameter] = []
    body: RequestBody | None = None
    pagination: ConsumedPagination | None = None  # naftiko extension

    _method = field_validator("method", mode="before")(_upper_method)


class ConsumedHttpResource(Node):
    name: str
    label: str | None = None
    description: str | None = None
    path: str = ""
    inputParameters: list[InputParameter] = []
    operations: list[ConsumedHttpOperation] = []


class _Extension(BaseModel):
    """A naftiko extension block: typos are errors, not silently ignored settings."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ResilienceTimeouts(_Extension):
    connect: float | None = Field(None, gt=0)
    read: float | None = Field(None, gt=0)
    total: float | None = Field(None, gt=0)


class ResilienceRetries(_Extension):
    max: int = Field(2, ge=0, le=10)
    backoff: float = Field(0.2, gt=0)
    maxDelay: float = Field(5.0, gt=0)
    when: list[Literal["connect", 429, 502, 503, 504]] = [
        "connect",
        429,
        502,
        503,
        504,
    ]  # not `on`: YAML 1.1 reads it as true


class Resilience(_Extension):
    """naftiko extension on a consumes entry (docs/resilience.md); not part of the spec."""

    timeouts: ResilienceTimeouts | None = None
    retries: ResilienceRetries | None = None
    maxConcurrency: int | None = Field(None, ge=1)
    queueTimeout: float | None = Field(None, gt=0)
    maxResponseBytes: int | None = Field(None, ge=1)  # default 16 MiB (consumer/transport.py)
    poolSize: int | None = Field(None, ge=1)  # pooled connections; default 100


class ConsumesHttp(Node):
    type: Literal["http"] = "http"
    namespace: str
    description: str | None = None
    baseUri: str
    inputParameters: list[InputParameter] = []
    authentication: ConsumesAuthentication | None = None
    resources: list[ConsumedHttpResource] = []
    resilience: Resilience | None = None  # naftiko extension


class ImportedConsumesHttp(Node):
    location: str
    import_: str = Field(alias="import")
    as_: str | None = Field(None, alias="as")


def _consumes_kind(value: object) -> str:
    if isinstance(value, dict) and "location" in value and "baseUri" not in value:
        return "imported"
    return "http"


ConsumesEntry = Annotated[
    Annotated[ConsumesHttp, Tag("http")] | Annotated[ImportedConsumesHttp, Tag("imported")],
    Discriminator(_consumes_kind),
]


# ---------------------------------------------------------------- orchestration


class StepCall(Node):
    type: Literal["call"]
    name: str
    call: str
    with_: dict[str, Any] | None = Field(None, alias="with")


class StepLookup(Node):
    type: Literal["lookup"]
    name: str
    index: str
    match: str
    lookupValue: str
    outputParameters: list[str] = []


class StepScript(Node):
    type: Literal["script"]
    name: str
    language: str | None = None
    location: str | None = None
    file: str | None = None
    dependencies: list[str] = []
    with_: dict[str, Any] | None = Field(None, alias="with")


OperationStep = Annotated[StepCall | StepLookup | StepScript, Field(discriminator="type")]


class StepOutputMapping(Node):
    targetName: str
    value: Any = None


class Invocable(Node):
    """What REST operations, MCP tools/resources and aggregate functions share: how they run."""

    call: str | None = None
    with_: dict[str, Any] | None = Field(None, alias="with")
    steps: list[OperationStep] = []
    mappings: list[StepOutputMapping] = []
    outputParameters: list[OutputParameter] = []
    ref: str | None = None
    pagination: ExposedPagination | bool | None = None  # naftiko extension: callers may ask for several pages
    outputMediaType: str | None = None  # beta5, on aggregate flows: overrides the consumed operation's


# ---------------------------------------------------------------- aggregates


class Semantics(Node):
    safe: bool | None = None
    idempotent: bool | None = None
    cacheable: bool | None = None


class AggregateFunction(Invocable):
    name: str
    description: str | None = None
    semantics: Semantics | None = None
    inputParameters: list[InputParameter] = []


class Aggregate(Node):
    label: str | None = None
    namespace: str
    functions: list[AggregateFunction] = []


# ---------------------------------------------------------------- exposes: rest


class ForwardConfig(Node):
    targetNamespace: str
    trustedHeaders: list[str] = []


class RestResponseContent(Node):
    """beta5: one media type of a REST response contract: raw bytes (``binary``) or a JSON ``schema``."""

    binary: bool = False
    schema_: dict[str, Any] | None = Field(None, alias="schema")


class RestResponse(Node):
    """beta5: one status code of a REST operation's ``responses``."""

    description: str | None = None
    content: dict[str, RestResponseContent] = {}


class RestResponseBinary(Node):
    """beta5: ``responseBinary``, the shorthand for one binary success response."""

    status: int = 200
    mediaType: str
    description: str | None = None


class ExposedOperation(Invocable):
    name: str | None = None
    label: str | None = None
    description: str | None = None
    method: HttpMethod = "GET"
    inputParameters: list[InputParameter] = []
    responses: dict[str, RestResponse] | None = None  # beta5, keyed by status code ("200", "4XX")
    responseBinary: RestResponseBinary | None = None  # beta5

    @field_validator("responses", mode="before")
    @classmethod
    def _status_keys(cls, value: object) -> object:
        """``200:`` unquoted in YAML is an integer key; the contract is keyed by the code's text."""
        return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value

    def binary_media_type(self) -> str | None:
        """The first media type declared ``binary: true`` (``responseBinary`` when it is used), as the
        reference engine reads the contract; None when the operation declares no binary response."""
        if self.responses:
            for response in self.responses.values():
                for media, content in response.content.items():
                    if content.binary:
                        return media
            return None
        return self.responseBinary.mediaType if self.responseBinary is not None else None

    _method = field_validator("method", mode="before")(_upper_method)


class ExposedResource(Node):
    path: str
    name: str | None = None
    label: str | None = None
    description: str | None = None
    inputParameters: list[InputParameter] = []
    operations: list[ExposedOperation] = []
    forward: ForwardConfig | None = None


class ExposesRest(Node):
    type: Literal["rest"]
    namespace: str
    address: str | None = None
    port: int
    description: str | None = None
    authentication: Authentication | None = None
    resources: list[ExposedResource] = []
    maxBinarySize: str | int | None = None  # beta5: cap on binary answers, unless an operation declares its own


# ---------------------------------------------------------------- exposes: mcp


class McpToolHints(Node):
    readOnly: bool | None = None
    destructive: bool | None = None
    idempotent: bool | None = None
    openWorld: bool | None = None


class McpTool(Invocable):
    name: str | None = None
    label: str | None = None
    description: str | None = None
    inputParameters: list[InputParameter] | None = None
    hints: McpToolHints | None = None


class McpResource(Invocable):
    name: str
    label: str | None = None
    uri: str
    description: str | None = None
    mimeType: str | None = None
    location: str | None = None
    binary: bool = False  # beta5: the call answers bytes (its operation declares outputRawFormat: binary)


class McpPromptArgument(Node):
    name: str
    label: str | None = None
    description: str | None = None
    required: bool = True


class McpPromptMessage(Node):
    role: Literal["user", "assistant"]
    content: Any = None


class McpPrompt(Node):
    name: str
    label: str | None = None
    description: str | None = None
    arguments: list[McpPromptArgument] = []
    template: list[McpPromptMessage] = []
    location: str | None = None


class ExposesMcp(Node):
    type: Literal["mcp"]
    namespace: str
    transport: Literal["http", "stdio"] = "http"
    address: str | None = None
    port: int | None = None
    description: str | None = None
    authentication: Authentication | None = None
    # 1.0.0-beta4 on: the caching hints of the MCP 2026-07-28 cacheable results (docs/reference.md,
    # "Caching hints"); at most 2^53 - 1, the largest integer every JSON reader keeps exactly.
    ttlMs: Annotated[int, Field(strict=True, ge=0, le=MAX_TTL_MS)] | None = None
    cacheScope: Literal["public", "private"] | None = None
    tools: list[McpTool] = []
    resources: list[McpResource] = []
    prompts: list[McpPrompt] = []
    maxBinarySize: str | int | None = None  # beta5: cap on binary results, unless an operation declares its own


# ---------------------------------------------------------------- exposes: skill


class SkillTool(Node):
    name: str
    description: str | None = None
    from_: dict[str, Any] | None = Field(None, alias="from")
    instruction: str | None = None


class ExposedSkill(Node):
    name: str
    description: str | None = None
    license: str | None = None
    compatibility: str | None = None
    metadata: dict[str, str] = {}
    allowed_tools: str | None = Field(None, alias="allowed-tools")
    argument_hint: str | None = Field(None, alias="argument-hint")
    user_invocable: bool = Field(True, alias="user-invocable")
    disable_model_invocation: bool = Field(False, alias="disable-model-invocation")
    location: str | None = None
    tools: list[SkillTool] = []


class ExposesSkill(Node):
    type: Literal["skill"]
    namespace: str
    address: str | None = None
    port: int
    description: str | None = None
    authentication: Authentication | None = None
    skills: list[ExposedSkill] = []


# ---------------------------------------------------------------- exposes: control


class ScriptingManagementSpec(Node):
    enabled: bool = True
    defaultLocation: str | None = None
    defaultLanguage: str | None = None
    timeout: int = 60000
    statementLimit: int = 100000
    allowedLanguages: list[str] = []


class ControlManagementSpec(Node):
    health: bool = True
    info: bool = False
    reload: bool = False
    validate_: bool = Field(False, alias="validate")
    logs: bool | dict[str, Any] = False
    scripting: ScriptingManagementSpec | None = None


class ObservabilitySpec(Node):
    enabled: bool = True
    metrics: dict[str, Any] | None = None
    traces: dict[str, Any] | None = None
    exporters: dict[str, Any] | None = None


class ExposesControl(Node):
    type: Literal["control"]
    namespace: str = "control"
    address: str | None = None
    port: int
    authentication: Authentication | None = None
    management: ControlManagementSpec | None = None
    observability: ObservabilitySpec | None = None


Exposes = Annotated[ExposesRest | ExposesMcp | ExposesSkill | ExposesControl, Field(discriminator="type")]


# ---------------------------------------------------------------- document


class Capability(Node):
    binds: list[Binding] = []
    exposes: list[Exposes] = []
    consumes: list[ConsumesEntry] = []
    aggregates: list[Aggregate] = []


class Document(Node):
    naftiko: str | None = None  # the declared version, whichever key declared it (`ikanos` since alpha3)
    info: Info | None = None
    binds: list[Binding] = []
    consumes: list[ConsumesEntry] = []
    exposes: list[Exposes] = []  # standalone exposes document (since 1.0.0-alpha3)
    aggregates: list[Aggregate] = []  # standalone aggregates document (since 1.0.0-alpha3)
    capability: Capability | None = None


OutputParameter.model_rebuild()
