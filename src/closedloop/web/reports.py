"""Read-only queries behind the operator pages: counts, flows, loops, workers, events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import func, select

from closedloop.core.context import Context
from closedloop.errors import NotFoundError
from closedloop.store.models import (
    Answer,
    Event,
    FlowDefinition,
    HumanLoop,
    Task,
    TeamMember,
    Worker,
)
from closedloop.store.models_web import FlowDisplay

__all__ = [
    "LOOP_STATUSES",
    "AnswerRow",
    "FlowRow",
    "LoopDetail",
    "Overview",
    "Reports",
    "TaskRow",
]

LOOP_STATUSES = ("InProgress", "Stopping", "Completed", "Failed", "Stopped")
PAGE_ROWS = 200


@dataclass(frozen=True)
class Overview:
    loops_by_status: dict[str, int]
    queue_depth: int
    oldest_waiting_since: datetime | None


@dataclass(frozen=True)
class FlowRow:
    name: str
    status: str
    team: str
    task_ui: str | None
    task_count: int
    open_loops: int
    show_prediction: bool


@dataclass(frozen=True)
class AnswerRow:
    worker: str
    submitted_at: datetime
    content: str


@dataclass(frozen=True)
class TaskRow:
    id: int
    status: str
    worker: str | None
    lease_expires_at: datetime | None


@dataclass(frozen=True)
class LoopDetail:
    loop: HumanLoop
    input_pretty: str
    answers: list[AnswerRow]
    tasks: list[TaskRow]
    events: list[dict[str, Any]]


class Reports:
    """Everything the operator pages read, in short read transactions."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def overview(self) -> Overview:
        with self._ctx.db.read() as session:
            counts = dict(
                session.execute(
                    select(HumanLoop.status, func.count()).group_by(HumanLoop.status)
                ).all()
            )
            waiting = (
                select(func.count(), func.min(HumanLoop.created_at))
                .select_from(Task)
                .join(HumanLoop, HumanLoop.id == Task.loop_id)
                .where(Task.status == "available", HumanLoop.status == "InProgress")
            )
            depth, oldest = session.execute(waiting).one()
        by_status = {status: int(counts.get(status, 0)) for status in LOOP_STATUSES}
        return Overview(by_status, int(depth or 0), _aware(oldest))

    def flows(self) -> list[FlowRow]:
        with self._ctx.db.read() as session:
            shown = {
                d.flow_name: d.show_prediction
                for d in session.scalars(select(FlowDisplay))
            }
            open_loops = dict(
                session.execute(
                    select(HumanLoop.flow_name, func.count())
                    .where(HumanLoop.status.in_(("InProgress", "Stopping")))
                    .group_by(HumanLoop.flow_name)
                ).all()
            )
            flows = session.scalars(
                select(FlowDefinition).order_by(FlowDefinition.name)
            ).all()
            return [
                FlowRow(
                    f.name,
                    f.status,
                    f.team_name,
                    f.task_ui_name,
                    f.task_count,
                    int(open_loops.get(f.name, 0)),
                    bool(shown.get(f.name, False)),
                )
                for f in flows
            ]

    def loops(self, flow: str, status: str) -> list[HumanLoop]:
        query = select(HumanLoop).order_by(HumanLoop.id.desc()).limit(PAGE_ROWS)
        if flow:
            query = query.where(HumanLoop.flow_name == flow)
        if status:
            query = query.where(HumanLoop.status == status)
        with self._ctx.db.read() as session:
            return list(session.scalars(query))

    def loop(self, name: str) -> LoopDetail:
        with self._ctx.db.read() as session:
            loop = session.scalar(select(HumanLoop).where(HumanLoop.name == name))
            if loop is None:
                raise NotFoundError(f"HumanLoop {name!r} does not exist")
            answers = [
                AnswerRow(w, t, _pretty(c))
                for w, t, c in session.execute(
                    select(Worker.name, Answer.submission_time, Answer.answer_content)
                    .join(Worker, Worker.id == Answer.worker_pk)
                    .where(Answer.loop_id == loop.id)
                    .order_by(Answer.id)
                )
            ]
            tasks = [
                TaskRow(t.id, t.status, w, t.lease_expires_at)
                for t, w in session.execute(
                    select(Task, Worker.name)
                    .outerjoin(Worker, Worker.id == Task.worker_pk)
                    .where(Task.loop_id == loop.id)
                    .order_by(Task.id)
                )
            ]
            marker = orjson.dumps({"humanLoopName": name}).decode()[1:-1]
            events = [
                orjson.loads(e.body)
                for e in session.scalars(
                    select(Event).where(Event.body.contains(marker)).order_by(Event.id)
                )
            ]
        return LoopDetail(loop, _pretty(loop.input_content), answers, tasks, events)

    def workers(self) -> list[tuple[str, str, bool, list[str]]]:
        """(name, worker id, has a password, teams) for every worker."""
        with self._ctx.db.read() as session:
            teams: dict[int, list[str]] = {}
            for pk, team in session.execute(
                select(TeamMember.worker_pk, TeamMember.team_name)
            ):
                teams.setdefault(pk, []).append(team)
            return [
                (
                    w.name,
                    w.worker_id,
                    bool(w.password_hash),
                    sorted(teams.get(w.id, [])),
                )
                for w in session.scalars(select(Worker).order_by(Worker.name))
            ]


def _pretty(text: str) -> str:
    try:
        return orjson.dumps(orjson.loads(text), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return text


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
