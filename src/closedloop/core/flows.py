"""Flow definitions: which team reviews, with which task UI, how many times, output where."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select

from closedloop.core.conditions import ActivationConditions, parse_conditions
from closedloop.core.context import Context
from closedloop.core.paging import Page, PageRequest, finish, paginate
from closedloop.core.taskuis import TaskUis
from closedloop.core.workforce import Workforce
from closedloop.errors import ConflictError, NotFoundError, ValidationError
from closedloop.spec import validate_request
from closedloop.store.models import FlowDefinition, HumanLoop, HumanTaskUi

__all__ = [
    "DEFAULT_AVAILABILITY_SECONDS",
    "DEFAULT_TIME_LIMIT_SECONDS",
    "FLOW_ARN_PREFIX",
    "FlowInfo",
    "FlowSnapshot",
    "Flows",
]

logger = logging.getLogger(__name__)
FLOW_ARN_PREFIX = "flow-definition/"
DEFAULT_AVAILABILITY_SECONDS = (
    864_000  # ten days, A2I's default and maximum for private teams
)
DEFAULT_TIME_LIMIT_SECONDS = 3_600
MAX_TIME_LIMIT_SECONDS = 28_800
SNAPSHOT_SECONDS = 2.0


@dataclass(frozen=True)
class FlowInfo:
    """A flow definition as stored, with the request it was created from."""

    name: str
    arn: str
    status: str
    created_at: datetime
    team_name: str
    task_ui_name: str | None
    task_count: int
    availability_seconds: int
    time_limit_seconds: int
    output_path: str
    definition: dict[str, Any]

    @property
    def task_title(self) -> str:
        return str(self.definition.get("HumanLoopConfig", {}).get("TaskTitle", ""))

    @property
    def task_description(self) -> str:
        return str(
            self.definition.get("HumanLoopConfig", {}).get("TaskDescription", "")
        )

    @property
    def activation_conditions(self) -> ActivationConditions | None:
        document = self.definition.get("HumanLoopActivationConfig", {}).get(
            "HumanLoopActivationConditionsConfig", {}
        )
        raw = document.get("HumanLoopActivationConditions")
        return parse_conditions(raw) if raw else None


@dataclass(frozen=True)
class FlowSnapshot:
    """What starting a loop needs from an active flow definition and its task UI."""

    name: str
    team_name: str
    task_count: int
    availability_seconds: int
    time_limit_seconds: int
    output_path: str
    task_ui_name: str | None
    template: str | None
    title: str
    description: str
    keywords: tuple[str, ...]


class Flows:
    """Create, describe, list and delete flow definitions."""

    def __init__(self, ctx: Context, workforce: Workforce, task_uis: TaskUis) -> None:
        self._ctx = ctx
        self._workforce = workforce
        self._task_uis = task_uis
        self._snapshots: dict[str, tuple[float, FlowSnapshot | None]] = {}
        self._snapshots_lock = threading.Lock()

    def snapshot(self, name: str) -> FlowSnapshot | None:
        """The active flow ``name`` for starting loops, or None; cached briefly.

        Flow definitions and task UIs never change once made, so the cache can
        only be stale about a deletion, for at most SNAPSHOT_SECONDS.
        """
        now = time.monotonic()
        with self._snapshots_lock:
            cached = self._snapshots.get(name)
        if cached is not None and now - cached[0] < SNAPSHOT_SECONDS:
            return cached[1]
        with self._ctx.db.read() as session:
            row = session.get(FlowDefinition, name)
            ui = (
                session.get(HumanTaskUi, row.task_ui_name)
                if row is not None and row.task_ui_name
                else None
            )
            snapshot = None
            if row is not None and row.status == "Active":
                config = orjson.loads(row.definition).get("HumanLoopConfig", {})
                snapshot = FlowSnapshot(
                    name=row.name,
                    team_name=row.team_name,
                    task_count=row.task_count,
                    availability_seconds=row.availability_seconds,
                    time_limit_seconds=row.time_limit_seconds,
                    output_path=row.output_path,
                    task_ui_name=row.task_ui_name,
                    template=ui.content if ui else None,
                    title=config.get("TaskTitle", ""),
                    description=config.get("TaskDescription", ""),
                    keywords=tuple(config.get("TaskKeywords", ())),
                )
        with self._snapshots_lock:
            if len(self._snapshots) > 1024:
                self._snapshots.clear()
            self._snapshots[name] = (now, snapshot)
        return snapshot

    def arn(self, name: str) -> str:
        return self._ctx.settings.arn(FLOW_ARN_PREFIX + name)

    def name_from_arn(self, arn: str, field: str = "FlowDefinitionArn") -> str:
        prefix = self._ctx.settings.arn(FLOW_ARN_PREFIX)
        if not arn.startswith(prefix) or len(arn) == len(prefix):
            raise ValidationError(
                f"{field} must be a flow definition ARN of this installation, {prefix}NAME; got {arn!r}",
                field,
            )
        return arn[len(prefix) :]

    def create(self, request: Mapping[str, Any]) -> FlowInfo:
        """Create from a CreateFlowDefinition request, checked against the API model."""
        validate_request("sagemaker", "CreateFlowDefinition", request)
        name = request["FlowDefinitionName"]
        config = request.get("HumanLoopConfig")
        if config is None:
            raise ValidationError(
                "HumanLoopConfig is required: closedloop has no public workforce to fall back on",
                "HumanLoopConfig",
            )
        team = self._workforce.team_name_from_arn(
            config["WorkteamArn"], "HumanLoopConfig.WorkteamArn"
        )
        task_ui = self._task_uis.name_from_arn(
            config["HumanTaskUiArn"], "HumanLoopConfig.HumanTaskUiArn"
        )
        availability = config.get(
            "TaskAvailabilityLifetimeInSeconds", DEFAULT_AVAILABILITY_SECONDS
        )
        time_limit = config.get("TaskTimeLimitInSeconds", DEFAULT_TIME_LIMIT_SECONDS)
        _check_durations(availability, time_limit)
        self._check_conditions(request)
        output_path = request["OutputConfig"]["S3OutputPath"]
        self._ctx.objects.locate(output_path, "OutputConfig.S3OutputPath")
        with self._ctx.db.write() as session:
            if not self._workforce.team_exists(session, team):
                raise ValidationError(
                    f"HumanLoopConfig.WorkteamArn names workteam {team!r}, which does not exist",
                    "HumanLoopConfig.WorkteamArn",
                )
            if session.get(HumanTaskUi, task_ui) is None:
                raise ValidationError(
                    f"HumanLoopConfig.HumanTaskUiArn names task UI {task_ui!r}, which does not exist",
                    "HumanLoopConfig.HumanTaskUiArn",
                )
            if session.get(FlowDefinition, name) is not None:
                raise ConflictError(f"FlowDefinition {name!r} already exists")
            session.add(
                FlowDefinition(
                    name=name,
                    status="Active",
                    created_at=self._ctx.clock(),
                    team_name=team,
                    task_ui_name=task_ui,
                    task_count=config["TaskCount"],
                    availability_seconds=availability,
                    time_limit_seconds=time_limit,
                    output_path=output_path,
                    definition=orjson.dumps(dict(request)).decode(),
                )
            )
        self._forget(name)
        logger.info(
            "flow definition created: %s (team %s, TaskCount %d)",
            name,
            team,
            config["TaskCount"],
        )
        return self.describe(name)

    @staticmethod
    def _check_conditions(request: Mapping[str, Any]) -> None:
        activation = request.get("HumanLoopActivationConfig")
        if activation is not None:
            parse_conditions(
                activation["HumanLoopActivationConditionsConfig"][
                    "HumanLoopActivationConditions"
                ]
            )

    def describe(self, name: str) -> FlowInfo:
        with self._ctx.db.read() as session:
            row = session.get(FlowDefinition, name)
            if row is None:
                raise NotFoundError(f"FlowDefinition {name!r} does not exist")
            return self._info(row)

    def list(self, request: PageRequest) -> Page:
        query, size = paginate(
            select(FlowDefinition),
            request,
            FlowDefinition.created_at,
            FlowDefinition.name,
            "flows",
        )
        with self._ctx.db.read() as session:
            rows = [self._info(r) for r in session.scalars(query)]
        return finish(rows, size, "flows", request.sort_order, "created_at", "name")

    def delete(self, name: str) -> None:
        """Delete a flow definition with no open loops; its finished loops stay readable."""
        with self._ctx.db.write() as session:
            row = session.get(FlowDefinition, name)
            if row is None:
                raise NotFoundError(f"FlowDefinition {name!r} does not exist")
            open_loop = session.scalar(
                select(HumanLoop.name)
                .where(
                    HumanLoop.flow_name == name,
                    HumanLoop.status.in_(("InProgress", "Stopping")),
                )
                .limit(1)
            )
            if open_loop is not None:
                raise ConflictError(
                    f"FlowDefinition {name!r} has human loops in progress (e.g. {open_loop!r}); stop them first"
                )
            session.delete(row)
        self._forget(name)
        logger.info("flow definition deleted: %s", name)

    def _forget(self, name: str) -> None:
        with self._snapshots_lock:
            self._snapshots.pop(name, None)

    def _info(self, row: FlowDefinition) -> FlowInfo:
        return FlowInfo(
            name=row.name,
            arn=self.arn(row.name),
            status=row.status,
            created_at=row.created_at,
            team_name=row.team_name,
            task_ui_name=row.task_ui_name,
            task_count=row.task_count,
            availability_seconds=row.availability_seconds,
            time_limit_seconds=row.time_limit_seconds,
            output_path=row.output_path,
            definition=orjson.loads(row.definition),
        )


def _check_durations(availability: int, time_limit: int) -> None:
    if availability > DEFAULT_AVAILABILITY_SECONDS:
        raise ValidationError(
            "HumanLoopConfig.TaskAvailabilityLifetimeInSeconds must be at most "
            f"{DEFAULT_AVAILABILITY_SECONDS}; got {availability}",
            "HumanLoopConfig.TaskAvailabilityLifetimeInSeconds",
        )
    if time_limit > MAX_TIME_LIMIT_SECONDS:
        raise ValidationError(
            f"HumanLoopConfig.TaskTimeLimitInSeconds must be at most {MAX_TIME_LIMIT_SECONDS}; got {time_limit}",
            "HumanLoopConfig.TaskTimeLimitInSeconds",
        )
