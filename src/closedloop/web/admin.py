"""The operator pages under /admin: overview, flows, human loops, workers, events."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from closedloop.engine import Engine
from closedloop.pipeline.monitoring import Monitoring
from closedloop.web.auth import SignedIn, WebAuth
from closedloop.web.charts import monitoring_chart
from closedloop.web.desk import Desk
from closedloop.web.http import Redirect
from closedloop.web.reports import LOOP_STATUSES, Reports

__all__ = ["admin_router"]


def admin_router(
    engine: Engine, auth: WebAuth, desk: Desk, route_class: type[Any]
) -> APIRouter:
    """Pages for signed-in operators only; workers' sessions do not open them."""
    router = APIRouter(route_class=route_class)
    reports = Reports(engine.ctx)
    auth.add_login_routes(router, "admin")

    def page(name: str, signed_in: SignedIn, **context: Any) -> Response:
        now = engine.ctx.clock()
        return auth.pages.render(
            name,
            {
                "realm": "admin",
                "signed_in": signed_in,
                "now": now,
                "age": _age,
                **context,
            },
        )

    @router.get("/admin")
    def admin_root() -> Response:
        return Response(status_code=307, headers={"location": "/admin/"})

    @router.get("/admin/", response_class=HTMLResponse)
    def overview(request: Request) -> Response:
        signed_in = auth.require(request, "admin")
        summary = reports.overview()
        return page("admin_overview.html", signed_in, title="Overview", o=summary)

    @router.get("/admin/monitoring", response_class=HTMLResponse)
    def monitoring(request: Request) -> Response:
        signed_in = auth.require(request, "admin")
        watch = Monitoring(engine)
        flows = [
            (f.name, monitoring_chart(watch.daily(f.name))) for f in reports.flows()
        ]
        versions = sorted(engine.registry.list(), key=lambda v: v.created_at)
        return page(
            "admin_monitoring.html",
            signed_in,
            title="Monitoring",
            flows=flows,
            versions=versions,
        )

    @router.get("/admin/flows", response_class=HTMLResponse)
    def flows(request: Request) -> Response:
        signed_in = auth.require(request, "admin")
        return page(
            "admin_flows.html",
            signed_in,
            title="Flow definitions",
            flows=reports.flows(),
        )

    @router.post("/admin/flows/{flow_name}/prediction")
    def set_prediction(
        request: Request,
        flow_name: str,
        show: Annotated[str, Form(max_length=8)] = "",
        csrf_token: Annotated[str, Form(max_length=256)] = "",
    ) -> Response:
        auth.require_change(request, "admin", csrf_token)
        desk.set_show_prediction(flow_name, show == "on")
        raise Redirect("/admin/flows")

    @router.get("/admin/loops", response_class=HTMLResponse)
    def loops(
        request: Request,
        flow: Annotated[str, Query(max_length=63)] = "",
        status: Annotated[str, Query(max_length=16)] = "",
    ) -> Response:
        signed_in = auth.require(request, "admin")
        return page(
            "admin_loops.html",
            signed_in,
            title="Human loops",
            loops=reports.loops(flow, status),
            flows=[f.name for f in reports.flows()],
            statuses=LOOP_STATUSES,
            flow=flow,
            status=status,
        )

    @router.get("/admin/loops/{name}", response_class=HTMLResponse)
    def loop(request: Request, name: str) -> Response:
        signed_in = auth.require(request, "admin")
        detail = reports.loop(name)
        return page("admin_loop.html", signed_in, title=f"Loop {name}", d=detail)

    @router.get("/admin/workers", response_class=HTMLResponse)
    def workers(request: Request) -> Response:
        signed_in = auth.require(request, "admin")
        return page(
            "admin_workers.html",
            signed_in,
            title="Workers and teams",
            workers=reports.workers(),
            teams=engine.workforce.list_teams(),
        )

    @router.get("/admin/events", response_class=HTMLResponse)
    def events(request: Request) -> Response:
        signed_in = auth.require(request, "admin")
        return page(
            "admin_events.html",
            signed_in,
            title="Recent events",
            events=engine.events.list_events(100),
        )

    return router


def _age(since: datetime | None, now: datetime) -> str:
    """A short human age such as ``3m 12s`` or ``2h 5m``."""
    if since is None:
        return "-"
    seconds = max(0, int((now - since).total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60}s"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600}h"
