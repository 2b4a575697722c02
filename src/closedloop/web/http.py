"""What every web route shares: security headers, error pages, Jinja2 pages, static files."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape

from closedloop.errors import ClosedloopError, NotFoundError

__all__ = [
    "HOST_CSP",
    "STATIC_DIR",
    "Pages",
    "Redirect",
    "error_response",
    "security_headers",
    "static_file",
    "web_route_class",
]

logger = logging.getLogger(__name__)
PAGES_DIR = Path(__file__).with_name("pages")
STATIC_DIR = Path(__file__).with_name("static")
HOST_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
_MEDIA = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}


class Redirect(Exception):
    """Raised by a route to send the browser elsewhere (e.g. to the sign-in page)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


def security_headers(response: Response) -> Response:
    """Add the headers every page carries; a route may have set a stricter CSP first."""
    headers = response.headers
    headers.setdefault("content-security-policy", HOST_CSP)
    if "frame-ancestors 'self'" in headers["content-security-policy"]:
        headers.setdefault("x-frame-options", "SAMEORIGIN")
    headers.setdefault("x-frame-options", "DENY")
    headers.setdefault("x-content-type-options", "nosniff")
    headers.setdefault("referrer-policy", "same-origin")
    headers.setdefault("cross-origin-opener-policy", "same-origin")
    headers.setdefault("cache-control", "no-store")
    return response


class Pages:
    """Jinja2 pages from web/pages, autoescaped; untrusted text is never marked safe."""

    def __init__(self) -> None:
        self._env = Environment(
            loader=FileSystemLoader(PAGES_DIR),
            autoescape=select_autoescape(["html"], default=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def render(
        self, name: str, context: Mapping[str, Any], status: int = 200
    ) -> HTMLResponse:
        html = self._env.get_template(name).render(**context)
        return HTMLResponse(html, status_code=status)


def _is_api(request: Request) -> bool:
    return "/api/" in request.url.path


def error_response(request: Request, exc: ClosedloopError, pages: Pages) -> Response:
    """JSON for the pages' fetch calls, an HTML page otherwise."""
    if exc.status >= 500:
        logger.error("web request failed: %s", exc.message)
    code = type(exc).__name__
    if _is_api(request):
        return JSONResponse({"error": code, "message": exc.message}, exc.status)
    return pages.render(
        "error.html",
        {
            "title": "Error",
            "status": exc.status,
            "message": exc.message,
            "home": _home(request),
            "realm": _home(request).strip("/"),
            "signed_in": None,
        },
        exc.status,
    )


def _home(request: Request) -> str:
    return "/admin/" if request.url.path.startswith("/admin") else "/review/"


def web_route_class(pages: Pages) -> type[APIRoute]:
    """A route class that turns Redirect and closedloop errors into responses, with headers."""

    class WebRoute(APIRoute):
        def get_route_handler(
            self,
        ) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def handle(request: Request) -> Response:
                try:
                    response = await handler(request)
                except Redirect as redirect:
                    response = Response(
                        status_code=303, headers={"location": redirect.url}
                    )
                except ClosedloopError as exc:
                    response = error_response(request, exc, pages)
                return security_headers(response)

            return handle

    return WebRoute


def static_file(folder: Path, name: str) -> FileResponse:
    """A file from ``folder`` by plain name only; anything else is not found."""
    suffix = Path(name).suffix
    path = folder / name
    if (
        "/" in name
        or name.startswith(".")
        or suffix not in _MEDIA
        or not path.is_file()
    ):
        raise NotFoundError(f"no static file named {name!r}")
    response = FileResponse(path, media_type=_MEDIA[suffix])
    response.headers["cache-control"] = "no-cache"
    return response
