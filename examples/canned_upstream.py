"""A tiny stand-in upstream for the examples, on loopback only (standard library, no deps).

    python examples/canned_upstream.py 8099 &
    naftiko-run examples/weather-apikey-query.yaml --base-uri skycast=http://127.0.0.1:8099/v2

GET /v2/forecast/daily answers a canned Skycast forecast (so output shaping has something to
shape); every other request is echoed back as JSON: method, path, query, headers, body.
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


class Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else None
        if self.command == "GET" and parts.path == "/v2/forecast/daily":
            payload = FORECAST
        else:
            payload = {
                "method": self.command,
                "path": parts.path,
                "query": parse_qs(parts.query),
                "headers": dict(self.headers.items()),
                "body": body,
            }
        data = json.dumps(payload).encode()
        self.send_response(200)
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
