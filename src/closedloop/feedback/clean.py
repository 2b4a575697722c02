"""Cleaning rules and tags that turn reviewed loops into accepted, flagged or dropped rows."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from closedloop.feedback.consolidate import AnswerTable, Consolidation
from closedloop.feedback.labels import extract_label, model_prediction
from closedloop.feedback.reader import LoopRecord

__all__ = [
    "DEFAULT_HIGH_CONFIDENCE",
    "ENDED_BADLY",
    "ID_KEYS",
    "FeedbackRow",
    "ReviewedItem",
    "answer_table",
    "clean_items",
    "reviewed_item",
    "tag_items",
]

ENDED_BADLY = frozenset({"Failed", "Stopped"})
ID_KEYS = ("id", "item_id", "itemId")
DEFAULT_HIGH_CONFIDENCE = 0.9


@dataclass(frozen=True, slots=True)
class FeedbackRow:
    """One row of the result table: an item, its consolidated label and fate.

    ``tag`` is ``confirmed`` (consensus equals the model's label), ``corrected``,
    ``corrected_high_confidence`` (the model was at least 0.9 sure and wrong)
    or None when the model's label is unknown or the item was dropped.
    ``status`` is ``accepted``, ``needs_review`` or ``dropped``; ``reason``
    says why an item is not accepted.
    """

    human_loop_name: str
    item_id: str | None
    input: str | None
    label: str | None
    confidence: float | None
    agreement: float | None
    n_answers: int
    model_label: str | None
    model_confidence: float | None
    tag: str | None
    status: str
    reason: str | None


@dataclass(slots=True)
class ReviewedItem:
    """A loop reduced to what consolidation needs: its item and (worker, label) pairs."""

    human_loop_name: str
    item_id: str
    input_json: str
    content_hash: str
    model_label: str | None
    model_confidence: float | None
    answers: list[tuple[str, str | None]]
    status: str | None = None

    def dropped(self, reason: str) -> FeedbackRow:
        """This item as a dropped row."""
        return FeedbackRow(
            human_loop_name=self.human_loop_name,
            item_id=self.item_id,
            input=self.input_json,
            label=None,
            confidence=None,
            agreement=None,
            n_answers=len(self.answers),
            model_label=self.model_label,
            model_confidence=self.model_confidence,
            tag=None,
            status="dropped",
            reason=reason,
        )


def reviewed_item(record: LoopRecord, label_path: str) -> ReviewedItem:
    """Reduce a read loop to its item id, input, model prediction and labels."""
    content = {
        k: v for k, v in (record.input_content or {}).items() if k != "prediction"
    }
    input_bytes = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    content_hash = hashlib.sha256(input_bytes).hexdigest()
    prediction = model_prediction(record)
    answers = [
        (
            answer.worker_id or f"{record.human_loop_name}#{index}",
            extract_label(answer.answer_content, label_path),
        )
        for index, answer in enumerate(record.answers)
    ]
    return ReviewedItem(
        human_loop_name=record.human_loop_name,
        item_id=_item_id(content) or content_hash[:32],
        input_json=input_bytes.decode(),
        content_hash=content_hash,
        model_label=prediction.label,
        model_confidence=prediction.confidence,
        answers=answers,
        status=record.status,
    )


def _item_id(content: Mapping[str, Any]) -> str | None:
    for key in ID_KEYS:
        value = content.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)
    return None


def clean_items(
    items: Iterable[ReviewedItem],
    *,
    label_set: Sequence[str] | None,
    task_count: int | None,
    counts: Counter[str],
) -> tuple[list[ReviewedItem], list[FeedbackRow]]:
    """Apply the dropping rules in order; return kept items and dropped rows.

    Rules: loops that ended Failed or Stopped; incomplete loops (no answers, or
    fewer than ``task_count``); duplicates of an earlier item (same item id or
    same input content); answers without a label or outside ``label_set``
    (items left with none are dropped). ``counts`` gains one key per rule.
    """
    allowed = set(label_set) if label_set is not None else None
    seen_ids: set[str] = set()
    seen_hashes: set[str] = set()
    kept: list[ReviewedItem] = []
    dropped: list[FeedbackRow] = []
    for item in items:
        reason = _drop_reason(item, task_count, seen_ids, seen_hashes, counts)
        if reason is None:
            reason = _filter_answers(item, allowed, counts)
        if reason is None:
            kept.append(item)
        else:
            dropped.append(item.dropped(reason))
    return kept, dropped


def _drop_reason(
    item: ReviewedItem,
    task_count: int | None,
    seen_ids: set[str],
    seen_hashes: set[str],
    counts: Counter[str],
) -> str | None:
    if item.status in ENDED_BADLY:
        counts["failed_or_stopped"] += 1
        return f"loop ended {item.status}"
    n_answers = len(item.answers)
    if n_answers == 0 or (task_count is not None and n_answers < task_count):
        counts["incomplete"] += 1
        return f"incomplete: {n_answers} answers, task count {task_count}"
    if item.item_id in seen_ids or item.content_hash in seen_hashes:
        counts["duplicate"] += 1
        return (
            f"duplicate of an earlier item with id {item.item_id!r} or the same input"
        )
    seen_ids.add(item.item_id)
    seen_hashes.add(item.content_hash)
    return None


def _filter_answers(
    item: ReviewedItem, allowed: set[str] | None, counts: Counter[str]
) -> str | None:
    usable: list[tuple[str, str | None]] = []
    for worker, label in item.answers:
        if label is None:
            counts["answers_without_label"] += 1
        elif allowed is not None and label not in allowed:
            counts["answers_outside_label_set"] += 1
        else:
            usable.append((worker, label))
    if not usable:
        counts["no_valid_answers"] += 1
        return "no answer has a label in the label set"
    item.answers = usable
    return None


def tag_items(
    items: Sequence[ReviewedItem],
    result: Consolidation,
    *,
    min_confidence: float,
    counts: Counter[str],
    high_confidence: float = DEFAULT_HIGH_CONFIDENCE,
) -> list[FeedbackRow]:
    """Turn consolidated items into rows: accepted or needs_review, and tagged."""
    row_of = {item_id: row for row, item_id in enumerate(result.table.item_ids)}
    labels = result.labels()
    rows = []
    for item in items:
        row = row_of[item.item_id]
        confidence = float(result.confidence[row])
        tag = _tag(labels[row], item, high_confidence)
        status = "accepted" if confidence >= min_confidence else "needs_review"
        counts[status] += 1
        if tag is not None:
            counts[tag] += 1
        reason = (
            None
            if status == "accepted"
            else f"confidence {confidence:.3f} is under {min_confidence}"
        )
        rows.append(
            _row(
                item,
                labels[row],
                confidence,
                float(result.agreement[row]),
                tag,
                status,
                reason,
            )
        )
    return rows


def _tag(label: str, item: ReviewedItem, high_confidence: float) -> str | None:
    if item.model_label is None:
        return None
    if label == item.model_label:
        return "confirmed"
    if item.model_confidence is not None and item.model_confidence >= high_confidence:
        return "corrected_high_confidence"
    return "corrected"


def _row(
    item: ReviewedItem,
    label: str,
    confidence: float,
    agreement: float,
    tag: str | None,
    status: str,
    reason: str | None,
) -> FeedbackRow:
    return FeedbackRow(
        human_loop_name=item.human_loop_name,
        item_id=item.item_id,
        input=item.input_json,
        label=label,
        confidence=confidence,
        agreement=agreement,
        n_answers=len(item.answers),
        model_label=item.model_label,
        model_confidence=item.model_confidence,
        tag=tag,
        status=status,
        reason=reason,
    )


def answer_table(
    items: Sequence[ReviewedItem], label_set: Sequence[str] | None
) -> AnswerTable:
    """Encode the kept items' answers for consolidation."""
    triples = (
        (item.item_id, worker, label)
        for item in items
        for worker, label in item.answers
        if label is not None
    )
    return AnswerTable.from_answers(triples, label_set)
