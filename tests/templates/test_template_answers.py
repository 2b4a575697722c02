"""The answer fields a task UI produces, and checking answerContent against them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from closedloop.errors import ValidationError
from closedloop.templates import check_answer, template_fields

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


SENTIMENT = (FIXTURES / "sentiment.liquid.html").read_text()
SURVEY = (FIXTURES / "survey.liquid.html").read_text()
SHAPES = (FIXTURES / "shapes.liquid.html").read_text()
ENTITIES = (FIXTURES / "entities.liquid.html").read_text()
SENTIMENT_INPUT = {"taskObject": "ok", "labels": ["Positive", "Negative"]}
SURVEY_INPUT = {"currency": "EUR", "invoiceId": "1", "vendor": "Acme"}
IMAGE = {"height": 200, "width": 400}


def refused(
    template: str, data: dict[str, Any], answer: dict[str, Any]
) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        check_answer(template, data, answer)
    return caught.value


def test_fields_of_a_survey_template_name_kinds_and_switch_values() -> None:
    fields = template_fields(SURVEY, SURVEY_INPUT)
    summary = {f.name: (f.kind, f.required, f.switch_keys) for f in fields.fields}
    assert summary == {
        "vendorName": ("crowd-input", True, ()),
        "notes": ("crowd-text-area", False, ()),
        "legible": ("crowd-checkbox", False, ("on",)),
        "stamp": ("crowd-checkbox", False, ("present",)),
        "correct": ("crowd-radio-button", False, ("correct",)),
        "wrong": ("crowd-radio-button", False, ("on",)),
        "urgent": ("crowd-toggle-button", False, ("urgent",)),
        "confidence": ("crowd-slider", False, ()),
    }
    assert fields.required_groups == (("correct", "wrong"),)


def test_labels_are_read_from_json_from_liquid_and_from_single_quoted_lists() -> None:
    assert template_fields(SENTIMENT, SENTIMENT_INPUT).fields[0].labels == (
        "Positive",
        "Negative",
    )
    assert template_fields(SENTIMENT).fields[0].labels is None
    entities = template_fields(ENTITIES, {"text": "abc"}).fields[0]
    assert (entities.labels, entities.text_length) == (("person", "place"), 3)


def test_a_good_classifier_answer_passes_and_a_foreign_label_is_refused() -> None:
    check_answer(SENTIMENT, SENTIMENT_INPUT, {"category": {"label": "Negative"}})
    error = refused(SENTIMENT, SENTIMENT_INPUT, {"category": {"label": "Angry"}})
    assert (
        error.message
        == "answerContent.category has label 'Angry'; the task UI allows 'Positive', 'Negative'"
    )
    assert error.field == "answerContent.category"


def test_missing_classifier_answer_and_unknown_fields_are_refused() -> None:
    assert refused(SENTIMENT, SENTIMENT_INPUT, {}).message == (
        "answerContent.category is required by the task UI and is missing"
    )
    error = refused(
        SENTIMENT, SENTIMENT_INPUT, {"category": {"label": "Positive"}, "extra": 1}
    )
    assert (
        error.message
        == "answerContent.extra is not a field of the task UI, which produces 'category'"
    )


def test_wrong_shape_for_a_classifier_is_refused() -> None:
    error = refused(SENTIMENT, SENTIMENT_INPUT, {"category": "Positive"})
    assert (
        error.message
        == 'answerContent.category must be {"label": "<one of the categories>"}; got \'Positive\''
    )


SURVEY_ANSWER: dict[str, Any] = {
    "vendorName": "Acme",
    "notes": "",
    "legible": {"on": True},
    "stamp": {"present": False},
    "correct": {"correct": False},
    "wrong": {"on": True},
    "urgent": {"urgent": False},
    "confidence": 7,
}


def test_survey_answer_in_a2i_shape_passes() -> None:
    check_answer(SURVEY, SURVEY_INPUT, SURVEY_ANSWER)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"confidence": 11},
            "answerContent.confidence must be between 0.0 and 10.0; got 11",
        ),
        ({"confidence": "7"}, "answerContent.confidence must be a number; got '7'"),
        (
            {"legible": {"yes": True}},
            "answerContent.legible must map 'on' to true or false; got {'yes': True}",
        ),
        (
            {"vendorName": ""},
            "answerContent.vendorName is required by the task UI and is empty",
        ),
        (
            {"vendorName": ["Acme"]},
            "answerContent.vendorName must be a string; got ['Acme']",
        ),
        (
            {"correct": {"correct": False}, "wrong": {"on": False}},
            "answerContent.correct or another of 'correct', 'wrong' must be switched on",
        ),
    ],
)
def test_survey_answers_that_do_not_fit_are_refused(
    change: dict[str, Any], message: str
) -> None:
    assert refused(SURVEY, SURVEY_INPUT, {**SURVEY_ANSWER, **change}).message == message


def shapes(tool: str) -> dict[str, Any]:
    return {"tool": tool, "taskObject": "s3://b/k.png", "labels": ["car", "bus"]}


def test_bounding_boxes_are_checked_for_numbers_and_labels() -> None:
    box = {"label": "car", "left": 1, "top": 2, "width": 3, "height": 4}
    check_answer(
        SHAPES,
        shapes("bounding-box"),
        {"annotatedResult": {"boundingBoxes": [box], "inputImageProperties": IMAGE}},
    )
    error = refused(
        SHAPES,
        shapes("bounding-box"),
        {"annotatedResult": {"boundingBoxes": [{**box, "label": "tram"}]}},
    )
    assert (
        error.message
        == "answerContent.annotatedResult.boundingBoxes[0] has label 'tram'; the task UI allows 'car', 'bus'"
    )
    error = refused(
        SHAPES,
        shapes("bounding-box"),
        {"annotatedResult": {"boundingBoxes": [{**box, "width": -3}]}},
    )
    assert "must not have a negative width or height" in error.message
    adjusted = {"boundingBoxes": [box], "initialValueModified": True}
    check_answer(SHAPES, shapes("bounding-box"), {"annotatedResult": adjusted})
    error = refused(
        SHAPES,
        shapes("bounding-box"),
        {"annotatedResult": {**adjusted, "initialValueModified": "yes"}},
    )
    assert error.message == (
        "answerContent.annotatedResult initialValueModified must be true or false; "
        "got 'yes'"
    )


def test_keypoints_polygons_lines_and_polylines_are_checked() -> None:
    vertex = {"x": 1, "y": 2}
    check_answer(
        SHAPES,
        shapes("keypoint"),
        {
            "annotatedResult": {
                "keypoints": [{"label": "bus", **vertex}],
                "inputImageProperties": IMAGE,
            }
        },
    )
    check_answer(
        SHAPES,
        shapes("polygon"),
        {"annotatedResult": {"polygons": [{"label": "car", "vertices": [vertex] * 3}]}},
    )
    check_answer(
        SHAPES,
        shapes("polyline"),
        {
            "annotatedResult": {
                "polylines": [{"label": "car", "vertices": [vertex] * 2}]
            }
        },
    )
    error = refused(
        SHAPES,
        shapes("line"),
        {"annotatedResult": {"lines": [{"label": "car", "vertices": [vertex] * 3}]}},
    )
    assert (
        error.message
        == "answerContent.annotatedResult.lines[0] needs exactly 2 vertices; got 3"
    )
    error = refused(
        SHAPES,
        shapes("polygon"),
        {"annotatedResult": {"polygons": [{"label": "car", "vertices": [vertex] * 2}]}},
    )
    assert (
        error.message
        == "answerContent.annotatedResult.polygons[0] needs at least 3 vertices; got 2"
    )


def test_entities_must_lie_inside_the_text_with_known_labels() -> None:
    data = {"text": "Ada in London"}
    check_answer(
        ENTITIES,
        data,
        {
            "crowd-entity-annotation": {
                "entities": [{"startOffset": 7, "endOffset": 13, "label": "place"}]
            }
        },
    )
    error = refused(
        ENTITIES,
        data,
        {
            "crowd-entity-annotation": {
                "entities": [{"startOffset": 7, "endOffset": 20, "label": "place"}]
            }
        },
    )
    assert (
        error.message
        == "answerContent.crowd-entity-annotation.entities[0] ends at 20, past the text's 13 characters"
    )
    error = refused(
        ENTITIES,
        data,
        {
            "crowd-entity-annotation": {
                "entities": [{"startOffset": 3, "endOffset": 3, "label": "place"}]
            }
        },
    )
    assert "0 <= startOffset < endOffset" in error.message


def test_scripted_templates_may_add_fields_and_native_inputs_count() -> None:
    template = """<crowd-form><input type="hidden" name="extra"><input type="radio" name="pick" value="a">
    <input type="radio" name="pick" value="b"><input type="submit" name="go"><script>1</script></crowd-form>"""
    fields = template_fields(template)
    assert (fields.names, fields.scripted) == (["extra", "pick"], True)
    check_answer(template, {}, {"extra": "x", "pick": "b", "fromScript": {"any": 1}})
    assert (
        refused(template, {}, {"pick": "c"}).message
        == "answerContent.pick must be one of 'a', 'b'; got 'c'"
    )


def test_labels_a_running_script_may_set_are_checked_for_shape_only() -> None:
    template = fixture_text("three-points.liquid.html")
    photo = {"photo": "s3://depot/shelf-4.png"}
    point = {"label": "pole", "x": 1, "y": 2}
    answer = {"corners": {"keypoints": [point], "inputImageProperties": IMAGE}}
    error = refused(template, photo, answer)
    assert (
        "has label 'pole'; the task UI allows 'top', 'left', 'right'" in error.message
    )

    check_answer(template, photo, answer, scripts_run=True)
    bad = {"corners": {"keypoints": [{**point, "x": "left"}]}}
    with pytest.raises(ValidationError, match="needs numeric x and y"):
        check_answer(template, photo, bad, scripts_run=True)
    # A classifier's categories hold: no script can change them.
    scripted_classifier = SENTIMENT + "<script>window.x = 1;</script>"
    with pytest.raises(ValidationError, match="has label 'Angry'"):
        check_answer(
            scripted_classifier,
            SENTIMENT_INPUT,
            {"category": {"label": "Angry"}},
            scripts_run=True,
        )
    # A script that arrives in the input never runs, so it loosens nothing.
    injected = (
        template.replace(
            "</crowd-form>", "{{ task.input.html | skip_autoescape }}</crowd-form>"
        )
        .replace("<script>", "<!--")
        .replace("</script>", "-->")
    )
    with pytest.raises(ValidationError, match="has label 'pole'"):
        check_answer(
            injected, {**photo, "html": "<script>1</script>"}, answer, scripts_run=True
        )
    # Without scripts of its own a template's labels hold, scripts or not.
    with pytest.raises(ValidationError, match="has label 'tram'"):
        check_answer(
            SHAPES,
            shapes("keypoint"),
            {"annotatedResult": {"keypoints": [{**point, "label": "tram"}]}},
            scripts_run=True,
        )


def test_one_name_on_two_kinds_of_element_is_reported() -> None:
    fields = template_fields(
        '<crowd-input name="x"></crowd-input><crowd-slider name="x"></crowd-slider>'
    )
    assert fields.problems == ("name 'x' is used by both crowd-input and crowd-slider",)


REVIEW = (FIXTURES / "review-problems.liquid.html").read_text()
DEFECTS = (FIXTURES / "defects.liquid.html").read_text()
TOPICS = (FIXTURES / "topics.liquid.html").read_text()
FLAG = (FIXTURES / "flag.liquid.html").read_text()
REVIEW_INPUT = {"review": "ok", "problems": ["Late delivery", "Damaged item"]}


def multi_select(exclusion: str) -> str:
    return (
        '<crowd-form><crowd-classifier-multi-select name="x" categories="[\'a\']" '
        f"exclusion-category={exclusion}></crowd-classifier-multi-select></crowd-form>"
    )


@pytest.mark.parametrize(
    ("attribute", "text"),
    [
        ("\"{ text: 'None of these' }\"", "None of these"),
        ('\'{"text": "Nothing", "label": "none"}\'', "Nothing"),
        ("\"{ label: 'n/a' }\"", "n/a"),
        ("\"{ text: 'Not: a, b' , }\"", "Not: a, b"),
        ('"Skip it"', "Skip it"),
        ('"{ text: alert(1) }"', "None of the above"),
        ('"{ text: 1 2 }"', "None of the above"),
    ],
)
def test_exclusion_category_is_read_from_js_literals_and_json_without_eval(
    attribute: str, text: str
) -> None:
    field = template_fields(multi_select(attribute)).fields[0]
    assert (field.exclusion, field.required) == (text, True)


def test_exclusion_category_of_the_fixtures_and_only_on_multi_selects() -> None:
    assert template_fields(REVIEW, REVIEW_INPUT).fields[0].exclusion == (
        "No problem reported"
    )
    assert template_fields(DEFECTS).fields[0].exclusion == "Nothing visible"
    single = template_fields(
        '<crowd-classifier name="c" categories="[\'a\']" '
        "exclusion-category=\"{ text: 'None' }\"></crowd-classifier>"
    )
    assert single.fields[0].exclusion is None


def test_exclusion_answers_no_labels_and_categories_still_pass() -> None:
    check_answer(REVIEW, REVIEW_INPUT, {"problems": {"labels": []}})
    check_answer(REVIEW, REVIEW_INPUT, {"problems": {"labels": ["Damaged item"]}})
    check_answer(DEFECTS, {"taskObject": "s3://b/p.png"}, {"defects": {"labels": []}})


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            {"problems": {"labels": ["Broken"]}},
            "answerContent.problems has label 'Broken'; the task UI allows 'Late delivery', 'Damaged item'",
        ),
        (
            {"problems": {"labels": ["No problem reported"]}},
            "answerContent.problems has label 'No problem reported'; choosing it answers {\"labels\": []}",
        ),
        (
            {"problems": {"label": "Damaged item"}},
            "answerContent.problems must be {\"labels\": [\"<category>\", ...]}; got {'label': 'Damaged item'}",
        ),
        ({}, "answerContent.problems is required by the task UI and is missing"),
    ],
)
def test_exclusion_template_refuses_unknown_labels_and_other_shapes(
    answer: dict[str, Any], message: str
) -> None:
    assert refused(REVIEW, REVIEW_INPUT, answer).message == message


def test_required_multi_select_without_exclusion_still_needs_a_label() -> None:
    error = refused(TOPICS, {"ticket": "t"}, {"topics": {"labels": []}})
    assert error.message == "answerContent.topics needs at least one label"


FLAG_ANSWER: dict[str, Any] = {
    "colours": {"Red": True, "Yellow": False, "Green": True},
    "photo": {"on": False},
    "horizontal": {"horizontal": False},
    "vertical": {"vertical": False},
    "other": {"on": True},
    "flagged": {"on": True},
    "review": {"needsReview": False},
}


def test_switches_take_their_value_or_on_as_the_key() -> None:
    fields = template_fields(FLAG, {"country": "x"})
    keys = {f.name: f.switch_keys for f in fields.fields}
    assert keys == {
        "colours": ("Red", "Yellow", "Green"),
        "photo": ("on",),
        "horizontal": ("horizontal",),
        "vertical": ("vertical",),
        "other": ("on",),
        "flagged": ("on",),
        "review": ("needsReview",),
    }
    check_answer(FLAG, {"country": "x"}, FLAG_ANSWER)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"colours": {"Blue": True}},
            "answerContent.colours must map 'Red', 'Yellow', 'Green' to true or false; got {'Blue': True}",
        ),
        (
            {"flagged": {"flagged": True}},
            "answerContent.flagged must map 'on' to true or false; got {'flagged': True}",
        ),
        (
            {"review": True},
            'answerContent.review must be {"<value>": true|false}; got True',
        ),
    ],
)
def test_switch_answers_in_other_shapes_are_refused(
    change: dict[str, Any], message: str
) -> None:
    assert refused(FLAG, {"country": "x"}, {**FLAG_ANSWER, **change}).message == message


def test_text_fields_keep_the_length_limits_the_task_ui_sets() -> None:
    template = (
        '<crowd-form><crowd-input name="zip" min-length="5" max-length="5">'
        '</crowd-input><textarea name="note" maxlength="10"></textarea></crowd-form>'
    )
    check_answer(template, {}, {"zip": "10115", "note": "short"})
    check_answer(template, {}, {"zip": "", "note": ""})  # optional and left empty

    with pytest.raises(ValidationError, match=r"zip has 6 characters; .* allows 5"):
        check_answer(template, {}, {"zip": "101150"})
    with pytest.raises(ValidationError, match=r"zip has 3 characters; .* needs 5"):
        check_answer(template, {}, {"zip": "101"})
    with pytest.raises(ValidationError, match="note has 11 characters"):
        check_answer(template, {}, {"note": "x" * 11})
