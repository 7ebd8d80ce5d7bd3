"""The per-request shortcuts of a simple call (issue 12) give what the general way gives.

``RequestPlan`` renders fixed headers at load and builds a request whose arguments all go into the
path without placing anything, a plain id with one match, and reads path inputs where they go
(``Call.path_slots``) without an arguments dict; ``Call.scope_free`` skips the unit's scope; the transport takes and
gives back its concurrency slot inline and releases the response without ``async with``;
``ObservedTransport`` adds no coroutine when only the request log is on; ``Relayed`` is built
through its slots and stays frozen; an upstream answer's headers are read through a view of
aiohttp's multidict (``ResponseHeaders``) rather than copied into a dict. Each test compares with the general way or checks what a
broken shortcut would get wrong.
"""

from __future__ import annotations

import asyncio
import dataclasses
from urllib.parse import quote

import pytest
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from loopback import on_loopback
from naftiko.consumes import styles
from naftiko.consumes.auth import OutboundAuth
from naftiko.consumes.request import BodyPlan, ParamSpec, RequestPlan
from naftiko.consumes.transport import (
    AiohttpTransport,
    Limits,
    OutboundRequest,
    ResponseHeaders,
    UpstreamBusy,
    UpstreamResponse,
    is_json_type,
)
from naftiko.engine.binding import Fixed, FromInput
from naftiko.engine.result import JsonAnswer, Relayed
from naftiko.engine.simple import Call, CallUnit, ConsumedOperation
from naftiko.errors import InvalidInput, UpstreamUnavailable
from naftiko.expressions.template import Scope, Template, to_text
from naftiko.observability.outbound import UPSTREAM_CALLS, ObservedTransport


def _identity(document: object) -> object:
    return document


BEARER = OutboundAuth("bearer", header=("Authorization", "Bearer t0k"))


def plan(path_parts, params=None, *, headers=(), auth=BEARER, body=None) -> RequestPlan:
    params = params or {
        p[0]: ParamSpec(p[0], "path", "string", True) for p in path_parts if isinstance(p, tuple)
    }
    return RequestPlan("up", "op", "GET", "https://api.example.com/base", list(path_parts), dict(params), auth,
                       body, [(n, Template(t)) for n, t in headers])


def general(request_plan: RequestPlan, args: dict[str, object], scope: Scope) -> OutboundRequest:
    """The same build with the path-only way switched off."""
    request_plan.path_only = None
    return request_plan.build(args, scope)


# ------------------------------------------------------------------ RequestPlan: path-only requests


def test_a_path_only_request_is_what_the_general_way_builds():
    p = plan(["/items/", ("id",), "/raw"], headers=[("X-Fixed", "one"), ("X-Two", "2")])
    assert p.path_only == {"id"} and p.fixed_headers == (("X-Fixed", "one"), ("X-Two", "2"), BEARER.header)
    fast = p.build({"id": "a b/c"}, Scope())
    assert fast.url == "https://api.example.com/base/items/a%20b%2Fc/raw"
    assert fast.headers == [("X-Fixed", "one"), ("X-Two", "2"), ("Authorization", "Bearer t0k")]
    assert fast == general(p, {"id": "a b/c"}, Scope())


def test_each_path_only_request_gets_its_own_header_list():
    p = plan(["/items/", ("id",)])
    first = p.build({"id": "1"}, Scope())
    first.headers.append(("traceparent", "00-x"))  # what a layer below may do to the request it is given
    assert p.build({"id": "2"}, Scope()).headers == [("Authorization", "Bearer t0k")]


def test_an_argument_outside_the_path_still_goes_to_the_query():
    p = plan(["/items/", ("id",)])
    req = p.build({"id": "1", "extra": "e x"}, Scope())
    assert req.url == "https://api.example.com/base/items/1?extra=e%20x"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"headers": [("X-Who", "{{name}}")]},  # rendered per call
        {"auth": OutboundAuth("apikey", query=("key", "k"))},  # a query pair every call
        {"body": BodyPlan("json", {"a": 1})},  # a body every call
    ],
)
def test_requests_with_more_than_a_path_take_the_general_way(kwargs):
    p = plan(["/items/", ("id",)], **kwargs)
    assert p.path_only is None
    req = p.build({"id": "1"}, Scope({"name": "ann"}))
    if "headers" in kwargs:
        assert ("X-Who", "ann") in req.headers
    if "auth" in kwargs:
        assert req.url.endswith("/items/1?key=k")
    if "body" in kwargs:
        assert req.body == b'{"a":1}'


def test_a_fixed_header_with_a_line_break_is_still_refused_on_each_call():
    p = plan(["/items/", ("id",)], headers=[("X-Bad", "a\nb")])
    assert p.path_only is None
    with pytest.raises(InvalidInput, match="X-Bad"):
        p.build({"id": "1"}, Scope())


def test_the_url_compiled_at_load_keeps_literals_styles_and_refusals():
    params = {
        "x": ParamSpec("x", "path", "string", True),
        "y": ParamSpec("y", "path", "array", True, style="matrix", explode=True),
    }
    p = plan(["/a/", ("x",), "/b/", ("y",), ".json"], params)
    assert p.url_prefix == "https://api.example.com/base/a/"
    req = p.build({"x": 7, "y": ["p", "q r"]}, Scope())
    assert req.url == "https://api.example.com/base/a/7/b/" + styles.path_segment("y", ["p", "q r"], "matrix", True) + ".json"
    assert req.url.endswith("/b/;y=p;y=q%20r.json")
    for bad in (".", ".."):
        with pytest.raises(InvalidInput, match="cannot be"):
            p.build({"x": bad, "y": ["p"]}, Scope())
    with pytest.raises(InvalidInput, match="missing required path parameter 'x'"):
        p.build({"x": "", "y": ["p"]}, Scope())


PATH_VALUES = ["c-1", "A_z.9~", "...", ".x", "x.", "a b/c", "é", "%41", ".", "..", "", None, 7, 1.5, True, ["p", "q"]]


@pytest.mark.parametrize("value", PATH_VALUES)
def test_a_plain_segment_is_sent_as_the_encoding_way_would_send_it(value):
    """The one-match shortcut for a plain id gives what the checks and encoding give: anything
    else (empty, a dot segment, a character to encode, a value that is not text) takes them."""
    p = plan(["/items/", ("id",), "/raw"], auth=None)
    try:
        url = p.build({"id": value}, Scope()).url
    except InvalidInput as exc:
        url = str(exc)
    else:
        assert url.startswith("https://api.example.com/base/items/") and url.endswith("/raw")
    expected = "missing required path parameter 'id'" if value in ("", None) else None
    if value in (".", ".."):
        expected = f"path parameter 'id' cannot be {value!r}"
    if expected is None:
        expected = f"https://api.example.com/base/items/{quote(to_text(value), safe='')}/raw"
    assert url == expected


def test_a_request_read_from_the_inputs_is_what_the_arguments_build():
    """``build_path`` reads each path value straight from the inputs by the key chosen at load:
    the same request as :meth:`RequestPlan.build` for the arguments dict those keys would make,
    refusals included."""
    params = {"x": ParamSpec("x", "path", "string", True), "y": ParamSpec("y", "path", "array", style="label")}
    p = plan(["/a/", ("x",), "/b/", ("y",), ".json"], params, headers=[("X-Fixed", "one")])
    slots = p.slots_for({"x": "in-x", "y": "in-y"})
    assert slots is not None and [s[:2] for s in slots] == [("in-x", "x"), ("in-y", "y")]
    for inputs in ({"in-x": "a b", "in-y": ["p", "q"]}, {"in-x": 42, "in-y": "v", "other": 1}):
        args = {"x": inputs["in-x"], "y": inputs["in-y"]}
        assert p.build_path(inputs, slots) == p.build(args, Scope())
    for inputs, refusal in (({"in-y": "v"}, "missing required path parameter 'x'"), ({"in-x": "..", "in-y": "v"}, "cannot be")):
        with pytest.raises(InvalidInput, match=refusal):
            p.build_path(inputs, slots)
    assert p.slots_for({"x": "in-x"}) is None  # a placeholder nothing feeds: no shortcut


# ------------------------------------------------------------------ Call.scope_free and CallUnit.invoke


class Recording:
    def __init__(self, reply: UpstreamResponse):
        self.reply = reply
        self.sent: list[OutboundRequest] = []

    async def send(self, request: OutboundRequest) -> UpstreamResponse:
        self.sent.append(request)
        return self.reply

    async def aclose(self) -> None:
        return None


def unit_for(call: Call, binds=None) -> CallUnit:
    return CallUnit("u", call, _identity, True, frozenset({"rest"}), binds or {}, mapped=True)


def target(request_plan: RequestPlan, reply: UpstreamResponse) -> ConsumedOperation:
    return ConsumedOperation(request_plan, Recording(reply), _identity)


def test_binary_is_decided_at_load_from_the_output_raw_format_in_any_case():
    reply = UpstreamResponse(200, {}, b"")
    for written, binary in (("json", False), ("binary", True), ("Binary", True), ("xml", False)):
        op = dataclasses.replace(target(plan(["/x"]), reply), output_raw_format=written)
        assert op.binary is binary, written
    assert not target(plan(["/x"]), reply).binary  # the default format, json


async def test_a_call_of_path_inputs_needs_no_scope_and_relays_the_answer():
    reply = UpstreamResponse(200, {"content-type": "application/json", "etag": '"e"', "server": "x"}, b'{"id":1}')
    call = Call(target(plan(["/items/", ("id",)]), reply), [], [("id", FromInput("item-id"))])
    assert call.scope_free
    result = await unit_for(call).invoke({"item-id": "i 1"})
    assert result == Relayed(200, b'{"id":1}', "application/json", {"content-type": "application/json", "etag": '"e"'})
    [sent] = call.target.transport.sent  # type: ignore[attr-defined]
    assert sent.url == "https://api.example.com/base/items/i%201"


async def test_a_call_of_path_inputs_reads_them_by_the_keys_chosen_at_load():
    reply = UpstreamResponse(200, {"content-type": "application/json"}, b"{}")
    call = Call(target(plan(["/items/", ("id",), "/", ("sub",)]), reply), [], [("id", FromInput("item-id"))])
    assert call.scope_free and call.path_slots is None  # 'sub' is fed by nothing: the arguments way refuses it
    with pytest.raises(InvalidInput, match="'sub'"):
        await unit_for(call).invoke({"item-id": "1", "sub": "s"})
    call.bind_inputs({"ID", "sub"})  # re-bound at load against the exposed inputs: the slots follow
    assert call.path_slots is not None and [slot[0] for slot in call.path_slots] == ["ID", "sub"]
    call = Call(target(plan(["/items/", ("id",), "/", ("sub",)]), reply), [], [("id", FromInput("item-id")), ("sub", FromInput("s"))])
    assert call.path_slots is not None
    await unit_for(call).invoke({"item-id": "i 1", "s": "two", "id": "not this one"})
    assert call.target.transport.sent[-1].url == "https://api.example.com/base/items/i%201/two"  # type: ignore[attr-defined]


async def test_a_call_with_a_value_from_binds_builds_its_scope():
    reply = UpstreamResponse(200, {"content-type": "application/json"}, b"{}")
    call = Call(target(plan(["/items/", ("id",)]), reply), [], [("id", Fixed(Template("{{TENANT}}-x")))])
    assert not call.scope_free  # the value is rendered against the binds: an unread scope would lose them
    await unit_for(call, {"env": {"TENANT": "acme"}}).invoke({})
    assert call.target.transport.sent[-1].url.endswith("/items/acme-x")  # type: ignore[attr-defined]
    header_param = plan(["/items/", ("id",)], {"id": ParamSpec("id", "path"), "h": ParamSpec("h", "header")})
    assert not Call(target(header_param, reply), [], [("id", FromInput("id")), ("h", FromInput("h"))]).scope_free


@pytest.mark.parametrize("blank", [b"", b" \r\n\t\x0b\x0c"])
async def test_a_blank_body_is_empty_and_any_other_byte_is_relayed(blank):
    reply = UpstreamResponse(200, {"content-type": "text/plain"}, blank)
    call = Call(target(plan(["/items/", ("id",)]), reply), [], [("id", FromInput("id"))])
    unit = dataclasses.replace(unit_for(call), mapped=False)
    assert (await unit.invoke({"id": "1"})).__class__.__name__ == "Empty"
    call.target.transport.reply = UpstreamResponse(200, {"content-type": "text/plain"}, blank + b"\xa0")  # type: ignore[attr-defined]
    assert isinstance(await unit.invoke({"id": "1"}), Relayed)


@pytest.mark.parametrize(
    "content_type", ["application/json", "Application/JSON", "application/json; charset=utf-8", "application/x+json", "text/plain", ""]
)
async def test_a_mapped_answer_is_relayed_exactly_when_its_type_is_json(content_type):
    """Every type decides as :func:`is_json_type` does (which takes ``application/json`` without
    parsing it): JSON relayed as it came, anything else decoded and shaped."""
    reply = UpstreamResponse(200, {"content-type": content_type}, b'{"id":1}')
    call = Call(target(plan(["/items/", ("id",)]), reply), [], [("id", FromInput("id"))])
    result = await unit_for(call).invoke({"id": "1"})
    if is_json_type(content_type):
        assert isinstance(result, Relayed) and result.content_type == content_type
    else:
        assert result == JsonAnswer(200, {"id": 1})


# ------------------------------------------------------------------ Relayed


def test_relayed_is_still_a_frozen_dataclass():
    a = Relayed(200, b"x", "text/plain")
    assert a.headers == {} and a.headers is not Relayed(200, b"x", None).headers
    assert a == Relayed(200, b"x", "text/plain", {}, False, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.status = 201  # type: ignore[misc]
    assert dataclasses.replace(a, status=201, binary=True) == Relayed(200 + 1, b"x", "text/plain", {}, True)
    match a:
        case Relayed(status, body, ctype, headers, binary=False):
            assert (status, body, ctype, headers) == (200, b"x", "text/plain", {})
        case _:
            pytest.fail("positional pattern no longer matches")


# ------------------------------------------------------------------ ObservedTransport off path


class _Telemetry:
    tracing = None
    metrics = None


async def test_the_observed_transport_counts_calls_and_adds_no_layer_when_only_logging():
    reply = UpstreamResponse(200, {}, b"ok")
    inner = Recording(reply)
    observed = ObservedTransport(inner, _Telemetry(), "up", "op", "http://h:1")  # type: ignore[arg-type]
    calls = [0]
    token = UPSTREAM_CALLS.set(calls)
    try:
        awaitable = observed.send(OutboundRequest("GET", "http://h:1/x"))
        assert awaitable.cr_code is Recording.send.__code__  # type: ignore[attr-defined]  # the inner's own coroutine
        assert await awaitable is reply
        await observed.send(OutboundRequest("GET", "http://h:1/y"))
    finally:
        UPSTREAM_CALLS.reset(token)
    assert calls == [2] and [r.url for r in inner.sent] == ["http://h:1/x", "http://h:1/y"]


# ------------------------------------------------------------------ AiohttpTransport: slots and headers


async def test_slots_come_back_after_answers_failures_and_refusals():
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path == "/big":
            return web.Response(body=b"x" * 100)
        response = web.Response(body=b"{}", content_type="application/json")
        response.headers.add("ETag", '"first"')
        response.headers.add("ETag", '"last"')
        return response

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    async with on_loopback(app) as url:
        transport = AiohttpTransport(limits=Limits(max_concurrency=1, queue_timeout=0.2, max_response_bytes=50))
        try:
            for _ in range(3):
                ok = await transport.send(OutboundRequest("GET", f"{url}/ok"))
                assert ok.headers["etag"] == '"last"' and ok.headers["content-type"] == "application/json"
                with pytest.raises(UpstreamUnavailable):  # larger than maxResponseBytes
                    await transport.send(OutboundRequest("GET", f"{url}/big"))
                with pytest.raises(InvalidInput):  # a header aiohttp refuses, nothing sent
                    await transport.send(OutboundRequest("GET", f"{url}/ok", [("X-Bad", "a\x01b")]))
            assert transport._slots.free == 1 and not transport._slots.waiters
            # the one slot held by a call in flight: the next waits for it and gets it when it is given back
            first = asyncio.ensure_future(transport.send(OutboundRequest("GET", f"{url}/ok")))
            await asyncio.sleep(0)
            assert transport._slots.free == 0
            second = await transport.send(OutboundRequest("GET", f"{url}/ok"))
            assert (await first).status == second.status == 200
            assert transport._slots.free == 1
        finally:
            await transport.aclose()


async def test_a_busy_upstream_is_still_refused_with_the_queue_timeout():
    gate = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await gate.wait()
        return web.Response(body=b"{}")

    app = web.Application()
    app.router.add_get("/", slow)
    async with on_loopback(app) as url:
        transport = AiohttpTransport(limits=Limits(max_concurrency=1, queue_timeout=0.1))
        try:
            held = asyncio.ensure_future(transport.send(OutboundRequest("GET", f"{url}/")))
            await asyncio.sleep(0.05)
            with pytest.raises(UpstreamBusy, match=r"1 calls in flight, no slot within 0\.1s"):
                await transport.send(OutboundRequest("GET", f"{url}/"))
            gate.set()
            assert (await held).status == 200 and transport._slots.free == 1
        finally:
            gate.set()
            await transport.aclose()


# ------------------------------------------------------------------ ResponseHeaders: the dict it replaced


def test_response_headers_read_as_the_lower_cased_dict_did():
    """The view over aiohttp's multidict answers every read as the dict built per answer before it
    (``{k.lower(): v for k, v in headers.items()}``): the last of a repeated header wins, names
    are iterated once each, lower-cased, in order of first appearance."""
    raw = CIMultiDictProxy(CIMultiDict([
        ("Content-Type", "application/json"), ("ETag", '"first"'), ("Set-Cookie", "a=1"),
        ("etag", '"last"'), ("X-Empty", ""), ("SET-COOKIE", "b=2"),
    ]))
    as_dict = {k.lower(): v for k, v in raw.items()}
    view = ResponseHeaders(raw)
    assert view == as_dict and as_dict == view
    assert list(view) == list(as_dict) and len(view) == len(as_dict) == 4
    assert list(view.items()) == list(as_dict.items())
    for name in ("content-type", "etag", "set-cookie", "x-empty", "retry-after"):
        assert (name in view) is (name in as_dict)
        assert view.get(name) == as_dict.get(name) and view.get(name, "-") == as_dict.get(name, "-")
    assert view["etag"] == '"last"' and view["x-empty"] == ""
    with pytest.raises(KeyError):
        view["retry-after"]
    response = UpstreamResponse(200, view, b"{}")
    assert response.relayed_headers() == UpstreamResponse(200, as_dict, b"{}").relayed_headers()
    assert response.relayed_headers() == {"content-type": "application/json", "etag": '"last"'}
    assert response.content_type == "application/json" and response.is_json
