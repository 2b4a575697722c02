"""The ``closedloop serve`` application: every HTTP surface plus the background sweeper."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from closedloop import __version__
from closedloop.api.a2i import a2i_router
from closedloop.api.aws import AwsAuth
from closedloop.api.invocations import invocations_router
from closedloop.api.metrics import metrics_router
from closedloop.api.native import json_response, native_error
from closedloop.api.sagemaker import sagemaker_router
from closedloop.api.worker import worker_router
from closedloop.engine import Engine
from closedloop.errors import ClosedloopError, ValidationError
from closedloop.pipeline.triggers import Triggers
from closedloop.web import web_router

__all__ = ["Sweeper", "create_app", "proxy_options"]

logger = logging.getLogger(__name__)


class Sweeper:
    """Expires loops, returns lapsed leases and delivers webhooks every few seconds."""

    def __init__(self, engine: Engine, interval: float) -> None:
        self._engine = engine
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="closedloop-sweeper", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.sweep_once()

    def sweep_once(self) -> None:
        try:
            self._engine.loops.sweep()
            self._engine.events.deliver_due()
        except ClosedloopError:
            logger.exception(
                "background sweep failed; retrying in %.1fs", self._interval
            )


def proxy_options(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """uvicorn's options for X-Forwarded-For: trusted only from ``FORWARDED_ALLOW_IPS``.

    Without the variable no proxy is trusted, not even one on loopback: a
    proxy, tunnel or port-forward on the same host may pass on a header the
    client wrote, and the sign-in limits count failures by client address.
    """
    allowed = environ.get("FORWARDED_ALLOW_IPS", "").strip()
    if not allowed:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": allowed}


def create_app(
    engine: Engine,
    *,
    sweep: bool = True,
    secure_cookies: bool = False,
    triggers: Triggers | None = None,
) -> FastAPI:
    """The ASGI app for ``engine``; with ``sweep`` a background thread keeps timers running.

    ``secure_cookies`` marks the web UI's cookies Secure: set it when clients reach
    the server over HTTPS (directly or through a proxy). ``triggers``, when given,
    start the project's pipeline runs while the server runs.
    """
    sweeper = Sweeper(engine, engine.settings.sweep_seconds) if sweep else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if sweeper is not None:
            sweeper.start()
        if triggers is not None:
            triggers.start()
        yield
        if triggers is not None:
            triggers.stop()
        if sweeper is not None:
            sweeper.stop()

    app = FastAPI(
        title="closedloop",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    auth = AwsAuth(engine.keys)
    app.include_router(a2i_router(engine, auth))
    app.include_router(sagemaker_router(engine, auth))
    app.include_router(worker_router(engine))
    app.include_router(metrics_router(engine))
    app.include_router(web_router(engine, secure_cookies=secure_cookies))
    app.include_router(invocations_router(engine))

    @app.get("/healthz")
    def healthz() -> Response:
        return json_response({"status": "ok", "version": __version__})

    @app.exception_handler(ClosedloopError)
    async def closedloop_error(_: Request, exc: ClosedloopError) -> Response:
        if exc.status >= 500:
            logger.error("request failed: %s", exc.message)
        return native_error(exc)

    @app.exception_handler(RequestValidationError)
    async def request_error(_: Request, exc: RequestValidationError) -> Response:
        first = (
            exc.errors()[0] if exc.errors() else {"loc": ("request",), "msg": "invalid"}
        )
        field = ".".join(str(p) for p in first["loc"][1:]) or "request"
        return native_error(ValidationError(f"{field}: {first['msg']}", field))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> Response:
        logger.exception("unexpected error")
        return native_error(
            ClosedloopError("internal error; the server log has the details")
        )

    return app
