"""The reviewer (/review) and operator (/admin) web UI, as one router for the app."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from closedloop.engine import Engine
from closedloop.templates.objects import ObjectUrlSigner, object_router
from closedloop.web.accounts import Accounts
from closedloop.web.admin import admin_router
from closedloop.web.auth import WebAuth
from closedloop.web.desk import Desk
from closedloop.web.http import STATIC_DIR, Pages, static_file, web_route_class
from closedloop.web.review import review_router
from closedloop.web.sessions import Sessions, stored_key

__all__ = ["web_router"]


def web_router(engine: Engine, *, secure_cookies: bool = False) -> APIRouter:
    """Everything under /review and /admin: pages, JSON calls, static files, objects."""
    pages = Pages()
    route_class = web_route_class(pages)
    auth = WebAuth(
        Accounts(engine.ctx), Sessions(engine.ctx, secure_cookies=secure_cookies), pages
    )
    desk = Desk(engine)
    signer = ObjectUrlSigner(stored_key(engine.ctx, "object-signing"))

    router = APIRouter(route_class=route_class)
    router.include_router(review_router(engine, auth, desk, signer, route_class))
    router.include_router(admin_router(engine, auth, desk, route_class))
    router.include_router(object_router(engine, signer))

    @router.get("/review/static/{name}")
    def review_static(name: str) -> Response:
        return static_file(STATIC_DIR, name)

    @router.get("/admin/static/{name}")
    def admin_static(name: str) -> Response:
        return static_file(STATIC_DIR, name)

    return router
