"""Dataset versions: import, merge of human labels, lineage, diff, integrity."""

from __future__ import annotations

from pathlib import Path

import orjson
import pandas as pd
import pytest

from closedloop.datasets import split
from closedloop.engine import Engine
from closedloop.errors import NotFoundError, StoreError, ValidationError


def _base_csv(tmp_path: Path) -> Path:
    path = tmp_path / "base.csv"
    pd.DataFrame(
        {
            "txn": ["t1", "t2", "t3", "t4"],
            "amount": [10.0, 950.0, 12.5, 40.0],
            "country": ["US", "BR", "US", "DE"],
            "is_fraud": ["no", "yes", "no", "no"],
            "ts": ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"],
        }
    ).to_csv(path, index=False)
    return path


def _feedback(tmp_path: Path, rows: list[dict[str, object]]) -> Path:
    path = tmp_path / "feedback.parquet"
    frame = pd.DataFrame(rows)
    frame["input"] = [orjson.dumps(r).decode() for r in frame.pop("features")]
    frame.to_parquet(path)
    return path


def test_import_then_merge_makes_a_new_version_with_human_labels_and_lineage(
    engine: Engine, tmp_path: Path
) -> None:
    base = engine.datasets.import_file(
        "fraud",
        str(_base_csv(tmp_path)),
        label="is_fraud",
        id_column="txn",
        time_column="ts",
    )
    feedback = _feedback(
        tmp_path,
        [
            {
                "human_loop_name": "loop-a",
                "item_id": "t3",
                "features": {"features": {"amount": 12.5, "country": "US"}},
                "label": "yes",
                "status": "accepted",
                "confidence": 0.97,
                "agreement": 1.0,
            },
            {
                "human_loop_name": "loop-b",
                "item_id": "t9",
                "features": {
                    "amount": 77.0,
                    "country": "FR",
                    "prediction": {"label": "no"},
                },
                "label": "yes",
                "status": "accepted",
                "confidence": 0.91,
                "agreement": 0.67,
            },
            {
                "human_loop_name": "loop-c",
                "item_id": "t8",
                "features": {"amount": 5.0, "country": "US"},
                "label": "no",
                "status": "needs_review",
                "confidence": 0.4,
                "agreement": 0.5,
            },
        ],
    )

    merged = engine.datasets.merge("fraud", str(feedback))

    assert (base.number, merged.number) == (1, 2)
    assert merged.manifest["parent"] == base.id
    assert merged.manifest["source_loops"] == ["loop-a", "loop-b"]
    assert (
        merged.manifest["counts"]["relabelled"] == 1
        and merged.manifest["counts"]["added"] == 1
    )
    rows = engine.datasets.read(merged).set_index("txn")
    assert rows.loc["t3", "is_fraud"] == "yes" and rows.loc["t3", "_source"] == "human"
    assert (
        rows.loc["t9", "_human_loop_name"] == "loop-b"
        and rows.loc["t9", "country"] == "FR"
    )
    assert "t8" not in rows.index and "prediction" not in rows.columns
    diff = engine.datasets.diff("fraud:1", "fraud:2")
    assert (
        diff.added == ["t9"]
        and diff.removed == []
        and diff.relabelled == [("t3", "no", "yes")]
    )
    assert engine.datasets.get("fraud").id == merged.id
    assert engine.datasets.get(f"fraud:{base.id[:6]}").number == 1


def test_split_holds_out_the_newest_human_rows(engine: Engine, tmp_path: Path) -> None:
    engine.datasets.import_file(
        "fraud", str(_base_csv(tmp_path)), label="is_fraud", id_column="txn"
    )
    feedback = _feedback(
        tmp_path,
        [
            {
                "human_loop_name": f"l{i}",
                "item_id": f"h{i}",
                "features": {"amount": float(i), "country": "US"},
                "label": "yes",
                "status": "accepted",
            }
            for i in range(10)
        ],
    )
    frame = engine.datasets.read(engine.datasets.merge("fraud", str(feedback)))
    parts = split(frame, holdout_human=0.3, holdout_base=0.0)
    assert len(parts.holdout) == 3 and set(parts.holdout["_source"]) == {"human"}
    assert len(parts.train) == len(frame) - 3


def test_bad_imports_name_the_flag_and_write_nothing(
    engine: Engine, tmp_path: Path
) -> None:
    path = _base_csv(tmp_path)
    with pytest.raises(ValidationError, match="--label names column 'label'"):
        engine.datasets.import_file("fraud", str(path), label="label")
    with pytest.raises(ValidationError, match="must be unique"):
        engine.datasets.import_file(
            "fraud", str(path), label="is_fraud", id_column="country"
        )
    with pytest.raises(ValidationError, match="dataset name"):
        engine.datasets.import_file("Fraud_Data", str(path), label="is_fraud")
    with pytest.raises(NotFoundError):
        engine.datasets.get("fraud")


def test_a_tampered_data_file_is_refused(engine: Engine, tmp_path: Path) -> None:
    version = engine.datasets.import_file(
        "fraud", str(_base_csv(tmp_path)), label="is_fraud"
    )
    engine.ctx.objects.write_atomic(f"{version.uri}/data.parquet", b"not the data")
    with pytest.raises(StoreError, match="does not match"):
        engine.datasets.read(version)
