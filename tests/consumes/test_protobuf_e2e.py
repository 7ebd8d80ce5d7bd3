"""``outputRawFormat: protobuf`` (docs/reference.md, "outputRawFormat"), end to end.

The ``.proto`` mirrors the reference engine's fixture (``RecordsList`` of ``Record``s; written
here); bodies are protobuf wire bytes written out by hand, so the decoder is checked against
the wire format itself, not against an encoder built from the same schema.
"""

from __future__ import annotations

import httpx
import pytest

from conftest import Reply
from harness import get_once
from naftiko.document.loader import load
from naftiko.engine.plan import Options, compile_plan
from naftiko.errors import LoadError

PROTO = """\
syntax = "proto2";
package test.records;

message RecordsList {
  repeated Record records = 1;
}

message Record {
  required string id = 1;
  required string title = 2;
  optional string description = 3;
  optional int64 size = 4;
  enum Kind { PLAIN = 0; SPECIAL = 1; }
  optional Kind kind = 5;
}
"""


def record(id_: str, title: str, extra: bytes = b"") -> bytes:
    inner = b"\x0a" + bytes([len(id_)]) + id_.encode() + b"\x12" + bytes([len(title)]) + title.encode() + extra
    return b"\x0a" + bytes([len(inner)]) + inner  # field 1 of RecordsList, length-delimited


BODY = record("r1", "One", b"\x20\x96\x01\x28\x01") + record("r2", "Two")  # r1: size 150, kind SPECIAL


def capability(schema: str) -> str:
    return f"""\
naftiko: 1.0.0-alpha2
info:
  label: Protobuf
  description: protobuf bodies
capability:
  consumes:
  - type: http
    namespace: pb
    baseUri: http://127.0.0.1:1
    resources:
    - name: records
      path: /pb/records
      operations:
      - name: get-records
        method: GET
        outputRawFormat: protobuf
        outputSchema: {schema}
  exposes:
  - type: rest
    namespace: rest
    port: 8080
    resources:
    - path: /records
      operations:
      - method: GET
        call: pb.get-records
        outputParameters:
        - name: titles
          type: array
          mapping: $.records[*].title
        - name: whole
          type: object
          mapping: $
"""


async def call(tmp_path, upstream, schema: str, body: bytes) -> httpx.Response:
    (tmp_path / "schemas").mkdir(exist_ok=True)
    (tmp_path / "schemas" / "records.proto").write_text(PROTO)
    path = tmp_path / "pb.yaml"
    path.write_text(capability(schema))
    upstream.reset()
    upstream.reply("/pb/records", Reply(200, body, content_type="application/x-protobuf"))
    try:
        return await get_once(path, upstream.url, "/records", consumes=["pb"])
    finally:
        upstream.reset()


async def test_the_first_message_of_the_proto_decodes_the_body(tmp_path, upstream):
    response = await call(tmp_path, upstream, "schemas/records.proto", BODY)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "titles": ["One", "Two"],
        "whole": {
            "records": [
                {
                    "id": "r1",
                    "title": "One",
                    "size": "150",
                    "kind": "SPECIAL",
                },  # proto3 JSON mapping: int64 as a string
                {"id": "r2", "title": "Two"},
            ]
        },
    }


async def test_a_named_message(tmp_path, upstream):
    one = b"\x0a\x02r9\x12\x04Nine"
    response = await call(tmp_path, upstream, "schemas/records.proto#Record", one)
    assert response.json()["whole"] == {"id": "r9", "title": "Nine"}


@pytest.mark.parametrize("body", [b"\x0a\x05\x0a\x02r1", b"\xff\xff\xff\xff"])
async def test_a_body_that_does_not_decode_is_a_502(tmp_path, upstream, body):
    response = await call(tmp_path, upstream, "schemas/records.proto", body)
    assert response.status_code == 502 and "not valid Protocol Buffers" in response.json()["detail"]


@pytest.mark.parametrize(
    "schema, proto, message",
    [
        ("schemas/missing.proto", None, "cannot read the .proto file"),
        ("schemas/bad.proto", "message X { required Nope a = 1; }", "is not a usable .proto file"),
        ("schemas/bad.proto", "message X {", "cannot parse"),
        (
            "schemas/bad.proto",
            'import "other.proto";\nmessage X { optional string a = 1; }',
            "imports are not supported",
        ),
        ("schemas/records.proto#Nope", PROTO, "no message 'Nope'"),
    ],
)
def test_schema_problems_are_load_errors_at_output_schema(tmp_path, schema, proto, message):
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "records.proto").write_text(PROTO)
    if proto is not None:
        (tmp_path / "schemas" / "bad.proto").write_text(proto)
    text = capability(schema)
    path = tmp_path / "pb.yaml"
    path.write_text(text)
    with pytest.raises(LoadError) as err:
        compile_plan(load(str(path)), Options(environ={}))
    d = next(d for d in err.value.diagnostics if message in d.message)
    assert d.line == next(i for i, row in enumerate(text.splitlines(), 1) if "outputSchema" in row)


def test_protobuf_without_a_schema_is_a_load_error(tmp_path):
    path = tmp_path / "pb.yaml"
    path.write_text(capability("x").replace("        outputSchema: x\n", ""))
    with pytest.raises(LoadError) as err:
        compile_plan(load(str(path)), Options(environ={}))
    assert any("needs outputSchema" in d.message for d in err.value.diagnostics)
