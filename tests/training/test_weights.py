"""Sample weights: recency half-life on the label time, human-reviewed rows weighted up."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from closedloop.errors import ValidationError
from closedloop.training import EQUAL_WEIGHTS, WeightPolicy, sample_weights


def _rows(days_old: list[float], sources: list[str]) -> pd.DataFrame:
    newest = pd.Timestamp("2026-03-01", tz="UTC")
    return pd.DataFrame(
        {
            "_labelled_at": [newest - pd.Timedelta(days=d) for d in days_old],
            "_source": sources,
        }
    )


def test_a_label_one_half_life_older_weighs_half_as_much() -> None:
    weights = sample_weights(_rows([0, 14, 28], ["base"] * 3), WeightPolicy())
    assert weights[1] / weights[0] == pytest.approx(0.5)
    assert weights[2] / weights[0] == pytest.approx(0.25)
    assert weights.mean() == pytest.approx(1.0)


def test_half_life_is_configurable() -> None:
    weights = sample_weights(
        _rows([0, 7], ["base"] * 2), WeightPolicy(half_life_days=7)
    )
    assert weights[1] / weights[0] == pytest.approx(0.5)


def test_human_reviewed_rows_weigh_five_times_a_base_row_of_the_same_age() -> None:
    weights = sample_weights(_rows([3, 3], ["base", "human"]), WeightPolicy())
    assert weights[1] / weights[0] == pytest.approx(5.0)


def test_equal_weights_treat_every_row_alike() -> None:
    weights = sample_weights(_rows([0, 100], ["base", "human"]), EQUAL_WEIGHTS)
    assert np.allclose(weights, 1.0)


def test_a_non_positive_half_life_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="half_life_days must be a positive"):
        WeightPolicy(half_life_days=0)
