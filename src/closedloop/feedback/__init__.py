"""From human loop output files to consolidated, cleaned and tagged labels."""

from __future__ import annotations

from closedloop.feedback.build import (
    FEEDBACK_SCHEMA,
    FeedbackResult,
    build_feedback,
    feedback_table,
    write_feedback,
)
from closedloop.feedback.clean import FeedbackRow, ReviewedItem
from closedloop.feedback.consolidate import (
    METHODS,
    AnswerTable,
    Consolidation,
    consolidate,
    dawid_skene,
    majority_vote,
)
from closedloop.feedback.labels import (
    ModelPrediction,
    extract_label,
    guess_label_path,
    model_prediction,
)
from closedloop.feedback.reader import Answer, BadFile, LoopRecord, read_outputs

__all__ = [
    "FEEDBACK_SCHEMA",
    "METHODS",
    "Answer",
    "AnswerTable",
    "BadFile",
    "Consolidation",
    "FeedbackResult",
    "FeedbackRow",
    "LoopRecord",
    "ModelPrediction",
    "ReviewedItem",
    "build_feedback",
    "consolidate",
    "dawid_skene",
    "extract_label",
    "feedback_table",
    "guess_label_path",
    "majority_vote",
    "model_prediction",
    "read_outputs",
    "write_feedback",
]
