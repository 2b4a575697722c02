"""A tiny host server for task frames: host page, CSP-protected frame, static files, an image."""

from __future__ import annotations

import secrets
import struct
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from closedloop.templates import render_task_page, task_frame_csp

IMAGE_SIZE = (400, 200)

HOST_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>host</title></head>
<body><iframe id="task" src="/task/{task}" sandbox="allow-scripts allow-forms"
 style="width: 1000px; height: 900px; border: 0"></iframe>
<script>
document.cookie = "session=host-secret-cookie; path=/";
window.messages = [];
window.addEventListener("message", function (event) {{
  if (event.source !== document.getElementById("task").contentWindow) return;
  window.messages.push(event.data);
}});
document.getElementById("task").addEventListener("load", function () {{
  this.contentWindow.postMessage({{type: "closedloop:focus"}}, "*");
}});
</script></body></html>"""


def png(width: int, height: int) -> bytes:
    """A grey PNG of the given size, made without image libraries."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + bytes([200]) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            chunk(b"IHDR", header),
            chunk(b"IDAT", zlib.compress(rows)),
            chunk(b"IEND", b""),
        ]
    )


class TaskHost:
    """Serves host pages, task frames with a strict CSP, static files and an image."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[str, str]] = {}
        self.api_hits: list[str] = []
        self.image = png(*IMAGE_SIZE)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def add(
        self, template: str, task_input: dict[str, Any], *, scripts: bool = False
    ) -> str:
        """Register a task page; returns the URL of a host page embedding it."""
        task_id = secrets.token_hex(6)
        nonce = secrets.token_urlsafe(16)
        page = render_task_page(
            template,
            task_input,
            nonce=nonce,
            object_url=lambda uri: "/img/" + uri.rsplit("/", 1)[-1],
            template_scripts=scripts,
        )
        self.pages[task_id] = (page, nonce)
        return f"{self.url}/host/{task_id}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        host = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                return

            def do_GET(self) -> None:
                kind, _, rest = self.path.lstrip("/").partition("/")
                if kind == "host":
                    self._send(HOST_PAGE.format(task=rest).encode(), "text/html")
                elif kind == "task" and rest in host.pages:
                    page, nonce = host.pages[rest]
                    self._send(page.encode(), "text/html", task_frame_csp(nonce))
                elif kind == "img":
                    self._send(host.image, "image/png")
                elif kind == "api":
                    host.api_hits.append(self.path)
                    self._send(b'{"secret": "api-data"}', "application/json")
                else:
                    self.send_error(404)

            def do_POST(self) -> None:
                host.api_hits.append("POST " + self.path)
                self._send(b"{}", "application/json")

            def _send(self, body: bytes, kind: str, csp: str | None = None) -> None:
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                if csp:
                    self.send_header("Content-Security-Policy", csp)
                self.end_headers()
                self.wfile.write(body)

        return Handler
