"""The demo integrator: a site on another origin that embeds liveaudio with the SDK.

It plays both parts an integrator has: a page (index.html, which loads embed.js from the
liveaudio server) and a tiny backend that holds the appSign and mints tokens through the
server's HTTP API (``POST /api/v1/tokens``), so the appSign never reaches the browser.

    python demo/serve.py --server http://127.0.0.1:8000 --port 8001

The appSign comes from ``LIVEAUDIO_DEMO_APP_SIGN`` (scripts/run reads it from the database).
Only loopback: it listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import urllib.error
import urllib.request
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEMO_APP_ID = 1234567
MAX_BODY = 4096
TOKEN_FIELDS = ("roomID", "userID", "userName", "role")


class DemoHandler(SimpleHTTPRequestHandler):
    server_url = ""
    app_sign = ""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, directory=str(HERE / "site"), **kwargs)

    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", page_policy(self.server_url))
        super().end_headers()

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path == "/demo-config.json":
            self._json(HTTPStatus.OK, {"server": self.server_url, "appID": DEMO_APP_ID})
            return
        super().do_GET()

    def do_POST(self) -> None:  # noqa: N802
        if self.path != "/token":
            self._json(HTTPStatus.NOT_FOUND, {"code": "not_found", "message": "No such page."})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"code": "too_large", "message": ""})
            return
        try:
            asked = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            asked = None
        if not isinstance(asked, dict):
            self._json(HTTPStatus.BAD_REQUEST, {"code": "bad_request", "message": "JSON, please."})
            return
        body = {name: asked[name] for name in TOKEN_FIELDS if asked.get(name) is not None}
        status, answer = mint_token(self.server_url, self.app_sign, body)
        self._json(status, answer)

    def _json(self, status: int, data: dict) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(payload)


def page_policy(server_url: str) -> str:
    """A strict policy an integrator's page can keep with the SDK: its script, its session
    request and the room's iframe come from the liveaudio server; nothing runs inline."""
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' {server_url}",
            f"connect-src 'self' {server_url}",
            f"frame-src {server_url}",
            "style-src 'self'",
            "img-src 'self' data:",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def mint_token(server_url: str, app_sign: str, body: dict) -> tuple[int, dict]:
    """What an integrator's backend does: ask liveaudio for a token, with the appSign."""
    credentials = base64.b64encode(f"{DEMO_APP_ID}:{app_sign}".encode()).decode()
    request = urllib.request.Request(
        server_url + "/api/v1/tokens",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Basic {credentials}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read())
        except ValueError:
            return exc.code, {"code": "server_error", "message": str(exc)}
    except OSError as exc:
        return HTTPStatus.BAD_GATEWAY, {"code": "server_unreachable", "message": str(exc)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="http://127.0.0.1:8000")
    default_port = int(os.environ.get("LIVEAUDIO_DEMO_PORT", "8001"))
    parser.add_argument("--port", type=int, default=default_port)
    args = parser.parse_args()
    DemoHandler.server_url = args.server.rstrip("/")
    DemoHandler.app_sign = os.environ.get("LIVEAUDIO_DEMO_APP_SIGN", "")
    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), DemoHandler)
    print(f"Demo integrator page: http://127.0.0.1:{args.port}/", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


if __name__ == "__main__":
    main()
