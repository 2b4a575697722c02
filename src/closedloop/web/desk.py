"""The reviewer's desk: queue counts, the task in hand, and what its frame may show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import exists, func, select
from sqlalchemy.orm import aliased

from closedloop.core.tasks import ClaimedTask
from closedloop.core.workforce import WorkerInfo
from closedloop.engine import Engine
from closedloop.errors import NotFoundError
from closedloop.store.models import FlowDefinition, HumanLoop, HumanTaskUi, Task
from closedloop.store.models_web import FlowDisplay

__all__ = ["Desk", "FrameContent", "QueueCount", "TaskView"]


@dataclass(frozen=True)
class QueueCount:
    team: str
    flow: str
    title: str
    available: int


@dataclass(frozen=True)
class TaskView:
    """What the host page shows around the frame."""

    task_id: int
    flow: str
    title: str
    description: str
    lease_expires_at: datetime


@dataclass(frozen=True)
class FrameContent:
    template: str
    input_content: dict[str, Any]


class Desk:
    """Reads and leases tasks for one signed-in worker; never shows another team's task."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._ctx = engine.ctx

    def queues(self, worker: WorkerInfo) -> list[QueueCount]:
        """Tasks this worker could claim now, by team and flow."""
        if not worker.teams:
            return []
        mine = aliased(Task)
        now = self._ctx.clock()
        query = (
            select(
                Task.team_name,
                HumanLoop.flow_name,
                func.count(func.distinct(Task.loop_id)),
            )
            .join(HumanLoop, HumanLoop.id == Task.loop_id)
            .where(
                Task.status == "available",
                Task.team_name.in_(worker.teams),
                HumanLoop.status == "InProgress",
                HumanLoop.expires_at > now,
                ~exists().where(
                    mine.loop_id == Task.loop_id, mine.worker_pk == worker.pk
                ),
            )
            .group_by(Task.team_name, HumanLoop.flow_name)
            .order_by(Task.team_name, HumanLoop.flow_name)
        )
        with self._ctx.db.read() as session:
            rows = session.execute(query).all()
            titles = {
                f.name: _config(f).get("TaskTitle", "")
                for f in session.scalars(select(FlowDefinition))
            }
        return [QueueCount(t, f, str(titles.get(f, "")), n) for t, f, n in rows]

    def current_or_next(self, worker: WorkerInfo) -> TaskView | None:
        """The task this worker already holds, else a newly leased one, else None."""
        held = self._held(worker)
        if held is not None:
            return held
        claimed = self._engine.tasks.claim_next(worker)
        return _view(claimed) if claimed is not None else None

    def _held(self, worker: WorkerInfo) -> TaskView | None:
        now = self._ctx.clock()
        with self._ctx.db.read() as session:
            row = session.execute(
                select(Task, HumanLoop, FlowDefinition)
                .join(HumanLoop, HumanLoop.id == Task.loop_id)
                .join(FlowDefinition, FlowDefinition.name == HumanLoop.flow_name)
                .where(
                    Task.worker_pk == worker.pk,
                    Task.status == "leased",
                    Task.lease_expires_at > now,
                    Task.team_name.in_(worker.teams),
                    HumanLoop.status == "InProgress",
                )
                .order_by(Task.id)
                .limit(1)
            ).first()
        if row is None:
            return None
        task, loop, flow = row
        config = _config(flow)
        expires = task.lease_expires_at or now
        return TaskView(
            task.id,
            loop.flow_name,
            str(config.get("TaskTitle", "")),
            str(config.get("TaskDescription", "")),
            expires,
        )

    def frame(self, worker: WorkerInfo, task_id: int) -> FrameContent:
        """The template and input of a task leased to ``worker``; NotFoundError otherwise."""
        now = self._ctx.clock()
        with self._ctx.db.read() as session:
            row = session.execute(
                select(HumanLoop, HumanTaskUi)
                .join(Task, Task.loop_id == HumanLoop.id)
                .join(FlowDefinition, FlowDefinition.name == HumanLoop.flow_name)
                .join(HumanTaskUi, HumanTaskUi.name == FlowDefinition.task_ui_name)
                .where(
                    Task.id == task_id,
                    Task.worker_pk == worker.pk,
                    Task.status == "leased",
                    Task.lease_expires_at > now,
                    Task.team_name.in_(worker.teams),
                )
            ).first()
        if row is None:
            raise NotFoundError(f"task {task_id} is not leased to you")
        loop, ui = row
        content = orjson.loads(loop.input_content)
        if not self.show_prediction(loop.flow_name):
            content.pop("prediction", None)
        return FrameContent(ui.content, content)

    def show_prediction(self, flow_name: str) -> bool:
        with self._ctx.db.read() as session:
            row = session.get(FlowDisplay, flow_name)
            return bool(row and row.show_prediction)

    def set_show_prediction(self, flow_name: str, show: bool) -> None:
        with self._ctx.db.write() as session:
            if session.get(FlowDefinition, flow_name) is None:
                raise NotFoundError(f"FlowDefinition {flow_name!r} does not exist")
            row = session.get(FlowDisplay, flow_name)
            if row is None:
                session.add(FlowDisplay(flow_name=flow_name, show_prediction=show))
            else:
                row.show_prediction = show


def _config(flow: FlowDefinition) -> dict[str, Any]:
    config = orjson.loads(flow.definition).get("HumanLoopConfig", {})
    return config if isinstance(config, dict) else {}


def _view(task: ClaimedTask) -> TaskView:
    return TaskView(
        task.task_id,
        task.flow_definition_name,
        task.title,
        task.description,
        task.lease_expires_at,
    )
