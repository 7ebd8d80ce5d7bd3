"""The loopback upstream behind bench/conformance/everything.yml: fixed bodies the conformance
suite's fixture tools relay (text, a PNG, a WAV, opaque bytes, a 500, a greeting).

    python bench/conformance/upstream.py PORT      # serves on 127.0.0.1:PORT until killed

Standard library only; bodies come from bench/conformance/files/ (read once at start).
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

FILES = Path(__file__).resolve().parent / "files"
ROUTES: dict[str, tuple[int, str, bytes]] = {
    "/simple-text": (200, "text/plain; charset=utf-8", b"This is a simple text response for testing."),
    "/image": (200, "image/png", (FILES / "pixel.png").read_bytes()),
    "/audio": (200, "audio/wav", (FILES / "tone.wav").read_bytes()),
    # not text, not an image or audio: naftiko relays it as an embedded blob resource
    "/bytes": (200, "application/octet-stream", bytes(range(256))),
    "/error": (500, "text/plain; charset=utf-8", b"This tool intentionally returns an error for testing"),
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/greet":  # the tasks scenarios' plain synchronous tool
            name = parse_qs(url.query).get("name", ["World"])[0]
            status, content_type, body = 200, "text/plain; charset=utf-8", f"Hello, {name}!".encode()
        else:
            status, content_type, body = ROUTES.get(url.path, (404, "text/plain", b"no such fixture"))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main(port: int) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"conformance upstream on http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(int(sys.argv[1]))
