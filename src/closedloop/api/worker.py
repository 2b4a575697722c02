"""The worker API under ``/api/v1/worker``: claim, answer and release tasks with a bearer token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from closedloop.api.aws import json_body, read_body
from closedloop.api.native import json_response
from closedloop.core.tasks import ClaimedTask
from closedloop.core.workforce import WorkerInfo
from closedloop.engine import Engine
from closedloop.errors import AuthenticationError, ValidationError

__all__ = ["worker_router"]


def worker_router(engine: Engine) -> APIRouter:
    router = APIRouter(prefix="/api/v1/worker")

    def current_worker(request: Request) -> WorkerInfo:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationError(
                "send the worker token as 'Authorization: Bearer <token>'",
                "MissingAuthenticationTokenException",
            )
        return engine.workforce.authenticate(token.strip())

    @router.post("/tasks/next")
    def claim_next(request: Request) -> Response:
        task = engine.tasks.claim_next(current_worker(request))
        if task is None:
            return Response(status_code=204)
        return json_response(_task(task))

    @router.post("/tasks/{task_id}/answer")
    async def answer(request: Request, task_id: int) -> Response:
        worker = await run_in_threadpool(current_worker, request)
        body = json_body(await read_body(request))
        content = body.get("answerContent")
        if not isinstance(content, dict):
            raise ValidationError(
                f"answerContent must be a JSON object; got {type(content).__name__}",
                "answerContent",
            )
        unknown = set(body) - {"answerContent"}
        if unknown:
            raise ValidationError(
                f"Unknown field {sorted(unknown)[0]!r} in the answer; allowed: answerContent",
                sorted(unknown)[0],
            )
        result = await run_in_threadpool(engine.tasks.answer, worker, task_id, content)
        return json_response(
            {
                "taskId": result.task_id,
                "humanLoopName": result.human_loop_name,
                "humanLoopStatus": result.loop_status,
                "answersReceived": result.answers_received,
                "answersNeeded": result.answers_needed,
            }
        )

    @router.post("/tasks/{task_id}/release")
    def release(request: Request, task_id: int) -> Response:
        engine.tasks.release(current_worker(request), task_id)
        return json_response({"taskId": task_id, "released": True})

    @router.get("/me")
    def me(request: Request) -> Response:
        worker = current_worker(request)
        return json_response(
            {
                "name": worker.name,
                "workerId": worker.worker_id,
                "teams": list(worker.teams),
            }
        )

    return router


def _task(task: ClaimedTask) -> dict[str, Any]:
    return {
        "taskId": task.task_id,
        "humanLoopName": task.human_loop_name,
        "flowDefinitionName": task.flow_definition_name,
        "humanTaskUiName": task.task_ui_name,
        "title": task.title,
        "description": task.description,
        "keywords": list(task.keywords),
        "inputContent": task.input_content,
        "leasedAt": task.leased_at.isoformat(),
        "leaseExpiresAt": task.lease_expires_at.isoformat(),
    }
