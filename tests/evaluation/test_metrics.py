"""Metrics agree with scikit-learn; McNemar's test; the promotion policy's decisions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score, recall_score, roc_auc_score

from closedloop.evaluation import (
    PromotionPolicy,
    classification_metrics,
    decide,
    mcnemar,
)
from closedloop.evaluation.metrics import expected_calibration_error, predictions

CLASSES = ["no", "yes"]


def _case(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.choice(CLASSES, 200).astype(object)
    p_yes = np.clip((truth == "yes") * 0.5 + rng.uniform(0, 0.6, 200), 0, 1)
    return truth, np.column_stack([1 - p_yes, p_yes])


def test_metrics_match_scikit_learn() -> None:
    truth, proba = _case()
    predicted = predictions(proba, CLASSES)
    scores = classification_metrics(truth, proba, CLASSES)
    assert scores["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert scores["f1_macro"] == pytest.approx(
        f1_score(truth, predicted, average="macro")
    )
    assert scores["per_class"]["yes"]["recall"] == pytest.approx(
        recall_score(truth, predicted, pos_label="yes")
    )
    assert scores["roc_auc"] == pytest.approx(
        roc_auc_score(truth == "yes", proba[:, 1])
    )
    assert sum(map(sum, scores["confusion_matrix"])) == len(truth)


def test_a_perfectly_calibrated_model_has_no_calibration_error() -> None:
    truth = np.array(["yes"] * 8 + ["no"] * 2, dtype=object)
    proba = np.tile([0.2, 0.8], (10, 1))
    assert expected_calibration_error(truth, proba, CLASSES) == pytest.approx(0.0)
    overconfident = np.tile([0.0, 1.0], (10, 1))
    assert expected_calibration_error(truth, overconfident, CLASSES) == pytest.approx(
        0.2
    )


def test_mcnemar_matches_the_exact_binomial_and_chi_square_forms() -> None:
    truth = np.array(["a"] * 100, dtype=object)
    a = np.array(["a"] * 90 + ["b"] * 10, dtype=object)
    b = np.array(["b"] * 5 + ["a"] * 85 + ["b"] * 10, dtype=object)
    small = mcnemar(truth, a, b)
    assert (small.only_a, small.only_b, small.exact) == (5, 0, True)
    assert small.p_value == pytest.approx(stats.binomtest(0, 5, 0.5).pvalue)

    c = np.array(["b"] * 40 + ["a"] * 60, dtype=object)
    large = mcnemar(truth, a, c)
    assert (large.only_a, large.only_b, large.exact) == (40, 10, False)
    assert large.statistic == pytest.approx((30 - 1) ** 2 / 50)
    assert large.p_value == pytest.approx(stats.chi2.sf((30 - 1) ** 2 / 50, df=1))


def test_a_worse_challenger_is_not_promoted_and_a_better_one_is() -> None:
    truth, good = _case()
    bad = good[:, ::-1]
    good_scores = classification_metrics(truth, good, CLASSES)
    bad_scores = classification_metrics(truth, bad, CLASSES)
    policy = PromotionPolicy(require_significance=True)
    test = mcnemar(truth, predictions(bad, CLASSES), predictions(good, CLASSES))
    worse = decide(policy, bad_scores, good_scores, test)
    assert not worse.promote
    assert any("recall of class" in r for r in worse.reasons)

    better = decide(
        policy,
        good_scores,
        bad_scores,
        mcnemar(truth, predictions(good, CLASSES), predictions(bad, CLASSES)),
    )
    assert better.promote, better.reasons


def test_a_small_gain_below_the_minimum_is_not_promoted() -> None:
    truth, proba = _case()
    scores = classification_metrics(truth, proba, CLASSES)
    decision = decide(PromotionPolicy(min_gain=0.01), scores, scores)
    assert not decision.promote and "misses the minimum" in decision.reasons[0]


def test_with_no_champion_the_challenger_is_promoted() -> None:
    truth, proba = _case()
    decision = decide(
        PromotionPolicy(), classification_metrics(truth, proba, CLASSES), None
    )
    assert decision.promote and "no champion" in decision.reasons[0]
