"""What starts a pipeline run by itself: a cron schedule, new reviews, an audited accuracy drop."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import func, select

from closedloop.engine import Engine
from closedloop.errors import ClosedloopError, ConflictError
from closedloop.pipeline.monitoring import Monitoring
from closedloop.pipeline.project import Project, cron_trigger
from closedloop.pipeline.runner import PipelineRunner, RunReport
from closedloop.pipeline.steps import build_steps
from closedloop.store.models import HumanLoop
from closedloop.store.models_pipeline import PipelineRun

__all__ = ["MIN_AUDITED_LOOPS", "Triggers"]

logger = logging.getLogger(__name__)
MIN_AUDITED_LOOPS = (
    20  # an accuracy estimate from fewer audited loops is too noisy to act on
)
FIRST_WINDOW = timedelta(days=7)


class Triggers:
    """Checks a project's triggers and runs its pipeline when one fires.

    The count and accuracy triggers look only at what happened since the last
    run started, so a run is not started again for the same evidence. Runs of
    one project never overlap: a trigger that fires during a run is skipped.
    """

    def __init__(
        self, engine: Engine, project: Project, *, check_seconds: float = 60.0
    ) -> None:
        self._engine = engine
        self._project = project
        self._check_seconds = check_seconds
        self._scheduler: BackgroundScheduler | None = None

    def due(self) -> str | None:
        """The trigger that fires now ("new-reviews", "audited-accuracy"), or None."""
        triggers, flow = self._project.triggers, self._project.review.flow
        since = self._last_run_start()
        if (
            triggers.new_reviews is not None
            and self._completed_since(flow, since) >= triggers.new_reviews
        ):
            return "new-reviews"
        if triggers.audited_accuracy_below is not None:
            window = since or self._engine.ctx.clock() - FIRST_WINDOW
            accuracy, audited = Monitoring(self._engine).audited_accuracy(
                flow, since=window
            )
            if (
                accuracy is not None
                and audited >= MIN_AUDITED_LOOPS
                and accuracy < triggers.audited_accuracy_below
            ):
                return "audited-accuracy"
        return None

    def fire(self, trigger: str) -> RunReport | None:
        """Run the pipeline for ``trigger``; None when a run is already in progress."""
        runner = PipelineRunner(
            self._engine, self._project.name, build_steps(self._project)
        )
        try:
            return runner.run(trigger)
        except ConflictError:
            logger.info(
                "pipeline %s: %s fired during a run; skipped",
                self._project.name,
                trigger,
            )
        except ClosedloopError as exc:
            logger.warning(
                "pipeline %s: run started by %s failed: %s",
                self._project.name,
                trigger,
                exc.message,
            )
        return None

    def check(self) -> RunReport | None:
        trigger = self.due()
        return self.fire(trigger) if trigger is not None else None

    def start(self) -> None:
        """Run the triggers on a background scheduler (inside ``closedloop serve`` or alone)."""
        scheduler = BackgroundScheduler(timezone="UTC")
        if self._project.triggers.schedule:
            scheduler.add_job(
                self.fire,
                cron_trigger(self._project.triggers.schedule),
                args=["schedule"],
            )
        if (
            self._project.triggers.new_reviews
            or self._project.triggers.audited_accuracy_below
        ):
            scheduler.add_job(self.check, "interval", seconds=self._check_seconds)
        scheduler.start()
        self._scheduler = scheduler
        logger.info(
            "pipeline %s: triggers running (%d jobs)",
            self._project.name,
            len(scheduler.get_jobs()),
        )

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None

    def _last_run_start(self) -> datetime | None:
        with self._engine.ctx.db.read() as session:
            return session.scalar(
                select(func.max(PipelineRun.started_at)).where(
                    PipelineRun.project == self._project.name
                )
            )

    def _completed_since(self, flow: str, since: datetime | None) -> int:
        query = select(func.count()).where(
            HumanLoop.flow_name == flow, HumanLoop.status == "Completed"
        )
        if since is not None:
            query = query.where(HumanLoop.ended_at > since)
        with self._engine.ctx.db.read() as session:
            return int(session.scalar(query) or 0)
