"""Alembic environment: runs migrations on the connection closedloop hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

import closedloop.store.models_ml
import closedloop.store.models_pipeline
import closedloop.store.models_serving
import closedloop.store.models_web  # noqa: F401  (each module adds its tables to Base)
from closedloop.store.models import Base

config = context.config
connection = config.attributes.get("connection")

if connection is None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite://")
    connection = engine.connect()

context.configure(
    connection=connection, target_metadata=Base.metadata, render_as_batch=True
)
with context.begin_transaction():
    context.run_migrations()
