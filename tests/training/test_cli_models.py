"""``closedloop train``, ``evaluate`` and ``models ...`` through Typer's runner, with --json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import typer
from typer.testing import CliRunner

from closedloop.cli.models import register
from closedloop.engine import Engine
from ml_data import make_dataset


@pytest.fixture
def cli(clock_engine: Engine, tmp_path: Path) -> Any:
    make_dataset(clock_engine, tmp_path)
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """closedloop (test)."""

    register(app)
    env = {
        "CLOSEDLOOP_HOME": str(clock_engine.settings.home),
        "CLOSEDLOOP_DATABASE_URL": clock_engine.settings.resolved_database_url,
    }
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> Any:
        result = runner.invoke(app, list(args), env=env)
        assert result.exit_code == code, (result.output, result.exception)
        return orjson.loads(result.stdout) if "--json" in args and code == 0 else result

    return invoke


def test_train_evaluate_promote_and_roll_back_from_the_command_line(
    cli: Any, tmp_path: Path
) -> None:
    first = cli(
        "train", "fraud", "--dataset", "fraud:2", "--param", "model=logistic", "--json"
    )
    assert (first["model"], first["version"], first["status"]) == (
        "fraud",
        1,
        "Completed",
    )
    assert first["params"] == {"model": "logistic"}
    second = cli(
        "train", "fraud", "--dataset", "fraud", "--param", "max_iter=40", "--json"
    )
    assert second["version"] == 2

    assert cli("models", "approve", "fraud:1", "--json")["status"] == "Approved"
    assert cli("models", "promote", "fraud:1", "--json")["aliases"] == ["production"]
    evaluation = cli("evaluate", "fraud:2", "--out", str(tmp_path / "out"), "--json")
    assert evaluation["champion"] == 1 and isinstance(evaluation["promote"], bool)
    assert evaluation["reasons"] and "accuracy" in evaluation["metrics"]["champion"]
    assert (tmp_path / "out" / "report.html").exists()

    cli("models", "promote", "fraud:2", "--json")
    assert cli("models", "show", "fraud@production", "--json")["version"] == 2
    assert cli("models", "rollback", "fraud", "--json")["version"] == 1
    listed = cli("models", "list", "--json")["versions"]
    assert [(v["version"], v["aliases"]) for v in listed] == [
        (1, ["production"]),
        (2, []),
    ]
    assert cli("models", "reject", "fraud:2", "--json")["status"] == "Rejected"


def test_cli_errors_exit_non_zero_with_one_line(cli: Any) -> None:
    result = cli("models", "show", "fraud:7", code=3)
    assert "does not exist" in result.stderr
    result = cli("train", "fraud", "--dataset", "fraud", "--param", "oops", code=2)
    assert "--param must look like KEY=VALUE" in result.stderr
