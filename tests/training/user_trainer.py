"""A user's own trainer, loaded by import path in the tests: numbers only, logistic regression."""

from __future__ import annotations

from typing import Any

from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from closedloop.training import TrainingData


def numbers_only(data: TrainingData, params: dict[str, Any], seed: int) -> Any:
    pick = ColumnTransformer([("num", "passthrough", data.columns_of("number"))])
    clf = LogisticRegression(C=float(params.get("C", 1.0)), random_state=seed)
    model = Pipeline([("pick", pick), ("clf", clf)])
    return model.fit(data.X, data.y, clf__sample_weight=data.sample_weight)


def not_an_estimator(data: TrainingData, params: dict[str, Any], seed: int) -> Any:
    return "nothing"
