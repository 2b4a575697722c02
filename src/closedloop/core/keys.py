"""Access keys for SigV4-signed requests to the AWS-compatible APIs."""

from __future__ import annotations

import logging
import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from closedloop.core.context import Context
from closedloop.errors import ConflictError, NotFoundError, ValidationError
from closedloop.store.models import AccessKey

__all__ = ["AccessKeyInfo", "AccessKeys", "NewAccessKey"]

logger = logging.getLogger(__name__)
_KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}")
_ID_ALPHABET = string.ascii_uppercase + "234567"


@dataclass(frozen=True)
class NewAccessKey:
    """A key pair as issued; the secret is shown once and never again."""

    name: str
    access_key_id: str
    secret_access_key: str


@dataclass(frozen=True)
class AccessKeyInfo:
    name: str
    access_key_id: str
    created_at: datetime
    disabled: bool


class AccessKeys:
    """Issues, lists, disables and looks up access keys."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def create(self, name: str) -> NewAccessKey:
        if not _KEY_NAME.fullmatch(name):
            raise ValidationError(
                f"key name must be 1-128 letters, digits or _.@- starting with a letter or digit; got {name!r}",
                "name",
            )
        key_id = "AKCL" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))
        secret = secrets.token_urlsafe(30)
        with self._ctx.db.write() as session:
            if (
                session.scalar(select(AccessKey).where(AccessKey.name == name))
                is not None
            ):
                raise ConflictError(f"an access key named {name!r} already exists")
            session.add(
                AccessKey(
                    access_key_id=key_id,
                    name=name,
                    secret_encrypted=self._ctx.secrets.encrypt(secret),
                    created_at=self._ctx.clock(),
                    disabled=False,
                )
            )
        logger.info("access key created: name=%s id=%s", name, key_id)
        return NewAccessKey(name, key_id, secret)

    def list(self) -> list[AccessKeyInfo]:
        with self._ctx.db.read() as session:
            rows = session.scalars(
                select(AccessKey).order_by(AccessKey.created_at)
            ).all()
            return [
                AccessKeyInfo(r.name, r.access_key_id, r.created_at, r.disabled)
                for r in rows
            ]

    def disable(self, name: str) -> None:
        with self._ctx.db.write() as session:
            row = session.scalar(select(AccessKey).where(AccessKey.name == name))
            if row is None:
                raise NotFoundError(f"no access key named {name!r}")
            row.disabled = True
        logger.info("access key disabled: name=%s", name)

    def secret_for(self, access_key_id: str) -> str | None:
        """The secret of an enabled key, or None; used to verify signatures."""
        with self._ctx.db.read() as session:
            row = session.get(AccessKey, access_key_id)
            if row is None or row.disabled:
                return None
            return self._ctx.secrets.decrypt(row.secret_encrypted)
