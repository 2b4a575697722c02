"""The CLI commands that give operators and workers a password for the web UI."""

from __future__ import annotations

from pathlib import Path

import httpx
import typer
from typer.testing import CliRunner
from web_helpers import WebServer, csrf_from

from closedloop.cli.web import register
from closedloop.engine import Engine
from closedloop.settings import Settings


def _cli() -> typer.Typer:
    app = typer.Typer()
    workers_app = typer.Typer()
    app.add_typer(workers_app, name="workers")
    register(app, workers_app)
    return app


def _run(home: Path, args: list[str], stdin: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        _cli(), args, input=stdin, env={"CLOSEDLOOP_HOME": str(home)}
    )
    return result.exit_code, result.output


def test_short_passwords_are_refused_with_the_rule(tmp_path: Path) -> None:
    code, output = _run(
        tmp_path, ["admin", "create", "olive", "--password-stdin"], "short-pw\n"
    )
    assert code == 2
    assert "password must be at least 12 characters; got 8" in output
    assert "short-pw" not in output


def test_operator_and_worker_passwords_made_on_the_cli_sign_in(tmp_path: Path) -> None:
    code, output = _run(
        tmp_path,
        ["admin", "create", "olive", "--password-stdin"],
        "a-long-operator-secret\n",
    )
    assert code == 0, output
    again, output = _run(
        tmp_path,
        ["admin", "create", "olive", "--password-stdin"],
        "another-long-secret\n",
    )
    assert again == 4 and "already exists" in output
    missing, output = _run(
        tmp_path,
        ["workers", "passwd", "nobody", "--password-stdin"],
        "a-long-worker-secret\n",
    )
    assert missing == 3 and "no worker named 'nobody'" in output

    engine = Engine(Settings.from_env({}, home=tmp_path))
    try:
        engine.workforce.create_worker("wendy", ["reviewers"])
        code, output = _run(
            tmp_path,
            ["workers", "passwd", "wendy", "--password-stdin"],
            "a-long-worker-secret\n",
        )
        assert code == 0, output
        with WebServer(engine) as web:
            for realm, name, password in (
                ("admin", "olive", "a-long-operator-secret"),
                ("review", "wendy", "a-long-worker-secret"),
            ):
                client = httpx.Client(base_url=web.url)
                token = csrf_from(client.get(f"/{realm}/login").text)
                signed_in = client.post(
                    f"/{realm}/login",
                    data={"username": name, "password": password, "csrf_token": token},
                )
                assert signed_in.status_code == 303, signed_in.text
    finally:
        engine.close()
