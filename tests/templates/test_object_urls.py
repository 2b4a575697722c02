"""Signed object URLs: tokens that expire and cannot be forged, and the route serving them."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from closedloop.api.native import native_error
from closedloop.engine import Engine
from closedloop.errors import ClosedloopError, ValidationError
from closedloop.templates import ObjectUrlSigner, object_router, render_task_ui

SECRET = b"0123456789abcdef0123456789abcdef"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def test_signed_path_verifies_back_to_the_uri() -> None:
    signer = ObjectUrlSigner(SECRET)
    path = signer.sign("s3://bucket/a b/ü.png")
    assert path.startswith("/review/objects/")
    assert (
        signer.verify(path.removeprefix("/review/objects/")) == "s3://bucket/a b/ü.png"
    )


def test_token_expires_after_the_ttl() -> None:
    clock = Clock()
    signer = ObjectUrlSigner(SECRET, ttl_seconds=60, clock=clock)
    token = signer.sign("s3://bucket/k").removeprefix("/review/objects/")
    clock.now += 61
    with pytest.raises(ValidationError, match="object token has expired"):
        signer.verify(token)


@pytest.mark.parametrize("tamper", ["other-secret", "edit-payload", "garbage"])
def test_forged_tokens_are_refused(tamper: str) -> None:
    token = (
        ObjectUrlSigner(SECRET).sign("s3://bucket/k").removeprefix("/review/objects/")
    )
    payload, _, mac = token.partition(".")
    forged = {
        "other-secret": ObjectUrlSigner(b"x" * 32)
        .sign("s3://bucket/k")
        .removeprefix("/review/objects/"),
        "edit-payload": payload[:-2] + "AA." + mac,
        "garbage": "ü.ü",
    }[tamper]
    with pytest.raises(ValidationError, match="object token is not valid"):
        ObjectUrlSigner(SECRET).verify(forged)


def test_signer_refuses_a_short_secret() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        ObjectUrlSigner(b"short")


def test_route_serves_the_object_with_safe_headers(engine: Engine) -> None:
    engine.ctx.objects.write_atomic("s3://bucket/photos/cat.png", b"\x89PNG fake")
    signer = ObjectUrlSigner(SECRET, ttl_seconds=120)
    app = FastAPI()  # just the object route, with this test's signer
    app.include_router(object_router(engine, signer))
    app.add_exception_handler(ClosedloopError, lambda _, exc: native_error(exc))  # type: ignore[arg-type]
    client = TestClient(app)

    url = render_task_ui(
        "{{ task.input.o | grant_read_access }}",
        {"o": "s3://bucket/photos/cat.png"},
        object_url=signer.sign,
    )
    response = client.get(url)
    assert response.status_code == 200
    assert response.content == b"\x89PNG fake"
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "private, max-age=120"

    assert client.get(signer.sign("s3://bucket/photos/none.png")).status_code == 404
    assert client.get("/review/objects/bad.token").status_code == 400
