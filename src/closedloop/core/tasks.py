"""Reviewer tasks: claim the next one under a lease, answer it, or release it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import ColumnElement, exists, select, update
from sqlalchemy.orm import Session, aliased

from closedloop.core.context import Context
from closedloop.core.loops import Loops, return_lapsed_leases
from closedloop.core.workforce import WorkerInfo
from closedloop.errors import (
    ConflictError,
    LeaseLostError,
    NotFoundError,
    ValidationError,
)
from closedloop.store.models import (
    Answer,
    FlowDefinition,
    HumanLoop,
    HumanTaskUi,
    Task,
    Worker,
)

__all__ = ["MAX_ANSWER_BYTES", "AnswerCheck", "AnswerResult", "ClaimedTask", "Tasks"]

logger = logging.getLogger(__name__)
# How many of the oldest available tasks a claim looks at before it searches them all.
_FIRST_LOOK = 32
MAX_ANSWER_BYTES = 1_048_576

# Checks an answer against a task UI template and the loop's input; raises ValidationError.
AnswerCheck = Callable[[str, dict[str, Any], dict[str, Any]], None]


@dataclass(frozen=True)
class ClaimedTask:
    """A task leased to one worker until ``lease_expires_at``."""

    task_id: int
    human_loop_name: str
    flow_definition_name: str
    task_ui_name: str | None
    title: str
    description: str
    keywords: tuple[str, ...]
    input_content: dict[str, Any]
    leased_at: datetime
    lease_expires_at: datetime


@dataclass(frozen=True)
class AnswerResult:
    task_id: int
    human_loop_name: str
    loop_status: str
    answers_received: int
    answers_needed: int


class Tasks:
    """The worker's side of a loop; safe under many concurrent claimers."""

    def __init__(
        self, ctx: Context, loops: Loops, check_answer: AnswerCheck | None = None
    ) -> None:
        self._ctx = ctx
        self._loops = loops
        self._check_answer = check_answer

    def claim_next(self, worker: WorkerInfo) -> ClaimedTask | None:
        """Lease the oldest available task of the worker's teams, or None.

        Leases that lapsed go back to the queue when nothing else is available
        here, and within a sweep interval in any case.
        """
        if not worker.teams:
            return None
        now = self._ctx.clock()
        with self._ctx.db.write() as session:
            if not self._ctx.db.is_sqlite:
                # Claims by one worker queue behind each other, so two at once can
                # never both pass the "no task of this loop yet" check.
                session.execute(
                    select(Worker.id).where(Worker.id == worker.pk).with_for_update()
                )
            found = self._find_next(session, worker, now)
            if found is None and return_lapsed_leases(session, now):
                found = self._find_next(session, worker, now)
            if found is None:
                return None
            task_id, loop_name, flow_name, content = found
            flow = self._loops.flow_snapshot(flow_name)
            if flow is None:
                return None
            expires = now + timedelta(seconds=flow.time_limit_seconds)
            session.execute(
                update(Task)
                .where(Task.id == task_id)
                .values(
                    status="leased",
                    worker_pk=worker.pk,
                    leased_at=now,
                    lease_expires_at=expires,
                )
            )
        return ClaimedTask(
            task_id=task_id,
            human_loop_name=loop_name,
            flow_definition_name=flow.name,
            task_ui_name=flow.task_ui_name,
            title=flow.title,
            description=flow.description,
            keywords=flow.keywords,
            input_content=orjson.loads(content),
            leased_at=now,
            lease_expires_at=expires,
        )

    def _find_next(
        self, session: Session, worker: WorkerInfo, now: datetime
    ) -> tuple[Any, ...] | None:
        """The oldest task this worker may take: first among the oldest available
        ones (read from the index of available tasks alone), then among all.

        The first look keeps a claim cheap however many answered tasks precede
        the queue: PostgreSQL's planner, left to itself, walks the primary key
        past every answered task. The second runs only when the worker already
        holds a task of each of the oldest loops.
        """
        oldest = list(
            session.scalars(
                select(Task.id)
                .where(Task.status == "available", _teams(worker))
                .order_by(Task.id)
                .limit(_FIRST_LOOK)
            )
        )
        if not oldest:
            return None
        found = session.execute(
            self._next_query(worker, now, Task.id.in_(oldest))
        ).first()
        if found is None and len(oldest) == _FIRST_LOOK:
            found = session.execute(self._next_query(worker, now)).first()
        return None if found is None else tuple(found)

    def _next_query(
        self, worker: WorkerInfo, now: datetime, *among: ColumnElement[bool]
    ) -> Any:
        mine = aliased(Task)
        query = (
            select(
                Task.id, HumanLoop.name, HumanLoop.flow_name, HumanLoop.input_content
            )
            .join(HumanLoop, HumanLoop.id == Task.loop_id)
            .where(
                Task.status == "available",
                _teams(worker),
                *among,
                HumanLoop.status == "InProgress",
                HumanLoop.expires_at > now,
                ~exists().where(
                    mine.loop_id == Task.loop_id, mine.worker_pk == worker.pk
                ),
            )
            .order_by(Task.id)
            .limit(1)
        )
        if not self._ctx.db.is_sqlite:
            query = query.with_for_update(of=Task, skip_locked=True)
        return query

    def answer(
        self, worker: WorkerInfo, task_id: int, answer_content: Mapping[str, Any]
    ) -> AnswerResult:
        """Store the answer; the loop's last answer completes it and writes output.json."""
        content = _answer_json(answer_content)
        now = self._ctx.clock()
        with self._ctx.db.write() as session:
            task = session.scalar(
                select(Task).where(Task.id == task_id).with_for_update()
            )
            if task is None:
                raise NotFoundError(f"task {task_id} does not exist")
            loop = session.scalar(
                select(HumanLoop).where(HumanLoop.id == task.loop_id).with_for_update()
            )
            if loop is None:
                raise NotFoundError(f"task {task_id} does not exist")
            loop_id = loop.id
            if task.status == "answered" and task.worker_pk == worker.pk:
                result = self._repeat(session, task, loop, worker, content)
            else:
                result = self._store(
                    session, task, loop, worker, answer_content, content, now
                )
        if result.loop_status == "Completed":
            # A repeat may be the retry of an answer whose server died before
            # writing output.json: a caller told Completed finds the file there.
            self._loops.publish_output(loop_id)
        return result

    def _store(
        self,
        session: Session,
        task: Task,
        loop: HumanLoop,
        worker: WorkerInfo,
        answer_content: Mapping[str, Any],
        content: str,
        now: datetime,
    ) -> AnswerResult:
        _check_lease(task, loop, worker, now)
        self._validate(session, loop, answer_content)
        session.add(
            Answer(
                loop_id=loop.id,
                task_id=task.id,
                worker_pk=worker.pk,
                answer_content=content,
                acceptance_time=task.leased_at or now,
                submission_time=now,
            )
        )
        task.status = "answered"
        loop.answer_count += 1
        session.flush()
        if loop.answer_count >= loop.task_count:
            loop.status = "Completed"
            loop.ended_at = now
        logger.info(
            "answer stored: loop %s, task %d, %d of %d",
            loop.name,
            task.id,
            loop.answer_count,
            loop.task_count,
        )
        return AnswerResult(
            task.id, loop.name, loop.status, loop.answer_count, loop.task_count
        )

    def _validate(
        self, session: Session, loop: HumanLoop, answer_content: Mapping[str, Any]
    ) -> None:
        """Check the answer against the fields and labels of the loop's task UI."""
        if self._check_answer is None:
            return
        flow = session.get(FlowDefinition, loop.flow_name)
        template = (
            session.get(HumanTaskUi, flow.task_ui_name)
            if flow and flow.task_ui_name
            else None
        )
        if template is not None:
            self._check_answer(
                template.content, orjson.loads(loop.input_content), dict(answer_content)
            )

    @staticmethod
    def _repeat(
        session: Session, task: Task, loop: HumanLoop, worker: WorkerInfo, content: str
    ) -> AnswerResult:
        stored = session.scalar(
            select(Answer.answer_content).where(
                Answer.task_id == task.id, Answer.worker_pk == worker.pk
            )
        )
        if stored is None or orjson.loads(stored) != orjson.loads(content):
            raise ConflictError(
                f"task {task.id} was already answered by this worker with a different answer"
            )
        return AnswerResult(
            task.id, loop.name, loop.status, loop.answer_count, loop.task_count
        )

    def release(self, worker: WorkerInfo, task_id: int) -> None:
        """Give a leased task back to the queue for another worker."""
        now = self._ctx.clock()
        with self._ctx.db.write() as session:
            task = session.scalar(
                select(Task).where(Task.id == task_id).with_for_update()
            )
            if task is None:
                raise NotFoundError(f"task {task_id} does not exist")
            loop = session.get_one(HumanLoop, task.loop_id)
            _check_lease(task, loop, worker, now, open_only=False)
            task.status = "available" if loop.status == "InProgress" else "cancelled"
            task.worker_pk = None
            task.leased_at = None
            task.lease_expires_at = None
        logger.info("task released: loop %s, task %d", loop.name, task_id)


def _check_lease(
    task: Task,
    loop: HumanLoop,
    worker: WorkerInfo,
    now: datetime,
    *,
    open_only: bool = True,
) -> None:
    if task.worker_pk != worker.pk or task.status != "leased":
        raise LeaseLostError(
            f"task {task.id} is not leased to you; claim a task with POST /api/v1/worker/tasks/next"
        )
    if task.lease_expires_at is not None and task.lease_expires_at <= now:
        raise LeaseLostError(
            f"the lease on task {task.id} expired at {task.lease_expires_at.isoformat()}; "
            "the task went back to the queue"
        )
    if open_only and loop.status != "InProgress":
        raise LeaseLostError(
            f"human loop {loop.name!r} is {loop.status}; it takes no more answers"
        )


def _answer_json(answer_content: Mapping[str, Any]) -> str:
    if not isinstance(answer_content, Mapping):
        raise ValidationError(
            f"answerContent must be a JSON object; got {type(answer_content).__name__}",
            "answerContent",
        )
    content = orjson.dumps(dict(answer_content)).decode()
    if len(content) > MAX_ANSWER_BYTES:
        raise ValidationError(
            f"answerContent must be at most {MAX_ANSWER_BYTES} bytes of JSON; got {len(content)}",
            "answerContent",
        )
    return content


def _teams(worker: WorkerInfo) -> ColumnElement[bool]:
    if len(worker.teams) == 1:
        return Task.team_name == worker.teams[0]
    return Task.team_name.in_(worker.teams)
