"""Make what a project's loop needs, if it is missing: team, task UI, flow definition."""

from __future__ import annotations

from typing import Any

import orjson

from closedloop.engine import Engine
from closedloop.errors import NotFoundError
from closedloop.pipeline.project import Project
from closedloop.templates import builtin_template

__all__ = ["setup_project"]

REVIEWER_ROLE = "arn:aws:iam::000000000000:role/closedloop-reviews"


def setup_project(engine: Engine, project: Project) -> dict[str, Any]:
    """Create the project's team, task UI and flow definition; existing ones are kept."""
    review = project.review
    engine.workforce.create_team(review.team, f"reviewers of {project.name}")
    ui_name = f"{review.flow}-ui"
    try:
        ui = engine.task_uis.describe(ui_name)
    except NotFoundError:
        ui = engine.task_uis.create(
            ui_name, builtin_template("confirm-or-correct", review.labels)
        )
    try:
        flow = engine.flows.describe(review.flow)
    except NotFoundError:
        flow = engine.flows.create(_flow_request(engine, project, ui.arn))
    return {
        "team": review.team,
        "task_ui": ui.name,
        "flow": flow.name,
        "flow_arn": flow.arn,
    }


def _flow_request(engine: Engine, project: Project, ui_arn: str) -> dict[str, Any]:
    review = project.review
    request: dict[str, Any] = {
        "FlowDefinitionName": review.flow,
        "RoleArn": REVIEWER_ROLE,
        "OutputConfig": {"S3OutputPath": f"s3://closedloop-reviews/{project.name}"},
        "HumanLoopConfig": {
            "WorkteamArn": engine.workforce.team_arn(review.team),
            "HumanTaskUiArn": ui_arn,
            "TaskTitle": f"Review a {project.name} prediction",
            "TaskDescription": f"Confirm or correct the label: one of {', '.join(review.labels)}",
            "TaskCount": review.task_count,
        },
    }
    if review.conditions is not None:
        conditions = orjson.dumps(review.conditions).decode()
        request["HumanLoopActivationConfig"] = {
            "HumanLoopActivationConditionsConfig": {
                "HumanLoopActivationConditions": conditions
            }
        }
    return request
