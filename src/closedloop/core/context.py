"""What every core service shares: settings, database, object store, secrets, clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from closedloop.core.secrets import SecretBox
from closedloop.settings import Settings
from closedloop.store.db import Database
from closedloop.store.objects import ObjectStore

__all__ = ["Context", "utcnow"]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    """The handles a core service needs; one per opened installation."""

    settings: Settings
    db: Database
    objects: ObjectStore
    secrets: SecretBox
    clock: Callable[[], datetime] = utcnow
