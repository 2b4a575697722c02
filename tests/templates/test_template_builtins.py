"""Built-in task UI templates: what they render, the fields they produce, bad labels."""

from __future__ import annotations

import pytest

from closedloop.errors import ValidationError
from closedloop.templates import (
    BUILTIN_KINDS,
    builtin_template,
    check_answer,
    check_renders,
    render_task_ui,
    template_fields,
)


@pytest.mark.parametrize("kind", BUILTIN_KINDS)
@pytest.mark.parametrize(
    "task_input",
    [
        {"text": "a review"},
        {"taskObject": "s3://b/img.png"},
        {"features": {"x": 1}},
        {},
    ],
)
def test_every_builtin_renders_for_text_images_and_plain_records(
    kind: str, task_input: dict[str, object]
) -> None:
    assert check_renders(builtin_template(kind, ["cat", "dog"]), task_input) is None


def test_single_label_shows_the_text_escaped_and_answers_category_label() -> None:
    template = builtin_template("single-label", ["cat", "dog"], header="Which pet?")
    html = render_task_ui(template, {"text": "<b>purrs</b>"})
    assert (
        '<crowd-classifier name="category" categories="[&#34;cat&#34;,&#34;dog&#34;]" header="Which pet?">'
        in html
    )
    assert "&lt;b&gt;purrs&lt;/b&gt;" in html
    check_answer(template, {"text": "x"}, {"category": {"label": "dog"}})


def test_image_input_is_shown_through_a_signed_url() -> None:
    html = render_task_ui(
        builtin_template("multi-label", ["a"]),
        {"taskObject": "s3://b/k.png"},
        object_url=lambda u: "/signed",
    )
    assert '<img class="cl-target-image" src="/signed"' in html


def test_multi_label_answers_category_labels() -> None:
    template = builtin_template("multi-label", ["red", "round"])
    check_answer(template, {}, {"category": {"labels": ["red", "round"]}})
    with pytest.raises(ValidationError, match="has label 'blue'"):
        check_answer(template, {}, {"category": {"labels": ["blue"]}})


def test_confirm_or_correct_shows_the_prediction_and_preselects_it() -> None:
    template = builtin_template("confirm-or-correct", ["cat", "dog"])
    prediction = {
        "label": "cat",
        "confidence": 0.875,
        "probabilities": {"cat": 0.875, "dog": 0.125},
    }
    html = " ".join(
        render_task_ui(template, {"text": "meow", "prediction": prediction}).split()
    )
    assert "The model says <strong>cat</strong> with confidence 87.5%." in html
    assert "<li>cat: 87.5%</li><li>dog: 12.5%</li>" in html
    assert 'value="cat"' in html
    assert "Model prediction" not in render_task_ui(template, {"text": "meow"})


def test_free_text_needs_text() -> None:
    template = builtin_template("free-text", [])
    assert [f.name for f in template_fields(template, {}).fields] == ["text"]
    with pytest.raises(
        ValidationError,
        match=r"answerContent\.text is required by the task UI and is missing",
    ):
        check_answer(template, {}, {})


@pytest.mark.parametrize(
    ("kind", "labels", "message"),
    [
        (
            "ranking",
            ["a"],
            "kind must be one of single-label, multi-label, free-text, confirm-or-correct; got 'ranking'",
        ),
        ("single-label", [], "labels must name at least one label for single-label"),
        (
            "single-label",
            ["a", "a"],
            "labels must be distinct and non-empty; got ['a', 'a']",
        ),
        (
            "multi-label",
            ["{{ x }}"],
            "labels must not contain Liquid markup; got '{{ x }}'",
        ),
    ],
)
def test_bad_kinds_and_labels_are_refused(
    kind: str, labels: list[str], message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        builtin_template(kind, labels)
    assert caught.value.message == message


def test_labels_with_quotes_and_markup_stay_labels() -> None:
    template = builtin_template("single-label", ['say "hi"', "<b>"])
    assert template_fields(template, {}).fields[0].labels == ('say "hi"', "<b>")
