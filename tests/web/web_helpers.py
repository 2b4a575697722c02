"""Helpers of the web UI tests: a live server with the web router, flows, loops, sign-in."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field

import httpx
import uvicorn

from closedloop.api.app import create_app
from closedloop.engine import Engine

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


class WebServer:
    """The app with the web router on a real loopback port, in a thread."""

    def __init__(self, engine: Engine) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        app = create_app(engine, sweep=False)
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> WebServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def __exit__(self, *_: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=20)


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
