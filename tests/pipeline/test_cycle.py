"""A whole retraining cycle from a project file: setup, first model, routed reviews, retrain."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from closedloop.cli.main import app
from closedloop.engine import Engine
from closedloop.pipeline import PipelineRunner
from closedloop.pipeline.project import load_project, starter_project
from closedloop.pipeline.setup import setup_project
from closedloop.pipeline.steps import STEP_NAMES, build_steps


def _project(tmp_path: Path) -> Path:
    rng = np.random.default_rng(7)
    amount = rng.gamma(2.0, 60.0, 600)
    night = rng.integers(0, 2, 600)
    fraud = (amount > 200) & (night == 1)
    frame = pd.DataFrame(
        {
            "id": [f"t{i}" for i in range(600)],
            "amount": amount.round(2),
            "night": night,
            "label": np.where(fraud, "fraud", "legit"),
            "time": pd.date_range("2026-01-01", periods=600, freq="h").astype(str),
        }
    )
    (tmp_path / "data").mkdir()
    frame.to_csv(tmp_path / "data" / "base.csv", index=False)
    text = starter_project("cards").replace(
        "params = {}", 'params = { model = "logistic" }'
    )
    text = text.replace(
        "# conditions = {",
        'conditions = { Conditions = [{ ConditionType = "ModelConfidenceCheck", '
        "ConditionParameters = { ConfidenceLessThan = 100 } }] }\n# old = {",
    )
    path = tmp_path / "closedloop.toml"
    path.write_text(text)
    return path


def test_a_cycle_trains_deploys_then_learns_from_routed_reviews(
    engine: Engine, tmp_path: Path
) -> None:
    project = load_project(_project(tmp_path))
    setup_project(engine, project)
    worker = engine.workforce.create_worker("rita", [project.review.team])

    first = PipelineRunner(engine, project.name, build_steps(project)).run()

    assert first.status == "succeeded" and [s.name for s in first.steps] == list(
        STEP_NAMES
    )
    assert first.steps[-1].outputs["promoted"] is True
    assert engine.endpoints.describe("cards").model == "cards-model"

    routed = engine.loops.start(
        "review-1",
        engine.flows.arn(project.review.flow),
        '{"id": "t-new", "features": {"amount": 999.0, "night": 1}, '
        '"prediction": {"label": "legit", "confidence": 0.6}}',
    )
    task = engine.tasks.claim_next(worker)
    assert task is not None and routed.loop.name == task.human_loop_name
    engine.tasks.answer(worker, task.task_id, {"category": {"label": "fraud"}})

    second = PipelineRunner(engine, project.name, build_steps(project)).run()

    outputs = {s.name: s.outputs for s in second.steps}
    assert second.status == "succeeded"
    assert outputs["feedback"]["accepted"] == 1
    assert outputs["merge"]["dataset"] == "cards:2"
    assert outputs["train"]["version"] == 2
    assert outputs["register"]["status"] in ("Approved", "Rejected")
    row = (
        engine.datasets.read(engine.datasets.get("cards:2"))
        .set_index("id")
        .loc["t-new"]
    )
    assert row["label"] == "fraud" and row["_human_loop_name"] == "review-1"


def test_pipeline_commands_run_list_and_show(
    engine: Engine, tmp_path: Path, monkeypatch: object
) -> None:

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.setenv("CLOSEDLOOP_HOME", str(engine.settings.home))
    if engine.settings.database_url:
        monkeypatch.setenv("CLOSEDLOOP_DATABASE_URL", engine.settings.database_url)
    path = str(_project(tmp_path))
    cli = CliRunner()

    setup = cli.invoke(app, ["pipeline", "setup", "--project", path])
    ran = cli.invoke(app, ["pipeline", "run", "--project", path, "--json"])
    listed = cli.invoke(app, ["pipeline", "list", "--project", path])
    shown = cli.invoke(app, ["pipeline", "show", "1", "--project", path])

    assert setup.exit_code == 0, setup.output
    assert ran.exit_code == 0, ran.output
    assert '"status":"succeeded"' in ran.stdout
    assert "run 1 (cards, manual): succeeded" in listed.stdout
    assert "deploy" in shown.stdout
