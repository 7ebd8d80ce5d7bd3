"""A tiny stand-in upstream for the examples, on loopback only (standard library, no deps).

    python examples/canned_upstream.py 8099 &

Canned answers, so output shaping and orchestration have real documents to work on:

- ``GET /v2/forecast/daily``: a Skycast forecast (``weather-apikey-query.yaml``);
- ``GET /garden/beds/{id}``: a garden bed (``garden-orchestration.yaml``); ``B2`` and ``B5``
  exist, any other id is a 404 ``{"error": "no such bed"}``;
- ``GET /garden/plants``: the plant catalogue (``garden-orchestration.yaml``).

Every other request is echoed back as JSON: method, path, query, headers, body.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

FORECAST = {
    "city": {"id": 2759794, "name": "Amsterdam", "country": "NL", "timezone": 3600},
    "cnt": 2,
    "list": [
        {"date": "2026-01-15", "temp": {"min": 1.5, "max": 6.0}, "weather": [{"id": 500, "description": "light rain"}]},
        {"date": "2026-01-16", "temp": {"min": -0.5, "max": 4.0}, "weather": [{"id": 800, "description": "clear sky"}]},
    ],
}

BEDS = {
    "B2": {
        "id": "B2",
        "label": "North bed 2",
        "lastWatered": "2026-05-10",
        "sensors": {"moisturePct": 31, "tempC": 19.5},
        "plantings": [{"code": "TOM", "rows": 2}, {"code": "BAS", "rows": 1}, {"code": "CHI", "rows": 1}],
    },
    "B5": {
        "id": "B5",
        "label": "Herb spiral",
        "lastWatered": "2026-05-12",
        "sensors": {"moisturePct": 18, "tempC": 21.0},
        "plantings": [{"code": "ROS", "rows": 1}, {"code": "BAS", "rows": 2}],
    },
}

PLANTS = [
    {"code": "BAS", "commonName": "Basil", "waterEveryDays": 1, "family": "Lamiaceae"},
    {"code": "CHI", "commonName": "Chilli", "waterEveryDays": 3, "family": "Solanaceae"},
    {"code": "ROS", "commonName": "Rosemary", "waterEveryDays": 7, "family": "Lamiaceae"},
    {"code": "TOM", "commonName": "Tomato", "waterEveryDays": 2, "family": "Solanaceae"},
]


class Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else None
        status, payload = 200, None
        if self.command == "GET" and parts.path == "/v2/forecast/daily":
            payload = FORECAST
        elif self.command == "GET" and parts.path == "/garden/plants":
            payload = PLANTS
        elif self.command == "GET" and parts.path.startswith("/garden/beds/"):
            bed = BEDS.get(parts.path.rsplit("/", 1)[-1])
            status, payload = (200, bed) if bed else (404, {"error": "no such bed"})
        else:
            payload = {
                "method": self.command,
                "path": parts.path,
                "query": parse_qs(parts.query),
                "headers": dict(self.headers.items()),
                "body": body,
            }
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, *args) -> None:  # quiet
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8099
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
