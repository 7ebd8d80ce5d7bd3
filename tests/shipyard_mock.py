"""A small example-replaying upstream built from the Shipyard OpenAPI documents.

The reference engine's tutorial tests run against Microcks; this replays the same named examples:
an example named ``/param=value`` answers a request whose path parameter has that value, one named
``?param=value`` a request with that query parameter, and an example with a plain name (``allShips``,
``created``) any other request to the operation. A request matching nothing gets the operation's
``404`` (or ``400``) example, like Microcks' fallback. String values ``{{ request.body/field }}``
are filled from the JSON request body, as Microcks templates are. Every request is recorded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import yaml
from aiohttp import web

OPENAPI = Path(__file__).resolve().parent / "fixtures" / "versions" / "openapi"
APIS = {"registry": "naftiko-shipyard-maritime-registry-api.yaml", "dockyard": "naftiko-shipyard-legacy-dockyard-api.yaml"}


@dataclass
class Operation:
    method: str
    pattern: re.Pattern
    responses: dict


@dataclass
class ShipyardMock:
    operations: dict[str, list[Operation]] = field(default_factory=dict)
    requests: list[tuple[str, str, str, dict, bytes]] = field(default_factory=list)  # api, method, path, headers, body

    @classmethod
    def from_documents(cls) -> ShipyardMock:
        mock = cls()
        for api, name in APIS.items():
            doc = yaml.safe_load((OPENAPI / name).read_text("utf-8"))
            ops = []
            for path, item in doc["paths"].items():
                regex = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$"
                for method, op in item.items():
                    if method in ("get", "post", "put", "patch", "delete"):
                        ops.append(Operation(method.upper(), re.compile(regex), op.get("responses", {})))
            mock.operations[api] = ops
        return mock

    async def handle(self, request: web.Request) -> web.Response:
        api, _, rest = request.match_info["tail"].partition("/")
        path = "/" + rest
        body = await request.read()
        self.requests.append((api, request.method, path, dict(request.headers), body))
        for op in self.operations.get(api, []):
            match = op.pattern.match(path)
            if op.method == request.method and match:
                names = [f"/{k}={v}" for k, v in match.groupdict().items()] + [f"?{k}={v}" for k, v in request.query.items()]
                try:
                    sent = orjson.loads(body) if body else {}
                except orjson.JSONDecodeError:
                    sent = {}
                return self._answer(op, names, sent if isinstance(sent, dict) else {})
        return web.json_response({"error": "no such operation"}, status=404)

    @staticmethod
    def _answer(op: Operation, names: list[str], sent: dict) -> web.Response:
        fallback = None
        for status, response in sorted(op.responses.items()):
            contents = response.get("content") or {}
            if not contents:
                if status.startswith("2") and any(n.startswith("/") for n in names):
                    return web.Response(status=int(status))
                continue
            for media, content in contents.items():
                examples = content.get("examples") or {}
                for name in names:
                    if name in examples:
                        return _reply(int(status), media, _fill(examples[name]["value"], sent))
                plain = [n for n in examples if not n.startswith(("/", "?"))]
                if plain and status.startswith("2") and not any(n.startswith("/") for n in names):
                    return _reply(int(status), media, _fill(examples[plain[0]]["value"], sent))
                if plain and fallback is None and status.startswith("4"):
                    fallback = (int(status), media, examples[plain[0]]["value"])
        if fallback:
            return _reply(*fallback)
        return web.json_response({"error": "no example"}, status=404)


_TEMPLATE = re.compile(r"^\{\{\s*request\.body/(\w+)\s*\}\}$")


def _fill(value: object, sent: dict) -> object:
    if isinstance(value, dict):
        return {k: _fill(v, sent) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, sent) for v in value]
    if isinstance(value, str) and (m := _TEMPLATE.match(value)):
        return sent.get(m.group(1), "")
    return value


def _reply(status: int, media: str, value: object) -> web.Response:
    body = value.encode() if isinstance(value, str) else orjson.dumps(value)
    return web.Response(status=status, body=body, content_type=media)


async def start_mock() -> tuple[ShipyardMock, web.AppRunner, str]:
    mock = ShipyardMock.from_documents()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", mock.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return mock, runner, f"http://127.0.0.1:{port}"
