"""A real ``closedloop serve`` on a free loopback port, in a background thread."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import uvicorn

from closedloop.api.app import create_app, proxy_options
from closedloop.engine import Engine
from closedloop.errors import ClosedloopError

__all__ = ["BackgroundServer"]


class BackgroundServer:
    """Serves ``engine`` over HTTP until the ``with`` block ends."""

    def __init__(self, engine: Engine, *, sweep: bool = True) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port: int = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(engine, sweep=sweep),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            **proxy_options(),
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, name="closedloop-serve", daemon=True
        )

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise ClosedloopError(
            f"the server on {self.url} did not answer /healthz within 30 s"
        )

    def __exit__(self, *_: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
