"""Training: trainers, sample weights and recorded training runs."""

from closedloop.training.runs import Training, TrainingRun
from closedloop.training.trainers import (
    BUILTIN_TRAINERS,
    Trainer,
    TrainingData,
    resolve_trainer,
)
from closedloop.training.weights import EQUAL_WEIGHTS, WeightPolicy, sample_weights

__all__ = [
    "BUILTIN_TRAINERS",
    "EQUAL_WEIGHTS",
    "Trainer",
    "Training",
    "TrainingData",
    "TrainingRun",
    "WeightPolicy",
    "resolve_trainer",
    "sample_weights",
]
