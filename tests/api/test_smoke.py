"""A loop's whole life through boto3 and the worker API, against a live server."""

from __future__ import annotations

import json
from typing import Any

import httpx

from closedloop.engine import Engine

TEMPLATE = (
    '<crowd-form><crowd-classifier name="category" '
    "categories=\"['fraud', 'legit']\"></crowd-classifier></crowd-form>"
)


def test_loop_started_with_boto3_completes_after_two_workers_answer(
    engine: Engine, server: Any, a2i: Any, sagemaker: Any
) -> None:
    engine.workforce.create_worker("alice", ["reviewers"])
    engine.workforce.create_worker("bob", ["reviewers"])
    tokens = {name: engine.workforce.issue_token(name) for name in ("alice", "bob")}
    team_arn = sagemaker.describe_workteam(WorkteamName="reviewers")["Workteam"][
        "WorkteamArn"
    ]
    ui_arn = sagemaker.create_human_task_ui(
        HumanTaskUiName="fraud-ui", UiTemplate={"Content": TEMPLATE}
    )["HumanTaskUiArn"]
    flow_arn = sagemaker.create_flow_definition(
        FlowDefinitionName="fraud-review",
        RoleArn="arn:aws:iam::000000000000:role/closedloop",
        OutputConfig={"S3OutputPath": "s3://reviews/out"},
        HumanLoopConfig={
            "WorkteamArn": team_arn,
            "HumanTaskUiArn": ui_arn,
            "TaskTitle": "Is this fraud?",
            "TaskDescription": "Look at the transaction",
            "TaskCount": 2,
        },
    )["FlowDefinitionArn"]

    a2i.start_human_loop(
        HumanLoopName="txn-1",
        FlowDefinitionArn=flow_arn,
        HumanLoopInput={"InputContent": json.dumps({"amount": 12})},
    )
    for name, label in (("alice", "fraud"), ("bob", "legit")):
        headers = {"Authorization": f"Bearer {tokens[name]}"}
        task = httpx.post(
            server.url + "/api/v1/worker/tasks/next", headers=headers
        ).json()
        answer = {"answerContent": {"category": {"label": label}}}
        reply = httpx.post(
            server.url + f"/api/v1/worker/tasks/{task['taskId']}/answer",
            json=answer,
            headers=headers,
        )
        assert reply.status_code == 200, reply.text

    described = a2i.describe_human_loop(HumanLoopName="txn-1")
    assert described["HumanLoopStatus"] == "Completed"
    output = json.loads(
        engine.ctx.objects.read(described["HumanLoopOutput"]["OutputS3Uri"])
    )
    assert [
        a["answerContent"]["category"]["label"] for a in output["humanAnswers"]
    ] == ["fraud", "legit"]
    assert output["inputContent"] == {"amount": 12}
