"""End to end: every consumed request body form, built from REST inputs with the right
encoding and content type."""

from __future__ import annotations

import email.parser
import email.policy
from urllib.parse import parse_qs

import pytest_asyncio

from conftest import FIXTURES
from harness import serve_in_memory

SIGNATURE = "sig-5b1d2f"
INPUTS = {"id": "o-1", "name": 'Zoë "Z"', "qty": 3, "tags": ["x", "y"], "content": "line 1\nline 2"}


@pytest_asyncio.fixture(scope="module")
async def bodies(upstream):
    n = await serve_in_memory(FIXTURES / "bodies.yaml", upstream.url, consumes=["sink"], adapters=["bodies-rest"], env={"BODY_SIGNATURE": SIGNATURE})
    yield n
    assert await n.stop() == 0


async def _post(n, path, upstream):
    async with n.http() as http:
        r = await http.post(n.urls["bodies-rest"] + path.lstrip("/"), params={k: v for k, v in INPUTS.items() if k != "qty"} | {"qty": "3"})
    assert r.status_code == 200, r.text
    return upstream.last


async def test_json_body_keeps_types_and_binds(bodies, fresh_upstream):
    rec = await _post(bodies, "/json", fresh_upstream)
    assert rec.headers["content-type"] == "application/json"
    assert rec.json() == {
        "order": {"id": "o-1", "qty": "3", "tags": ["x", "y"], "note": 'for Zoë "Z"'},
        "signed": SIGNATURE,
        "fixed": 3,
    }


async def test_text_xml_sparql_bodies(bodies, fresh_upstream):
    rec = await _post(bodies, "/text", fresh_upstream)
    assert rec.headers["content-type"].startswith("text/plain") and rec.body.decode() == 'Hello Zoë "Z", 3 items'
    rec = await _post(bodies, "/xml", fresh_upstream)
    assert rec.headers["content-type"] == "application/xml" and rec.body == b'<order id="o-1"><qty>3</qty></order>'
    rec = await _post(bodies, "/sparql", fresh_upstream)
    assert rec.headers["content-type"] == "application/sparql-query"
    assert rec.body.decode() == 'SELECT ?s WHERE { ?s ?p "Zoë \\"Z\\"" }'  # escaped: no injection


async def test_form_body_is_encoded(bodies, fresh_upstream):
    rec = await _post(bodies, "/form", fresh_upstream)
    assert rec.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(rec.body.decode()) == {"name": ['Zoë "Z"'], "qty": ["3"], "fixed": ["a&b=c"]}


async def test_multipart_body(bodies, fresh_upstream):
    rec = await _post(bodies, "/multipart", fresh_upstream)
    ctype = rec.headers["content-type"]
    assert ctype.startswith("multipart/form-data; boundary=")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + rec.body)
    parts = list(message.iter_parts())
    assert [p.get_param("name", header="content-disposition") for p in parts] == ["meta", "file"]
    assert parts[0].get_content_type() == "application/json" and parts[0].get_content() == b'{"id": "o-1"}'
    assert parts[1].get_param("filename", header="content-disposition") == "note %221%22.txt"
    assert parts[1].get_content() == "line 1\nline 2"


async def test_raw_template_body_escapes_strings_and_renders_lists_as_json(bodies, fresh_upstream):
    rec = await _post(bodies, "/raw", fresh_upstream)
    assert rec.headers["content-type"] == "application/json"
    assert rec.json() == {"name": 'Zoë "Z"', "tags": ["x", "y"], "qty": 3}


async def test_body_sees_with_values_and_they_are_not_sent_as_query(bodies, fresh_upstream):
    rec = await _post(bodies, "/renamed", fresh_upstream)
    assert rec.json() == {"fullName": 'Zoë "Z"', "count": "3", "raw": 'Zoë "Z"'}
    assert list(rec.query) == []


async def test_text_data_is_encoded_for_its_type(bodies, fresh_upstream):
    rec = await _post(bodies, "/form-text", fresh_upstream)
    assert parse_qs(rec.body.decode()) == {"who": ['Zoë "Z"'], "n": ["2"]}
    rec = await _post(bodies, "/json-text", fresh_upstream)
    assert rec.headers["content-type"] == "application/json"
    assert rec.json() == {"who": 'Zoë "Z"', "tags": ["x", "y"]}
    rec = await _post(bodies, "/xml", fresh_upstream)
    assert rec.body == b'<order id="o-1"><qty>3</qty></order>'
