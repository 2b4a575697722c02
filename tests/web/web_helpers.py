"""Helpers of the web UI tests: a live server with the web router, flows, loops, sign-in."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import httpx

from closedloop.engine import Engine
from closedloop.simulation.server import BackgroundServer

ROLE = "arn:aws:iam::000000000000:role/closedloop"
TEMPLATE = (
    "<crowd-form>"
    "<crowd-classifier name=\"category\" categories=\"['fraud', 'legit']\" "
    'header="Is item {{ task.input.item | escape }} fraud?">'
    "<classification-target>Item {{ task.input.item | escape }}; "
    "model says: {{ task.input.prediction | escape }}</classification-target>"
    "</crowd-classifier></crowd-form>"
)
PASSWORDS = {
    "alice": "alice-correct-horse-1",
    "bob": "bob-battery-staple-22",
    "carol": "carol-other-team-333",
    "olive": "olive-operator-4444",
}


class WebServer(BackgroundServer):
    """The app with the web UI on a real loopback port, in a thread."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine, sweep=False)


@dataclass
class Kit:
    """What the fixtures set up: flows and the loops started in them."""

    engine: Engine
    flow: str = "triage"
    other_flow: str = "other-triage"
    loops: list[str] = field(default_factory=list)
    other_loops: list[str] = field(default_factory=list)

    def start_loops(self, flow: str, count: int, prefix: str) -> list[str]:
        names = []
        for i in range(count):
            name = f"{prefix}-{i}"
            content = {"item": f"{prefix}-item-{i}", "prediction": f"fraud-{i}"}
            self.engine.loops.start(
                name, self.engine.flows.arn(flow), json.dumps(content)
            )
            names.append(name)
        return names


def make_flow(engine: Engine, name: str, team: str, task_count: int) -> None:
    engine.task_uis.create(name + "-ui", TEMPLATE)
    engine.flows.create(
        {
            "FlowDefinitionName": name,
            "RoleArn": ROLE,
            "OutputConfig": {"S3OutputPath": "s3://reviews/out"},
            "HumanLoopConfig": {
                "WorkteamArn": engine.workforce.team_arn(team),
                "HumanTaskUiArn": engine.task_uis.arn(name + "-ui"),
                "TaskCount": task_count,
                "TaskTitle": f"Review {name}",
                "TaskDescription": "Decide whether the item is fraud.",
                "TaskTimeLimitInSeconds": 600,
            },
        }
    )


def csrf_from(html: str) -> str:
    """The CSRF token in a page's form or meta tag."""
    match = re.search(r'name="csrf[-_]token" (?:value|content)="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)


def sign_in(url: str, realm: str, username: str, password: str) -> httpx.Client:
    """A client with a session of ``realm``, signed in through the login form."""
    client = httpx.Client(base_url=url, follow_redirects=False)
    token = csrf_from(client.get(f"/{realm}/login").text)
    response = client.post(
        f"/{realm}/login",
        data={"username": username, "password": password, "csrf_token": token},
    )
    assert response.status_code == 303, response.text
    return client
