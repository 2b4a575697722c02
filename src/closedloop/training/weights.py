"""Sample weights: newer labels count more (recency half-life), human-reviewed labels more again."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from closedloop.errors import ValidationError

__all__ = [
    "DEFAULT_HALF_LIFE_DAYS",
    "DEFAULT_HUMAN_WEIGHT",
    "EQUAL_WEIGHTS",
    "WeightPolicy",
    "sample_weights",
]

DEFAULT_HALF_LIFE_DAYS = 14.0
DEFAULT_HUMAN_WEIGHT = 5.0
_DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class WeightPolicy:
    """``half_life_days`` None turns recency off; ``human_weight`` 1 treats every row alike."""

    half_life_days: float | None = DEFAULT_HALF_LIFE_DAYS
    human_weight: float = DEFAULT_HUMAN_WEIGHT

    def __post_init__(self) -> None:
        if self.half_life_days is not None and not self.half_life_days > 0:
            raise ValidationError(
                f"half_life_days must be a positive number of days or none; got {self.half_life_days!r}",
                "half_life_days",
            )
        if not self.human_weight > 0:
            raise ValidationError(
                f"human_weight must be a positive number; got {self.human_weight!r}",
                "human_weight",
            )


EQUAL_WEIGHTS = WeightPolicy(half_life_days=None, human_weight=1.0)


def sample_weights(frame: pd.DataFrame, policy: WeightPolicy) -> np.ndarray:
    """One weight per row, scaled to average 1.

    Recency halves a row's weight every ``half_life_days`` before the newest
    label in ``frame`` (so a dataset's weights do not change as it ages);
    rows whose ``_source`` is ``human`` are multiplied by ``human_weight``.
    """
    weights = np.ones(len(frame), dtype=float)
    if len(frame) == 0:
        return weights
    if policy.half_life_days is not None:
        times = pd.to_datetime(frame["_labelled_at"], utc=True)
        age_days = ((times.max() - times) / _DAY).to_numpy(dtype=float)
        weights *= np.power(0.5, np.nan_to_num(age_days) / policy.half_life_days)
    human = (frame["_source"] == "human").to_numpy()
    weights[human] *= policy.human_weight
    scaled: np.ndarray = weights / weights.mean()
    return scaled
