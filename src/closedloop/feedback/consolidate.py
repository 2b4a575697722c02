"""Combine several workers' labels per item: majority vote and Dawid-Skene EM.

Both methods break ties the same way: among labels with equal score the one
that comes first in the class order wins (the ``label_set`` order when one is
given, otherwise sorted order). This matches crowd-kit, whose classes are
sorted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from closedloop.errors import ValidationError

__all__ = [
    "DEFAULT_MAX_ITER",
    "DEFAULT_TOL",
    "METHODS",
    "AnswerTable",
    "Consolidation",
    "WorkerMatrices",
    "consolidate",
    "dawid_skene",
    "majority_vote",
]

logger = logging.getLogger(__name__)

METHODS = ("majority-vote", "dawid-skene")
DEFAULT_MAX_ITER = 100
DEFAULT_TOL = 1e-5
_EPS = 1e-10

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
# worker id -> true label -> answered label -> probability
WorkerMatrices = Mapping[str, Mapping[str, Mapping[str, float]]]


@dataclass(frozen=True)
class AnswerTable:
    """Answers encoded as integer codes, sorted by item.

    ``item``, ``worker`` and ``label`` hold one code per answer, indexing
    ``item_ids``, ``worker_ids`` and ``classes``.
    """

    item_ids: list[str]
    worker_ids: list[str]
    classes: list[str]
    item: IntArray
    worker: IntArray
    label: IntArray

    @classmethod
    def from_answers(
        cls,
        answers: Iterable[tuple[str, str, str]],
        classes: Sequence[str] | None = None,
    ) -> AnswerTable:
        """Encode ``(item_id, worker_id, label)`` triples.

        With ``classes`` the class order is that one and every label must be in
        it; without, the classes are the labels seen, sorted.
        """
        items, workers, labels = _columns(answers)
        item_ids, item = _encode_sorted(items)
        worker_ids, worker = _encode_sorted(workers)
        class_list = sorted(set(labels)) if classes is None else list(classes)
        label = _encode_labels(labels, class_list)
        order = np.argsort(item, kind="stable")
        return cls(
            item_ids=item_ids,
            worker_ids=worker_ids,
            classes=class_list,
            item=item[order].astype(np.intp),
            worker=worker[order].astype(np.intp),
            label=label[order],
        )

    @property
    def shape(self) -> tuple[int, int, int]:
        """Numbers of items, workers and classes."""
        return len(self.item_ids), len(self.worker_ids), len(self.classes)


def _columns(
    answers: Iterable[tuple[str, str, str]],
) -> tuple[list[str], list[str], list[str]]:
    items: list[str] = []
    workers: list[str] = []
    labels: list[str] = []
    for item_id, worker_id, label in answers:
        items.append(item_id)
        workers.append(worker_id)
        labels.append(label)
    return items, workers, labels


def _encode_sorted(values: list[str]) -> tuple[list[str], IntArray]:
    ids = sorted(set(values))
    index = {value: code for code, value in enumerate(ids)}
    return ids, np.fromiter((index[value] for value in values), np.intp, len(values))


def _encode_labels(labels: list[str], classes: list[str]) -> IntArray:
    index = {label: code for code, label in enumerate(classes)}
    if len(index) != len(classes):
        raise ValidationError(
            f"label_set must not repeat a label; got {classes!r}", field="label_set"
        )
    unknown = sorted(set(labels) - index.keys())
    if unknown:
        raise ValidationError(
            f"every label must be in label_set {classes!r}; got {unknown[:5]!r}",
            field="label_set",
        )
    return np.fromiter((index[label] for label in labels), np.intp, len(labels))


@dataclass(frozen=True)
class Consolidation:
    """One label per item plus how sure it is, and each worker's reliability.

    ``probabilities`` is items x classes. ``confidence`` is the winning class's
    probability (the vote share for majority vote, the posterior for
    Dawid-Skene); ``agreement`` the share of an item's answers equal to its
    label. ``reliability`` estimates, per worker, the chance an answer is right.
    ``matrices`` (Dawid-Skene only) is workers x true class x answered class.
    """

    table: AnswerTable
    method: str
    probabilities: FloatArray
    label: IntArray
    confidence: FloatArray
    agreement: FloatArray
    n_answers: IntArray
    reliability: FloatArray
    matrices: FloatArray | None = None
    n_iter: int = 0

    def labels(self) -> list[str]:
        """The consolidated label of each item, in ``table.item_ids`` order."""
        classes = self.table.classes
        return [classes[code] for code in self.label]

    def worker_reliability(self) -> dict[str, float]:
        """Each worker's estimated reliability by worker id."""
        return dict(zip(self.table.worker_ids, self.reliability.tolist(), strict=True))

    def worker_matrices(self) -> dict[str, dict[str, dict[str, float]]]:
        """Confusion matrices by worker, true label and answer; feed to a later run."""
        if self.matrices is None:
            return {}
        classes = self.table.classes
        return {
            worker: {
                true: dict(zip(classes, row.tolist(), strict=True))
                for true, row in zip(classes, matrix, strict=True)
            }
            for worker, matrix in zip(self.table.worker_ids, self.matrices, strict=True)
        }


def consolidate(
    table: AnswerTable,
    method: str = "dawid-skene",
    *,
    gold: Mapping[str, str] | None = None,
    initial_matrices: WorkerMatrices | None = None,
) -> Consolidation:
    """Run ``method`` (one of ``METHODS``) on ``table``."""
    if method == "majority-vote":
        return majority_vote(table)
    if method == "dawid-skene":
        return dawid_skene(table, gold=gold, initial_matrices=initial_matrices)
    raise ValidationError(
        f"method must be one of {list(METHODS)!r}; got {method!r}", field="method"
    )


def majority_vote(table: AnswerTable) -> Consolidation:
    """Label each item with its most frequent answer; confidence is its vote share."""
    if not table.item_ids:
        return _empty(table)
    votes = _vote_counts(table)
    n_answers = votes.sum(axis=1)
    shares = votes / np.maximum(n_answers, 1)[:, None]
    label = shares.argmax(axis=1)
    agreement = shares[np.arange(len(label)), label]
    correct = (table.label == label[table.item]).astype(np.float64)
    return Consolidation(
        table=table,
        method="majority-vote",
        probabilities=shares,
        label=label,
        confidence=agreement,
        agreement=agreement,
        n_answers=n_answers.astype(np.intp),
        reliability=_per_worker_mean(table, correct),
    )


def _empty(table: AnswerTable) -> Consolidation:
    no_floats = np.zeros(0, dtype=np.float64)
    no_ints = np.zeros(0, dtype=np.intp)
    return Consolidation(
        table=table,
        method="majority-vote",
        probabilities=np.zeros((0, len(table.classes))),
        label=no_ints,
        confidence=no_floats,
        agreement=no_floats,
        n_answers=no_ints,
        reliability=np.zeros(len(table.worker_ids)),
    )


def _vote_counts(table: AnswerTable) -> FloatArray:
    n_items, _, n_classes = table.shape
    flat = np.bincount(
        table.item * n_classes + table.label, minlength=n_items * n_classes
    )
    return flat.reshape(n_items, n_classes).astype(np.float64)


def _per_worker_mean(table: AnswerTable, values: FloatArray) -> FloatArray:
    n_workers = table.shape[1]
    total = np.bincount(table.worker, weights=values, minlength=n_workers)
    count = np.bincount(table.worker, minlength=n_workers)
    return np.asarray(total / np.maximum(count, 1), dtype=np.float64)


@dataclass(frozen=True)
class _Problem:
    """Precomputed index arrays the EM steps share."""

    table: AnswerTable
    cell: IntArray  # worker * n_classes + label, per answer
    starts: IntArray  # first answer of each item
    per_item: IntArray  # answers per item
    observed: npt.NDArray[np.bool_]  # worker x answered class seen at least once

    @classmethod
    def build(cls, table: AnswerTable) -> _Problem:
        n_items, n_workers, n_classes = table.shape
        per_item = np.bincount(table.item, minlength=n_items).astype(np.intp)
        if n_items and per_item.min() == 0:
            raise ValidationError(
                "every item must have at least one answer; got an item with none"
            )
        cell = table.worker * n_classes + table.label
        observed = np.bincount(cell, minlength=n_workers * n_classes) > 0
        starts = np.concatenate(([0], np.cumsum(per_item)[:-1])).astype(np.intp)
        return cls(
            table, cell, starts, per_item, observed.reshape(n_workers, n_classes)
        )


def dawid_skene(
    table: AnswerTable,
    *,
    gold: Mapping[str, str] | None = None,
    initial_matrices: WorkerMatrices | None = None,
    max_iter: int = DEFAULT_MAX_ITER,
    tol: float = DEFAULT_TOL,
) -> Consolidation:
    """Dawid-Skene EM with one confusion matrix per worker.

    Starts from majority vote; ``gold`` (item id -> known label) pins those
    items' posteriors after every E-step; ``initial_matrices`` (by worker, true
    label, answered label; e.g. ``Consolidation.worker_matrices()`` of an earlier
    run) replaces the first estimate for the workers and classes it covers.
    Stops when the per-answer evidence lower bound gains less than ``tol``.
    """
    if max_iter < 0:
        raise ValidationError(
            f"max_iter must be at least 0; got {max_iter!r}", field="max_iter"
        )
    if not len(table.item):
        return majority_vote(table)
    problem = _Problem.build(table)
    pinned = _gold_rows(table, gold or {})
    posterior = majority_vote(table).probabilities
    _pin(posterior, pinned)
    counts = _answer_counts(problem, posterior)
    errors = _warm_start(table, _normalise(problem, counts), initial_matrices or {})
    priors = posterior.mean(axis=0)
    bound, n_iter = -np.inf, 0
    while n_iter < max_iter:
        n_iter += 1
        posterior = _e_step(problem, priors, errors)
        _pin(posterior, pinned)
        priors = posterior.mean(axis=0)
        counts = _answer_counts(problem, posterior)
        errors = _normalise(problem, counts)
        new_bound = _lower_bound(posterior, priors, errors, counts) / len(table.item)
        if new_bound - bound < tol:
            break
        bound = new_bound
    logger.debug("Dawid-Skene stopped after %d iterations", n_iter)
    return _ds_result(problem, posterior, errors, n_iter)


def _gold_rows(
    table: AnswerTable, gold: Mapping[str, str]
) -> tuple[IntArray, IntArray]:
    item_index = {item_id: row for row, item_id in enumerate(table.item_ids)}
    class_index = {label: code for code, label in enumerate(table.classes)}
    unknown = sorted(label for label in set(gold.values()) if label not in class_index)
    if unknown:
        raise ValidationError(
            f"gold labels must be in {table.classes!r}; got {unknown[:5]!r}",
            field="gold",
        )
    known = [
        (item_index[item], class_index[label])
        for item, label in gold.items()
        if item in item_index
    ]
    rows = np.array([row for row, _ in known], dtype=np.intp)
    codes = np.array([code for _, code in known], dtype=np.intp)
    return rows, codes


def _pin(posterior: FloatArray, pinned: tuple[IntArray, IntArray]) -> None:
    rows, codes = pinned
    posterior[rows] = 0.0
    posterior[rows, codes] = 1.0


def _answer_counts(problem: _Problem, posterior: FloatArray) -> FloatArray:
    """Expected counts: worker x answered class x true class."""
    _, n_workers, n_classes = problem.table.shape
    per_answer = np.repeat(posterior, problem.per_item, axis=0)
    size = n_workers * n_classes
    columns = [
        np.bincount(problem.cell, weights=per_answer[:, c], minlength=size)
        for c in range(n_classes)
    ]
    stacked = np.stack(columns, axis=1).astype(np.float64)
    return stacked.reshape(n_workers, n_classes, n_classes)


def _normalise(problem: _Problem, counts: FloatArray) -> FloatArray:
    """Turn counts into P(answer | true class), clipping seen cells at a floor."""
    clipped = np.where(problem.observed[:, :, None], np.maximum(counts, _EPS), 0.0)
    totals = clipped.sum(axis=1, keepdims=True)
    return np.asarray(clipped / np.where(totals > 0, totals, 1.0), dtype=np.float64)


def _warm_start(
    table: AnswerTable, errors: FloatArray, initial: WorkerMatrices
) -> FloatArray:
    classes = table.classes
    for row, worker in enumerate(table.worker_ids):
        given = initial.get(worker)
        if given is None:
            continue
        for true_code, true in enumerate(classes):
            column = given.get(true)
            if column is not None and all(label in column for label in classes):
                errors[row, :, true_code] = [float(column[label]) for label in classes]
    clipped = np.maximum(errors, _EPS)
    return np.asarray(clipped / clipped.sum(axis=1, keepdims=True), dtype=np.float64)


def _e_step(problem: _Problem, priors: FloatArray, errors: FloatArray) -> FloatArray:
    n_classes = problem.table.shape[2]
    with np.errstate(divide="ignore"):
        log_errors = np.log(errors).reshape(-1, n_classes)
    per_answer = log_errors[problem.cell]
    log_like = np.add.reduceat(per_answer, problem.starts, axis=0)
    log_like += np.log(np.maximum(priors, _EPS))
    log_like -= log_like.max(axis=1, keepdims=True)
    likelihood = np.exp(log_like)
    return np.asarray(
        likelihood / likelihood.sum(axis=1, keepdims=True), dtype=np.float64
    )


def _lower_bound(
    posterior: FloatArray, priors: FloatArray, errors: FloatArray, counts: FloatArray
) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        log_errors = np.where(counts > 0, np.log(errors), 0.0)
    joint = float((counts * log_errors).sum())
    joint += float(counts.sum(axis=(0, 1)) @ np.log(np.maximum(priors, _EPS)))
    clipped = np.maximum(posterior, _EPS)
    return joint - float((clipped * np.log(clipped)).sum())


def _ds_result(
    problem: _Problem, posterior: FloatArray, errors: FloatArray, n_iter: int
) -> Consolidation:
    table = problem.table
    label = posterior.argmax(axis=1)
    rows = np.arange(len(label))
    matches = (table.label == label[table.item]).astype(np.float64)
    agreement = np.add.reduceat(matches, problem.starts) / problem.per_item
    right = posterior[table.item, table.label]
    return Consolidation(
        table=table,
        method="dawid-skene",
        probabilities=posterior,
        label=label,
        confidence=posterior[rows, label],
        agreement=agreement,
        n_answers=problem.per_item,
        reliability=_per_worker_mean(table, right),
        matrices=np.ascontiguousarray(errors.transpose(0, 2, 1)),
        n_iter=n_iter,
    )
