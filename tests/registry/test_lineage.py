"""Lineage of a human loop: its stored answers, the dataset versions it fed, the models trained or scored on them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from closedloop.engine import Engine
from closedloop.errors import NotFoundError
from ml_data import mixed_frame

TEMPLATE = (
    "<crowd-form><crowd-classifier name='category' "
    "categories=\"['yes', 'no']\"></crowd-classifier></crowd-form>"
)


@pytest.fixture
def flow_arn(engine: Engine, tmp_path: Path) -> str:
    """A one-answer review flow, and the base version fraud:1 of 60 rows."""
    engine.workforce.create_worker("rita", ["reviewers"])
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
                "TaskCount": 1,
            },
        }
    )
    base = tmp_path / "base.csv"
    mixed_frame(60, 0).to_csv(base, index=False)
    engine.datasets.import_file(
        "fraud", str(base), label="is_fraud", id_column="txn", time_column="ts"
    )
    return flow.arn


def _review(engine: Engine, flow_arn: str, loop: str, item: str, label: str) -> str:
    """Start ``loop`` on ``item``, have rita answer ``label``; returns the input content."""
    content = json.dumps(
        {
            "id": item,
            "features": {"amount": 480.0, "country": "US"},
            "prediction": {"label": "no", "confidence": 0.55},
        }
    )
    engine.loops.start(loop, flow_arn, content)
    worker = engine.workforce.list_workers()[0]
    task = engine.tasks.claim_next(worker)
    assert task is not None and task.human_loop_name == loop
    engine.tasks.answer(worker, task.task_id, {"category": {"label": label}})
    return content


def _merge(engine: Engine, tmp_path: Path, loop: str, item: str, content: str) -> str:
    """Merge one accepted feedback row of ``loop`` into fraud; returns the new ref."""
    path = tmp_path / f"feedback-{loop}.parquet"
    pd.DataFrame(
        {
            "human_loop_name": [loop],
            "item_id": [item],
            "input": [content],
            "label": ["yes"],
            "confidence": [0.93],
            "agreement": [1.0],
            "status": ["accepted"],
        }
    ).to_parquet(path)
    return engine.datasets.merge("fraud", str(path)).ref


def _train_twice(engine: Engine, flow_arn: str, tmp_path: Path) -> None:
    """fraud-model:1 on fraud:2 (review-1's row), fraud-model:2 (@production) on fraud:3.

    fraud:3 adds review-2's row, the newest human-verified one, so the split
    holds it out: fraud-model:2 is trained on review-1's row and scored on review-2's.
    """
    first = _review(engine, flow_arn, "review-1", "t0-3", "yes")
    assert _merge(engine, tmp_path, "review-1", "t0-3", first) == "fraud:2"
    engine.training.train("fraud-model", "fraud:2", params={"model": "logistic"})
    second = _review(engine, flow_arn, "review-2", "new-1", "yes")
    assert _merge(engine, tmp_path, "review-2", "new-1", second) == "fraud:3"
    engine.training.train("fraud-model", "fraud:3", params={"model": "logistic"})
    engine.registry.promote("fraud-model", 2)


def test_lineage_follows_a_loop_to_its_first_dataset_version_and_every_model_trained_on_it(
    engine: Engine, flow_arn: str, tmp_path: Path
) -> None:
    _train_twice(engine, flow_arn, tmp_path)

    lineage = engine.lineage.of_loop("review-1")

    assert lineage.loop.status == "Completed" and lineage.loop.flow_name == "fraud"
    assert lineage.loop.output_uri.endswith("/review-1/output.json")
    [answer] = lineage.answers
    assert answer.answer_content == {"category": {"label": "yes"}}
    assert answer.worker_id == engine.workforce.list_workers()[0].worker_id
    assert answer.time_spent_seconds >= 0
    assert [v.ref for v in lineage.datasets] == ["fraud:2"]
    row = lineage.row
    assert row is not None and (row.dataset, row.item_id) == ("fraud:2", "t0-3")
    assert (row.label, row.source, row.confidence, row.agreement) == (
        "yes",
        "human",
        0.93,
        1.0,
    )
    # fraud:3 keeps review-1's row among its training rows, so fraud-model:2 learnt from it too.
    assert [(m.ref, m.dataset, m.aliases) for m in lineage.models] == [
        ("fraud-model:1", "fraud:2", ()),
        ("fraud-model:2", "fraud:3", ("production",)),
    ]
    assert lineage.evaluated_by == ()


def test_a_loop_whose_row_was_held_out_is_evaluated_by_the_model_not_trained_into_it(
    engine: Engine, flow_arn: str, tmp_path: Path
) -> None:
    _train_twice(engine, flow_arn, tmp_path)

    lineage = engine.lineage.of_loop("review-2")
    production = engine.registry.get("fraud-model", "@production")

    assert [v.ref for v in lineage.datasets] == ["fraud:3"]
    assert lineage.models == ()
    assert [(m.ref, m.dataset, m.aliases) for m in lineage.evaluated_by] == [
        ("fraud-model:2", "fraud:3", ("production",))
    ]
    assert (production.source_loops, production.holdout_loops) == (
        ("review-1",),
        ("review-2",),
    )
    assert engine.registry.list(source_loop="review-2") == []
    assert [v.ref for v in engine.registry.list(holdout_loop="review-2")] == [
        "fraud-model:2"
    ]


def test_models_of_a_loop_match_its_whole_name_not_a_prefix(
    engine: Engine, flow_arn: str, tmp_path: Path
) -> None:
    content = _review(engine, flow_arn, "review-10", "t0-4", "yes")
    _merge(engine, tmp_path, "review-10", "t0-4", content)
    engine.training.train("fraud-model", "fraud:2", params={"model": "logistic"})

    assert engine.registry.list(source_loop="review-1") == []
    assert [v.ref for v in engine.registry.list(source_loop="review-10")] == [
        "fraud-model:1"
    ]
    assert engine.registry.list(holdout_loop="review-1") == []


def test_a_loop_not_yet_in_any_dataset_has_its_answers_and_nothing_after(
    engine: Engine, flow_arn: str
) -> None:
    _review(engine, flow_arn, "review-1", "t0-3", "no")

    lineage = engine.lineage.of_loop("review-1")

    assert len(lineage.answers) == 1
    assert (lineage.datasets, lineage.row, lineage.models, lineage.evaluated_by) == (
        (),
        None,
        (),
        (),
    )


def test_an_unknown_loop_is_not_found_by_name(engine: Engine) -> None:
    with pytest.raises(NotFoundError, match="HumanLoop 'no-such-loop' does not exist"):
        engine.lineage.of_loop("no-such-loop")
