"""The engine walkthrough: serve, keys, a team, a flow, loops via boto3, two workers answering."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import boto3
import httpx
from botocore.config import Config

from closedloop.core.keys import NewAccessKey
from closedloop.engine import Engine
from closedloop.simulation.server import BackgroundServer

__all__ = ["run_walkthrough"]

TEMPLATE = """<script src="https://assets.crowd.aws/crowd-html-elements.js"></script>
<crowd-form>
  <crowd-classifier name="category" categories="['fraud', 'legitimate']" header="Is this transaction fraud?">
    <classification-target>{{ task.input.transaction | to_json | escape }}</classification-target>
  </crowd-classifier>
</crowd-form>"""
TRANSACTIONS = [
    {
        "id": "txn-1001",
        "amount": 912.40,
        "country": "BR",
        "merchant": "electronics",
        "model_score": 0.58,
    },
    {
        "id": "txn-1002",
        "amount": 14.99,
        "country": "US",
        "merchant": "groceries",
        "model_score": 0.51,
    },
    {
        "id": "txn-1003",
        "amount": 2450.00,
        "country": "NG",
        "merchant": "gift-cards",
        "model_score": 0.62,
    },
]


def run_walkthrough(
    engine: Engine, say: Callable[[str], None], seed: int = 7
) -> dict[str, Any]:
    """Play the walkthrough against a live server; returns the output documents by loop."""
    rng = random.Random(seed)
    key = engine.keys.create(f"walkthrough-{rng.randrange(10**6)}")
    for worker in ("alice", "bob"):
        engine.workforce.create_worker(worker, ["fraud-reviewers"])
    tokens = {w: engine.workforce.issue_token(w) for w in ("alice", "bob")}
    say("1. made an access key, and workers alice and bob in team fraud-reviewers")

    with BackgroundServer(engine) as server:
        say(f"2. serving on {server.url}")
        sagemaker = _client("sagemaker", server.url + "/sagemaker", engine, key)
        a2i = _client("sagemaker-a2i-runtime", server.url + "/a2i", engine, key)
        flow_arn = _make_flow(sagemaker, rng)
        say(f"3. flow definition {flow_arn} (TaskCount 2)")

        for txn in TRANSACTIONS:
            name = f"{txn['id']}-{rng.randrange(16**6):06x}"
            a2i.start_human_loop(
                HumanLoopName=name,
                FlowDefinitionArn=flow_arn,
                HumanLoopInput={"InputContent": json.dumps({"transaction": txn})},
            )
            say(f"4. started human loop {name}")

        answered = _answer_all(server.url, tokens, rng)
        say(f"5. alice and bob answered {answered} tasks through the worker API")

        outputs: dict[str, Any] = {}
        for summary in a2i.list_human_loops(
            FlowDefinitionArn=flow_arn, SortOrder="Ascending"
        )["HumanLoopSummaries"]:
            described = a2i.describe_human_loop(HumanLoopName=summary["HumanLoopName"])
            uri = described["HumanLoopOutput"]["OutputS3Uri"]
            outputs[summary["HumanLoopName"]] = json.loads(engine.ctx.objects.read(uri))
            say(
                f"6. {summary['HumanLoopName']}: {described['HumanLoopStatus']}, output at {uri}"
            )
            say(f"   kept at {engine.ctx.objects.locate(uri)}")
    return outputs


def _client(service: str, url: str, engine: Engine, key: NewAccessKey) -> Any:
    session = boto3.session.Session(
        aws_access_key_id=key.access_key_id,
        aws_secret_access_key=key.secret_access_key,
        region_name=engine.settings.region,
    )
    return session.client(
        service, endpoint_url=url, config=Config(retries={"max_attempts": 2})
    )  # type: ignore[call-overload]


def _make_flow(sagemaker: Any, rng: random.Random) -> str:
    suffix = f"{rng.randrange(16**6):06x}"
    team_arn = sagemaker.describe_workteam(WorkteamName="fraud-reviewers")["Workteam"][
        "WorkteamArn"
    ]
    ui_arn = sagemaker.create_human_task_ui(
        HumanTaskUiName=f"fraud-ui-{suffix}", UiTemplate={"Content": TEMPLATE}
    )["HumanTaskUiArn"]
    flow = sagemaker.create_flow_definition(
        FlowDefinitionName=f"fraud-review-{suffix}",
        RoleArn="arn:aws:iam::000000000000:role/closedloop-walkthrough",
        OutputConfig={"S3OutputPath": "s3://closedloop-walkthrough/reviews"},
        HumanLoopConfig={
            "WorkteamArn": team_arn,
            "HumanTaskUiArn": ui_arn,
            "TaskTitle": "Fraud or not?",
            "TaskDescription": "Decide whether the transaction is fraud",
            "TaskCount": 2,
            "TaskTimeLimitInSeconds": 300,
        },
    )
    return str(flow["FlowDefinitionArn"])


def _answer_all(base: str, tokens: dict[str, str], rng: random.Random) -> int:
    answered = 0
    with httpx.Client(base_url=base, timeout=10) as http:
        for token in tokens.values():
            headers = {"Authorization": f"Bearer {token}"}
            while (
                claim := http.post("/api/v1/worker/tasks/next", headers=headers)
            ).status_code == 200:
                task = claim.json()
                score = task["inputContent"]["transaction"]["model_score"]
                label = "fraud" if rng.random() < score else "legitimate"
                reply = http.post(
                    f"/api/v1/worker/tasks/{task['taskId']}/answer",
                    headers=headers,
                    json={"answerContent": {"category": {"label": label}}},
                )
                reply.raise_for_status()
                answered += 1
    return answered
