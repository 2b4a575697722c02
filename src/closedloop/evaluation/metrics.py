"""Classification metrics on held-out rows, and McNemar's test between two models."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats  # type: ignore[import-untyped]
from sklearn.metrics import (  # type: ignore[import-untyped]
    accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
)

__all__ = [
    "McNemarResult",
    "classification_metrics",
    "expected_calibration_error",
    "mcnemar",
    "predictions",
    "roc_auc",
]

_EXACT_BELOW = 25  # discordant pairs under which the exact binomial test is used


def predictions(proba: np.ndarray, classes: list[str]) -> np.ndarray:
    """The most probable class of each row."""
    names = np.asarray(classes, dtype=object)
    chosen: np.ndarray = names[np.asarray(proba).argmax(axis=1)]
    return chosen


def classification_metrics(
    y_true: np.ndarray,
    proba: np.ndarray,
    classes: list[str],
    labels: list[str] | None = None,
) -> dict[str, Any]:
    """Accuracy, per-class and macro precision/recall/F1, confusion matrix, ROC-AUC, ECE.

    ``classes`` names ``proba``'s columns; ``labels`` fixes the confusion matrix's
    rows and columns (default: every label seen in truth or among the classes).
    """
    truth = np.asarray(y_true, dtype=object)
    predicted = predictions(proba, classes)
    labels = labels or sorted({*map(str, truth), *classes})
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=labels, zero_division=0
    )
    present = [i for i, label in enumerate(labels) if label in set(truth)]
    per_class = {
        label: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, label in enumerate(labels)
    }
    return {
        "rows": len(truth),
        "accuracy": float(accuracy_score(truth, predicted)),
        "precision_macro": _mean(precision, present),
        "recall_macro": _mean(recall, present),
        "f1_macro": _mean(f1, present),
        "roc_auc": roc_auc(truth, proba, classes),
        "ece": expected_calibration_error(truth, proba, classes),
        "per_class": per_class,
        "labels": labels,
        "confusion_matrix": confusion_matrix(truth, predicted, labels=labels).tolist(),
    }


def _mean(values: np.ndarray, present: list[int]) -> float:
    """Macro average over the classes that occur in the truth."""
    return float(np.mean(values[present])) if present else 0.0


def roc_auc(truth: np.ndarray, proba: np.ndarray, classes: list[str]) -> float | None:
    """Binary: AUC of the second class; more classes: one-vs-rest macro. None if undefined."""
    seen = set(truth)
    if len(seen) < 2 or not seen <= set(classes):
        return None
    try:
        if len(classes) == 2:
            positive = (truth == classes[1]).astype(int)
            return float(roc_auc_score(positive, proba[:, 1]))
        return float(
            roc_auc_score(
                truth, proba, multi_class="ovr", average="macro", labels=classes
            )
        )
    except ValueError:
        return None


def expected_calibration_error(
    truth: np.ndarray, proba: np.ndarray, classes: list[str], bins: int = 10
) -> float:
    """Mean gap between top-class confidence and accuracy over equal-width confidence bins."""
    if len(truth) == 0:
        return 0.0
    confidence = np.asarray(proba).max(axis=1)
    correct = predictions(proba, classes) == np.asarray(truth, dtype=object)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    gap = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            gap += in_bin.mean() * abs(
                correct[in_bin].mean() - confidence[in_bin].mean()
            )
    return float(gap)


@dataclass(frozen=True)
class McNemarResult:
    """``only_a``: rows A got right and B wrong; ``only_b`` the reverse."""

    only_a: int
    only_b: int
    statistic: float
    p_value: float
    exact: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def mcnemar(
    y_true: np.ndarray, predicted_a: np.ndarray, predicted_b: np.ndarray
) -> McNemarResult:
    """McNemar's test on the rows the two models disagree about.

    Exact binomial test when there are fewer than 25 discordant rows, otherwise
    the chi-square statistic with continuity correction.
    """
    truth = np.asarray(y_true, dtype=object)
    right_a = np.asarray(predicted_a, dtype=object) == truth
    right_b = np.asarray(predicted_b, dtype=object) == truth
    only_a, only_b = int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b))
    discordant = only_a + only_b
    if discordant == 0:
        return McNemarResult(0, 0, 0.0, 1.0, True)
    if discordant < _EXACT_BELOW:
        result = stats.binomtest(min(only_a, only_b), discordant, 0.5)
        return McNemarResult(
            only_a, only_b, float(min(only_a, only_b)), float(result.pvalue), True
        )
    statistic = (abs(only_a - only_b) - 1) ** 2 / discordant
    p_value = float(stats.chi2.sf(statistic, df=1))
    return McNemarResult(only_a, only_b, float(statistic), p_value, False)
