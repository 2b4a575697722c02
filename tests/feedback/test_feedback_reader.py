"""Reading A2I output files of every known variant, from disk and from fsspec URLs."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import fsspec
import orjson
import pytest
from feedback_helpers import output, write

from a2i_samples import SAMPLES
from closedloop.feedback.reader import BadFile, LoopRecord, read_outputs


def _records(source: str | Path) -> list[LoopRecord | BadFile]:
    return list(read_outputs([str(source)]))


def _one(path: Path) -> LoopRecord:
    (record,) = _records(path)
    assert isinstance(record, LoopRecord), record
    return record


@pytest.mark.parametrize(
    ("sample", "loop", "worker", "spent", "accepted"),
    [
        (
            "fraud-detector-classifier-1.json",
            "Fraud-detector-1613589638354",
            "7fe4cd6b55282093",
            165.529,
            True,
        ),
        (
            "fraud-detector-classifier-2.json",
            "Fraud-detector-1612454951724",
            "1feea8332bb0cbee",
            86.185,
            True,
        ),
        (
            "fraud-detector-classifier-3.json",
            "Fraud-detector-1609769259714",
            "7fe4cd6b55282093",
            480.575,
            True,
        ),
        (
            "comprehend-multi-select.json",
            "c6bc21a2-cfa9-41dd-b28d-90264c6b8f0a",
            "a4d8700afb91b37f",
            None,
            False,
        ),
        (
            "docs-custom-transcription.json",
            "human-loop-name",
            "ef7294f850a3d9d1",
            None,
            False,
        ),
    ],
)
def test_real_a2i_output_files_read_with_their_answers(
    sample: str, loop: str, worker: str, spent: float | None, accepted: bool
) -> None:
    record = _one(SAMPLES / sample)
    (answer,) = record.answers
    assert record.kind == "output"
    assert record.human_loop_name == loop
    assert record.flow_definition_arn is not None
    assert record.input_content
    assert answer.worker_id == worker
    assert answer.time_spent_seconds == spent
    assert (answer.acceptance_time is not None) is accepted
    assert answer.submission_time is not None
    assert (
        answer.identity is not None
        and answer.identity["identityProviderType"] == "Cognito"
    )


def test_describe_human_loop_response_reads_as_a_status_without_answers() -> None:
    record = _one(SAMPLES / "describe-human-loop-inprogress.json")
    assert (record.kind, record.status, record.answers) == ("status", "InProgress", ())
    assert record.human_loop_name == "6addb62e-3dcb-4a30-99df-b58ee6bf7658"


def test_status_change_event_reads_as_a_completed_status() -> None:
    record = _one(SAMPLES / "docs-status-change-event.json")
    assert (record.kind, record.status, record.human_loop_name) == (
        "status",
        "Completed",
        "humanloop-nov-14-1",
    )


def test_every_sample_in_a_folder_tree_is_read(tmp_path: Path) -> None:
    for index, sample in enumerate(sorted(SAMPLES.glob("*.json"))):
        target = (
            tmp_path / "flow" / "2021" / f"{index:02d}" / sample.stem / "output.json"
        )
        target.parent.mkdir(parents=True)
        shutil.copy(sample, target)
    records = _records(tmp_path)
    assert len(records) == 7
    assert all(isinstance(record, LoopRecord) for record in records)
    assert [record.path for record in records] == sorted(
        record.path for record in records
    )


def test_early_2020_flat_builtin_output_keeps_the_ai_service_fields_as_input(
    tmp_path: Path,
) -> None:
    document = {
        "aiServiceRequest": {
            "document": {"s3Object": {"bucket": "b", "name": "doc.png"}}
        },
        "aiServiceResponse": {"blocks": []},
        "humanTaskActivationConditionResults": {"Conditions": []},
        "selectedAiServiceResponse": {"blocks": []},
        "flowDefinitionArn": "arn:aws:sagemaker:us-east-1:1:flow-definition/textract",
        "humanAnswers": [
            {
                "answerContent": {"AWS/Textract/AnalyzeDocument/Forms/V1": {}},
                "workerId": "w1",
            }
        ],
        "humanLoopName": "Textract-Loop-2020",
    }
    record = _one(write(tmp_path, "a/output.json", document))
    assert record.kind == "flat-builtin"
    assert record.input_content is not None
    assert set(record.input_content) == {
        "aiServiceRequest",
        "aiServiceResponse",
        "humanTaskActivationConditionResults",
        "selectedAiServiceResponse",
    }
    assert record.answers[0].worker_id == "w1"
    assert (
        record.answers[0].identity is None and record.answers[0].acceptance_time is None
    )


def test_early_custom_output_reads_human_loop_input_content(tmp_path: Path) -> None:
    document = {
        "humanLoopName": "Early-Custom",
        "humanLoopInputContent": {"taskObject": "a sentence"},
        "humanAnswers": [
            {"answerContent": {"sentiment": {"label": "Positive"}}, "workerId": "abc"}
        ],
    }
    record = _one(write(tmp_path, "x/output.json", document))
    assert record.kind == "early-custom"
    assert record.input_content == {"taskObject": "a sentence"}
    assert record.answers[0].answer_content == {"sentiment": {"label": "Positive"}}


def test_simplified_shape_reads_input_model_result_and_answer(tmp_path: Path) -> None:
    document = {
        "input": {"text": "hello"},
        "mlResult": {"label": "greeting", "confidence": 0.4},
        "humanAnswer": {"category": {"label": "farewell"}},
        "metadata": {"humanLoopName": "simple-1", "workerId": "w9"},
    }
    record = _one(write(tmp_path, "simple-1/output.json", document))
    assert (record.kind, record.human_loop_name) == ("simplified", "simple-1")
    assert record.ml_result == {"label": "greeting", "confidence": 0.4}
    assert record.answers[0].worker_id == "w9"


def test_loop_name_falls_back_to_the_folder_holding_output_json(tmp_path: Path) -> None:
    document = {"humanAnswers": [], "inputContent": {}}
    assert (
        _one(
            write(tmp_path, "flow/2024/Loop-From-Path/output.json", document)
        ).human_loop_name
        == "Loop-From-Path"
    )


def test_bad_files_are_reported_with_path_and_reason_and_reading_goes_on(
    tmp_path: Path,
) -> None:
    write(tmp_path, "1/output.json", b"{not json")
    write(tmp_path, "2/output.json", [1, 2])
    write(tmp_path, "3/output.json", {"hello": "world"})
    write(tmp_path, "4/output.json", {"humanAnswers": "nope", "inputContent": {}})
    write(
        tmp_path,
        "5/output.json",
        {"humanAnswers": [{"workerId": "w"}], "inputContent": {}},
    )
    write(tmp_path, "6/output.json", output("good", [("w1", "cat")]))
    records = _records(tmp_path)
    bad = [record for record in records if isinstance(record, BadFile)]
    reasons = {Path(record.path).parent.name: record.reason for record in bad}
    assert [
        record.human_loop_name for record in records if isinstance(record, LoopRecord)
    ] == ["good"]
    assert set(reasons) == {"1", "2", "3", "4", "5"}
    assert "not valid JSON" in reasons["1"]
    assert "JSON object" in reasons["2"]
    assert "humanAnswers" in reasons["3"]
    assert "must be a list" in reasons["4"]
    assert "answerContent" in reasons["5"]


def test_reading_streams_records_one_at_a_time(tmp_path: Path) -> None:
    for index in range(600):
        write(
            tmp_path,
            f"{index:04d}/output.json",
            output(f"loop-{index}", [("w", "cat")]),
        )
    stream = read_outputs([str(tmp_path)], threads=2)
    assert isinstance(stream, Iterator)
    first = next(stream)
    assert isinstance(first, LoopRecord) and first.human_loop_name == "loop-0"
    assert sum(1 for _ in stream) == 599


def test_only_files_named_output_json_are_read(tmp_path: Path) -> None:
    write(tmp_path, "a/output.json", output("a", [("w", "cat")]))
    write(tmp_path, "a/input.json", output("not-me", [("w", "cat")]))
    assert [
        record.human_loop_name
        for record in _records(tmp_path)
        if isinstance(record, LoopRecord)
    ] == ["a"]


def test_fsspec_urls_are_read_through_their_filesystem() -> None:
    fs = fsspec.filesystem("memory")
    fs.pipe(
        "/bucket/flow/2024/loop-a/output.json",
        orjson.dumps(output("loop-a", [("w1", "dog")])),
    )
    fs.pipe("/bucket/flow/2024/loop-b/output.json", b"[]")
    records = _records("memory://bucket/flow")
    assert isinstance(records[0], LoopRecord) and records[0].human_loop_name == "loop-a"
    assert records[0].path.startswith("memory://")
    assert isinstance(records[1], BadFile) and "loop-b" in records[1].path
    fs.rm("/bucket", recursive=True)
