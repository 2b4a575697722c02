"""Tables of training and the model registry: runs, model versions, aliases and their history."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from closedloop.store.models import Base, UTCDateTime

__all__ = ["ModelAliasHistoryRow", "ModelAliasRow", "ModelVersionRow", "TrainingRunRow"]


class TrainingRunRow(Base):
    """One fit of a trainer on a dataset version; JSON columns hold text."""

    __tablename__ = "training_runs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model: Mapped[str] = mapped_column(String(63), index=True)
    status: Mapped[str] = mapped_column(String(16))  # InProgress | Completed | Failed
    dataset: Mapped[str] = mapped_column(String(160))
    dataset_id: Mapped[str] = mapped_column(String(16))
    trainer: Mapped[str] = mapped_column(String(256))
    params: Mapped[str] = mapped_column(Text)
    seed: Mapped[int] = mapped_column(Integer)
    library_versions: Mapped[str] = mapped_column(Text)
    metrics: Mapped[str] = mapped_column(Text)
    artifact_hashes: Mapped[str] = mapped_column(Text)
    model_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    duration_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    failure: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ModelVersionRow(Base):
    """One registered version of a model with its artifacts' hashes and lineage."""

    __tablename__ = "model_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(63))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32))
    dataset: Mapped[str] = mapped_column(String(160))
    run_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    metrics: Mapped[str] = mapped_column(Text)
    artifact_uri: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    onnx_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    onnx_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    classes: Mapped[str] = mapped_column(Text)
    feature_columns: Mapped[str] = mapped_column(Text)
    feature_dtypes: Mapped[str] = mapped_column(Text)
    # JSON lists: the loops whose rows were trained on, and those held out to score.
    source_loops: Mapped[str] = mapped_column(Text)
    holdout_loops: Mapped[str] = mapped_column(Text, server_default="[]")

    __table_args__ = (UniqueConstraint("model", "version"),)


class ModelAliasRow(Base):
    """Where an alias (``production``, ...) of a model points now."""

    __tablename__ = "model_aliases"
    model: Mapped[str] = mapped_column(String(63), primary_key=True)
    alias: Mapped[str] = mapped_column(String(63), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ModelAliasHistoryRow(Base):
    """Every move of an alias, oldest first by id; rollback replays it as a stack."""

    __tablename__ = "model_alias_history"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(63))
    alias: Mapped[str] = mapped_column(String(63))
    action: Mapped[str] = mapped_column(String(16))  # promote | rollback
    version: Mapped[int] = mapped_column(Integer)
    previous_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_model_alias_history_model_alias", "model", "alias", "id"),
    )
