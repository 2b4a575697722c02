"""Evaluation: metrics on held-out rows, McNemar's test, the promotion policy and reports."""

from closedloop.evaluation.metrics import (
    McNemarResult,
    classification_metrics,
    expected_calibration_error,
    mcnemar,
)
from closedloop.evaluation.policy import Decision, PromotionPolicy, decide
from closedloop.evaluation.report import Evaluation, Evaluator

__all__ = [
    "Decision",
    "Evaluation",
    "Evaluator",
    "McNemarResult",
    "PromotionPolicy",
    "classification_metrics",
    "decide",
    "expected_calibration_error",
    "mcnemar",
]
