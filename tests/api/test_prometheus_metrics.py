"""Prometheus metrics reflect loops and the queue as the store holds them."""

from __future__ import annotations

import json
from typing import Any

import httpx

from closedloop.engine import Engine


def test_metrics_count_loops_by_status_and_waiting_tasks(
    engine: Engine, server: Any
) -> None:
    engine.workforce.create_worker("w", ["team-a"])
    ui = engine.task_uis.create(
        "ui", "<crowd-form><crowd-input name='x'></crowd-input></crowd-form>"
    )
    flow = engine.flows.create(
        {
            "FlowDefinitionName": "flow-a",
            "RoleArn": "arn:aws:iam::000000000000:role/r",
            "OutputConfig": {"S3OutputPath": "s3://b/o"},
            "HumanLoopConfig": {
                "WorkteamArn": engine.workforce.team_arn("team-a"),
                "HumanTaskUiArn": ui.arn,
                "TaskTitle": "t",
                "TaskDescription": "d",
                "TaskCount": 2,
            },
        }
    )
    for i in range(3):
        engine.loops.start(f"l{i}", flow.arn, json.dumps({"i": i}))
    engine.loops.stop("l2")

    text = httpx.get(server.url + "/metrics").text

    assert 'closedloop_human_loops{flow="flow-a",status="InProgress"} 2.0' in text
    assert 'closedloop_human_loops{flow="flow-a",status="Stopped"} 1.0' in text
    assert 'closedloop_tasks_available{team="team-a"} 4.0' in text
    assert "closedloop_oldest_task_age_seconds" in text
