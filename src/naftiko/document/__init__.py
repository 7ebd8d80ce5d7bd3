"""The Naftiko 1.0.0-alpha2 document model and its bundled JSON Schema."""

SPEC_VERSION = "1.0.0-alpha2"
