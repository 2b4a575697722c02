"""The reviewer pages under /review: queues, the work page, its JSON calls and the task frame."""

from __future__ import annotations

import logging
import secrets
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from markupsafe import escape

from closedloop.core.workforce import WorkerInfo
from closedloop.engine import Engine
from closedloop.errors import ValidationError
from closedloop.templates.objects import ObjectUrlSigner
from closedloop.templates.render import (
    frame_origin,
    render_task_page,
    task_frame_csp,
)
from closedloop.web.auth import SignedIn, WebAuth
from closedloop.web.desk import Desk, TaskView

__all__ = ["review_router"]

logger = logging.getLogger(__name__)
MAX_ANSWER_REQUEST_BYTES = 2_097_152


class _Review:
    """Route bodies of the reviewer UI; each resolves the signed-in worker first."""

    def __init__(
        self, engine: Engine, auth: WebAuth, desk: Desk, signer: ObjectUrlSigner
    ) -> None:
        self.engine = engine
        self.auth = auth
        self.desk = desk
        self.signer = signer

    def worker(self, signed_in: SignedIn) -> WorkerInfo:
        return self.engine.workforce.describe_worker(signed_in.principal.name)

    def queues_page(self, request: Request) -> Response:
        signed_in = self.auth.require(request, "review")
        worker = self.worker(signed_in)
        queues = self.desk.queues(worker)
        return self.auth.pages.render(
            "review_queues.html",
            {
                "title": "Your queues",
                "realm": "review",
                "signed_in": signed_in,
                "worker": worker,
                "queues": queues,
                "total": sum(q.available for q in queues),
            },
        )

    def work_page(self, request: Request) -> Response:
        signed_in = self.auth.require(request, "review")
        return self.auth.pages.render(
            "review_work.html",
            {"title": "Working", "realm": "review", "signed_in": signed_in},
        )

    def next_task(self, request: Request) -> Response:
        signed_in = self.auth.require_change(request, "review", None)
        view = self.desk.current_or_next(self.worker(signed_in))
        return _json({"task": self._task_json(view) if view else None})

    def _task_json(self, view: TaskView) -> dict[str, Any]:
        return {
            "taskId": view.task_id,
            "flow": view.flow,
            "title": view.title,
            "description": view.description,
            "leaseExpiresAt": view.lease_expires_at.isoformat(),
            "serverNow": self.engine.ctx.clock().isoformat(),
            "frameUrl": f"/review/tasks/{view.task_id}/frame",
        }

    def answer(self, request: Request, task_id: int, body: bytes) -> Response:
        signed_in = self.auth.require_change(request, "review", None)
        content = _answer_content(body)
        result = self.engine.tasks.answer(self.worker(signed_in), task_id, content)
        return _json(
            {
                "taskId": result.task_id,
                "humanLoopStatus": result.loop_status,
                "answersReceived": result.answers_received,
                "answersNeeded": result.answers_needed,
            }
        )

    def skip(self, request: Request, task_id: int) -> Response:
        """Release the task after leasing the next, so the skipped one is not handed back at once."""
        signed_in = self.auth.require_change(request, "review", None)
        worker = self.worker(signed_in)
        claimed = self.engine.tasks.claim_next(worker)
        self.engine.tasks.release(worker, task_id)
        if claimed is None:
            return _json(
                {
                    "task": None,
                    "message": "No other task is waiting; the skipped one went back to the queue.",
                }
            )
        view = self.desk.current_or_next(worker)
        return _json({"task": self._task_json(view) if view else None})

    def frame(self, request: Request, task_id: int) -> Response:
        signed_in = self.auth.require(request, "review")
        content = self.desk.frame(self.worker(signed_in), task_id)
        nonce = secrets.token_urlsafe(18)
        settings = self.engine.ctx.settings
        try:
            html = render_task_page(
                content.template,
                content.input_content,
                object_url=self.signer.sign,
                nonce=nonce,
                template_scripts=settings.inline_template_scripts,
                script_origins=settings.template_script_origins,
            )
        except ValidationError as exc:
            html = _frame_problem(exc.message)
        response = HTMLResponse(html)
        response.headers["content-security-policy"] = task_frame_csp(
            nonce,
            origin=frame_origin(request.url.scheme, request.headers.get("host", "")),
            style_origins=settings.template_script_origins,
        )
        return response


def _answer_content(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_ANSWER_REQUEST_BYTES:
        raise ValidationError(
            f"the answer must be at most {MAX_ANSWER_REQUEST_BYTES} bytes; got {len(body)}",
            "answerContent",
        )
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(
            "the request body must be JSON like {answerContent: {...}}", "body"
        ) from exc
    content = document.get("answerContent") if isinstance(document, dict) else None
    if not isinstance(content, dict):
        raise ValidationError(
            f"answerContent must be a JSON object; got {type(content).__name__}",
            "answerContent",
        )
    return content


def _frame_problem(message: str) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Task</title>'
        f"</head><body><p>This task cannot be shown: {escape(message)}</p></body></html>"
    )


def _json(value: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(value, status)


def review_router(
    engine: Engine,
    auth: WebAuth,
    desk: Desk,
    signer: ObjectUrlSigner,
    route_class: type[Any],
) -> APIRouter:
    """Pages and JSON calls for signed-in workers."""
    router = APIRouter(route_class=route_class)
    review = _Review(engine, auth, desk, signer)
    auth.add_login_routes(router, "review")

    @router.get("/review")
    def review_root() -> Response:
        return Response(status_code=307, headers={"location": "/review/"})

    @router.get("/review/", response_class=HTMLResponse)
    def queues(request: Request) -> Response:
        return review.queues_page(request)

    @router.get("/review/work", response_class=HTMLResponse)
    def work(request: Request) -> Response:
        return review.work_page(request)

    @router.post("/review/api/tasks/next")
    def next_task(request: Request) -> Response:
        return review.next_task(request)

    @router.post("/review/api/tasks/{task_id}/answer")
    async def answer(request: Request, task_id: int) -> Response:
        body = await request.body()
        return await run_in_threadpool(review.answer, request, task_id, body)

    @router.post("/review/api/tasks/{task_id}/skip")
    def skip(request: Request, task_id: int) -> Response:
        return review.skip(request, task_id)

    @router.get("/review/tasks/{task_id}/frame", response_class=HTMLResponse)
    def frame(request: Request, task_id: int) -> Response:
        return review.frame(request, task_id)

    return router
