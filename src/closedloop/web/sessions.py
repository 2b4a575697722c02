"""Browser sessions: signed cookies backed by a table, per-session CSRF tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response
from itsdangerous import BadSignature, Signer
from sqlalchemy import delete, select

from closedloop.core.context import Context
from closedloop.errors import StoreError
from closedloop.store.models_web import WebSecret, WebSession

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "DEVICE_LIFETIME",
    "SESSION_LIFETIME",
    "SessionData",
    "Sessions",
    "cookie_name",
    "csrf_matches",
    "device_cookie_name",
    "login_cookie_name",
    "same_origin",
    "stored_key",
]

logger = logging.getLogger(__name__)
SESSION_LIFETIME = timedelta(hours=12)
# How long a browser is remembered for the usernames that signed in with it.
DEVICE_LIFETIME = timedelta(days=30)
_DEVICE_NAMES = 8  # usernames one browser remembers, newest first
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_KEY_NAME = "session-signing"


@dataclass(frozen=True)
class SessionData:
    realm: str
    principal_id: int
    csrf_token: str


def cookie_name(realm: str) -> str:
    return f"closedloop_{realm}"


def login_cookie_name(realm: str) -> str:
    return f"closedloop_{realm}_login"


def device_cookie_name(realm: str) -> str:
    return f"closedloop_{realm}_device"


class Sessions:
    """Creates, reads and ends sessions; the cookie holds a signed random id."""

    def __init__(self, ctx: Context, *, secure_cookies: bool) -> None:
        self._ctx = ctx
        self._secure = secure_cookies
        key = stored_key(ctx, _KEY_NAME)
        self._signer = Signer(key, salt="closedloop.web.session")
        self._device_key = hmac.new(key, b"closedloop.web.device", "sha256").digest()

    def start(self, response: Response, realm: str, principal_id: int) -> None:
        """Record a new session and set its cookie on ``response``."""
        session_id = secrets.token_urlsafe(32)
        now = self._ctx.clock()
        with self._ctx.db.write() as session:
            session.execute(delete(WebSession).where(WebSession.expires_at <= now))
            session.add(
                WebSession(
                    id_hash=_digest(session_id),
                    realm=realm,
                    principal_id=principal_id,
                    csrf_token=secrets.token_urlsafe(32),
                    created_at=now,
                    expires_at=now + SESSION_LIFETIME,
                )
            )
        self._set_cookie(response, cookie_name(realm), session_id, realm)
        response.delete_cookie(login_cookie_name(realm), path=f"/{realm}")

    def read(self, request: Request, realm: str) -> SessionData | None:
        session_id = self._unsign(request.cookies.get(cookie_name(realm)))
        if session_id is None:
            return None
        with self._ctx.db.read() as session:
            row = session.scalar(
                select(WebSession).where(WebSession.id_hash == _digest(session_id))
            )
        if row is None or row.realm != realm or row.expires_at <= self._ctx.clock():
            return None
        return SessionData(row.realm, row.principal_id, row.csrf_token)

    def end(self, request: Request, response: Response, realm: str) -> None:
        session_id = self._unsign(request.cookies.get(cookie_name(realm)))
        if session_id is not None:
            with self._ctx.db.write() as session:
                session.execute(
                    delete(WebSession).where(WebSession.id_hash == _digest(session_id))
                )
        response.delete_cookie(cookie_name(realm), path=f"/{realm}")

    def login_token(self, request: Request, response: Response, realm: str) -> str:
        """The CSRF token of the sign-in form, tied to a short-lived signed cookie."""
        token = self._unsign(request.cookies.get(login_cookie_name(realm)))
        if token is None:
            token = secrets.token_urlsafe(32)
            self._set_cookie(response, login_cookie_name(realm), token, realm)
        return token

    def check_login_token(self, request: Request, realm: str, sent: str) -> bool:
        expected = self._unsign(request.cookies.get(login_cookie_name(realm)))
        return expected is not None and hmac.compare_digest(expected, sent)

    def knows_device(self, request: Request, realm: str, username: str) -> bool:
        """Whether this browser signed in to ``realm`` as ``username`` lately.

        The per-address sign-in limit spares such a browser. The proof is a
        signed cookie of keyed digests with a time each, so it cannot be made
        up, moved to the other realm, or read for the usernames it stands for.
        """
        digest = self._device_digest(realm, username)
        return any(entry[0] == digest for entry in self._device_entries(request, realm))

    def remember_device(
        self, request: Request, response: Response, realm: str, username: str
    ) -> None:
        """Note in this browser's cookie that it signed in as ``username``."""
        digest = self._device_digest(realm, username)
        now = int(self._ctx.clock().timestamp())
        entries = [[digest, now]] + [
            entry
            for entry in self._device_entries(request, realm)
            if entry[0] != digest
        ]
        raw = base64.urlsafe_b64encode(orjson.dumps(entries[:_DEVICE_NAMES]))
        response.set_cookie(
            device_cookie_name(realm),
            self._device_signer(realm).sign(raw).decode(),
            max_age=int(DEVICE_LIFETIME.total_seconds()),
            path=f"/{realm}",
            secure=self._secure,
            httponly=True,
            samesite="lax",
        )

    def _device_entries(self, request: Request, realm: str) -> list[list[Any]]:
        """The cookie's [digest, signed-in time] pairs that are still fresh."""
        value = request.cookies.get(device_cookie_name(realm))
        if not value:
            return []
        try:
            raw = self._device_signer(realm).unsign(value.encode())
            entries = orjson.loads(base64.urlsafe_b64decode(raw))
        except (BadSignature, ValueError, orjson.JSONDecodeError):
            return []
        oldest = self._ctx.clock().timestamp() - DEVICE_LIFETIME.total_seconds()
        return [
            entry
            for entry in (entries if isinstance(entries, list) else [])
            if isinstance(entry, list)
            and len(entry) == 2
            and isinstance(entry[0], str)
            and isinstance(entry[1], int)
            and entry[1] > oldest
        ][:_DEVICE_NAMES]

    def _device_signer(self, realm: str) -> Signer:
        return Signer(self._device_key, salt=f"closedloop.web.device.{realm}")

    def _device_digest(self, realm: str, username: str) -> str:
        message = f"{realm}\0{username}".encode()
        return hmac.new(self._device_key, message, hashlib.sha256).hexdigest()[:32]

    def _set_cookie(
        self, response: Response, name: str, value: str, realm: str
    ) -> None:
        response.set_cookie(
            name,
            self._signer.sign(value.encode()).decode(),
            max_age=int(SESSION_LIFETIME.total_seconds()),
            path=f"/{realm}",
            secure=self._secure,
            httponly=True,
            samesite="lax",
        )

    def _unsign(self, value: str | None) -> str | None:
        if not value:
            return None
        try:
            return self._signer.unsign(value.encode()).decode()
        except BadSignature:
            return None


def stored_key(ctx: Context, name: str) -> bytes:
    """A random key made on first use, kept encrypted with the installation's secret."""
    key = _read_key(ctx, name)
    if key is not None:
        return key
    try:
        with ctx.db.write() as session:
            if session.get(WebSecret, name) is None:
                session.add(
                    WebSecret(
                        name=name,
                        value_encrypted=ctx.secrets.encrypt(secrets.token_urlsafe(48)),
                        created_at=ctx.clock(),
                    )
                )
    except StoreError:
        logger.info("another process made the %s key first", name)
    key = _read_key(ctx, name)
    if key is None:
        raise StoreError(f"the web key {name!r} could not be stored")
    return key


def _read_key(ctx: Context, name: str) -> bytes | None:
    with ctx.db.read() as session:
        row = session.get(WebSecret, name)
        return ctx.secrets.decrypt(row.value_encrypted).encode() if row else None


def csrf_matches(expected: str, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(expected, sent or "")


def same_origin(request: Request) -> bool:
    """False when the browser says the request came from another origin."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()
