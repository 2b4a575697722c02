"""The metadata database: engine set-up, transactions and migrations."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from closedloop.errors import ClosedloopError, StoreError

__all__ = ["Database", "is_duplicate"]

logger = logging.getLogger(__name__)
_MIGRATIONS = Path(__file__).with_name("migrations")
_MIGRATION_LOCK = 7_246_001  # PostgreSQL advisory lock id held while migrating


class Database:
    """Owns the engine; hands out short read and write transactions.

    On SQLite a write transaction starts with ``BEGIN IMMEDIATE`` so that writers
    queue on the database lock instead of failing half way; reads use deferred
    transactions and, in WAL mode, never wait for a writer.
    """

    def __init__(self, url: str, *, sqlite_synchronous: str = "NORMAL") -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self._writer = self._sqlite_engine(url, sqlite_synchronous, immediate=True)
            self._reader = self._sqlite_engine(url, sqlite_synchronous, immediate=False)
        else:
            self._writer = create_engine(
                url,
                pool_size=10,
                max_overflow=20,
                pool_pre_ping=True,
                hide_parameters=True,  # statements' values are customer data
            )
            self._reader = self._writer
        self._write_sessions = sessionmaker(self._writer, expire_on_commit=False)
        self._write_lock: AbstractContextManager[object] = (
            threading.RLock() if self.is_sqlite else nullcontext()
        )
        self._read_sessions = sessionmaker(self._reader, expire_on_commit=False)

    @staticmethod
    def _sqlite_engine(url: str, synchronous: str, *, immediate: bool) -> Engine:
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=8,
            max_overflow=16,
            hide_parameters=True,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    @property
    def dialect(self) -> str:
        return self._writer.dialect.name

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that may write; committed on success, rolled back on error.

        On SQLite the writers of one process queue on a lock here, which wakes the
        next one at once, instead of polling SQLite's busy handler; writers in
        other processes still meet at SQLite's own lock.
        """
        with self._write_lock, self._transaction(self._write_sessions) as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction."""
        with self._transaction(self._read_sessions) as session:
            yield session

    @contextmanager
    def _transaction(self, factory: sessionmaker[Session]) -> Iterator[Session]:
        try:
            with factory() as session, session.begin():
                yield session
        except ClosedloopError:
            raise
        except IntegrityError as exc:  # a constraint held; callers decide what it means
            raise StoreError(
                f"the metadata database failed: {type(exc).__name__}"
            ) from exc
        except SQLAlchemyError as exc:
            logger.exception("database error")
            raise StoreError(
                f"the metadata database failed: {type(exc).__name__}"
            ) from exc

    def migrate(self) -> None:
        """Bring the schema to the newest migration; safe to call from many processes."""
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        with self._writer.connect() as connection:
            if not self.is_sqlite:
                connection.execute(
                    text("SELECT pg_advisory_lock(:id)"), {"id": _MIGRATION_LOCK}
                )
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            if not self.is_sqlite:
                connection.execute(
                    text("SELECT pg_advisory_unlock(:id)"), {"id": _MIGRATION_LOCK}
                )
            connection.commit()

    def dispose(self) -> None:
        self._writer.dispose()
        self._reader.dispose()


def is_duplicate(error: StoreError) -> bool:
    """Whether a write failed on a unique constraint (a concurrent insert of the same key won)."""
    return isinstance(error.__cause__, IntegrityError)
