"""A pipeline run whose object store is a bucket on a real S3-compatible server."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from test_cycle import _project

from closedloop.engine import Engine
from closedloop.pipeline import PipelineRunner
from closedloop.pipeline.project import load_project
from closedloop.pipeline.setup import setup_project
from closedloop.pipeline.steps import build_steps
from closedloop.settings import Settings


@pytest.fixture
def s3_engine(
    s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Engine]:
    """An engine storing objects under ``s3://<bucket>/root``, run from an empty folder."""
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env(
        {}, home=tmp_path / "home", storage_url=f"s3://{s3_bucket}/root"
    )
    engine = Engine(settings)
    yield engine
    engine.close()


def test_a_run_on_s3_storage_merges_the_answers_of_completed_loops(
    s3_engine: Engine, s3: Any, s3_bucket: str, tmp_path: Path
) -> None:
    project = load_project(_project(tmp_path))
    setup_project(s3_engine, project)
    worker = s3_engine.workforce.create_worker("rita", [project.review.team])
    s3_engine.loops.start(
        "review-1",
        s3_engine.flows.arn(project.review.flow),
        '{"id": "t-new", "features": {"amount": 999.0, "night": 1}, '
        '"prediction": {"label": "legit", "confidence": 0.6}}',
    )
    task = s3_engine.tasks.claim_next(worker)
    assert task is not None
    s3_engine.tasks.answer(worker, task.task_id, {"category": {"label": "fraud"}})
    before = set(tmp_path.iterdir())

    report = PipelineRunner(s3_engine, project.name, build_steps(project)).run()

    outputs = {s.name: s.outputs for s in report.steps}
    assert report.status == "succeeded", report.error
    assert outputs["feedback"]["accepted"] == 1
    assert outputs["merge"] == {
        "dataset": "cards:2",
        "new_labels": 1,
        "counts": outputs["merge"]["counts"],
        "seconds": outputs["merge"]["seconds"],
    }
    assert outputs["merge"]["counts"]["added"] == 1
    assert outputs["train"]["version"] == 1
    row = (
        s3_engine.datasets.read(s3_engine.datasets.get("cards:2"))
        .set_index("id")
        .loc["t-new"]
    )
    assert row["label"] == "fraud" and row["_human_loop_name"] == "review-1"
    key = f"root/closedloop-pipeline/cards/run-{report.id}/feedback.parquet"
    assert outputs["feedback"]["path"] == f"s3://{s3_bucket}/{key}"
    body = s3.get_object(Bucket=s3_bucket, Key=key)["Body"].read()
    table = pq.read_table(io.BytesIO(body))
    assert table.column("human_loop_name").to_pylist() == ["review-1"]
    # Nothing is written to the local folder the pipeline was started from.
    assert set(tmp_path.iterdir()) == before
