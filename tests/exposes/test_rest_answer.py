"""The REST router's answers (exposes/rest/router.py ``respond``/``Answer``): the header list a
caller gets is built once, with the same rules Starlette applies (a length except on 1xx/204/304,
names as relayed, one content type)."""

from __future__ import annotations

from naftiko.engine.plan import RestAdapterPlan
from naftiko.engine.result import Empty, JsonAnswer, Relayed
from naftiko.exposes.rest.router import RestRouter


def _router() -> RestRouter:
    return RestRouter(RestAdapterPlan(namespace="t", address="127.0.0.1", port=0, routes=[]), lambda text: text.replace("sk-secret", "***"))


def _headers(response: object) -> list[tuple[bytes, bytes]]:
    return list(response.raw_headers)  # type: ignore[attr-defined]


def test_a_relayed_body_gets_its_safe_headers_and_exactly_one_length() -> None:
    body = b'{"id":"c-1"}'
    response = _router().respond(Relayed(200, body, "application/json", {"content-type": "application/json", "etag": '"v1"'}))
    headers = _headers(response)
    assert response.status_code == 200 and response.body == body
    assert headers.count((b"content-length", str(len(body)).encode())) == 1
    assert [n for n, _ in headers].count(b"content-length") == 1
    assert (b"content-type", b"application/json") in headers and (b"etag", b'"v1"') in headers


def test_an_empty_204_has_neither_length_nor_type_and_a_200_says_zero() -> None:
    no_content = _headers(_router().respond(Empty(204, {"content-type": "text/plain", "etag": '"x"'})))
    assert no_content == [(b"etag", b'"x"')]
    assert (b"content-length", b"0") in _headers(_router().respond(Empty(200)))


def test_relayed_header_values_are_masked_and_json_answers_are_typed() -> None:
    redirect = _headers(_router().respond(Relayed(302, b"", None, {"location": "https://x/?key=sk-secret"})))
    assert (b"location", b"https://x/?key=***") in redirect
    json_headers = _headers(_router().respond(JsonAnswer(200, {"a": 1})))
    assert (b"content-type", b"application/json") in json_headers and (b"content-length", b"7") in json_headers


def test_answers_never_change_the_results_headers() -> None:
    """``mask_headers`` hands back the result's own dict when nothing is masked: the answer with a
    declared or binary content type must not write that type into it."""
    headers = {"content-type": "text/plain", "etag": '"v1"'}
    declared = _router().respond(Relayed(200, b"x", "text/plain", headers, False, "text/csv"))
    binary = _router().respond(Relayed(200, b"\x00", "text/plain", headers, True, "image/png"))
    assert (b"content-type", b"text/csv") in _headers(declared)
    assert (b"content-type", b"image/png") in _headers(binary)
    assert headers == {"content-type": "text/plain", "etag": '"v1"'}
