"""Tables of the metadata database, as SQLAlchemy 2 declarative models."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AccessKey",
    "Answer",
    "Base",
    "Delivery",
    "Event",
    "FlowDefinition",
    "HumanLoop",
    "HumanTaskUi",
    "Task",
    "TeamMember",
    "Webhook",
    "Worker",
    "Workteam",
]

_NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        if value is None:
            return None
        return (
            value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=_NAMING)


class AccessKey(Base):
    """An access key pair for SigV4; the secret is stored encrypted."""

    __tablename__ = "access_keys"
    access_key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)


class Workteam(Base):
    """A private team of workers; flow definitions send their tasks to one."""

    __tablename__ = "workteams"
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Worker(Base):
    """A person who answers tasks; authenticates with a bearer token or a password."""

    __tablename__ = "workers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    worker_id: Mapped[str] = mapped_column(String(16), unique=True)
    subject: Mapped[str] = mapped_column(String(36), unique=True)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TeamMember(Base):
    __tablename__ = "team_members"
    team_name: Mapped[str] = mapped_column(
        ForeignKey("workteams.name", ondelete="CASCADE"), primary_key=True
    )
    worker_pk: Mapped[int] = mapped_column(
        ForeignKey("workers.id", ondelete="CASCADE"), primary_key=True
    )


class HumanTaskUi(Base):
    """A worker task template (Liquid with crowd HTML elements)."""

    __tablename__ = "human_task_uis"
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    content: Mapped[str] = mapped_column(Text)
    content_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FlowDefinition(Base):
    """Where loops go (team, task UI, TaskCount) and where their output is written."""

    __tablename__ = "flow_definitions"
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    team_name: Mapped[str] = mapped_column(ForeignKey("workteams.name"))
    task_ui_name: Mapped[str | None] = mapped_column(String(63))
    task_count: Mapped[int] = mapped_column(Integer)
    availability_seconds: Mapped[int] = mapped_column(Integer)
    time_limit_seconds: Mapped[int] = mapped_column(Integer)
    output_path: Mapped[str] = mapped_column(String(1024))
    definition: Mapped[str] = mapped_column(Text)


class HumanLoop(Base):
    """One item under human review; complete when TaskCount workers answered."""

    __tablename__ = "human_loops"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    )
    name: Mapped[str] = mapped_column(String(63), unique=True)
    flow_name: Mapped[str] = mapped_column(String(63))
    status: Mapped[str] = mapped_column(String(16))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_reason: Mapped[str | None] = mapped_column(String(1024))
    input_content: Mapped[str] = mapped_column(Text)
    input_sha256: Mapped[str] = mapped_column(String(64))
    data_attributes: Mapped[str | None] = mapped_column(Text)
    task_count: Mapped[int] = mapped_column(Integer)
    answer_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    output_uri: Mapped[str] = mapped_column(String(2048))
    output_written: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )

    __table_args__ = (
        Index("ix_human_loops_flow_created", "flow_name", "created_at", "id"),
        Index(
            "ix_human_loops_unpublished",
            "id",
            sqlite_where=text("status = 'Completed' AND NOT output_written"),
            postgresql_where=text("status = 'Completed' AND NOT output_written"),
        ),
        Index(
            "ix_human_loops_open_expiry",
            "expires_at",
            sqlite_where=text("status IN ('InProgress', 'Stopping')"),
            postgresql_where=text("status IN ('InProgress', 'Stopping')"),
        ),
    )


class Task(Base):
    """One of a loop's TaskCount slots; a worker claims it under a lease."""

    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    )
    loop_id: Mapped[int] = mapped_column(
        ForeignKey("human_loops.id", ondelete="CASCADE")
    )
    team_name: Mapped[str] = mapped_column(String(63))
    status: Mapped[str] = mapped_column(
        String(16)
    )  # available | leased | answered | cancelled
    worker_pk: Mapped[int | None] = mapped_column(Integer)
    leased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index(
            "ix_tasks_available",
            "team_name",
            "id",
            sqlite_where=text("status = 'available'"),
            postgresql_where=text("status = 'available'"),
        ),
        Index(
            "ix_tasks_leased",
            "lease_expires_at",
            sqlite_where=text("status = 'leased'"),
            postgresql_where=text("status = 'leased'"),
        ),
        Index("ix_tasks_loop_worker", "loop_id", "worker_pk"),
        Index(
            "ix_tasks_worker_loop",
            "worker_pk",
            "loop_id",
            sqlite_where=text("worker_pk IS NOT NULL"),
            postgresql_where=text("worker_pk IS NOT NULL"),
        ),
    )


class Answer(Base):
    """A worker's submitted answer to one task of a loop."""

    __tablename__ = "answers"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    )
    loop_id: Mapped[int] = mapped_column(
        ForeignKey("human_loops.id", ondelete="CASCADE")
    )
    task_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    worker_pk: Mapped[int] = mapped_column(ForeignKey("workers.id"))
    answer_content: Mapped[str] = mapped_column(Text)
    acceptance_time: Mapped[datetime] = mapped_column(UTCDateTime)
    submission_time: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("loop_id", "worker_pk"),)


class Event(Base):
    """A loop status change, in the shape of A2I's EventBridge event (an outbox row)."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    )
    detail_type: Mapped[str] = mapped_column(String(128))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Webhook(Base):
    """A receiver of events; each delivery is signed with its secret."""

    __tablename__ = "webhooks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(2048))
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Delivery(Base):
    """One event owed to one webhook, retried with backoff until delivered."""

    __tablename__ = "deliveries"
    event_id: Mapped[int] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), primary_key=True
    )
    webhook_id: Mapped[int] = mapped_column(
        ForeignKey("webhooks.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(1024))

    __table_args__ = (
        Index(
            "ix_deliveries_pending",
            "next_attempt_at",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )
