"""build_feedback end to end: cleaning rules, their counts, tags and written tables."""

from __future__ import annotations

from pathlib import Path

import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from feedback_helpers import output, write

import closedloop.feedback
from a2i_samples import SAMPLES
from closedloop.errors import ValidationError
from closedloop.feedback import (
    FEEDBACK_SCHEMA,
    FeedbackResult,
    build_feedback,
    write_feedback,
)

CAT = {"label": "cat", "confidence": 0.95}


def _folder(tmp_path: Path) -> Path:
    root = tmp_path / "out"
    three = [("w1", "cat"), ("w2", "cat"), ("w3", "cat")]
    write(root, "01/confirmed/output.json", output("confirmed", three, prediction=CAT))
    dogs = [("w1", "dog"), ("w2", "dog"), ("w3", "dog")]
    write(root, "02/corrected/output.json", output("corrected", dogs, prediction=CAT))
    low = {"label": "cat", "confidence": 0.4}
    write(
        root,
        "03/corrected-low/output.json",
        output("corrected-low", dogs, text="another", prediction=low),
    )
    split = [("w1", "cat"), ("w2", "dog"), ("w3", "bird")]
    write(root, "04/split/output.json", output("split", split, prediction=CAT))
    write(root, "05/short/output.json", output("short", [("w1", "cat")], text="short"))
    write(
        root,
        "06/dup-id/output.json",
        output("dup-id", three, text="x", item_id="item-7"),
    )
    write(
        root,
        "07/dup-id-2/output.json",
        output("dup-id-2", three, text="y", item_id="item-7"),
    )
    write(
        root,
        "08/dup-text/output.json",
        output("dup-text", dogs, prediction={"label": "dog"}, text="text of corrected"),
    )
    zebras = [("w1", "zebra"), ("w2", "zebra"), ("w3", "zebra")]
    write(root, "09/zebra/output.json", output("zebra", zebras, text="zebra"))
    write(root, "10/failed/output.json", output("failed", three, text="failed"))
    event = (
        (SAMPLES / "docs-status-change-event.json")
        .read_text()
        .replace("Completed", "Failed")
    )
    write(
        root,
        "11/event/output.json",
        event.replace("humanloop-nov-14-1", "failed").encode(),
    )
    write(
        root,
        "12/inprogress/output.json",
        (SAMPLES / "describe-human-loop-inprogress.json").read_bytes(),
    )
    write(root, "13/broken/output.json", b"{")
    return root


def _build(root: Path, **options: object) -> FeedbackResult:
    arguments: dict[str, object] = {
        "label_path": None,
        "label_set": ["cat", "dog", "bird"],
        "task_count": 3,
    }
    arguments.update(options)
    return build_feedback([str(root)], **arguments)  # type: ignore[arg-type]


def test_every_rule_reports_how_many_items_it_took(tmp_path: Path) -> None:
    result = _build(_folder(tmp_path), method="majority-vote")
    assert result.label_path == "category.label"
    assert result.counts == {
        "files_read": 12,
        "bad_files": 1,
        "no_output": 1,
        "failed_or_stopped": 1,
        "incomplete": 1,
        "duplicate": 2,
        "answers_outside_label_set": 3,
        "no_valid_answers": 1,
        "accepted": 4,
        "needs_review": 1,
        "confirmed": 2,
        "corrected": 1,
        "corrected_high_confidence": 1,
        "dropped": 6,
    }
    assert [bad.path.endswith("13/broken/output.json") for bad in result.bad_files] == [
        True
    ]


def test_rows_say_status_tag_and_reason(tmp_path: Path) -> None:
    rows = {
        row.human_loop_name: row
        for row in _build(_folder(tmp_path), method="majority-vote").rows
    }
    assert (
        rows["confirmed"].tag,
        rows["confirmed"].status,
        rows["confirmed"].agreement,
    ) == ("confirmed", "accepted", 1.0)
    assert (rows["corrected"].label, rows["corrected"].tag) == (
        "dog",
        "corrected_high_confidence",
    )
    assert (rows["corrected-low"].tag, rows["corrected-low"].model_confidence) == (
        "corrected",
        0.4,
    )
    # A three-way tie goes to the first label in label_set order.
    assert (rows["split"].label, rows["split"].tag) == ("cat", "confirmed")
    assert rows["split"].status == "needs_review" and "under 0.7" in (
        rows["split"].reason or ""
    )
    assert rows["short"].status == "dropped" and "incomplete" in (
        rows["short"].reason or ""
    )
    assert rows["dup-id-2"].status == "dropped" and "duplicate" in (
        rows["dup-id-2"].reason or ""
    )
    assert rows["dup-text"].status == "dropped"
    assert rows["zebra"].status == "dropped"
    assert rows["failed"].reason == "loop ended Failed"
    assert "InProgress" in (rows["6addb62e-3dcb-4a30-99df-b58ee6bf7658"].reason or "")
    assert rows["short"].tag is None and rows["dup-id"].tag is None


def test_dawid_skene_is_the_default_and_reports_worker_reliability(
    tmp_path: Path,
) -> None:
    result = _build(_folder(tmp_path))
    assert result.method == "dawid-skene"
    assert set(result.worker_reliability) == {"w1", "w2", "w3"}
    assert set(result.worker_matrices["w1"]) == {"cat", "dog", "bird"}
    assert result.classes == ["cat", "dog", "bird"]


def test_without_task_count_or_label_set_short_loops_and_any_label_are_kept(
    tmp_path: Path,
) -> None:
    result = _build(
        _folder(tmp_path), label_set=None, task_count=None, min_confidence=0.0
    )
    rows = {row.human_loop_name: row for row in result.rows}
    assert rows["short"].status == "accepted"
    assert rows["zebra"].label == "zebra"


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_feedback_is_written_as_parquet_or_csv_by_extension(
    tmp_path: Path, suffix: str
) -> None:
    result = _build(_folder(tmp_path))
    target = tmp_path / f"feedback{suffix}"
    write_feedback(result, str(target))
    table = pq.read_table(target) if suffix == ".parquet" else pa_csv.read_csv(target)
    assert table.column_names == FEEDBACK_SCHEMA.names
    assert table.num_rows == len(result.rows)
    assert sorted(table.column("status").to_pylist()) == sorted(
        row.status for row in result.rows
    )


def test_an_unknown_extension_is_refused(tmp_path: Path) -> None:
    with pytest.raises(
        ValidationError,
        match=r"path must end in \.parquet, \.pq or \.csv; got '.*x\.json'",
    ):
        write_feedback(_build(_folder(tmp_path)), str(tmp_path / "x.json"))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"method": "vote"}, "method must be one of"),
        ({"min_confidence": 1.5}, "min_confidence must be between 0 and 1; got 1.5"),
        ({"task_count": 0}, "task_count must be at least 1; got 0"),
    ],
)
def test_bad_arguments_are_refused_with_the_field_named(
    tmp_path: Path, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        _build(tmp_path, **options)


def test_real_samples_build_without_a_label_path(tmp_path: Path) -> None:
    for sample in SAMPLES.glob("fraud-*.json"):
        write(tmp_path, f"{sample.stem}/output.json", sample.read_bytes())
    result = build_feedback(
        [str(tmp_path)],
        label_path=None,
        label_set=None,
        task_count=1,
        min_confidence=0.5,
    )
    assert sorted(row.label or "" for row in result.rows) == [
        "Needs furthur Investigation",
        "Needs furthur Investigation",
        "Needs furthur review",
    ]
    assert {row.status for row in result.rows} == {"accepted"}


def test_public_surface_is_pinned() -> None:
    assert sorted(closedloop.feedback.__all__) == [
        "Answer",
        "AnswerTable",
        "BadFile",
        "Consolidation",
        "FEEDBACK_SCHEMA",
        "FeedbackResult",
        "FeedbackRow",
        "LoopRecord",
        "METHODS",
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
