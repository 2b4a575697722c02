"""Tables of the retraining pipeline: runs, their recorded steps, and the run lock."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from closedloop.store.models import Base, UTCDateTime

__all__ = ["PipelineLock", "PipelineRun", "PipelineStep"]


class PipelineRun(Base):
    """One cycle of feedback, merge, train, evaluate, gate, register and deploy."""

    __tablename__ = "pipeline_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(String(63), index=True)
    trigger: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # running | succeeded | failed
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)


class PipelineStep(Base):
    """A step of a run: its status, inputs, outputs and timings."""

    __tablename__ = "pipeline_steps"
    run_id: Mapped[int] = mapped_column(
        ForeignKey("pipeline_runs.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(
        String(16)
    )  # running | succeeded | failed | skipped
    outputs: Mapped[str] = mapped_column(Text, default="{}")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)


class PipelineLock(Base):
    """Held by the one run of a project in progress; a lapsed lease may be taken over."""

    __tablename__ = "pipeline_locks"
    project: Mapped[str] = mapped_column(String(63), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
