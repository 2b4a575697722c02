"""Test data for training, evaluation and the registry: fraud-like rows, some human-reviewed."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

from closedloop.datasets import DatasetVersion
from closedloop.engine import Engine


def mixed_frame(rows: int, seed: int) -> pd.DataFrame:
    """Fraud-like rows: amount (number), country (category), label from both."""
    rng = np.random.default_rng(seed)
    amount = rng.gamma(2.0, 100.0, rows).round(2)
    country = rng.choice(["US", "BR", "DE", "IN"], rows)
    risky = (amount > 300) | ((country == "BR") & (amount > 150))
    return pd.DataFrame(
        {
            "txn": [f"t{seed}-{i}" for i in range(rows)],
            "amount": amount,
            "country": country,
            "is_fraud": np.where(risky, "yes", "no"),
            "ts": pd.date_range("2026-01-01", periods=rows, freq="h", tz=UTC).astype(
                str
            ),
        }
    )


def make_dataset(engine: Engine, tmp_path: Path, rows: int = 300) -> DatasetVersion:
    """A base import then a merge of 40 human-reviewed rows from two loops."""
    path = tmp_path / "base.csv"
    mixed_frame(rows, 0).to_csv(path, index=False)
    engine.datasets.import_file(
        "fraud", str(path), label="is_fraud", id_column="txn", time_column="ts"
    )
    human = mixed_frame(40, 1)
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
    feedback_path = tmp_path / "feedback.parquet"
    feedback.to_parquet(feedback_path)
    return engine.datasets.merge("fraud", str(feedback_path))
