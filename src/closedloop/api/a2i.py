"""The A2I runtime API (rest-json) under ``/a2i``, as botocore's model describes it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from closedloop.api.aws import AwsAuth, aws_error, epoch, json_body, read_body
from closedloop.api.batching import StartBatcher
from closedloop.core.loops import LoopInfo
from closedloop.core.paging import PageRequest
from closedloop.engine import Engine
from closedloop.errors import ClosedloopError, ValidationError
from closedloop.spec import parse_timestamp, validate_request

__all__ = ["a2i_router"]

_JSON = "application/json"
_SERVICE = "sagemaker-a2i-runtime"


def a2i_router(engine: Engine, auth: AwsAuth) -> APIRouter:
    """Routes for StartHumanLoop, DescribeHumanLoop, ListHumanLoops, StopHumanLoop, DeleteHumanLoop."""
    router = APIRouter(prefix="/a2i")
    loops = engine.loops
    # SQLite takes one writer at a time anyway, and these calls are one short
    # transaction each: running them on the event loop saves two thread
    # hand-offs per request, which on two cores cost half the throughput.
    inline = engine.ctx.db.is_sqlite
    # Loop starts arriving together are written in one transaction.
    starts = StartBatcher(loops.start_many)

    async def handle(
        request: Request, work: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> Response:
        try:
            body = await read_body(request)
            auth.verify(request, body)
            params = json_body(body) if request.method == "POST" else {}
            result = work(params) if inline else await run_in_threadpool(work, params)
        except ClosedloopError as exc:
            return aws_error(exc, _JSON)
        return Response(orjson.dumps(result), media_type=_JSON)

    @router.post("/human-loops")
    async def start_human_loop(request: Request) -> Response:
        try:
            body = await read_body(request)
            auth.verify(request, body)
            started = await starts.start(json_body(body), size=len(body))
        except ClosedloopError as exc:
            return aws_error(exc, _JSON)
        return Response(
            orjson.dumps({"HumanLoopArn": started.loop.arn}), media_type=_JSON
        )

    @router.post("/human-loops/stop")
    async def stop_human_loop(request: Request) -> Response:
        def work(params: dict[str, Any]) -> dict[str, Any]:
            validate_request(_SERVICE, "StopHumanLoop", params)
            loops.stop(params["HumanLoopName"])
            return {}

        return await handle(request, work)

    @router.get("/human-loops/{name}")
    async def describe_human_loop(request: Request, name: str) -> Response:
        def work(_: dict[str, Any]) -> dict[str, Any]:
            validate_request(_SERVICE, "DescribeHumanLoop", {"HumanLoopName": name})
            return _describe(loops.describe(name))

        return await handle(request, work)

    @router.delete("/human-loops/{name}")
    async def delete_human_loop(request: Request, name: str) -> Response:
        def work(_: dict[str, Any]) -> dict[str, Any]:
            validate_request(_SERVICE, "DeleteHumanLoop", {"HumanLoopName": name})
            loops.delete(name)
            return {}

        return await handle(request, work)

    @router.get("/human-loops")
    async def list_human_loops(request: Request) -> Response:
        query = request.query_params

        def work(_: dict[str, Any]) -> dict[str, Any]:
            params = _list_params(query.multi_items())
            validate_request(_SERVICE, "ListHumanLoops", params)
            page = loops.list(params["FlowDefinitionArn"], _page_request(params))
            result: dict[str, Any] = {
                "HumanLoopSummaries": [_summary(loop) for loop in page.rows]
            }
            if page.next_token:
                result["NextToken"] = page.next_token
            return result

        return await handle(request, work)

    return router


_LIST_FIELDS = (
    "CreationTimeAfter",
    "CreationTimeBefore",
    "FlowDefinitionArn",
    "SortOrder",
    "NextToken",
    "MaxResults",
)


def _list_params(items: list[tuple[str, str]]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, value in items:
        if key not in _LIST_FIELDS:
            raise ValidationError(
                f"Unknown query parameter {key!r}; allowed: {', '.join(_LIST_FIELDS)}",
                key,
            )
        if key in params:
            raise ValidationError(f"{key} must be given once; got it twice", key)
        params[key] = value
    if "MaxResults" in params:
        params["MaxResults"] = _integer(params["MaxResults"], "MaxResults")
    for key in ("CreationTimeAfter", "CreationTimeBefore"):
        if key in params:
            params[key] = parse_timestamp(params[key], key)
    return params


def _integer(value: str, field: str) -> int:
    try:
        return int(value)
    except ValueError as exc:
        raise ValidationError(
            f"{field} must be an integer; got {value!r}", field
        ) from exc


def _page_request(params: dict[str, Any]) -> PageRequest:
    return PageRequest(
        created_after=params.get("CreationTimeAfter"),
        created_before=params.get("CreationTimeBefore"),
        sort_order=params.get("SortOrder", "Descending"),
        max_results=params.get("MaxResults"),
        next_token=params.get("NextToken"),
    )


def _describe(loop: LoopInfo) -> dict[str, Any]:
    result: dict[str, Any] = {
        "CreationTime": epoch(loop.created_at),
        "HumanLoopStatus": loop.status,
        "HumanLoopName": loop.name,
        "HumanLoopArn": loop.arn,
        "FlowDefinitionArn": loop.flow_arn,
        "HumanLoopOutput": {"OutputS3Uri": loop.output_uri},
    }
    if loop.failure_code:
        result["FailureCode"] = loop.failure_code
    if loop.failure_reason:
        result["FailureReason"] = loop.failure_reason
    return result


def _summary(loop: LoopInfo) -> dict[str, Any]:
    result: dict[str, Any] = {
        "HumanLoopName": loop.name,
        "HumanLoopStatus": loop.status,
        "CreationTime": epoch(loop.created_at),
        "FlowDefinitionArn": loop.flow_arn,
    }
    if loop.failure_reason:
        result["FailureReason"] = loop.failure_reason
    return result
