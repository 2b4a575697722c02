"""Trainers: built-in tabular and text, a user's trainer by import path, recorded runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from closedloop.datasets import DatasetVersion
from closedloop.engine import Engine
from closedloop.errors import ValidationError
from closedloop.registry import Registry
from closedloop.training import (
    Training,
    TrainingData,
    WeightPolicy,
    resolve_trainer,
    sample_weights,
)
from ml_data import make_dataset


def _training(engine: Engine) -> Training:
    return Training(engine.ctx, engine.datasets, Registry(engine.ctx))


def _data(frame: pd.DataFrame, label: str, dtypes: dict[str, str]) -> TrainingData:
    version = DatasetVersion("t", 1, "0" * 16, {}, "s3://b/t")
    return TrainingData(
        version,
        frame[list(dtypes)],
        frame[label],
        np.ones(len(frame)),
        dtypes,
    )


def test_tabular_learns_a_rule_over_numbers_and_categories() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"x": rng.normal(size=400), "colour": rng.choice(["red", "blue"], 400)}
    )
    frame["y"] = np.where((frame.x > 0) == (frame.colour == "red"), "a", "b")
    data = _data(frame, "y", {"x": "number", "colour": "string"})
    for model in ("boosting", "logistic"):
        fitted = resolve_trainer("tabular")(data, {"model": model}, 0)
        accuracy = (fitted.predict(frame[["x", "colour"]]) == frame.y).mean()
        # XOR of a number and a category: boosting learns it, a linear model cannot.
        assert accuracy > (0.95 if model == "boosting" else 0.4)


def test_text_trainer_learns_words() -> None:
    texts = [
        "great film loved it",
        "awful boring mess",
        "loved the acting",
        "boring plot",
    ]
    frame = pd.DataFrame({"review": texts * 25, "y": ["pos", "neg", "pos", "neg"] * 25})
    fitted = resolve_trainer("text")(_data(frame, "y", {"review": "string"}), {}, 0)
    assert list(
        fitted.predict(pd.DataFrame({"review": ["loved it", "so boring"]}))
    ) == [
        "pos",
        "neg",
    ]


def test_unknown_trainer_name_is_refused() -> None:
    with pytest.raises(ValidationError, match="trainer must be one of"):
        resolve_trainer("forest")


def test_train_records_the_run_and_registers_a_version_with_lineage(
    clock_engine: Engine, tmp_path: Path
) -> None:
    dataset = make_dataset(clock_engine, tmp_path)
    run = _training(clock_engine).train(
        "fraud", "fraud", params={"max_iter": 50}, seed=3
    )

    assert run.status == "Completed" and run.model_version == 1
    assert run.dataset == dataset.ref and run.dataset_id == dataset.id
    assert run.params == {"max_iter": 50} and run.seed == 3
    assert "scikit-learn" in run.library_versions
    assert run.metrics["accuracy"] > 0.8 and run.metrics["rows"] > 0
    assert (
        run.artifact_hashes["model.skops"]
        == Registry(clock_engine.ctx).get("fraud").sha256
    )
    version = Registry(clock_engine.ctx).get("fraud", 1)
    assert version.run_id == run.run_id
    assert version.source_loops == ("loop-0", "loop-1")
    assert version.feature_columns == ("amount", "country")
    assert _training(clock_engine).get_run(run.run_id) == run


def test_user_trainer_by_import_path(clock_engine: Engine, tmp_path: Path) -> None:
    make_dataset(clock_engine, tmp_path)
    run = _training(clock_engine).train(
        "fraud", "fraud:2", "user_trainer:numbers_only", {"C": 0.5}
    )
    loaded = Registry(clock_engine.ctx).load("fraud", run.model_version)
    proba = loaded.predict_proba(
        pd.DataFrame({"amount": [5.0, 900.0], "country": ["US", "US"]})
    )
    assert loaded.classes == ["no", "yes"]
    assert proba[0, 0] > 0.5 and proba[1, 1] > 0.5


def test_a_trainer_returning_no_estimator_fails_the_run(
    clock_engine: Engine, tmp_path: Path
) -> None:
    make_dataset(clock_engine, tmp_path)
    training = _training(clock_engine)
    with pytest.raises(ValidationError, match="must return a fitted estimator"):
        training.train("fraud", "fraud", "user_trainer:not_an_estimator")
    (run,) = training.list_runs("fraud")
    assert run.status == "Failed" and "must return a fitted estimator" in (
        run.failure or ""
    )


def test_human_rows_get_the_recency_and_review_weights_in_training(
    clock_engine: Engine, tmp_path: Path
) -> None:
    dataset = make_dataset(clock_engine, tmp_path)
    frame = clock_engine.datasets.read(dataset)
    weights = sample_weights(frame, WeightPolicy())
    human = (frame["_source"] == "human").to_numpy()
    newest_base = frame.loc[~human, "_labelled_at"].idxmax()
    # The newest base row is weeks older than the reviews: less than 5x, much less.
    assert weights[human].min() > 5 * weights[newest_base]
