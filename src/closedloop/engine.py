"""One opened installation: settings, stores and every core service, wired together."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from closedloop.core.context import Context, utcnow
from closedloop.core.events import Events
from closedloop.core.flows import Flows
from closedloop.core.keys import AccessKeys
from closedloop.core.loops import Loops
from closedloop.core.secrets import SecretBox
from closedloop.core.tasks import Tasks
from closedloop.core.taskuis import TaskUis
from closedloop.core.workforce import Workforce
from closedloop.datasets import Datasets
from closedloop.registry import Lineage, Registry
from closedloop.serving.endpoints import Endpoints
from closedloop.settings import Settings
from closedloop.store.db import Database
from closedloop.store.objects import ObjectStore
from closedloop.templates import check_answer, check_renders
from closedloop.training import Training

__all__ = ["Engine", "open_engine"]


class Engine:
    """The Python API of closedloop; the HTTP and CLI adapters sit on it."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utcnow,
        migrate: bool = True,
    ) -> None:
        settings.home.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        db = Database(
            settings.resolved_database_url,
            sqlite_synchronous=settings.sqlite_synchronous,
        )
        if migrate:
            db.migrate()
        self.ctx = Context(
            settings=settings,
            db=db,
            objects=ObjectStore(settings.resolved_storage_url),
            secrets=SecretBox.load(settings.secret_key, settings.home),
            clock=clock,
        )
        self.keys = AccessKeys(self.ctx)
        self.workforce = Workforce(self.ctx)
        self.task_uis = TaskUis(self.ctx)
        self.flows = Flows(self.ctx, self.workforce, self.task_uis)
        self.events = Events(self.ctx)
        self.loops = Loops(
            self.ctx, self.flows, self.events, check_template=check_renders
        )
        self.tasks = Tasks(
            self.ctx,
            self.loops,
            check_answer=functools.partial(
                check_answer, scripts_run=settings.inline_template_scripts
            ),
        )
        self.datasets = Datasets(self.ctx)
        self.registry = Registry(self.ctx)
        self.lineage = Lineage(self.loops, self.datasets, self.registry)
        self.training = Training(self.ctx, self.datasets, self.registry)
        self.endpoints = Endpoints(self.ctx, self.registry, self.flows)

    def close(self) -> None:
        self.ctx.db.dispose()


def open_engine(home: str | Path | None = None, **overrides: object) -> Engine:
    """Open (and migrate) the installation at ``home`` or ``CLOSEDLOOP_HOME``."""
    return Engine(Settings.from_env(None, home=home, **overrides))
