"""Trainers: a dataset version's rows in, a fitted scikit-learn estimator out.

A trainer is any callable ``trainer(data: TrainingData, params: dict, seed: int)``
returning a fitted estimator with ``predict_proba`` and ``classes_``. The built-in
ones are ``tabular`` (histogram gradient boosting, or with ``model=logistic`` a
logistic regression) and ``text`` (TF-IDF on each string column plus a logistic
regression); a user's own is named by import path, ``package.module:function``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer  # type: ignore[import-untyped]
from sklearn.ensemble import HistGradientBoostingClassifier  # type: ignore[import-untyped]
from sklearn.feature_extraction.text import TfidfVectorizer  # type: ignore[import-untyped]
from sklearn.impute import SimpleImputer  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.pipeline import Pipeline  # type: ignore[import-untyped]
from sklearn.preprocessing import (  # type: ignore[import-untyped]
    OneHotEncoder,
    OrdinalEncoder,
    StandardScaler,
)

from closedloop.datasets import DatasetVersion
from closedloop.errors import ClosedloopError, ValidationError

__all__ = [
    "BUILTIN_TRAINERS",
    "Trainer",
    "TrainingData",
    "fit_trainer",
    "resolve_trainer",
]


@dataclass(frozen=True)
class TrainingData:
    """What a trainer gets: prepared features, labels and one weight per row."""

    dataset: DatasetVersion
    X: pd.DataFrame
    y: pd.Series
    sample_weight: np.ndarray
    feature_dtypes: dict[str, str]

    def columns_of(self, dtype: str) -> list[str]:
        return [c for c in self.X.columns if self.feature_dtypes[c] == dtype]


class Trainer(Protocol):
    def __call__(
        self, data: TrainingData, params: dict[str, Any], seed: int
    ) -> Any: ...


def tabular(data: TrainingData, params: dict[str, Any], seed: int) -> Any:
    """Gradient boosting (default) or ``model=logistic``; numbers and categories by dtype."""
    options = dict(params)
    kind = options.pop("model", "boosting")
    if kind in ("boosting", "hgb"):
        estimator = _boosting(data, options, seed)
    elif kind == "logistic":
        estimator = _logistic(data, options, seed)
    else:
        raise ValidationError(
            f"tabular trainer param model must be 'boosting' or 'logistic'; got {kind!r}",
            "model",
        )
    return estimator.fit(data.X, data.y, clf__sample_weight=data.sample_weight)


def text(data: TrainingData, params: dict[str, Any], seed: int) -> Any:
    """TF-IDF of every string column (numbers scaled alongside) into a logistic regression."""
    options = dict(params)
    ngram_max = int(options.pop("ngram_max", 2))
    min_df = options.pop("min_df", 1)
    words = data.columns_of("string")
    if not words:
        raise ValidationError(
            f"text trainer needs at least one string feature column; dataset {data.dataset.ref} has none",
            "trainer",
        )
    parts: list[tuple[str, Any, Any]] = [
        (f"tfidf_{c}", TfidfVectorizer(ngram_range=(1, ngram_max), min_df=min_df), c)
        for c in words
    ]
    numbers = data.columns_of("number")
    if numbers:
        parts.append(("num", _scaled_numbers(), numbers))
    estimator = Pipeline(
        [
            ("prep", ColumnTransformer(parts)),
            ("clf", _logistic_regression(options, seed)),
        ]
    )
    return estimator.fit(data.X, data.y, clf__sample_weight=data.sample_weight)


def _boosting(data: TrainingData, options: dict[str, Any], seed: int) -> Any:
    numbers, strings = data.columns_of("number"), data.columns_of("string")
    encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan)
    prep = ColumnTransformer(
        [("num", "passthrough", numbers), ("cat", encoder, strings)],
        verbose_feature_names_out=False,
    )
    mask = [False] * len(numbers) + [True] * len(strings)
    clf = HistGradientBoostingClassifier(
        categorical_features=mask if any(mask) else None, random_state=seed, **options
    )
    return Pipeline([("prep", prep), ("clf", clf)])


def _logistic(data: TrainingData, options: dict[str, Any], seed: int) -> Any:
    numbers, strings = data.columns_of("number"), data.columns_of("string")
    parts: list[tuple[str, Any, list[str]]] = []
    if numbers:
        parts.append(("num", _scaled_numbers(), numbers))
    if strings:
        parts.append(("cat", OneHotEncoder(handle_unknown="ignore"), strings))
    prep = ColumnTransformer(parts)
    return Pipeline([("prep", prep), ("clf", _logistic_regression(options, seed))])


def _scaled_numbers() -> Any:
    return Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())])


def _logistic_regression(options: dict[str, Any], seed: int) -> Any:
    options.setdefault("max_iter", 2000)
    return LogisticRegression(random_state=seed, **options)


BUILTIN_TRAINERS: dict[str, Callable[[TrainingData, dict[str, Any], int], Any]] = {
    "tabular": tabular,
    "text": text,
}


def resolve_trainer(name: str) -> Callable[[TrainingData, dict[str, Any], int], Any]:
    """A built-in trainer by name, or a user's function by ``package.module:function``."""
    if name in BUILTIN_TRAINERS:
        return BUILTIN_TRAINERS[name]
    module_name, _, function_name = name.partition(":")
    if not module_name or not function_name:
        raise ValidationError(
            f"trainer must be one of {sorted(BUILTIN_TRAINERS)} or 'package.module:function'; got {name!r}",
            "trainer",
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValidationError(
            f"trainer {name!r}: module {module_name!r} cannot be imported: {exc}",
            "trainer",
        ) from exc
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ValidationError(
            f"trainer {name!r}: {module_name} has no function {function_name!r}",
            "trainer",
        )
    trainer: Callable[[TrainingData, dict[str, Any], int], Any] = function
    return trainer


def fit_trainer(
    fit: Callable[[TrainingData, dict[str, Any], int], Any],
    trainer: str,
    data: TrainingData,
    options: dict[str, Any],
    seed: int,
) -> Any:
    """Run trainer ``fit`` (named ``trainer``) and check it returned a fitted classifier;
    whatever goes wrong becomes a ValidationError naming the trainer."""
    try:
        estimator = fit(data, options, seed)
    except ClosedloopError:
        raise
    except Exception as exc:  # a trainer may raise anything; report it as bad input
        raise ValidationError(
            f"trainer {trainer!r} failed: {type(exc).__name__}: {exc}", "trainer"
        ) from exc
    if not hasattr(estimator, "predict_proba") or not hasattr(estimator, "classes_"):
        raise ValidationError(
            f"trainer {trainer!r} must return a fitted estimator with predict_proba and classes_; "
            f"got {type(estimator).__name__}",
            "trainer",
        )
    return estimator
