"""Tables of the reviewer and operator web UI: operators, sessions, login attempts, flow display."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from closedloop.store.models import Base, UTCDateTime

__all__ = ["FlowDisplay", "LoginAttempt", "Operator", "WebSecret", "WebSession"]


class Operator(Base):
    """A person who may open the operator pages under /admin."""

    __tablename__ = "operators"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebSession(Base):
    """A signed-in browser; the cookie carries the id, the table keeps its hash."""

    __tablename__ = "web_sessions"
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    realm: Mapped[str] = mapped_column(String(16))  # review | admin
    principal_id: Mapped[int] = mapped_column(Integer)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class LoginAttempt(Base):
    """One password check, kept so that lockout holds across server processes."""

    __tablename__ = "login_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    realm: Mapped[str] = mapped_column(String(16))
    username: Mapped[str] = mapped_column(String(128))
    succeeded: Mapped[bool] = mapped_column(Boolean)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    client: Mapped[str | None] = mapped_column(String(64))  # the caller's address

    __table_args__ = (
        Index("ix_login_attempts_user_time", "realm", "username", "attempted_at"),
        Index("ix_login_attempts_client_time", "client", "attempted_at"),
    )


class FlowDisplay(Base):
    """How a flow's tasks are shown to reviewers; no row means the defaults."""

    __tablename__ = "flow_display"
    flow_name: Mapped[str] = mapped_column(String(63), primary_key=True)
    show_prediction: Mapped[bool] = mapped_column(Boolean, default=False)


class WebSecret(Base):
    """A random key made once per installation (e.g. for signing cookies), kept encrypted."""

    __tablename__ = "web_secrets"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
