"""Fixtures for the HTTP adapter tests: a settable clock, a review kit, signed raw requests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from closedloop.engine import Engine
from closedloop.settings import Settings

START = datetime(2024, 2, 29, 23, 59, 58, 500_000, tzinfo=UTC)
ROLE = "arn:aws:iam::000000000000:role/closedloop"
TEMPLATE = (
    '<crowd-form><crowd-classifier name="category" '
    "categories=\"['fraud', 'legit']\"></crowd-classifier></crowd-form>"
)


class Clock:
    """A frozen UTC clock that moves only when a test says so."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def clocked_engine(settings: Settings, clock: Clock) -> Iterator[Engine]:
    """An engine whose loops, leases and timers follow ``clock``."""
    engine = Engine(settings, clock=clock)
    yield engine
    engine.close()


class Kit:
    """Builds teams, UIs, flows and loops, and speaks the worker API, against one server."""

    def __init__(self, engine: Engine, url: str, sagemaker: Any, a2i: Any) -> None:
        self.engine = engine
        self.url = url
        self.sagemaker = sagemaker
        self.a2i = a2i

    def workers(self, team: str, *names: str) -> dict[str, str]:
        """Put ``names`` in ``team``; returns each worker's bearer token."""
        self.engine.workforce.create_team(team)
        tokens = {}
        for name in names:
            self.engine.workforce.create_worker(name, [team])
            tokens[name] = self.engine.workforce.issue_token(name)
        return tokens

    def team_arn(self, team: str) -> str:
        return self.engine.workforce.team_arn(team)

    def task_ui(self, name: str = "fraud-ui") -> str:
        return str(
            self.sagemaker.create_human_task_ui(
                HumanTaskUiName=name, UiTemplate={"Content": TEMPLATE}
            )["HumanTaskUiArn"]
        )

    def flow_request(
        self, name: str, team: str, ui_arn: str, **config: Any
    ) -> dict[str, Any]:
        return {
            "FlowDefinitionName": name,
            "RoleArn": ROLE,
            "OutputConfig": {"S3OutputPath": "s3://reviews/out"},
            "HumanLoopConfig": {
                "WorkteamArn": self.team_arn(team),
                "HumanTaskUiArn": ui_arn,
                "TaskTitle": "Is this fraud?",
                "TaskDescription": "Look at the transaction",
                "TaskCount": 1,
                **config,
            },
        }

    def flow(
        self, name: str = "fraud-review", team: str = "reviewers", **config: Any
    ) -> str:
        """A flow for ``team`` with a fresh task UI; ``config`` overrides HumanLoopConfig."""
        self.engine.workforce.create_team(team)
        ui_arn = self.task_ui(name + "-ui")
        request = self.flow_request(name, team, ui_arn, **config)
        return str(
            self.sagemaker.create_flow_definition(**request)["FlowDefinitionArn"]
        )

    def start(self, name: str, flow_arn: str, **content: Any) -> str:
        return str(
            self.a2i.start_human_loop(
                HumanLoopName=name,
                FlowDefinitionArn=flow_arn,
                HumanLoopInput={"InputContent": json.dumps(content or {"n": 1})},
            )["HumanLoopArn"]
        )

    def status(self, name: str) -> str:
        return str(self.a2i.describe_human_loop(HumanLoopName=name)["HumanLoopStatus"])

    def loop_names(self, flow_arn: str) -> list[str]:
        summaries = self.a2i.list_human_loops(FlowDefinitionArn=flow_arn)
        return [s["HumanLoopName"] for s in summaries["HumanLoopSummaries"]]

    def worker_post(
        self, token: str | None, path: str, **kwargs: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return httpx.post(
            self.url + "/api/v1/worker" + path, headers=headers, timeout=30, **kwargs
        )

    def claim(self, token: str) -> httpx.Response:
        return self.worker_post(token, "/tasks/next")

    def answer(self, token: str, task_id: int, label: str = "fraud") -> httpx.Response:
        body = {"answerContent": {"category": {"label": label}}}
        return self.worker_post(token, f"/tasks/{task_id}/answer", json=body)

    def release(self, token: str, task_id: int) -> httpx.Response:
        return self.worker_post(token, f"/tasks/{task_id}/release")


@pytest.fixture
def kit(engine: Engine, server: Any, sagemaker: Any, a2i: Any) -> Kit:
    return Kit(engine, server.url, sagemaker, a2i)


def signed(
    credentials: dict[str, str],
    method: str,
    url: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """Send a raw request signed with SigV4 the way botocore signs it."""
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    creds = Credentials(
        credentials["aws_access_key_id"], credentials["aws_secret_access_key"]
    )
    SigV4Auth(creds, "sagemaker", "us-east-1").add_auth(request)
    return httpx.request(
        method, url, content=body, headers=dict(request.headers.items()), timeout=60
    )


@pytest.fixture
def send_signed(credentials: dict[str, str]) -> Any:
    """``send_signed(method, url, body, headers)`` signed with the test key."""

    def send(
        method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return signed(credentials, method, url, body, headers)

    return send
