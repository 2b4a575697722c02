"""Turn folders of human loop output files into one table of consolidated labels."""

from __future__ import annotations

import io
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import IO, Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from closedloop.errors import StoreError, ValidationError
from closedloop.feedback.clean import (
    DEFAULT_HIGH_CONFIDENCE,
    FeedbackRow,
    ReviewedItem,
    answer_table,
    clean_items,
    reviewed_item,
    tag_items,
)
from closedloop.feedback.consolidate import METHODS, WorkerMatrices, consolidate
from closedloop.feedback.labels import guess_label_path
from closedloop.feedback.reader import BadFile, LoopRecord, read_outputs
from closedloop.store.objects import STORAGE_ERRORS, filesystem_for, write_file_atomic

__all__ = [
    "FEEDBACK_SCHEMA",
    "FeedbackResult",
    "build_feedback",
    "feedback_table",
    "write_feedback",
]

logger = logging.getLogger(__name__)

_TEXT, _NUMBER, _COUNT = pa.string(), pa.float64(), pa.int64()
_FIELDS: list[pa.Field[Any]] = [
    pa.field("human_loop_name", _TEXT),
    pa.field("item_id", _TEXT),
    pa.field("input", _TEXT),
    pa.field("label", _TEXT),
    pa.field("confidence", _NUMBER),
    pa.field("agreement", _NUMBER),
    pa.field("n_answers", _COUNT),
    pa.field("model_label", _TEXT),
    pa.field("model_confidence", _NUMBER),
    pa.field("tag", _TEXT),
    pa.field("status", _TEXT),
    pa.field("reason", _TEXT),
]
FEEDBACK_SCHEMA = pa.schema(_FIELDS)


@dataclass(frozen=True)
class FeedbackResult:
    """Rows, the count each rule took, worker reliabilities and the files skipped.

    ``worker_matrices`` (Dawid-Skene only) can warm-start a later run.
    """

    rows: list[FeedbackRow]
    counts: dict[str, int]
    worker_reliability: dict[str, float]
    worker_matrices: dict[str, dict[str, dict[str, float]]]
    bad_files: list[BadFile]
    label_path: str | None
    classes: list[str]
    method: str


def build_feedback(
    sources: Sequence[str],
    *,
    label_path: str | None,
    label_set: Sequence[str] | None,
    task_count: int | None,
    method: str = "dawid-skene",
    min_confidence: float = 0.7,
    gold: dict[str, str] | None = None,
    initial_matrices: WorkerMatrices | None = None,
    high_confidence: float = DEFAULT_HIGH_CONFIDENCE,
) -> FeedbackResult:
    """Read every output file under ``sources`` and consolidate one label per item.

    ``label_path`` is the dotted path of the label in answerContent (guessed
    from the first answers when None); ``label_set`` the allowed labels;
    ``task_count`` the answers a complete loop has. Items whose confidence is
    under ``min_confidence`` stay as ``needs_review``. ``gold`` (item id ->
    label) and ``initial_matrices`` feed Dawid-Skene.
    """
    _check_arguments(method, min_confidence, task_count, label_set)
    counts: Counter[str] = Counter()
    bad_files: list[BadFile] = []
    records = _good_records(read_outputs(list(sources)), bad_files, counts)
    items, statuses, label_path = _collect(records, label_path)
    status_rows = _apply_statuses(items, statuses, counts)
    kept, dropped = clean_items(
        items, label_set=label_set, task_count=task_count, counts=counts
    )
    table = answer_table(kept, label_set)
    result = consolidate(table, method, gold=gold, initial_matrices=initial_matrices)
    rows = tag_items(
        kept,
        result,
        min_confidence=min_confidence,
        counts=counts,
        high_confidence=high_confidence,
    )
    counts["dropped"] = len(dropped) + len(status_rows)
    logger.info(
        "Consolidated %d items (%d accepted, %d need review, %d dropped; %d bad files)",
        len(rows),
        counts["accepted"],
        counts["needs_review"],
        counts["dropped"],
        len(bad_files),
    )
    return FeedbackResult(
        rows=rows + dropped + status_rows,
        counts=dict(counts),
        worker_reliability=result.worker_reliability(),
        worker_matrices=result.worker_matrices(),
        bad_files=bad_files,
        label_path=label_path,
        classes=table.classes,
        method=method,
    )


def _check_arguments(
    method: str,
    min_confidence: float,
    task_count: int | None,
    label_set: Sequence[str] | None,
) -> None:
    if method not in METHODS:
        raise ValidationError(
            f"method must be one of {list(METHODS)!r}; got {method!r}", field="method"
        )
    if not 0.0 <= min_confidence <= 1.0:
        raise ValidationError(
            f"min_confidence must be between 0 and 1; got {min_confidence!r}",
            field="min_confidence",
        )
    if task_count is not None and task_count < 1:
        raise ValidationError(
            f"task_count must be at least 1; got {task_count!r}", field="task_count"
        )
    if label_set is not None and isinstance(label_set, str):
        raise ValidationError(
            f"label_set must be a list of labels; got {label_set!r}", field="label_set"
        )


def _good_records(
    records: Iterable[LoopRecord | BadFile],
    bad_files: list[BadFile],
    counts: Counter[str],
) -> Iterable[LoopRecord]:
    for record in records:
        if isinstance(record, BadFile):
            bad_files.append(record)
            counts["bad_files"] += 1
            continue
        counts["files_read"] += 1
        yield record


def _collect(
    records: Iterable[LoopRecord], label_path: str | None
) -> tuple[list[ReviewedItem], dict[str, str], str | None]:
    """Reduce output records to items and remember statuses from status documents."""
    items: list[ReviewedItem] = []
    statuses: dict[str, str] = {}
    pending: list[LoopRecord] = []
    for record in records:
        if record.kind == "status" and record.status is not None:
            statuses[record.human_loop_name] = record.status
        elif label_path is not None:
            items.append(reviewed_item(record, label_path))
        elif record.answers:
            label_path = guess_label_path(
                answer.answer_content for answer in record.answers
            )
            items.extend(
                reviewed_item(earlier, label_path) for earlier in [*pending, record]
            )
            pending = []
        else:
            pending.append(record)
    items.extend(reviewed_item(record, label_path or "") for record in pending)
    return items, statuses, label_path


def _apply_statuses(
    items: list[ReviewedItem], statuses: dict[str, str], counts: Counter[str]
) -> list[FeedbackRow]:
    """Give items the status their loop's status document reports; rows for loops without output."""
    names = set()
    for item in items:
        names.add(item.human_loop_name)
        if item.status is None:
            item.status = statuses.get(item.human_loop_name)
    orphans = sorted(name for name in statuses if name not in names)
    counts["no_output"] += len(orphans)
    return [_orphan_row(name, statuses[name]) for name in orphans]


def _orphan_row(name: str, status: str) -> FeedbackRow:
    return FeedbackRow(
        human_loop_name=name,
        item_id=None,
        input=None,
        label=None,
        confidence=None,
        agreement=None,
        n_answers=0,
        model_label=None,
        model_confidence=None,
        tag=None,
        status="dropped",
        reason=f"no output file for this loop; its status is {status}",
    )


def feedback_table(result: FeedbackResult) -> pa.Table:
    """The result's rows as an Arrow table with ``FEEDBACK_SCHEMA``."""
    names = [column.name for column in fields(FeedbackRow)]
    columns = {name: [getattr(row, name) for row in result.rows] for name in names}
    return pa.Table.from_pydict(columns, schema=FEEDBACK_SCHEMA)


def write_feedback(result: FeedbackResult, path: str) -> None:
    """Write the rows to ``path`` (local or fsspec URL) as Parquet or CSV by extension."""
    table = feedback_table(result)
    lowered = path.lower()
    if lowered.endswith((".parquet", ".pq")):
        writer = _write_parquet
    elif lowered.endswith(".csv"):
        writer = _write_csv
    else:
        raise ValidationError(
            f"path must end in .parquet, .pq or .csv; got {path!r}", field="path"
        )
    fs, target = filesystem_for(path, "path")
    # Serialized first, so a failure half way leaves no truncated table behind.
    buffer = io.BytesIO()
    writer(table, buffer)
    try:
        write_file_atomic(fs, target, buffer.getvalue())
    except STORAGE_ERRORS as error:
        raise StoreError(f"cannot write feedback to {path!r}: {error}") from error
    logger.info("Wrote %d feedback rows to %s", table.num_rows, path)


def _write_parquet(table: pa.Table, file: IO[bytes]) -> None:
    pq.write_table(table, file)


def _write_csv(table: pa.Table, file: IO[bytes]) -> None:
    pa_csv.write_csv(table, file)
