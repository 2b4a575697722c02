"""The native JSON API's conventions: responses and the error shape."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response

from closedloop.errors import ClosedloopError

__all__ = ["json_response", "native_error"]


def json_response(value: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(value), status_code=status, media_type="application/json"
    )


def native_error(exc: ClosedloopError) -> Response:
    """``{"error": {"code", "message", "field"}}`` with the error's HTTP status."""
    error: dict[str, Any] = {"code": exc.aws_code, "message": exc.message}
    field = getattr(exc, "field", None)
    if field:
        error["field"] = field
    return json_response({"error": error}, exc.status)
