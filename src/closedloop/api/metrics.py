"""Prometheus metrics at ``/metrics``: loop and task gauges read from the store at scrape time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from closedloop.engine import Engine
from closedloop.store.models import HumanLoop, Task

__all__ = ["StoreCollector", "metrics_router"]


class StoreCollector(Collector):
    """Counts loops by flow and status, available tasks, and the age of the oldest one.

    Read from the database on every scrape, so several ``serve`` processes report
    the same numbers and nothing is lost across restarts.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[Metric]:
        loops = GaugeMetricFamily(
            "closedloop_human_loops",
            "Human loops by flow definition and status.",
            labels=["flow", "status"],
        )
        queue = GaugeMetricFamily(
            "closedloop_tasks_available",
            "Tasks waiting for a worker, by team.",
            labels=["team"],
        )
        oldest = GaugeMetricFamily(
            "closedloop_oldest_task_age_seconds",
            "Age of the oldest open loop with a waiting task, by team.",
            labels=["team"],
        )
        now = self._engine.ctx.clock()
        with self._engine.ctx.db.read() as session:
            for flow, status, count in session.execute(
                select(HumanLoop.flow_name, HumanLoop.status, func.count()).group_by(
                    HumanLoop.flow_name, HumanLoop.status
                )
            ):
                loops.add_metric([flow, status], count)
            waiting = session.execute(
                select(Task.team_name, func.count(), func.min(HumanLoop.created_at))
                .join(HumanLoop, HumanLoop.id == Task.loop_id)
                .where(Task.status == "available", HumanLoop.status == "InProgress")
                .group_by(Task.team_name)
            )
            for team, count, first in waiting:
                queue.add_metric([team], count)
                oldest.add_metric([team], _age(now, first))
        yield from (loops, queue, oldest)


def _age(now: datetime, first: datetime | str | None) -> float:
    if first is None:
        return 0.0
    moment = datetime.fromisoformat(first) if isinstance(first, str) else first
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=now.tzinfo)
    return max((now - moment).total_seconds(), 0.0)


def metrics_router(engine: Engine) -> APIRouter:
    registry = CollectorRegistry()
    registry.register(StoreCollector(engine))
    router = APIRouter()

    @router.get("/metrics")
    async def metrics() -> Response:
        body = await run_in_threadpool(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return router
