"""``outputRawFormat: protobuf``: a ``.proto`` file read at load, bodies decoded by the protobuf runtime.

The ``.proto`` text is parsed with proto-schema-parser and turned into a ``FileDescriptorProto``
that the official protobuf library builds into message classes (type names are resolved by its
descriptor pool, as protoc would); a body is then ``ParseFromString`` + ``MessageToDict``. The
root message is the first top-level message of the file, as the reference engine reads it, or
the one named after ``#`` (``outputSchema: schemas/records.proto#RecordsList``).
"""

from __future__ import annotations

import functools

from antlr4.error.ErrorListener import ErrorListener
from antlr4.Recognizer import Recognizer
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import Message
from proto_schema_parser import ast
from proto_schema_parser.parser import Parser

_SCALARS = {
    "double": descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE,
    "float": descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT,
    "int64": descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
    "uint64": descriptor_pb2.FieldDescriptorProto.TYPE_UINT64,
    "int32": descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
    "fixed64": descriptor_pb2.FieldDescriptorProto.TYPE_FIXED64,
    "fixed32": descriptor_pb2.FieldDescriptorProto.TYPE_FIXED32,
    "bool": descriptor_pb2.FieldDescriptorProto.TYPE_BOOL,
    "string": descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
    "bytes": descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
    "uint32": descriptor_pb2.FieldDescriptorProto.TYPE_UINT32,
    "sfixed32": descriptor_pb2.FieldDescriptorProto.TYPE_SFIXED32,
    "sfixed64": descriptor_pb2.FieldDescriptorProto.TYPE_SFIXED64,
    "sint32": descriptor_pb2.FieldDescriptorProto.TYPE_SINT32,
    "sint64": descriptor_pb2.FieldDescriptorProto.TYPE_SINT64,
}
_LABELS: dict[ast.FieldCardinality | None, int] = {
    ast.FieldCardinality.REQUIRED: descriptor_pb2.FieldDescriptorProto.LABEL_REQUIRED,
    ast.FieldCardinality.REPEATED: descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED,
}


class ProtoSchemaError(ValueError):
    """The ``.proto`` file cannot be used (reported at load at ``outputSchema``)."""


class _Raise(ErrorListener):
    """ANTLR recovers from syntax errors and prints them; a schema with one must be refused instead."""

    def syntaxError(
        self, recognizer: object, offendingSymbol: object, line: int, column: int, msg: str, e: Exception | None
    ) -> None:
        raise ProtoSchemaError(f"cannot parse: line {line}:{column}: {msg[:160]}")


def _quiet(recognizer: Recognizer) -> None:
    recognizer.removeErrorListeners()
    recognizer.addErrorListener(_Raise())


def _field(
    proto: descriptor_pb2.DescriptorProto, name: str, number: int, type_name: str, label: int
) -> descriptor_pb2.FieldDescriptorProto:
    field = proto.field.add(name=name, number=number, label=label, json_name=name)
    scalar = _SCALARS.get(type_name)
    if scalar is not None:
        field.type = scalar
    else:
        field.type_name = type_name  # relative or qualified: resolved by the descriptor pool, as protoc does
    return field


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head[:1].upper() + head[1:] + "".join(p[:1].upper() + p[1:] for p in rest)


def _message(node: ast.Message, proto: descriptor_pb2.DescriptorProto, syntax: str) -> None:
    proto.name = node.name
    optional = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
    for element in node.elements:
        if isinstance(element, ast.Field):
            label = _LABELS.get(element.cardinality, optional)
            field = _field(proto, element.name, element.number, element.type, label)
            if syntax == "proto3" and element.cardinality == ast.FieldCardinality.OPTIONAL:
                field.proto3_optional = True
                field.oneof_index = len(proto.oneof_decl)
                proto.oneof_decl.add(name=f"_{element.name}")
        elif isinstance(element, ast.MapField):
            entry = proto.nested_type.add(name=_camel(element.name) + "Entry")
            entry.options.map_entry = True
            _field(entry, "key", 1, element.key_type, optional)
            _field(entry, "value", 2, element.value_type, optional)
            _field(proto, element.name, element.number, entry.name, descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED)
        elif isinstance(element, ast.OneOf):
            index = len(proto.oneof_decl)
            proto.oneof_decl.add(name=element.name)
            for inner in element.elements:
                if isinstance(inner, ast.Field):
                    _field(proto, inner.name, inner.number, inner.type, optional).oneof_index = index
        elif isinstance(element, ast.Message):
            _message(element, proto.nested_type.add(), syntax)
        elif isinstance(element, ast.Enum):
            _enum(element, proto.enum_type.add())


def _enum(node: ast.Enum, proto: descriptor_pb2.EnumDescriptorProto) -> None:
    proto.name = node.name
    for value in node.elements:
        if isinstance(value, ast.EnumValue):
            proto.value.add(name=value.name, number=value.number)


@functools.lru_cache(maxsize=64)
def message_class(schema: str) -> type[Message]:
    """The root message class of ``path[#Message]`` (an absolute path, resolved at load); built once."""
    path, _, wanted = schema.partition("#")
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    try:
        parsed = Parser(setup_lexer=_quiet, setup_parser=_quiet).parse(text)
    except ProtoSchemaError:
        raise
    except Exception as exc:  # the parser's own error types
        raise ProtoSchemaError(
            f"cannot parse: {(str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]}"
        ) from None
    syntax = parsed.syntax or "proto2"
    file = descriptor_pb2.FileDescriptorProto(name=path, syntax=syntax)
    roots: list[str] = []
    for element in parsed.file_elements:
        if isinstance(element, ast.Import):
            raise ProtoSchemaError(f"imports are not supported (import {element.name!r})")
        if isinstance(element, ast.Package):
            file.package = element.name
        elif isinstance(element, ast.Message):
            _message(element, file.message_type.add(), syntax)
            roots.append(element.name)
        elif isinstance(element, ast.Enum):
            _enum(element, file.enum_type.add())
    if not roots:
        raise ProtoSchemaError("the file declares no message")
    root = wanted or roots[0]
    pool = descriptor_pool.DescriptorPool()
    try:
        pool.Add(file)
        descriptor = pool.FindMessageTypeByName(f"{file.package}.{root}" if file.package else root)
    except KeyError:
        raise ProtoSchemaError(f"no message '{root}' (messages: {', '.join(roots)})") from None
    except Exception as exc:  # TypeError from the pool: an unknown type, a duplicate field number
        raise ProtoSchemaError((str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]) from None
    return message_factory.GetMessageClass(descriptor)


def decode(body: bytes, schema: str) -> object:
    message = message_class(schema).FromString(body)
    return json_format.MessageToDict(message, preserving_proto_field_name=True)
