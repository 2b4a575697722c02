"""Finding the label in answerContent and the model's prediction in the input."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from a2i_samples import SAMPLES
from closedloop.errors import ValidationError
from closedloop.feedback.labels import extract_label, guess_label_path, model_prediction
from closedloop.feedback.reader import LoopRecord, parse_output


def _sample(name: str) -> LoopRecord:
    record = parse_output((SAMPLES / name).read_bytes(), name)
    assert isinstance(record, LoopRecord)
    return record


@pytest.mark.parametrize(
    ("content", "path", "label"),
    [
        ({"category": {"label": "Fraud"}}, "category.label", "Fraud"),
        ({"category": {"labels": ["World"]}}, "category.labels", "World"),
        ({"category": {"labels": ["World", "Sports"]}}, "category.labels", None),
        ({"category": {"labels": []}}, "category.labels", None),
        ({"isFraud": {"on": True}}, "isFraud.on", "true"),
        ({"isFraud": {"on": False}}, "isFraud.on", "false"),
        ({"happy": {"on": False}, "sad": {"on": True}}, "", "sad"),
        ({"review": {"stars": 4}}, "review.stars", "4"),
        ({"category": {"label": "x"}}, "missing.path", None),
    ],
)
def test_label_is_read_at_its_dotted_path(
    content: dict[str, Any], path: str, label: str | None
) -> None:
    assert extract_label(content, path) == label


@pytest.mark.parametrize(
    ("sample", "path", "label"),
    [
        ("fraud-detector-classifier-1.json", "category.label", "Needs furthur review"),
        ("comprehend-multi-select.json", "category.labels", "World"),
        (
            "docs-custom-transcription.json",
            "transcription",
            "use lambda to turn your notebook",
        ),
    ],
)
def test_label_path_is_guessed_from_real_answers(
    sample: str, path: str, label: str
) -> None:
    contents = [answer.answer_content for answer in _sample(sample).answers]
    assert guess_label_path(contents) == path
    assert extract_label(contents[0], path) == label


def test_guessing_finds_radio_buttons_and_a_lone_checkbox() -> None:
    assert guess_label_path([{"cat": {"on": False}, "dog": {"on": True}}]) == ""
    assert guess_label_path([{"isFraud": {"on": True}}]) == "isFraud.on"


def test_a_label_path_that_cannot_be_guessed_must_be_given() -> None:
    with pytest.raises(ValidationError, match="label_path must be given") as raised:
        guess_label_path(
            [{"boxes": [{"left": 1}, {"left": 2}], "notes": {"a": 1, "b": 2}}]
        )
    assert raised.value.field == "label_path"


def test_model_prediction_comes_from_input_content() -> None:
    document = {
        "humanLoopName": "l",
        "humanAnswers": [],
        "inputContent": {
            "taskObject": "t",
            "prediction": {"label": "cat", "probabilities": {"cat": 0.8, "dog": 0.2}},
        },
    }
    record = parse_output(orjson.dumps(document), "p")
    assert isinstance(record, LoopRecord)
    prediction = model_prediction(record)
    assert (prediction.label, prediction.confidence) == ("cat", 0.8)


def test_a_missing_prediction_gives_none() -> None:
    prediction = model_prediction(_sample("fraud-detector-classifier-2.json"))
    assert (prediction.label, prediction.confidence) == (None, None)
