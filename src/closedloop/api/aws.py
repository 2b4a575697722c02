"""What the AWS-compatible adapters share: SigV4 authentication, bodies, error shapes."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from closedloop.api.sigv4 import Credential, SignedRequest, verify_request
from closedloop.core.keys import AccessKeys
from closedloop.errors import (
    ClosedloopError,
    ConflictError,
    LimitExceededError,
    NotFoundError,
    ValidationError,
)

__all__ = ["MAX_BODY_BYTES", "AwsAuth", "aws_error", "epoch", "json_body", "read_body"]

logger = logging.getLogger(__name__)
MAX_BODY_BYTES = 16 * 1024 * 1024
_SECRET_TTL_SECONDS = 10.0

# The SageMaker control plane names three errors differently from the A2I runtime.
SAGEMAKER_CODES: Mapping[type[ClosedloopError], str] = {
    NotFoundError: "ResourceNotFound",
    ConflictError: "ResourceInUse",
    LimitExceededError: "ResourceLimitExceeded",
}


class PayloadTooLargeError(ValidationError):
    status = 413


async def read_body(
    request: Request, limit: int = MAX_BODY_BYTES, field: str = "body"
) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(
            f"{field} must be at most {limit} bytes; got {declared}", field
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(
                f"{field} must be at most {limit} bytes; got more", field
            )
        chunks.append(chunk)
    return b"".join(chunks)


def json_body(body: bytes) -> dict[str, Any]:
    """Parse a JSON object body; an empty body is an empty object."""
    if not body.strip():
        return {}
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(
            f"request body must be a JSON object; it is not valid JSON: {exc}", "body"
        ) from exc
    if not isinstance(value, dict):
        raise ValidationError(
            f"request body must be a JSON object; got a JSON {type(value).__name__}",
            "body",
        )
    return value


def epoch(moment: datetime) -> float:
    """AWS JSON protocols send timestamps as epoch seconds."""
    return round(moment.timestamp(), 3)


def aws_error(
    exc: ClosedloopError,
    content_type: str,
    codes: Mapping[type[ClosedloopError], str] | None = None,
) -> Response:
    """Render an error so botocore raises the modelled exception by name."""
    renamed = codes or {}
    code = next((renamed[k] for k in type(exc).__mro__ if k in renamed), exc.aws_code)
    body = orjson.dumps({"__type": code, "message": exc.message})
    return Response(
        body,
        status_code=exc.status,
        media_type=content_type,
        headers={"x-amzn-ErrorType": code},
    )


class AwsAuth:
    """Verifies SigV4 signatures against closedloop's access keys.

    Decrypted secrets are cached for a few seconds so a burst of requests costs
    one database read; a disabled key stops working within that time.
    """

    def __init__(self, keys: AccessKeys) -> None:
        self._keys = keys
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def verify(self, request: Request, body: bytes) -> Credential:
        scope = request.scope
        signed = SignedRequest(
            method=request.method,
            raw_path=scope.get("raw_path", scope["path"].encode()).decode(
                "utf-8", "surrogateescape"
            ),
            query_string=scope.get("query_string", b"").decode(
                "utf-8", "surrogateescape"
            ),
            headers=[
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]
            ],
            body=body,
        )
        return verify_request(signed, self._secret)

    def _secret(self, access_key_id: str) -> str | None:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(access_key_id)
        if cached is not None and now - cached[0] < _SECRET_TTL_SECONDS:
            return cached[1]
        secret = self._keys.secret_for(access_key_id)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[access_key_id] = (now, secret)
        return secret
