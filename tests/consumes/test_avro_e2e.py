"""``outputRawFormat: avro`` (docs/reference.md, "outputRawFormat"), end to end.

The schema mirrors the reference engine's test fixture (a ``RecordsList`` of ``Record``s) but is
written here; bodies are encoded with fastavro and served by the loopback fake upstream.
"""

from __future__ import annotations

import io

import fastavro
import httpx
import orjson
import pytest

from conftest import Reply
from harness import get_once
from naftiko.document.loader import load
from naftiko.engine.plan import Options, compile_plan
from naftiko.errors import LoadError

SCHEMA = {
    "type": "record",
    "name": "RecordsList",
    "namespace": "test.records",
    "fields": [
        {
            "name": "records",
            "type": {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "Record",
                    "fields": [
                        {"name": "id", "type": "string"},
                        {"name": "title", "type": "string"},
                        {"name": "description", "type": ["null", "string"], "default": None},
                        {"name": "blob", "type": "bytes", "default": ""},
                    ],
                },
            },
        },
    ],
}
DATA = {
    "records": [
        {"id": "r1", "title": "One", "description": None, "blob": b"\x00\x01"},
        {"id": "r2", "title": "Two", "description": "second", "blob": b""},
    ]
}


def capability(schema_line: str) -> str:
    return f"""\
naftiko: 1.0.0-alpha2
info:
  label: Avro
  description: avro bodies
capability:
  consumes:
  - type: http
    namespace: avro
    baseUri: http://127.0.0.1:1
    resources:
    - name: records
      path: /avro/records
      operations:
      - name: get-records
        method: GET
        outputRawFormat: avro
{schema_line}
  exposes:
  - type: rest
    namespace: rest
    port: 8080
    resources:
    - path: /records
      operations:
      - method: GET
        call: avro.get-records
        outputParameters:
        - name: titles
          type: array
          mapping: $.records[*].title
        - name: whole
          type: object
          mapping: $
"""


def datum() -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(SCHEMA), DATA)
    return out.getvalue()


def container() -> bytes:
    out = io.BytesIO()
    fastavro.writer(out, fastavro.parse_schema(SCHEMA), [DATA])
    return out.getvalue()


async def call(tmp_path, upstream, text: str, body: bytes) -> httpx.Response:
    (tmp_path / "schemas").mkdir(exist_ok=True)
    (tmp_path / "schemas" / "records.avsc").write_bytes(orjson.dumps(SCHEMA))
    path = tmp_path / "avro.yaml"
    path.write_text(text)
    upstream.reset()
    upstream.reply("/avro/records", Reply(200, body, content_type="application/avro"))
    try:
        return await get_once(path, upstream.url, "/records", consumes=["avro"])
    finally:
        upstream.reset()


async def test_a_datum_read_with_the_avsc_named_by_output_schema(tmp_path, upstream):
    response = await call(tmp_path, upstream, capability("        outputSchema: schemas/records.avsc"), datum())
    assert response.status_code == 200
    body = response.json()
    assert body["titles"] == ["One", "Two"]
    assert body["whole"]["records"][0] == {"id": "r1", "title": "One", "description": None, "blob": "AAE="}


async def test_a_container_file_carries_its_schema(tmp_path, upstream):
    response = await call(tmp_path, upstream, capability(""), container())
    assert response.status_code == 200
    assert response.json()["whole"] == [
        {
            "records": [
                {"id": "r1", "title": "One", "description": None, "blob": "AAE="},
                {"id": "r2", "title": "Two", "description": "second", "blob": ""},
            ]
        }
    ]


@pytest.mark.parametrize(
    "body, reason", [(b"\xff\xff\xff", "not valid Avro"), (datum() + b"junk", "bytes left after the datum")]
)
async def test_an_undecodable_body_is_a_502(tmp_path, upstream, body, reason):
    response = await call(tmp_path, upstream, capability("        outputSchema: schemas/records.avsc"), body)
    assert response.status_code == 502 and reason in response.json()["detail"]


async def test_a_datum_without_a_schema_is_a_502(tmp_path, upstream):
    response = await call(tmp_path, upstream, capability(""), datum())
    assert response.status_code == 502 and "needs outputSchema" in response.json()["detail"]


@pytest.mark.parametrize(
    "line, content, message",
    [
        ("        outputSchema: schemas/missing.avsc", None, "cannot read the Avro schema file"),
        (
            "        outputSchema: schemas/bad.avsc",
            b'{"type": "record", "name": "X", "fields": [{"name": "a", "type": "nope"}]}',
            "is not a valid Avro schema",
        ),
    ],
)
def test_schema_problems_are_load_errors_at_output_schema(tmp_path, line, content, message):
    (tmp_path / "schemas").mkdir()
    if content is not None:
        (tmp_path / "schemas" / "bad.avsc").write_bytes(content)
    text = capability(line)
    path = tmp_path / "avro.yaml"
    path.write_text(text)
    with pytest.raises(LoadError) as err:
        compile_plan(load(str(path)), Options(environ={}))
    d = next(d for d in err.value.diagnostics if message in d.message)  # the call to it is left out too
    assert d.line == text.splitlines().index(line) + 1
