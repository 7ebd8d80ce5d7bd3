"""The Naftiko 1.0.0-alpha2 document model and its bundled JSON Schema."""

from typing import Any, TypeAlias

SPEC_VERSION = "1.0.0-alpha2"

# A value as YAML or JSON gives it once parsed: what capability files, their imports and upstream
# JSON bodies are made of (mapping keys are strings: the YAML reader turns scalar keys into strings).
JSONValue: TypeAlias = str | int | float | bool | list["JSONValue"] | dict[str, "JSONValue"] | None
# A JSON or YAML object built field by field (an OpenAPI document, a capability being written): its
# values are read and nested freely, which the precise JSONValue would make a cast at every step.
JSONObject: TypeAlias = dict[str, Any]
