"""The crowd HTML elements in Chromium: mouse and keyboard in, A2I's answerContent out."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from task_host import TaskHost

from closedloop.templates import builtin_template

FIXTURES = Path(__file__).parent / "fixtures"
pytestmark = pytest.mark.timeout(120)


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def open_task(
    page: Any, host: TaskHost, template: str, task_input: dict[str, Any], **kw: Any
) -> Any:
    """Load a task in the host page's sandboxed iframe; returns the frame."""
    page.goto(host.add(template, task_input, **kw))
    frame = page.frame(url=re.compile(r"/task/"))
    frame.wait_for_selector("html[data-crowd-ready]", state="attached")
    frame.wait_for_function(
        "Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
    )
    return frame


def messages(page: Any) -> list[dict[str, Any]]:
    return list(page.evaluate("window.messages"))


def submitted(page: Any) -> dict[str, Any]:
    """The answerContent of the first submit message the host received."""
    page.wait_for_function("window.messages.length > 0")
    message = messages(page)[0]
    assert message["type"] == "closedloop:submit"
    return dict(message["answerContent"])


def drag(
    page: Any, frame: Any, selector: str, start: tuple[int, int], end: tuple[int, int]
) -> None:
    box = frame.locator(selector).bounding_box()
    page.mouse.move(box["x"] + start[0], box["y"] + start[1])
    page.mouse.down()
    page.mouse.move(
        box["x"] + (start[0] + end[0]) / 2, box["y"] + (start[1] + end[1]) / 2
    )
    page.mouse.move(box["x"] + end[0], box["y"] + end[1])
    page.mouse.up()


def click_at(page: Any, frame: Any, selector: str, *points: tuple[int, int]) -> None:
    box = frame.locator(selector).bounding_box()
    for x, y in points:
        page.mouse.click(box["x"] + x, box["y"] + y)


SENTIMENT_INPUT = {
    "taskObject": "Arrived broken, but support was kind.",
    "labels": ["Positive", "Negative", "Mixed"],
}


def test_classifier_takes_a_click_then_a_number_key_and_enter(
    page: Any, task_host: TaskHost
) -> None:
    frame = open_task(
        page, task_host, fixture("sentiment.liquid.html"), SENTIMENT_INPUT
    )
    frame.get_by_role("radio", name="Negative").click()
    page.keyboard.press("3")
    page.keyboard.press("Enter")

    assert submitted(page) == {"category": {"label": "Mixed"}}


def test_host_focus_message_lets_the_keyboard_work_without_a_click(
    page: Any, task_host: TaskHost
) -> None:
    open_task(page, task_host, fixture("sentiment.liquid.html"), SENTIMENT_INPUT)
    page.keyboard.press("2")
    page.keyboard.press("Enter")

    assert submitted(page) == {"category": {"label": "Negative"}}


def test_submit_without_a_label_shows_a_message_and_posts_nothing(
    page: Any, task_host: TaskHost
) -> None:
    frame = open_task(
        page, task_host, fixture("sentiment.liquid.html"), SENTIMENT_INPUT
    )
    frame.get_by_role("button", name="Submit").click()

    alert = frame.locator(".cl-form-alert")
    assert alert.is_visible()
    assert (
        "Choose a label for What is the sentiment of this review?" in alert.inner_text()
    )
    assert messages(page) == []
    frame.get_by_role("radio", name="Positive").click()
    frame.get_by_role("button", name="Submit").click()
    assert submitted(page) == {"category": {"label": "Positive"}}


def test_s_key_posts_skip(page: Any, task_host: TaskHost) -> None:
    open_task(page, task_host, fixture("sentiment.liquid.html"), SENTIMENT_INPUT)
    page.keyboard.press("s")

    page.wait_for_function("window.messages.length > 0")
    assert messages(page) == [{"type": "closedloop:skip"}]


def test_multi_select_toggles_labels_by_key_and_click(
    page: Any, task_host: TaskHost
) -> None:
    frame = open_task(
        page,
        task_host,
        fixture("topics.liquid.html"),
        {"ticket": "Late and broken"},
    )
    page.keyboard.press("Enter")
    assert "Choose a label" in frame.locator(".cl-form-alert").inner_text()

    page.keyboard.press("1")
    frame.get_by_role("checkbox", name="Shipping").click()
    frame.get_by_role("checkbox", name="Quality").click()
    frame.get_by_role("checkbox", name="Shipping").click()
    page.keyboard.press("Enter")

    assert submitted(page) == {"topics": {"labels": ["Billing", "Quality"]}}


def test_image_classifiers_show_the_signed_image_and_answer_separately(
    page: Any, task_host: TaskHost
) -> None:
    task_input = {"taskObject": "s3://photos/street.png", "animals": ["cat", "dog"]}
    frame = open_task(page, task_host, fixture("images.liquid.html"), task_input)
    sources = frame.eval_on_selector_all(
        ".cl-target-image", "els => els.map(e => e.getAttribute('src'))"
    )
    assert sources == ["/img/street.png", "/img/street.png"]

    frame.get_by_role("radio", name="dog").click()
    frame.get_by_role("checkbox", name="Fog").click()
    page.keyboard.press("4")
    page.keyboard.press("Enter")

    assert submitted(page) == {
        "animal": {"label": "dog"},
        "conditions": {"labels": ["Fog", "Night"]},
    }


SURVEY_INPUT = {"currency": "EUR", "invoiceId": "INV-7", "vendor": "Acme"}


def test_form_fields_answer_in_a2i_shapes(page: Any, task_host: TaskHost) -> None:
    frame = open_task(page, task_host, fixture("survey.liquid.html"), SURVEY_INPUT)
    assert frame.locator("crowd-card").inner_text().startswith("Invoice INV-7")
    frame.get_by_role("button", name="How to review").click()
    assert frame.get_by_text("Compare each value with the document.").is_visible()

    frame.get_by_label("Vendor name").fill("Acme Ltd")
    frame.get_by_label("Notes").click()
    page.keyboard.type("stamp smudged")
    page.keyboard.press("Enter")
    page.keyboard.type("see scan")
    frame.get_by_text("The document is legible").click()
    frame.get_by_text("The total is correct").click()
    frame.get_by_text("The total is wrong").click()
    frame.get_by_role("button", name="Urgent").click()
    frame.get_by_role("slider").focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert messages(page) == []
    frame.get_by_role("button", name="Send review").click()

    assert submitted(page) == {
        "vendorName": "Acme Ltd",
        "notes": "stamp smudged\nsee scan",
        "legible": {"on": True},
        "stamp": {"present": False},
        "correct": {"correct": False},
        "wrong": {"on": True},
        "urgent": {"urgent": True},
        "confidence": 7,
    }


def test_required_input_and_radio_group_block_submit(
    page: Any, task_host: TaskHost
) -> None:
    frame = open_task(page, task_host, fixture("survey.liquid.html"), SURVEY_INPUT)
    frame.get_by_label("Vendor name").fill("")
    frame.get_by_role("button", name="Send review").click()

    text = frame.locator(".cl-form-alert").inner_text()
    assert "Vendor name is required" in text
    assert "must be chosen" in text
    assert messages(page) == []


SHAPES = {"taskObject": "s3://cams/frame-1.png", "labels": ["car", "bus"]}


def shapes_task(page: Any, host: TaskHost, tool: str) -> Any:
    return open_task(
        page, host, fixture("shapes.liquid.html"), {**SHAPES, "tool": tool}
    )


def test_bounding_box_drawn_by_dragging(page: Any, task_host: TaskHost) -> None:
    frame = shapes_task(page, task_host, "bounding-box")
    drag(page, frame, ".cl-overlay", (50, 40), (150, 120))
    page.keyboard.press("2")
    drag(page, frame, ".cl-overlay", (390, 190), (300, 150))
    page.keyboard.press("Enter")

    assert submitted(page) == {
        "annotatedResult": {
            "boundingBoxes": [
                {"label": "car", "left": 50, "top": 40, "width": 100, "height": 80},
                {"label": "bus", "left": 300, "top": 150, "width": 90, "height": 40},
            ],
            "inputImageProperties": {"height": 200, "width": 400},
        }
    }


def test_keypoints_placed_by_clicking(page: Any, task_host: TaskHost) -> None:
    frame = shapes_task(page, task_host, "keypoint")
    click_at(page, frame, ".cl-overlay", (10, 20))
    frame.get_by_role("radio", name="bus").click()
    click_at(page, frame, ".cl-overlay", (300, 150))
    page.keyboard.press("Enter")

    assert submitted(page) == {
        "annotatedResult": {
            "inputImageProperties": {"height": 200, "width": 400},
            "keypoints": [
                {"label": "car", "x": 10, "y": 20},
                {"label": "bus", "x": 300, "y": 150},
            ],
        }
    }


def test_polygons_closed_by_enter_or_by_the_first_vertex(
    page: Any, task_host: TaskHost
) -> None:
    frame = shapes_task(page, task_host, "polygon")
    click_at(page, frame, ".cl-overlay", (10, 10), (100, 10), (100, 100))
    page.keyboard.press("Enter")
    assert messages(page) == []
    page.keyboard.press("2")
    click_at(page, frame, ".cl-overlay", (200, 20), (300, 20), (250, 90), (201, 21))
    page.keyboard.press("Enter")

    assert submitted(page)["annotatedResult"] == {
        "inputImageProperties": {"height": 200, "width": 400},
        "polygons": [
            {
                "label": "car",
                "vertices": [
                    {"x": 10, "y": 10},
                    {"x": 100, "y": 10},
                    {"x": 100, "y": 100},
                ],
            },
            {
                "label": "bus",
                "vertices": [
                    {"x": 200, "y": 20},
                    {"x": 300, "y": 20},
                    {"x": 250, "y": 90},
                ],
            },
        ],
    }


def test_lines_end_after_two_clicks(page: Any, task_host: TaskHost) -> None:
    frame = shapes_task(page, task_host, "line")
    click_at(page, frame, ".cl-overlay", (20, 30), (220, 130), (50, 150), (60, 190))
    page.keyboard.press("Enter")

    assert submitted(page)["annotatedResult"] == {
        "inputImageProperties": {"height": 200, "width": 400},
        "lines": [
            {"label": "car", "vertices": [{"x": 20, "y": 30}, {"x": 220, "y": 130}]},
            {"label": "car", "vertices": [{"x": 50, "y": 150}, {"x": 60, "y": 190}]},
        ],
    }


def test_polyline_finished_with_the_button_and_undo_removes_one(
    page: Any, task_host: TaskHost
) -> None:
    frame = shapes_task(page, task_host, "polyline")
    click_at(page, frame, ".cl-overlay", (10, 10), (50, 60), (90, 20))
    frame.get_by_role("button", name="Finish shape").click()
    click_at(page, frame, ".cl-overlay", (300, 100), (350, 150))
    frame.get_by_role("button", name="Finish shape").click()
    frame.get_by_role("button", name="Undo").click()
    page.keyboard.press("Enter")

    assert submitted(page)["annotatedResult"] == {
        "inputImageProperties": {"height": 200, "width": 400},
        "polylines": [
            {
                "label": "car",
                "vertices": [
                    {"x": 10, "y": 10},
                    {"x": 50, "y": 60},
                    {"x": 90, "y": 20},
                ],
            },
        ],
    }


def select_text(page: Any, frame: Any, start: int, end: int) -> None:
    """Drag the mouse across characters start..end of the entity text."""
    rect = frame.locator(".cl-entity-text").evaluate(
        """(view, [start, end]) => {
            const range = document.createRange();
            let node = view.firstChild, at = 0, first = null, last = null;
            for (; node; node = node.nextSibling) {
                const text = node.textContent.length;
                const leaf = node.nodeType === 3 ? node : node.firstChild;
                if (!first && start < at + text) first = [leaf, start - at];
                if (!last && end <= at + text) last = [leaf, end - at];
                at += text;
            }
            range.setStart(...first); range.setEnd(...last);
            const r = range.getBoundingClientRect();
            return {left: r.left, right: r.right, mid: (r.top + r.bottom) / 2};
        }""",
        [start, end],
    )
    frame_box = page.locator("#task").bounding_box()
    page.mouse.move(frame_box["x"] + rect["left"] + 1, frame_box["y"] + rect["mid"])
    page.mouse.down()
    page.mouse.move(
        frame_box["x"] + rect["right"] - 1, frame_box["y"] + rect["mid"], steps=4
    )
    page.mouse.up()


def test_entities_marked_by_selecting_text(page: Any, task_host: TaskHost) -> None:
    text = "Ada Lovelace was born in London."
    frame = open_task(page, task_host, fixture("entities.liquid.html"), {"text": text})
    select_text(page, frame, 25, 31)
    frame.get_by_role("radio", name="Place").click()
    page.keyboard.press("1")
    select_text(page, frame, 0, 12)
    page.keyboard.press("2")
    select_text(page, frame, 25, 31)
    assert frame.locator("mark.cl-entity").all_inner_texts() == [
        "Ada Lovelace",
        "London",
    ]
    page.keyboard.press("Enter")

    assert submitted(page) == {
        "crowd-entity-annotation": {
            "entities": [
                {"endOffset": 12, "label": "person", "startOffset": 0},
                {"endOffset": 31, "label": "place", "startOffset": 25},
            ]
        }
    }


def test_confirm_or_correct_builtin_confirms_the_prediction_with_enter(
    page: Any, task_host: TaskHost
) -> None:
    template = builtin_template("confirm-or-correct", ["cat", "dog", "bird"])
    prediction = {
        "label": "dog",
        "confidence": 0.62,
        "probabilities": {"dog": 0.62, "cat": 0.38},
    }
    frame = open_task(
        page,
        task_host,
        template,
        {"text": "It barks.", "prediction": prediction},
    )
    assert "The model says dog with confidence 62.0%" in " ".join(
        frame.locator("crowd-card").inner_text().split()
    )
    assert (
        frame.get_by_role("radio", name="dog").get_attribute("aria-checked") == "true"
    )
    page.keyboard.press("Enter")

    assert submitted(page) == {"category": {"label": "dog"}}


def test_free_text_builtin_requires_and_returns_the_text(
    page: Any, task_host: TaskHost
) -> None:
    frame = open_task(
        page,
        task_host,
        builtin_template("free-text", []),
        {"text": "Transcribe me"},
    )
    page.keyboard.press("Control+Enter")
    assert "Your answer is required" in frame.locator(".cl-form-alert").inner_text()
    frame.get_by_label("Your answer").fill("transcribed")
    page.keyboard.press("Control+Enter")

    assert submitted(page) == {"text": "transcribed"}


def test_aws_style_template_with_form_level_instructions_and_inputs(
    page: Any, task_host: TaskHost
) -> None:
    template = fixture("keywords.liquid.html")
    frame = open_task(page, task_host, template, {"taskObject": "s3://b/p.png"})
    assert frame.get_by_text("Give up to two keywords for the photo.").is_visible()
    rules = frame.get_by_text("Use nouns in the singular; no brand names.")
    assert not rules.is_visible()
    frame.get_by_role("button", name="View full instructions").click()
    assert rules.is_visible()

    frame.get_by_label("Second keyword").fill("dog")
    frame.get_by_label("Second keyword").press("Enter")
    assert "First keyword is required" in frame.locator(".cl-form-alert").inner_text()
    frame.get_by_label("First keyword").fill("park")
    frame.get_by_label("First keyword").press("Enter")

    assert submitted(page) == {"word1": "park", "word2": "dog"}
