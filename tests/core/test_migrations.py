"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

import closedloop.store.models_ml
import closedloop.store.models_pipeline
import closedloop.store.models_serving
import closedloop.store.models_web  # noqa: F401  (each module adds its tables to Base)
from closedloop.engine import Engine
from closedloop.store.models import Base


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    database = create_engine(engine.settings.resolved_database_url)
    try:
        with database.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True}
            )
            differences = compare_metadata(context, Base.metadata)
    finally:
        database.dispose()

    assert differences == []
