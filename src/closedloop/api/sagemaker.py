"""The SageMaker control plane (JSON 1.1, X-Amz-Target) under ``/sagemaker``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from closedloop.api.aws import (
    SAGEMAKER_CODES,
    AwsAuth,
    aws_error,
    epoch,
    json_body,
    read_body,
)
from closedloop.api.render import render_ui_template
from closedloop.core.flows import FlowInfo
from closedloop.core.paging import PageRequest
from closedloop.core.workforce import WorkteamInfo
from closedloop.engine import Engine
from closedloop.errors import ClosedloopError, NotFoundError, ValidationError
from closedloop.spec import validate_request

__all__ = ["OPERATIONS", "sagemaker_router"]

_JSON = "application/x-amz-json-1.1"
_TARGET_PREFIX = "SageMaker."
Operation = Callable[[Engine, dict[str, Any]], dict[str, Any]]


def sagemaker_router(engine: Engine, auth: AwsAuth) -> APIRouter:
    """One POST route that dispatches on X-Amz-Target to the operations below."""
    router = APIRouter(prefix="/sagemaker")

    @router.post("/")
    @router.post("")
    async def dispatch(request: Request) -> Response:
        try:
            body = await read_body(request)
            auth.verify(request, body)
            operation = _operation(request.headers.get("x-amz-target", ""))
            params = json_body(body)
            result = await run_in_threadpool(operation, engine, params)
        except ClosedloopError as exc:
            return aws_error(exc, _JSON, SAGEMAKER_CODES)
        return Response(orjson.dumps(result), media_type=_JSON)

    return router


def _operation(target: str) -> Operation:
    name = target.removeprefix(_TARGET_PREFIX)
    if not target.startswith(_TARGET_PREFIX) or name not in OPERATIONS:
        raise ValidationError(
            f"X-Amz-Target must name a supported operation, e.g. SageMaker.CreateFlowDefinition; got {target!r}",
            "X-Amz-Target",
        )
    return OPERATIONS[name]


def _page(params: dict[str, Any]) -> PageRequest:
    return PageRequest(
        created_after=params.get("CreationTimeAfter"),
        created_before=params.get("CreationTimeBefore"),
        sort_order=params.get("SortOrder", "Descending"),
        max_results=params.get("MaxResults"),
        next_token=params.get("NextToken"),
    )


def _with_token(result: dict[str, Any], token: str | None) -> dict[str, Any]:
    if token:
        result["NextToken"] = token
    return result


def create_human_task_ui(engine: Engine, params: dict[str, Any]) -> dict[str, Any]:
    return {"HumanTaskUiArn": engine.task_uis.create_request(params).arn}


def describe_human_task_ui(engine: Engine, params: dict[str, Any]) -> dict[str, Any]:
    validate_request("sagemaker", "DescribeHumanTaskUi", params)
    ui = engine.task_uis.describe(params["HumanTaskUiName"])
    return {
        "HumanTaskUiArn": ui.arn,
        "HumanTaskUiName": ui.name,
        "HumanTaskUiStatus": "Active",
        "CreationTime": epoch(ui.created_at),
        "UiTemplate": {"ContentSha256": ui.content_sha256},
    }


def list_human_task_uis(engine: Engine, params: dict[str, Any]) -> dict[str, Any]:
    validate_request("sagemaker", "ListHumanTaskUis", params)
    page = engine.task_uis.list(_page(params))
    summaries = [
        {
            "HumanTaskUiName": u.name,
            "HumanTaskUiArn": u.arn,
            "CreationTime": epoch(u.created_at),
        }
        for u in page.rows
    ]
    return _with_token({"HumanTaskUiSummaries": summaries}, page.next_token)


def delete_human_task_ui(engine: Engine, params: dict[str, Any]) -> dict[str, Any]:
    validate_request("sagemaker", "DeleteHumanTaskUi", params)
    engine.task_uis.delete(params["HumanTaskUiName"])
    return {}


def create_flow_definition(engine: Engine, params: dict[str, Any]) -> dict[str, Any]:
    return {"FlowDefinitionArn": engine.flows.create(params).arn}


def describe_flow_definition(engine: Engine, params: dict[str, Any]) -> dict[str, Any]:
    validate_request("sagemaker", "DescribeFlowDefinition", params)
    flow = engine.flows.describe(params["FlowDefinitionName"])
    result = {key: flow.definition[key] for key in _ECHOED if key in flow.definition}
    result.update(_flow_summary(flow))
    return result


_ECHOED = (
    "HumanLoopRequestSource",
    "HumanLoopActivationConfig",
    "HumanLoopConfig",
    "OutputConfig",
    "RoleArn",
)


def _flow_summary(flow: FlowInfo) -> dict[str, Any]:
    return {
        "FlowDefinitionArn": flow.arn,
        "FlowDefinitionName": flow.name,
        "FlowDefinitionStatus": flow.status,
        "CreationTime": epoch(flow.created_at),
    }


def list_flow_definitions(engine: Engine, params: dict[str, Any]) -> dict[str, Any]:
    validate_request("sagemaker", "ListFlowDefinitions", params)
    page = engine.flows.list(_page(params))
    return _with_token(
        {"FlowDefinitionSummaries": [_flow_summary(f) for f in page.rows]},
        page.next_token,
    )


def delete_flow_definition(engine: Engine, params: dict[str, Any]) -> dict[str, Any]:
    validate_request("sagemaker", "DeleteFlowDefinition", params)
    engine.flows.delete(params["FlowDefinitionName"])
    return {}


def _workteam(engine: Engine, team: WorkteamInfo) -> dict[str, Any]:
    settings = engine.settings
    return {
        "WorkteamName": team.name,
        "WorkteamArn": team.arn,
        "WorkforceArn": f"arn:aws:sagemaker:{settings.region}:{settings.account_id}:workforce/default",
        "MemberDefinitions": [{"OidcMemberDefinition": {"Groups": [team.name]}}],
        "Description": team.description or f"closedloop private team {team.name}",
        "CreateDate": epoch(team.created_at),
        "LastUpdatedDate": epoch(team.updated_at),
    }


def describe_workteam(engine: Engine, params: dict[str, Any]) -> dict[str, Any]:
    validate_request("sagemaker", "DescribeWorkteam", params)
    try:
        team = engine.workforce.describe_team(params["WorkteamName"])
    except NotFoundError as exc:
        raise ValidationError(exc.message, "WorkteamName") from exc
    return {"Workteam": _workteam(engine, team)}


def list_workteams(engine: Engine, params: dict[str, Any]) -> dict[str, Any]:
    validate_request("sagemaker", "ListWorkteams", params)
    teams = [
        t
        for t in engine.workforce.list_teams()
        if params.get("NameContains", "") in t.name
    ]
    by_date = params.get("SortBy", "CreateDate") == "CreateDate"
    teams.sort(
        key=(lambda t: (t.created_at, t.name))
        if by_date
        else (lambda t: (t.name, t.created_at))
    )
    if params.get("SortOrder", "Ascending") == "Descending":
        teams.reverse()
    start = _offset_token(params.get("NextToken"))
    size = params.get("MaxResults", 100)
    chunk = teams[start : start + size]
    token = f"offset:{start + size}" if start + size < len(teams) else None
    return _with_token({"Workteams": [_workteam(engine, t) for t in chunk]}, token)


def _offset_token(token: str | None) -> int:
    if token is None:
        return 0
    number = token.removeprefix("offset:")
    if not token.startswith("offset:") or not number.isdigit():
        raise ValidationError(
            "NextToken is not valid for this listing; pass the token a previous call returned",
            "NextToken",
        )
    return int(number)


OPERATIONS: dict[str, Operation] = {
    "CreateHumanTaskUi": create_human_task_ui,
    "DescribeHumanTaskUi": describe_human_task_ui,
    "ListHumanTaskUis": list_human_task_uis,
    "DeleteHumanTaskUi": delete_human_task_ui,
    "CreateFlowDefinition": create_flow_definition,
    "DescribeFlowDefinition": describe_flow_definition,
    "ListFlowDefinitions": list_flow_definitions,
    "DeleteFlowDefinition": delete_flow_definition,
    "DescribeWorkteam": describe_workteam,
    "ListWorkteams": list_workteams,
    "RenderUiTemplate": render_ui_template,
}
