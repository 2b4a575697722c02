"""SageMaker runtime's InvokeEndpoint at ``/endpoints/{name}/invocations``, SigV4-signed."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from closedloop.api.aws import AwsAuth, aws_error, read_body
from closedloop.engine import Engine
from closedloop.errors import (
    ClosedloopError,
    NotFoundError,
    StoreError,
    ValidationError,
)
from closedloop.serving.endpoints import check_endpoint_name
from closedloop.serving.runtime import Invocation, ModelFailedError, ServingRuntime

__all__ = ["MAX_INVOCATION_BYTES", "invocations_router", "serving_runtime"]

MAX_INVOCATION_BYTES = 6 * 1024 * 1024  # BodyBlob's max in botocore's model
_JSON = "application/json"
_VARIANT_HEADER = "x-Amzn-Invoked-Production-Variant"
# sagemaker-runtime's modelled errors; anything else is an InternalFailure.
_CODES: dict[type[ClosedloopError], str] = {
    ValidationError: "ValidationError",
    NotFoundError: "ValidationError",
    ModelFailedError: "ModelError",
    StoreError: "ServiceUnavailable",
}
_STATUS = {"ValidationError": 400, "ModelError": 424, "ServiceUnavailable": 503}


def serving_runtime(engine: Engine) -> ServingRuntime:
    """A runtime over ``engine``'s endpoints and registry."""
    return ServingRuntime(engine.endpoints, engine.registry, engine.flows, engine.loops)


def invocations_router(
    engine: Engine, runtime: ServingRuntime | None = None
) -> APIRouter:
    """The InvokeEndpoint route; ``runtime`` defaults to one over ``engine``."""
    router = APIRouter()
    auth = AwsAuth(engine.keys)
    serving = runtime or serving_runtime(engine)

    @router.post("/endpoints/{name}/invocations")
    async def invoke_endpoint(request: Request, name: str) -> Response:
        try:
            body = await read_body(request, MAX_INVOCATION_BYTES, "Body")
            auth.verify(request, body)
            records, single = _records(name, request, body)
            invocation = await run_in_threadpool(serving.invoke, name, records)
        except ClosedloopError as exc:
            return _error(exc)
        return _answer(invocation, single)

    return router


def _records(name: str, request: Request, body: bytes) -> tuple[list[Any], bool]:
    """The records of the body and whether it was one bare record."""
    check_endpoint_name(name)
    content_type = request.headers.get("content-type", _JSON).split(";")[0].strip()
    if content_type.lower() != _JSON:
        raise ValidationError(
            f"ContentType must be {_JSON!r}; got {content_type!r}", "ContentType"
        )
    accept = request.headers.get("accept", _JSON).split(";")[0].strip().lower()
    if accept not in (_JSON, "*/*", ""):
        raise ValidationError(f"Accept must be {_JSON!r}; got {accept!r}", "Accept")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(
            f"Body must be a JSON object; it is not valid JSON: {exc}", "Body"
        ) from exc
    if not isinstance(value, dict):
        raise ValidationError(
            f'Body must be a JSON object (one record, or {{"instances": [...]}}); got a JSON {type(value).__name__}',
            "Body",
        )
    if list(value) != ["instances"]:
        return [value], True
    instances = value["instances"]
    if not isinstance(instances, list) or not instances:
        raise ValidationError(
            f"instances must be a non-empty list of records; got {instances!r:.80}",
            "instances",
        )
    return instances, False


def _answer(invocation: Invocation, single: bool) -> Response:
    model = invocation.deployment.model
    results = [r.as_dict(model.version) for r in invocation.results]
    document: dict[str, Any] = results[0] if single else {"predictions": results}
    return Response(
        orjson.dumps(document),
        media_type=_JSON,
        headers={_VARIANT_HEADER: f"{model.model}-v{model.version}"},
    )


def _error(exc: ClosedloopError) -> Response:
    """AWS's error shape with sagemaker-runtime's names; auth errors keep their own."""
    if exc.status == 403:
        return aws_error(exc, _JSON)
    code = next(
        (_CODES[k] for k in type(exc).__mro__ if k in _CODES), "InternalFailure"
    )
    status = 413 if exc.status == 413 else _STATUS.get(code, 500)
    body = orjson.dumps(
        {"__type": code, "message": exc.message, "Message": exc.message}
    )
    return Response(
        body, status_code=status, media_type=_JSON, headers={"x-amzn-ErrorType": code}
    )
