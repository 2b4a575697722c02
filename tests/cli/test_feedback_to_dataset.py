"""From completed loops to a new dataset version, through the CLI as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pandas as pd
import pytest
from typer.testing import CliRunner

from closedloop.cli.main import app
from closedloop.engine import Engine

TEMPLATE = (
    "<crowd-form><crowd-classifier name='category' "
    "categories=\"['fraud', 'ok']\"></crowd-classifier></crowd-form>"
)


def _complete_loops(engine: Engine, answers: dict[str, list[str]]) -> str:
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
            "features": {"amount": 10.0},
            "prediction": {"label": "ok", "confidence": 0.6},
        }
        engine.loops.start(f"loop-{item}", flow.arn, json.dumps(content))
        for worker, label in zip(workers, labels, strict=True):
            task = engine.tasks.claim_next(worker)
            assert task is not None
            engine.tasks.answer(worker, task.task_id, {"category": {"label": label}})
    return flow.name


@pytest.fixture
def cli(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CLOSEDLOOP_HOME", str(engine.settings.home))
    if engine.settings.database_url:
        monkeypatch.setenv("CLOSEDLOOP_DATABASE_URL", engine.settings.database_url)
    return CliRunner()


def test_feedback_build_and_data_merge_turn_reviews_into_a_dataset_version(
    engine: Engine, cli: CliRunner, tmp_path: Path
) -> None:
    flow = _complete_loops(
        engine,
        {
            "t1": ["fraud", "fraud", "fraud"],
            "t2": ["ok", "ok", "ok"],
            "t3": ["fraud", "ok", "ok"],
        },
    )
    base = tmp_path / "base.csv"
    pd.DataFrame(
        {"id": ["t1", "t9"], "amount": [10.0, 3.0], "label": ["ok", "ok"]}
    ).to_csv(base, index=False)
    out = tmp_path / "feedback.parquet"

    built = cli.invoke(
        app, ["feedback", "build", "--flow", flow, "--out", str(out), "--json"]
    )
    imported = cli.invoke(
        app, ["data", "import", "fraud", str(base), "--label", "label", "--id", "id"]
    )
    merged = cli.invoke(
        app, ["data", "merge", "fraud", "--feedback", str(out), "--json"]
    )
    diff = cli.invoke(app, ["data", "diff", "fraud:1", "fraud:2", "--json"])

    assert built.exit_code == 0, built.output
    counts = orjson.loads(built.stdout)["counts"]
    assert counts["files_read"] == 3
    table = pd.read_parquet(out).set_index("item_id")
    assert table.loc["t1", "label"] == "fraud" and table.loc["t1", "tag"] == "corrected"
    assert table.loc["t2", "tag"] == "confirmed"
    assert imported.exit_code == 0 and merged.exit_code == 0, merged.output
    changes = orjson.loads(diff.stdout)
    assert ["t1", "ok", "fraud"] in changes["relabelled"]
    assert "t2" in changes["added"]


def test_feedback_build_without_a_source_names_what_is_missing(
    cli: CliRunner, tmp_path: Path
) -> None:
    result = cli.invoke(
        app, ["feedback", "build", "--out", str(tmp_path / "f.parquet")]
    )
    assert result.exit_code == 2
    assert "SOURCE" in result.output
