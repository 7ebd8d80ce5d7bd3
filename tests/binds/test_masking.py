"""Secrets masked in every form an upstream may echo them, in process: raw, percent-encoded,
JSON-escaped with ``\\/``, the base64 ``user:password`` of basic auth; 3xx bodies like 4xx/5xx;
masking before any cut."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio

from conftest import Reply
from naftiko.binds.secrets import MASK, Secrets, masked_prefix
from naftiko.document.loader import load
from naftiko.engine.plan import Options, compile_plan
from naftiko.runtime.serve import build_app

USER, PASSWORD = "svc-user", "pa/ss+word:42"
CAPABILITY = """\
naftiko: 1.0.0-alpha2
info: {label: T, description: test}
capability:
  binds:
  - namespace: env
    keys: {API_USER: API_USER, API_PASSWORD: API_PASSWORD}
  consumes:
  - type: http
    namespace: up
    baseUri: https://api.example.com
    authentication: {type: basic, username: "{{API_USER}}", password: "{{API_PASSWORD}}"}
    resources:
    - name: items
      path: /items/{id}
      operations:
      - {name: get-item, method: GET}
  exposes:
  - type: rest
    namespace: api
    port: 8080
    resources:
    - path: /items/{id}
      operations:
      - {method: GET, call: up.get-item}
    - path: /fwd/{path}
      forward: {targetNamespace: up}
"""


@pytest_asyncio.fixture
async def app(tmp_path, fresh_upstream):
    path = tmp_path / "cap.yaml"
    path.write_text(CAPABILITY)
    options = Options(environ={"API_USER": USER, "API_PASSWORD": PASSWORD}, base_uris={"up": fresh_upstream.url})
    plan = compile_plan(load(str(path)), options)
    yield build_app(plan.adapters[0], plan), fresh_upstream
    await plan.aclose()


async def _get(app, path: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        return await http.get(path)


TOKEN = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
FORMS = {
    "raw": PASSWORD,
    "percent-encoded": quote(PASSWORD, safe=""),
    "percent-encoded lower-case": quote(PASSWORD, safe="").lower(),
    "json with escaped slash": json.dumps(PASSWORD)[1:-1].replace("/", "\\/"),
    "basic token": TOKEN,
}


@pytest.mark.parametrize("status", [302, 400, 500])
@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("route", ["/items/1", "/fwd/items/1"])
async def test_every_form_of_a_secret_is_masked_in_relayed_bodies(app, status, form, route):
    app, upstream = app
    echoed = f'{{"echo": "you sent {FORMS[form]} to us"}}'
    upstream.reply("/items/1", Reply(status=status, body=echoed.encode(), headers={"Location": "/x"} if status == 302 else {}))
    r = await _get(app, route)
    assert r.status_code == status
    assert FORMS[form] not in r.text and MASK in r.text, r.text
    assert upstream.last.headers["authorization"] == f"Basic {TOKEN}"  # sent as it must be


async def test_a_2xx_body_is_relayed_untouched(app):
    app, upstream = app
    upstream.reply("/items/1", Reply(status=200, body=b'{"note": "pa/ss+word:42 is data here"}'))
    r = await _get(app, "/items/1")
    assert r.json() == {"note": "pa/ss+word:42 is data here"}


def test_masking_happens_before_the_cut():
    secrets = Secrets(["0123456789abcdef"])
    text = "x" * 90 + "0123456789abcdef" + "y" * 10
    cut = masked_prefix(secrets.mask, text, 100)
    assert "0123456789abcde" not in cut and "012345" not in cut
    assert cut == "x" * 90 + MASK + "y" * 6


@pytest.mark.parametrize("offset", [-8, -1, 0])
def test_mcp_upstream_error_text_masks_a_secret_that_straddles_the_cut(offset):
    """The MCP ``isError`` text keeps 2,000 characters of the upstream body; a secret across that
    boundary must not leave with only its tail cut off."""
    from naftiko.engine.result import UpstreamFailure
    from naftiko.exposes.mcp.content import ERROR_BODY_LIMIT, upstream_error_text

    secrets = Secrets([PASSWORD])
    body = "x" * (ERROR_BODY_LIMIT + offset - len(PASSWORD) // 2) + PASSWORD + "y" * 50
    text = upstream_error_text(UpstreamFailure(500, body.encode(), None), secrets.mask)
    assert text.startswith("upstream returned HTTP 500: x")
    assert PASSWORD[:-1] not in text and PASSWORD[: len(PASSWORD) // 2 + 1] not in text


@pytest.mark.parametrize("path", ["/items/1", "/fwd/items/1"])
async def test_relayed_header_values_keep_the_upstreams_bytes(app, path):
    """aiohttp reads header values as UTF-8 (bytes that are not kept as surrogates): a relayed
    header goes out as the bytes that came in. A UTF-8 file name is relayed, not a 500; a bind
    value in it is still masked."""
    app, upstream = app
    disposition = f'attachment; filename="résumé-名-{PASSWORD}.pdf"'
    upstream.reply("/items/1", Reply(status=200, body=b"{}", headers={"Content-Disposition": disposition}))
    r = await _get(app, path)
    assert r.status_code == 200, r.text
    assert dict(r.headers.raw)[b"content-disposition"] == f'attachment; filename="résumé-名-{MASK}.pdf"'.encode()
