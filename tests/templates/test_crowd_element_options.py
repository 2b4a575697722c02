"""Crowd element options in Chromium: exclusion choices, validated inputs, switches."""

from __future__ import annotations

from typing import Any

import pytest
from task_host import TaskHost
from test_crowd_elements import fixture, messages, open_task, submitted

pytestmark = pytest.mark.timeout(120)

REVIEW = {
    "review": "The box came a week late, but the kettle works.",
    "problems": ["Late delivery", "Damaged item", "Wrong item"],
}
NONE_REPORTED = "No problem reported"


def review_task(page: Any, host: TaskHost) -> Any:
    return open_task(page, host, fixture("review-problems.liquid.html"), REVIEW)


def test_exclusion_choice_clears_and_disables_the_categories(
    page: Any, task_host: TaskHost
) -> None:
    frame = review_task(page, task_host)
    frame.get_by_role("checkbox", name="Late delivery").click()
    frame.get_by_role("checkbox", name="Wrong item").click()
    frame.get_by_role("checkbox", name=NONE_REPORTED).click()

    for problem in REVIEW["problems"]:
        category = frame.get_by_role("checkbox", name=problem)
        assert category.get_attribute("aria-checked") == "false"
        assert category.is_disabled()
    page.keyboard.press("Enter")

    assert submitted(page) == {"problems": {"labels": []}}


def test_choosing_the_exclusion_again_gives_the_categories_back(
    page: Any, task_host: TaskHost
) -> None:
    frame = review_task(page, task_host)
    exclusion = frame.get_by_role("checkbox", name=NONE_REPORTED)
    exclusion.click()
    exclusion.click()

    assert exclusion.get_attribute("aria-checked") == "false"
    assert frame.get_by_role("checkbox", name="Damaged item").is_enabled()
    frame.get_by_role("checkbox", name="Damaged item").click()
    page.keyboard.press("Enter")

    assert submitted(page) == {"problems": {"labels": ["Damaged item"]}}


def test_neither_a_category_nor_the_exclusion_blocks_submit(
    page: Any, task_host: TaskHost
) -> None:
    frame = review_task(page, task_host)
    page.keyboard.press("Enter")

    assert (
        "Choose a label or \u201cNo problem reported\u201d for Which problems does "
        "the customer report?" in frame.locator(".cl-form-alert").inner_text()
    )
    assert messages(page) == []


def test_the_number_after_the_last_category_picks_the_exclusion(
    page: Any, task_host: TaskHost
) -> None:
    frame = review_task(page, task_host)
    exclusion = frame.get_by_role("checkbox", name=NONE_REPORTED)
    assert exclusion.locator("kbd").inner_text() == "4"

    page.keyboard.press("1")
    page.keyboard.press("4")
    assert exclusion.get_attribute("aria-checked") == "true"
    page.keyboard.press("2")
    late = frame.get_by_role("checkbox", name="Late delivery")
    assert late.get_attribute("aria-checked") == "false"
    page.keyboard.press("4")
    page.keyboard.press("2")
    page.keyboard.press("3")
    page.keyboard.press("Enter")

    assert submitted(page) == {"problems": {"labels": ["Damaged item", "Wrong item"]}}


def test_image_multi_select_reads_a_json_exclusion_category(
    page: Any, task_host: TaskHost
) -> None:
    task_input = {"taskObject": "s3://parts/p-17.png", "partId": "P-17"}
    frame = open_task(page, task_host, fixture("defects.liquid.html"), task_input)
    frame.get_by_role("checkbox", name="Rust").click()
    frame.get_by_role("checkbox", name="Nothing visible").click()

    assert frame.get_by_role("checkbox", name="Rust").is_disabled()
    page.keyboard.press("Enter")

    assert submitted(page) == {"defects": {"labels": []}}


LETTER = {"letterId": "L-204", "reference": "AB-1234"}


def letter_task(page: Any, host: TaskHost, reference: str = "AB-1234") -> Any:
    task_input = {**LETTER, "reference": reference}
    return open_task(page, host, fixture("letter.liquid.html"), task_input)


def test_allowed_pattern_drops_characters_that_do_not_match_as_typed(
    page: Any, task_host: TaskHost
) -> None:
    frame = letter_task(page, task_host)
    frame.get_by_label("Postcode").click()
    page.keyboard.type("75 0a1-2x")
    assert frame.get_by_label("Postcode").input_value() == "75012"
    frame.get_by_label("Reference").fill("ab-99/C")
    assert frame.get_by_label("Reference").input_value() == "-99C"
    frame.get_by_label("Reference").fill("XY-99")
    page.keyboard.press("Enter")

    # The phone number nobody filled in is left out, as A2I's docs say.
    assert submitted(page) == {"postcode": "75012", "reference": "XY-99"}


def test_error_message_shows_while_the_value_is_invalid(
    page: Any, task_host: TaskHost
) -> None:
    frame = letter_task(page, task_host)
    error = frame.get_by_text("Enter the five digits of the postcode")
    assert not error.is_visible()

    frame.get_by_label("Postcode").click()
    page.keyboard.type("750")
    assert error.is_visible()
    page.keyboard.type("12")
    assert not error.is_visible()
    page.keyboard.press("Backspace")
    page.keyboard.press("Backspace")
    page.keyboard.press("Backspace")
    page.keyboard.press("Backspace")
    page.keyboard.press("Backspace")
    assert error.is_visible()


def test_invalid_values_block_submit_and_show_their_error_messages(
    page: Any, task_host: TaskHost
) -> None:
    frame = letter_task(page, task_host, reference="ab-12")
    frame.get_by_label("Postcode").fill("75012")
    frame.get_by_label("Phone").fill("123")
    page.keyboard.press("Enter")

    alert = frame.locator(".cl-form-alert").inner_text()
    assert "Reference is not in the expected format" in alert
    assert "Phone needs at least 6 characters" in alert
    assert frame.get_by_text("Use capital letters, digits and dashes only").is_visible()
    assert frame.get_by_text("A phone number has at least six digits").is_visible()
    assert messages(page) == []

    frame.get_by_label("Phone").fill("0123456")
    assert not frame.get_by_text("A phone number has at least six digits").is_visible()
    frame.get_by_label("Reference").fill("AB-12")
    page.keyboard.press("Enter")
    assert submitted(page) == {
        "postcode": "75012",
        "reference": "AB-12",
        "phone": "0123456",
    }


def test_required_input_with_auto_validate_names_the_field_when_empty(
    page: Any, task_host: TaskHost
) -> None:
    frame = letter_task(page, task_host)
    page.keyboard.press("Enter")

    assert "Postcode is required" in frame.locator(".cl-form-alert").inner_text()
    assert frame.get_by_text("Enter the five digits of the postcode").is_visible()
    assert messages(page) == []


def test_checkboxes_radio_buttons_and_toggles_answer_in_documented_shapes(
    page: Any, task_host: TaskHost
) -> None:
    frame = open_task(
        page, task_host, fixture("flag.liquid.html"), {"country": "Lithuania"}
    )
    frame.get_by_text("Red", exact=True).click()
    frame.get_by_text("Green", exact=True).click()
    frame.get_by_text("Vertical stripes").click()
    frame.get_by_text("Neither").click()
    frame.get_by_role("button", name="flagged").click()
    page.keyboard.press("Enter")

    assert submitted(page) == {
        "colours": {"Red": True, "Yellow": False, "Green": True},
        "photo": {"on": False},
        "horizontal": {"horizontal": False},
        "vertical": {"vertical": False},
        "other": {"on": True},
        "flagged": {"on": True},
        "review": {"needsReview": False},
    }
