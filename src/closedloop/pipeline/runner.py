"""Recorded, resumable pipeline runs under a per-project lock held in the store.

A run is a sequence of named steps. Each step's status, outputs and timings are
written to the store as it finishes, so a run that crashed or was killed
resumes at its first unfinished step the next time the pipeline runs, with the
outputs of the finished ones. Steps must be idempotent (a step that was
interrupted runs again); the deploy step, for one, promotes a version that is
already promoted as a no-op, so a resumed run never deploys twice.

Two runs of one project never overlap: a run holds a lease on the project's
lock row and renews it between steps; a lease that lapsed (its holder died) may
be taken over.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import delete, select

from closedloop.engine import Engine
from closedloop.errors import ClosedloopError, ConflictError, NotFoundError
from closedloop.store.models_pipeline import PipelineLock, PipelineRun, PipelineStep

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "PipelineRunner",
    "RunReport",
    "Step",
    "StepContext",
    "StepReport",
]

logger = logging.getLogger(__name__)
DEFAULT_LEASE_SECONDS = 900


@dataclass
class StepContext:
    """What a step sees: the engine, its run, and the outputs of the steps before it."""

    engine: Engine
    run_id: int
    outputs: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[StepContext], dict[str, Any]]


@dataclass(frozen=True)
class StepReport:
    name: str
    status: str
    outputs: dict[str, Any]
    started_at: datetime
    ended_at: datetime | None
    error: str | None


@dataclass(frozen=True)
class RunReport:
    id: int
    project: str
    trigger: str
    status: str
    started_at: datetime
    ended_at: datetime | None
    error: str | None
    steps: list[StepReport] = field(default_factory=list)
    resumed: bool = False


class PipelineRunner:
    """Runs ``steps`` for ``project`` as one recorded run."""

    def __init__(
        self,
        engine: Engine,
        project: str,
        steps: Sequence[Step],
        *,
        lease_seconds: int = DEFAULT_LEASE_SECONDS,
    ) -> None:
        self._engine = engine
        self._db = engine.ctx.db
        self._clock = engine.ctx.clock
        self.project = project
        self.steps = list(steps)
        self._lease = timedelta(seconds=lease_seconds)
        self._holder = (
            f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"
        )

    def run(self, trigger: str = "manual") -> RunReport:
        """Run (or resume) one cycle; raises ConflictError while another run holds the lock."""
        self._acquire()
        try:
            run_id, resumed = self._open_run(trigger)
            self._execute(run_id)
            return self.show(run_id, resumed=resumed)
        finally:
            self._release()

    def _execute(self, run_id: int) -> None:
        context = StepContext(self._engine, run_id, self._finished_outputs(run_id))
        for position, step in enumerate(self.steps):
            if step.name in context.outputs:
                continue
            self._renew(run_id)
            self._start_step(run_id, step.name, position)
            started = time.perf_counter()
            try:
                outputs = step.run(context)
            except Exception as exc:
                self._end_step(
                    run_id, step.name, "failed", {}, f"{type(exc).__name__}: {exc}"
                )
                self._end_run(run_id, "failed", f"step {step.name} failed: {exc}")
                logger.warning(
                    "pipeline %s run %d: step %s failed: %s",
                    self.project,
                    run_id,
                    step.name,
                    exc,
                )
                if isinstance(exc, ClosedloopError):
                    raise
                raise ClosedloopError(
                    f"pipeline step {step.name} failed: {exc}"
                ) from exc
            outputs = {**outputs, "seconds": round(time.perf_counter() - started, 3)}
            self._end_step(run_id, step.name, "succeeded", outputs, None)
            context.outputs[step.name] = outputs
        self._end_run(run_id, "succeeded", None)
        logger.info("pipeline %s run %d succeeded", self.project, run_id)

    def _acquire(self) -> None:
        now = self._clock()
        with self._db.write() as session:
            lock = session.scalar(
                select(PipelineLock)
                .where(PipelineLock.project == self.project)
                .with_for_update()
            )
            if (
                lock is not None
                and lock.expires_at > now
                and lock.holder != self._holder
            ):
                raise ConflictError(
                    f"a pipeline run of project {self.project!r} is in progress (run {lock.run_id}, "
                    f"lease until {lock.expires_at.isoformat()}); two runs never overlap"
                )
            if lock is None:
                session.add(
                    PipelineLock(
                        project=self.project,
                        holder=self._holder,
                        run_id=None,
                        expires_at=now + self._lease,
                    )
                )
            else:
                lock.holder, lock.expires_at = self._holder, now + self._lease

    def _renew(self, run_id: int) -> None:
        with self._db.write() as session:
            lock = session.get(PipelineLock, self.project)
            if lock is None or lock.holder != self._holder:
                raise ConflictError(
                    f"the pipeline lock of project {self.project!r} was taken over; stopping this run"
                )
            lock.run_id = run_id
            lock.expires_at = self._clock() + self._lease

    def _release(self) -> None:
        with self._db.write() as session:
            session.execute(
                delete(PipelineLock).where(
                    PipelineLock.project == self.project,
                    PipelineLock.holder == self._holder,
                )
            )

    def _open_run(self, trigger: str) -> tuple[int, bool]:
        """The unfinished run of this project to resume, or a new one."""
        with self._db.write() as session:
            unfinished = session.scalar(
                select(PipelineRun)
                .where(
                    PipelineRun.project == self.project, PipelineRun.status == "running"
                )
                .order_by(PipelineRun.id.desc())
                .limit(1)
            )
            if unfinished is not None:
                logger.info("pipeline %s: resuming run %d", self.project, unfinished.id)
                return unfinished.id, True
            run = PipelineRun(
                project=self.project,
                trigger=trigger,
                status="running",
                started_at=self._clock(),
            )
            session.add(run)
            session.flush()
            run_id = run.id
        self._engine.events.record_pipeline_event(
            "Started", self.project, run_id, {"trigger": trigger}
        )
        return run_id, False

    def _finished_outputs(self, run_id: int) -> dict[str, dict[str, Any]]:
        with self._db.read() as session:
            rows = session.scalars(
                select(PipelineStep).where(
                    PipelineStep.run_id == run_id, PipelineStep.status == "succeeded"
                )
            ).all()
            return {row.name: orjson.loads(row.outputs) for row in rows}

    def _start_step(self, run_id: int, name: str, position: int) -> None:
        with self._db.write() as session:
            row = session.get(PipelineStep, (run_id, name))
            if row is None:
                session.add(
                    PipelineStep(
                        run_id=run_id,
                        name=name,
                        position=position,
                        status="running",
                        outputs="{}",
                        started_at=self._clock(),
                    )
                )
            else:
                row.status, row.started_at, row.error = "running", self._clock(), None

    def _end_step(
        self,
        run_id: int,
        name: str,
        status: str,
        outputs: dict[str, Any],
        error: str | None,
    ) -> None:
        with self._db.write() as session:
            row = session.get_one(PipelineStep, (run_id, name))
            row.status = status
            row.outputs = orjson.dumps(outputs, default=str).decode()
            row.ended_at = self._clock()
            row.error = error[:4000] if error else None

    def _end_run(self, run_id: int, status: str, error: str | None) -> None:
        with self._db.write() as session:
            run = session.get_one(PipelineRun, run_id)
            run.status, run.ended_at, run.error = status, self._clock(), error
        self._engine.events.record_pipeline_event(
            status.capitalize(), self.project, run_id, {"error": error}
        )

    def list(self, limit: int = 50) -> list[RunReport]:
        with self._db.read() as session:
            ids = session.scalars(
                select(PipelineRun.id)
                .where(PipelineRun.project == self.project)
                .order_by(PipelineRun.id.desc())
                .limit(limit)
            ).all()
        return [self.show(i) for i in ids]

    def show(self, run_id: int, *, resumed: bool = False) -> RunReport:
        with self._db.read() as session:
            run = session.get(PipelineRun, run_id)
            if run is None:
                raise NotFoundError(f"pipeline run {run_id} does not exist")
            steps = session.scalars(
                select(PipelineStep)
                .where(PipelineStep.run_id == run_id)
                .order_by(PipelineStep.position)
            ).all()
            return RunReport(
                run.id,
                run.project,
                run.trigger,
                run.status,
                run.started_at,
                run.ended_at,
                run.error,
                [
                    StepReport(
                        s.name,
                        s.status,
                        orjson.loads(s.outputs),
                        s.started_at,
                        s.ended_at,
                        s.error,
                    )
                    for s in steps
                ],
                resumed,
            )
