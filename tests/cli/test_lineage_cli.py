"""``closedloop lineage``: from an answered loop through feedback, merge, train and promote, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from closedloop.cli.main import app
from closedloop.engine import Engine
from ml_data import mixed_frame

TEMPLATE = (
    "<crowd-form><crowd-classifier name='category' "
    "categories=\"['yes', 'no']\"></crowd-classifier></crowd-form>"
)
ANSWERS = {"t0-3": ["yes", "yes", "no"], "new-1": ["no", "no", "no"]}


def _review(engine: Engine, answers: dict[str, list[str]]) -> list[str]:
    """Three workers answer one loop per item (``review-<item>``); returns the worker ids."""
    workers = [engine.workforce.create_worker(f"w{i}", ["reviewers"]) for i in range(3)]
    ui = engine.task_uis.create("ui", TEMPLATE)
    flow = engine.flows.create(
        {
            "FlowDefinitionName": "fraud",
            "RoleArn": "arn:aws:iam::000000000000:role/r",
            "OutputConfig": {"S3OutputPath": "s3://reviews/out"},
            "HumanLoopConfig": {
                "WorkteamArn": engine.workforce.team_arn("reviewers"),
                "HumanTaskUiArn": ui.arn,
                "TaskTitle": "t",
                "TaskDescription": "d",
                "TaskCount": 3,
            },
        }
    )
    for item, labels in answers.items():
        content = {
            "id": item,
            "features": {"amount": 480.0, "country": "US"},
            "prediction": {"label": "no", "confidence": 0.55},
        }
        engine.loops.start(f"review-{item}", flow.arn, json.dumps(content))
        for worker, label in zip(workers, labels, strict=True):
            task = engine.tasks.claim_next(worker)
            assert task is not None
            engine.tasks.answer(worker, task.task_id, {"category": {"label": label}})
    return [w.worker_id for w in workers]


@pytest.fixture
def cli(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run ``closedloop ARGS`` on the engine's home; asserts the exit code."""
    monkeypatch.setenv("CLOSEDLOOP_HOME", str(engine.settings.home))
    if engine.settings.database_url:
        monkeypatch.setenv("CLOSEDLOOP_DATABASE_URL", engine.settings.database_url)
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> Any:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, (result.output, result.exception)
        return result

    return invoke


def test_lineage_shows_answers_dataset_row_and_the_production_model(
    engine: Engine, cli: Any, tmp_path: Path
) -> None:
    # One human-verified row: too few for the split to hold any out, so it is trained on.
    workers = _review(engine, {"t0-3": ANSWERS["t0-3"]})
    base, feedback = tmp_path / "base.csv", tmp_path / "feedback.parquet"
    mixed_frame(60, 0).to_csv(base, index=False)
    build = ("feedback", "build", "--flow", "fraud", "--out", str(feedback))
    cli(*build, "--min-confidence", "0.5")
    cli("data", "import", "fraud", str(base), "--label", "is_fraud", "--id", "txn")
    cli("data", "merge", "fraud", "--feedback", str(feedback))
    cli("train", "fraud-model", "--dataset", "fraud:2", "--param", "model=logistic")
    cli("models", "promote", "fraud-model:1")

    shown = orjson.loads(cli("lineage", "review-t0-3", "--json").stdout)

    loop = shown["loop"]
    assert (loop["name"], loop["flow"], loop["status"]) == (
        "review-t0-3",
        "fraud",
        "Completed",
    )
    assert loop["output_uri"].endswith("/review-t0-3/output.json")
    assert [a["worker_id"] for a in loop["answers"]] == workers
    assert [a["answer_content"]["category"]["label"] for a in loop["answers"]] == [
        "yes",
        "yes",
        "no",
    ]
    assert all(a["time_spent_seconds"] >= 0 for a in loop["answers"])
    assert [d["ref"] for d in shown["datasets"]] == ["fraud:2"]
    row = shown["row"]
    assert (row["dataset"], row["item_id"], row["label"], row["source"]) == (
        "fraud:2",
        "t0-3",
        "yes",
        "human",
    )
    assert 0 < row["confidence"] <= 1 and row["agreement"] == pytest.approx(2 / 3)
    [model] = shown["models"]
    assert (model["ref"], model["aliases"], model["dataset"]) == (
        "fraud-model:1",
        ["production"],
        "fraud:2",
    )
    assert shown["evaluated_by"] == []


def test_a_held_out_loop_shows_the_model_it_evaluated_not_one_trained_on_it(
    engine: Engine, cli: Any, tmp_path: Path
) -> None:
    _review(engine, ANSWERS)
    base, feedback = tmp_path / "base.csv", tmp_path / "feedback.parquet"
    mixed_frame(60, 0).to_csv(base, index=False)
    cli("feedback", "build", "--flow", "fraud", "--out", str(feedback))
    cli("data", "import", "fraud", str(base), "--label", "is_fraud", "--id", "txn")
    cli("data", "merge", "fraud", "--feedback", str(feedback))
    cli("train", "fraud-model", "--dataset", "fraud:2", "--param", "model=logistic")
    # Of fraud:2's two human-verified rows, the split holds the newer one out.
    version = orjson.loads(cli("models", "show", "fraud-model:1", "--json").stdout)
    [trained], [held] = version["source_loops"], version["holdout_loops"]
    assert {trained, held} == {"review-t0-3", "review-new-1"}

    held_json = orjson.loads(cli("lineage", held, "--json").stdout)
    held_text = cli("lineage", held).stdout
    trained_json = orjson.loads(cli("lineage", trained, "--json").stdout)

    assert held_json["models"] == []
    assert [(m["ref"], m["dataset"]) for m in held_json["evaluated_by"]] == [
        ("fraud-model:1", "fraud:2")
    ]
    assert f"model versions: none trained on data from {held} yet" in held_text
    assert (
        f"model versions evaluated on data from {held} (held out from their training):\n"
        "  fraud-model:1  PendingManualApproval  -  dataset fraud:2" in held_text
    )
    assert [m["ref"] for m in trained_json["models"]] == ["fraud-model:1"]
    assert trained_json["evaluated_by"] == []


def test_lineage_text_names_each_step(engine: Engine, cli: Any, tmp_path: Path) -> None:
    _review(engine, {"t0-3": ["yes", "yes", "yes"]})
    feedback = tmp_path / "feedback.parquet"
    mixed_frame(60, 0).to_csv(tmp_path / "base.csv", index=False)
    cli("feedback", "build", "--flow", "fraud", "--out", str(feedback))
    cli("data", "import", "fraud", str(tmp_path / "base.csv"), "--label", "is_fraud")
    cli("data", "merge", "fraud", "--feedback", str(feedback))

    text = cli("lineage", "review-t0-3").stdout

    assert "human loop review-t0-3: flow fraud, Completed" in text
    assert "answers      3 of 3" in text and '{"category":{"label":"yes"}}' in text
    assert "fraud:2" in text and "row in fraud:2: item t0-3, label yes" in text
    assert "model versions: none trained on data from review-t0-3 yet" in text
    assert "model versions: none evaluated on held-out data from review-t0-3" in text


def test_a_loop_with_no_dataset_yet_is_shown_with_exit_0(
    engine: Engine, cli: Any
) -> None:
    _review(engine, {"t0-3": ["yes", "no", "yes"]})

    shown = orjson.loads(cli("lineage", "review-t0-3", "--json").stdout)
    text = cli("lineage", "review-t0-3").stdout

    assert len(shown["loop"]["answers"]) == 3
    assert (shown["datasets"], shown["row"], shown["models"]) == ([], None, [])
    assert shown["evaluated_by"] == []
    assert "dataset versions: none yet" in text


def test_an_unknown_loop_exits_3_naming_it(cli: Any) -> None:
    result = cli("lineage", "no-such-loop", "--json", code=3)

    assert result.stdout == ""
    assert "error: HumanLoop 'no-such-loop' does not exist" in result.stderr
