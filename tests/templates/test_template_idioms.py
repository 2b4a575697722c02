"""Idioms of AWS's documented templates, in Chromium: a form-less entity annotation,
initial-value written as a JavaScript literal, and submit checks that read an
element's value."""

from __future__ import annotations

import re
from typing import Any

import pytest
from task_host import TaskHost
from test_crowd_elements import (
    click_at,
    fixture,
    messages,
    open_task,
    select_text,
    submitted,
)

from closedloop.templates import render_task_page

pytestmark = pytest.mark.timeout(120)

CLAUSE = {"clause": "Acme Ltd may end this agreement on 1 March 2027."}
ACME, MARCH = (0, 8), (35, 47)
PHOTO = {"photo": "s3://depot/shelf-4.png"}
FOUND = [
    {"label": "parcel", "left": 20, "top": 30, "width": 60, "height": 40},
    {"label": "label", "left": 200, "top": 100, "width": 80, "height": 50},
]
IMAGE = {"height": 200, "width": 400}


def _entities(*spans: tuple[int, int, str]) -> dict[str, Any]:
    return {
        "entities": [
            {"endOffset": end, "label": label, "startOffset": start}
            for start, end, label in spans
        ]
    }


def test_entity_annotation_without_a_form_submits_with_its_own_button(
    page: Any, task_host: TaskHost
) -> None:
    frame = open_task(
        page, task_host, fixture("clauses.liquid.html"), CLAUSE, scripts=True
    )
    moved = frame.locator("crowd-entity-annotation").evaluate(
        "e => e.shadowRoot.querySelector('crowd-form form #clauseKind') !== null"
    )
    assert moved  # the template's script found the form where AWS's docs put it
    page.keyboard.press("1")  # a label first, then the text it marks
    select_text(page, frame, *ACME)
    page.keyboard.press("2")
    select_text(page, frame, *MARCH)
    frame.get_by_text("Termination").click()
    frame.get_by_role("button", name="Submit").click()

    assert submitted(page) == {
        "clauses": _entities((*ACME, "party"), (*MARCH, "date")),
        "payment": {"payment": False},
        "termination": {"termination": True},
    }


def test_entity_annotation_without_a_form_answers_by_keyboard_with_scripts_off(
    page: Any, task_host: TaskHost
) -> None:
    frame = open_task(page, task_host, fixture("clauses.liquid.html"), CLAUSE)
    page.keyboard.press("2")
    select_text(page, frame, *MARCH)
    frame.get_by_text("Payment").click()
    page.keyboard.press("Enter")

    # The question stayed inside the element; its answer still comes with the entities.
    assert submitted(page) == {
        "clauses": _entities((*MARCH, "date")),
        "payment": {"payment": True},
        "termination": {"termination": False},
    }


def _boxes_task(page: Any, host: TaskHost) -> Any:
    return open_task(
        page, host, fixture("adjust-boxes.liquid.html"), {**PHOTO, "found": FOUND}
    )


def test_boxes_from_a_javascript_literal_are_shown_and_kept_unmodified(
    page: Any, task_host: TaskHost
) -> None:
    frame = _boxes_task(page, task_host)
    assert frame.locator(".cl-shape-list li").count() == 2
    assert frame.locator("rect.cl-shape").count() == 2
    page.keyboard.press("Enter")

    assert submitted(page) == {
        "parcels": {
            "boundingBoxes": FOUND,
            "inputImageProperties": IMAGE,
            "initialValueModified": False,
        }
    }


def test_removing_a_given_box_marks_the_answer_modified(
    page: Any, task_host: TaskHost
) -> None:
    frame = _boxes_task(page, task_host)
    frame.get_by_role("button", name="Remove label 80\u00d750 at (200, 100)").click()
    page.keyboard.press("Enter")

    assert submitted(page) == {
        "parcels": {
            "boundingBoxes": FOUND[:1],
            "inputImageProperties": IMAGE,
            "initialValueModified": True,
        }
    }


CORNERS = [(200, 20), (120, 180), (280, 180)]  # top, left, right


def _corners(page: Any, frame: Any, *which: int) -> None:
    for index in which:
        page.keyboard.press(str(index + 1))
        click_at(page, frame, ".cl-overlay", CORNERS[index])


def test_a_template_check_reading_the_keypoints_value_refuses_then_accepts(
    page: Any, task_host: TaskHost
) -> None:
    frame = open_task(
        page, task_host, fixture("three-points.liquid.html"), PHOTO, scripts=True
    )
    _corners(page, frame, 0)
    page.keyboard.press("Enter")
    assert frame.locator("#problem").inner_text() == "Mark each corner once: 1 marked."
    assert messages(page) == []

    _corners(page, frame, 1, 2)
    page.keyboard.press("Enter")
    assert submitted(page) == {
        "corners": {
            "inputImageProperties": IMAGE,
            "keypoints": [
                {"label": label, "x": x, "y": y}
                for label, (x, y) in zip(["top", "left", "right"], CORNERS, strict=True)
            ],
        }
    }


def test_a_template_check_that_throws_blocks_the_submit_and_says_so(
    browser_page: Any, task_host: TaskHost
) -> None:
    page = browser_page
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    frame = open_task(
        page,
        task_host,
        fixture("three-points.liquid.html"),
        {**PHOTO, "broken": True},
        scripts=True,
    )
    _corners(page, frame, 0, 1, 2)
    page.keyboard.press("Enter")

    alert = frame.locator(".cl-form-alert")
    assert "The task's own check failed" in alert.inner_text()
    assert messages(page) == []
    assert errors == ["Cannot read properties of undefined (reading 'length')"]


def test_initial_lines_written_with_comments_are_shown_and_answered(
    page: Any, task_host: TaskHost
) -> None:
    frame = open_task(page, task_host, fixture("lanes.liquid.html"), PHOTO)
    assert frame.locator(".cl-shape-list li").count() == 2
    page.keyboard.press("Enter")

    assert submitted(page) == {
        "lanes": {
            "inputImageProperties": IMAGE,
            "initialValueModified": False,
            "lines": [
                {
                    "label": "lane",
                    "vertices": [{"x": 10, "y": 190}, {"x": 120, "y": 20}],
                },
                {
                    "label": "stop line",
                    "vertices": [{"x": 100, "y": 150}, {"x": 300, "y": 150}],
                },
            ],
        }
    }


def test_labels_a_template_script_sets_replace_the_attribute_ones(
    page: Any, task_host: TaskHost
) -> None:
    kinds = {**PHOTO, "kinds": ["lamp post", "bin"]}
    frame = open_task(
        page, task_host, fixture("street-furniture.liquid.html"), kinds, scripts=True
    )
    picker = frame.locator(".cl-label-picker [role=radio]")
    assert picker.all_inner_texts() == ["1\nlamp post", "2\nbin", "3\nbench"]
    page.keyboard.press("3")
    click_at(page, frame, ".cl-overlay", (50, 60))
    page.keyboard.press("Enter")

    assert submitted(page) == {
        "furniture": {
            "inputImageProperties": IMAGE,
            "keypoints": [{"label": "bench", "x": 50, "y": 60}],
        }
    }


def test_a_classifier_starts_on_its_initial_value_and_an_empty_input_is_left_out(
    page: Any, task_host: TaskHost
) -> None:
    review = {"review": "Cold food, slow service.", "guess": "negative"}
    frame = open_task(page, task_host, fixture("second-opinion.liquid.html"), review)
    chosen = frame.get_by_role("radio", name="negative")
    assert chosen.get_attribute("aria-checked") == "true"
    alert = frame.locator("crowd-alert")
    frame.get_by_role("button", name="Dismiss").click()
    assert alert.is_hidden()
    page.keyboard.press("Enter")

    assert submitted(page) == {"sentiment": {"label": "negative"}}


def test_entity_labels_without_a_full_name_show_the_label_itself(
    page: Any, task_host: TaskHost
) -> None:
    template = (
        '<crowd-entity-annotation name="tags" text="{{ task.input.text }}" '
        "labels=\"[{'label': 'noun', 'shortDisplayName': 'N'}, "
        "{'label': 'verb', 'shortDisplayName': 'V', 'fullDisplayName': 'Verb'}]\">"
        "</crowd-entity-annotation>"
    )
    frame = open_task(page, task_host, template, {"text": "Dogs bark."})
    picker = frame.locator(".cl-label-picker [role=radio]")
    assert picker.all_inner_texts() == ["1\nnoun", "2\nVerb"]


@pytest.mark.parametrize("scripts", [True, False])
def test_handler_attributes_written_in_the_template_run_only_with_its_scripts(
    page: Any, task_host: TaskHost, scripts: bool
) -> None:
    template = fixture("play-clip.liquid.html")
    frame = open_task(page, task_host, template, {"word": "hello"}, scripts=scripts)
    status = frame.locator("#status")
    frame.get_by_role("button", name="Say the word").click()
    assert status.inner_text() == "not played"  # its handler is built from the input
    frame.get_by_role("button", name="Play the clip").click()

    assert status.inner_text() == ("played" if scripts else "not played")


def test_input_markup_can_neither_carry_nor_borrow_a_template_handler(
    page: Any, task_host: TaskHost
) -> None:
    template = fixture("play-clip.liquid.html").replace(
        "</crowd-form>",
        "<div>{{ task.input.html | skip_autoescape }}</div></crowd-form>",
    )
    borrowed = (
        '<img src="/img/x.png" onload="markPlayed()">'
        '<button type="button" id="own" onclick="markPlayed()">Own</button>'
    )
    frame = open_task(
        page, task_host, template, {"word": "hi", "html": borrowed}, scripts=True
    )
    frame.get_by_role("button", name="Own").click()
    assert frame.locator("#status").inner_text() == "not played"
    frame.get_by_role("button", name="Play the clip").click()
    assert frame.locator("#status").inner_text() == "played"


def test_handler_attributes_become_nonce_scripts_only_when_scripts_are_allowed() -> (
    None
):
    template = fixture("play-clip.liquid.html")
    on = render_task_page(
        template, {"word": "x"}, nonce="n0nce-n0nce", template_scripts=True
    )
    off = render_task_page(template, {"word": "x"}, nonce="n0nce-n0nce")

    assert 'onclick="markPlayed()"' not in on
    assert re.search(r'<crowd-button data-cl-on-click="[0-9a-f]{16}">', on)
    assert "with (this) {\nmarkPlayed()\n} }]);</script>" in on
    assert '<script nonce="n0nce-n0nce">var __closedloopHandlers = [];</script>' in on
    # The handler built from the input stays an attribute, which the policy refuses.
    assert "onclick=\"document.getElementById('status').textContent = 'x'\"" in on
    assert 'onclick="markPlayed()"' in off and 'data-cl-on-click="' not in off


def test_a_required_native_radio_inside_a_form_less_annotation_can_be_answered(
    page: Any, task_host: TaskHost
) -> None:
    template = (
        "<crowd-entity-annotation name=\"tags\" labels=\"['noun', 'verb']\" "
        'text="{{ task.input.text }}"><p>English? '
        '<label><input type="radio" name="english" value="yes" required> yes</label>'
        '<label><input type="radio" name="english" value="no" required> no</label>'
        "</p></crowd-entity-annotation>"
    )
    frame = open_task(page, task_host, template, {"text": "Dogs bark."})
    frame.get_by_label("yes").check()
    frame.get_by_role("button", name="Submit").click()

    assert submitted(page) == {"tags": {"entities": []}, "english": "yes"}


def test_a_value_a_template_script_sets_early_shows_and_reads_back_live(
    page: Any, task_host: TaskHost
) -> None:
    template = (
        "<crowd-form><crowd-input name='city' label='City'></crowd-input></crowd-form>"
        "<script>document.querySelector('crowd-input').value = 'Lisbon';</script>"
    )
    frame = open_task(page, task_host, template, {}, scripts=True)
    field = frame.get_by_label("City")
    assert field.input_value() == "Lisbon"
    field.fill("Porto")
    assert frame.locator("crowd-input").evaluate("e => e.value") == "Porto"


@pytest.mark.parametrize("scripts", [True, False])
def test_input_naming_an_element_after_the_handler_list_breaks_nothing(
    page: Any, task_host: TaskHost, scripts: bool
) -> None:
    template = fixture("play-clip.liquid.html").replace(
        "</crowd-form>",
        "<div>{{ task.input.html | skip_autoescape }}</div></crowd-form>",
    )
    clobber = {"word": "x", "html": "<b id='__closedloopHandlers'>bold</b>"}
    frame = open_task(page, task_host, template, clobber, scripts=scripts)
    frame.get_by_role("button", name="Play the clip").click()
    assert frame.locator("#status").inner_text() == (
        "played" if scripts else "not played"
    )
    frame.get_by_label("What is said in the clip?").fill("hello")
    page.keyboard.press("Enter")
    assert submitted(page) == {"transcript": "hello"}


def test_handlers_in_any_attribute_spelling_run_with_an_attribute_scope(
    page: Any, task_host: TaskHost
) -> None:
    template = """<crowd-form>
      <p id="log">start</p>
      <input name="city" onchange="log.textContent = 'city ' + value">
      <button type="button" ONCLICK="log.textContent = 'upper'">Upper</button>
      <button type="button" onclick=bare()>Bare</button>
      <button type="button" title="say onclick='nope()' here" id="quoted">Quoted</button>
      <textarea name="notes"><b onclick="nope()">kept as text</b></textarea>
    </crowd-form>
    <script>function bare() { log.textContent = "bare"; }</script>"""
    frame = open_task(page, task_host, template, {}, scripts=True)
    log = frame.locator("#log")
    frame.locator("input[name=city]").fill("Oslo")
    frame.locator("input[name=city]").press("Tab")
    assert log.inner_text() == "city Oslo"
    frame.get_by_role("button", name="Upper").click()
    assert log.inner_text() == "upper"
    frame.get_by_role("button", name="Bare").click()
    assert log.inner_text() == "bare"
    assert (
        frame.locator("#quoted").get_attribute("title") == "say onclick='nope()' here"
    )
    assert frame.locator("textarea").input_value() == (
        '<b onclick="nope()">kept as text</b>'
    )


def test_input_naming_elements_after_document_methods_breaks_nothing(
    page: Any, task_host: TaskHost
) -> None:
    template = (
        "<crowd-form><crowd-input name='city' label='City'></crowd-input>"
        "{{ task.input.html | skip_autoescape }}</crowd-form>"
    )
    names = ["querySelector", "querySelectorAll", "createElement", "addEventListener"]
    clobber = "".join(f"<img name='{n}' src='/img/{n}.png' alt=''>" for n in names)
    frame = open_task(page, task_host, template, {"html": clobber})
    frame.get_by_label("City").fill("Oslo")
    page.keyboard.press("Enter")

    assert submitted(page) == {"city": "Oslo"}
