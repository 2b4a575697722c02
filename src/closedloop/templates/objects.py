"""Short-lived signed URLs for the objects a task UI shows (grant_read_access)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import mimetypes
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson
from fastapi import APIRouter
from fastapi.responses import Response

from closedloop.errors import NotFoundError, StoreError, ValidationError

if TYPE_CHECKING:
    from closedloop.engine import Engine

__all__ = ["OBJECT_PATH_PREFIX", "ObjectUrlSigner", "object_router"]

OBJECT_PATH_PREFIX = "/review/objects/"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ObjectUrlSigner:
    """Signs object URIs into expiring tokens and checks them (HMAC-SHA256)."""

    def __init__(
        self,
        secret: bytes,
        ttl_seconds: int = 900,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("secret must be at least 16 bytes")
        if ttl_seconds < 1:
            raise ValueError(f"ttl_seconds must be at least 1; got {ttl_seconds!r}")
        self._secret = secret
        self.ttl_seconds = ttl_seconds
        self._clock = clock

    def sign(self, uri: str) -> str:
        """The path under which the object at ``uri`` can be read until the TTL ends."""
        expires = int(self._clock()) + self.ttl_seconds
        payload = _b64(orjson.dumps([uri, expires]))
        return f"{OBJECT_PATH_PREFIX}{payload}.{self._mac(payload)}"

    def verify(self, token: str) -> str:
        """The URI a token grants; ValidationError when it is forged or expired."""
        payload, _, mac = token.partition(".")
        if not payload or not hmac.compare_digest(
            mac.encode(), self._mac(payload).encode()
        ):
            raise ValidationError("object token is not valid", "token")
        uri, expires = orjson.loads(_unb64(payload))
        if expires < self._clock():
            raise ValidationError("object token has expired; reload the task", "token")
        return str(uri)

    def _mac(self, payload: str) -> str:
        digest = hmac.new(self._secret, payload.encode(), hashlib.sha256).digest()
        return _b64(digest[:24])


def object_router(engine: Engine, signer: ObjectUrlSigner) -> APIRouter:
    """GET /review/objects/{token}: the bytes of a signed object, for the task frame."""
    router = APIRouter()

    @router.get(OBJECT_PATH_PREFIX + "{token}")
    def read_object(token: str) -> Response:
        uri = signer.verify(token)
        try:
            data = engine.ctx.objects.read(uri)
        except StoreError as exc:
            raise NotFoundError(f"object {uri!r} does not exist") from exc
        media_type, _ = mimetypes.guess_type(uri)
        headers = {
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": f"private, max-age={signer.ttl_seconds}",
            # An SVG or HTML object opened on its own must not run in our origin.
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
        }
        return Response(
            data, media_type=media_type or "application/octet-stream", headers=headers
        )

    return router
