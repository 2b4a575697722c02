"""The label-error check: planted label flips are found, clean rows mostly are not."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest

from closedloop.datasets import DatasetVersion
from closedloop.datasets.label_errors import (
    CLEANLAB_INSTALL,
    LabelCheck,
    find_label_errors,
    write_flagged,
)
from closedloop.engine import Engine
from closedloop.errors import ClosedloopError, ValidationError
from ml_data import mixed_frame

POSITIVE = ["great", "love", "excellent", "happy", "perfect", "wonderful", "fast"]
NEGATIVE = ["broken", "awful", "refund", "late", "terrible", "angry", "missing"]
NEUTRAL = ["the", "order", "item", "box", "it", "was", "my", "delivery"]


def _flip(labels: pd.Series, count: int, seed: int) -> tuple[pd.Series, list[int]]:
    """``labels`` with ``count`` seeded rows switched between yes and no."""
    rows = sorted(np.random.default_rng(seed).choice(len(labels), count, replace=False))
    flipped = labels.copy()
    flipped.iloc[rows] = np.where(labels.iloc[rows] == "yes", "no", "yes")
    return flipped, [int(r) for r in rows]


def _fraud_with_flips(
    engine: Engine, tmp_path: Path
) -> tuple[DatasetVersion, set[str]]:
    """400 base rows with 20 flipped labels, then 40 human rows (two loops) with 4 flipped."""
    base = mixed_frame(400, 0)
    base["is_fraud"], base_rows = _flip(base["is_fraud"], 20, seed=7)
    base.to_csv(tmp_path / "base.csv", index=False)
    engine.datasets.import_file(
        "fraud",
        str(tmp_path / "base.csv"),
        label="is_fraud",
        id_column="txn",
        time_column="ts",
    )
    human = mixed_frame(40, 1)
    human["is_fraud"], human_rows = _flip(human["is_fraud"], 4, seed=8)
    feedback = pd.DataFrame(
        {
            "human_loop_name": [f"loop-{i % 2}" for i in range(len(human))],
            "item_id": human["txn"],
            "input": [
                orjson.dumps({"features": {"amount": a, "country": c}}).decode()
                for a, c in zip(human["amount"], human["country"], strict=True)
            ],
            "label": human["is_fraud"],
            "status": "accepted",
        }
    )
    feedback.to_parquet(tmp_path / "feedback.parquet")
    version = engine.datasets.merge("fraud", str(tmp_path / "feedback.parquet"))
    planted = set(base["txn"].iloc[base_rows]) | set(human["txn"].iloc[human_rows])
    return version, planted


def _reviews(engine: Engine, tmp_path: Path) -> tuple[DatasetVersion, set[str]]:
    """200 seeded product reviews (free text), 10 of them with the wrong label."""
    rng = np.random.default_rng(3)
    texts, labels = [], []
    for i in range(200):
        good = i % 2 == 0
        words = rng.choice(POSITIVE if good else NEGATIVE, 3).tolist()
        words += rng.choice(NEUTRAL, 4).tolist()
        texts.append(" ".join(rng.permutation(words)))
        labels.append("yes" if good else "no")
    frame = pd.DataFrame({"review": texts, "happy": labels})
    frame["happy"], rows = _flip(frame["happy"], 10, seed=4)
    frame.insert(0, "rid", [f"r{i}" for i in range(len(frame))])
    frame.to_csv(tmp_path / "reviews.csv", index=False)
    version = engine.datasets.import_file(
        "reviews", str(tmp_path / "reviews.csv"), label="happy", id_column="rid"
    )
    return version, set(frame["rid"].iloc[rows])


def _check(engine: Engine, version: DatasetVersion, **options: object) -> LabelCheck:
    return find_label_errors(engine.datasets.read(version), version, **options)  # type: ignore[arg-type]


def test_planted_flips_in_tabular_rows_are_flagged_and_few_clean_rows_are(
    engine: Engine, tmp_path: Path
) -> None:
    version, planted = _fraud_with_flips(engine, tmp_path)

    check = _check(engine, version)

    flagged = {row.row_id for row in check.flagged}
    assert check.trainer == "tabular" and check.params == {"model": "logistic"}
    assert check.rows_checked == 440 and check.human_rows_checked == 40
    assert len(flagged & planted) >= 22  # of 24 planted (23 with seeds 0-5)
    assert len(flagged - planted) <= 2  # of 416 clean rows (1 with seeds 0-5)
    assert check.flagged_human + check.flagged_base == len(check.flagged)
    human_planted = {row.row_id for row in check.flagged if row.source == "human"}
    assert len(human_planted & planted) == 4  # every flip among the 40 human rows


def test_flagged_rows_are_worst_first_with_suggestion_source_and_loop(
    engine: Engine, tmp_path: Path
) -> None:
    version, planted = _fraud_with_flips(engine, tmp_path)

    check = _check(engine, version)

    qualities = [row.quality for row in check.flagged]
    assert qualities == sorted(qualities)
    for row in check.flagged:
        if row.row_id in planted:
            assert row.suggested_label != row.given_label
            assert row.suggested_probability > 0.5
    human = [row for row in check.flagged if row.source == "human"]
    assert human and all(row.human_loop_name in ("loop-0", "loop-1") for row in human)
    base = [row for row in check.flagged if row.source == "base"]
    assert base and all(row.human_loop_name is None for row in base)


def test_planted_flips_in_free_text_are_flagged_with_the_text_trainer(
    engine: Engine, tmp_path: Path
) -> None:
    version, planted = _reviews(engine, tmp_path)

    check = _check(engine, version)

    flagged = {row.row_id for row in check.flagged}
    assert check.trainer == "text"
    assert len(flagged & planted) >= 9  # of 10 planted
    assert len(flagged - planted) <= 1  # of 190 clean rows (0 with seeds 0-5)


def test_the_same_seed_gives_the_same_flags_and_nothing_is_changed(
    engine: Engine, tmp_path: Path
) -> None:
    version, _ = _fraud_with_flips(engine, tmp_path)
    frame = engine.datasets.read(version)
    before = frame.copy()

    first = find_label_errors(frame, version, seed=5)
    second = find_label_errors(frame, version, seed=5)

    assert first.flagged == second.flagged
    assert frame.equals(before)
    assert [v.number for v in engine.datasets.versions("fraud")] == [1, 2]
    assert engine.datasets.read(version).equals(before)


def test_a_label_with_fewer_rows_than_folds_lowers_the_folds_and_says_so(
    engine: Engine, tmp_path: Path
) -> None:
    frame = pd.DataFrame(
        {
            "x": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 5.0, 5.1, 5.2],
            "label": ["a"] * 6 + ["b"] * 3,
        }
    )
    frame.to_csv(tmp_path / "small.csv", index=False)
    version = engine.datasets.import_file(
        "small", str(tmp_path / "small.csv"), label="label"
    )

    check = _check(engine, version, folds=5)

    assert check.folds == 3
    assert check.notes == ("folds lowered from 5 to 3: label 'b' has only 3 rows",)
    assert check.rows_checked == 9


def test_a_label_with_one_row_is_left_unchecked_and_named(
    engine: Engine, tmp_path: Path
) -> None:
    frame = mixed_frame(60, 2)
    frame.loc[5, "is_fraud"] = "yess"
    frame.to_csv(tmp_path / "typo.csv", index=False)
    version = engine.datasets.import_file(
        "typo", str(tmp_path / "typo.csv"), label="is_fraud", id_column="txn"
    )

    check = _check(engine, version)

    assert check.unchecked == ("t2-5",)
    assert check.rows_checked == 59
    assert any("'yess' has 1 row" in note for note in check.notes)


@pytest.mark.parametrize("folds", [1, 0, -3])
def test_folds_below_two_are_refused(
    engine: Engine, tmp_path: Path, folds: int
) -> None:
    version, _ = _reviews(engine, tmp_path)

    with pytest.raises(
        ValidationError, match=f"folds must be an integer of at least 2; got {folds}"
    ):
        _check(engine, version, folds=folds)


def test_a_dataset_with_one_label_is_refused_with_its_counts(
    engine: Engine, tmp_path: Path
) -> None:
    pd.DataFrame({"x": [1.0, 2.0, 3.0], "label": ["a", "a", "a"]}).to_csv(
        tmp_path / "one.csv", index=False
    )
    version = engine.datasets.import_file(
        "one", str(tmp_path / "one.csv"), label="label"
    )

    with pytest.raises(ValidationError, match=r"at least 2 labels.*'a': 3"):
        _check(engine, version)


def test_an_unknown_trainer_is_refused_before_any_fitting(
    engine: Engine, tmp_path: Path
) -> None:
    version, _ = _reviews(engine, tmp_path)

    with pytest.raises(
        ValidationError, match=r"trainer must be one of.*also takes 'auto'"
    ):
        _check(engine, version, trainer="forest")


def test_without_cleanlab_the_error_says_how_to_install_it(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    version, _ = _reviews(engine, tmp_path)
    # cleanlab is installed here, so its absence is simulated: a None entry makes import fail
    monkeypatch.setitem(sys.modules, "cleanlab.filter", None)

    with pytest.raises(ClosedloopError) as caught:
        _check(engine, version)

    assert CLEANLAB_INSTALL in caught.value.message
    assert "cleanlab 2.8 or later" in caught.value.message


def test_flagged_rows_are_written_to_csv_or_parquet_by_extension(
    engine: Engine, tmp_path: Path
) -> None:
    version, _ = _fraud_with_flips(engine, tmp_path)
    check = _check(engine, version)

    write_flagged(check, tmp_path / "flagged.csv")
    write_flagged(check, tmp_path / "flagged.parquet")

    from_csv = pd.read_csv(tmp_path / "flagged.csv", keep_default_na=False)
    from_parquet = pd.read_parquet(tmp_path / "flagged.parquet")
    assert list(from_csv["row_id"]) == [row.row_id for row in check.flagged]
    assert list(from_parquet["row_id"]) == [row.row_id for row in check.flagged]
    assert set(from_parquet.columns) >= {
        "given_label",
        "suggested_label",
        "quality",
        "source",
    }
    with pytest.raises(
        ValidationError,
        match=r"--out must end in \.csv or \.parquet; got '.*flagged\.txt'",
    ):
        write_flagged(check, tmp_path / "flagged.txt")
