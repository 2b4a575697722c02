"""Tables of model serving: endpoints binding a name to a model version or alias."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from closedloop.store.models import Base, UTCDateTime

__all__ = ["EndpointRow"]


class EndpointRow(Base):
    """An endpoint: ``ref`` is a version number ("3") or an alias ("@production")."""

    __tablename__ = "endpoints"
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    model: Mapped[str] = mapped_column(String(128))
    ref: Mapped[str] = mapped_column(String(64))
    flow_name: Mapped[str | None] = mapped_column(String(63), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
