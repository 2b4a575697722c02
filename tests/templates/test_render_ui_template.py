"""SageMaker's RenderUiTemplate, called as the adapter calls it."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from closedloop.api.render import render_ui_template
from closedloop.engine import Engine
from closedloop.errors import NotFoundError, ValidationError

ROLE = "arn:aws:iam::000000000000:role/reviewers"
TEMPLATE = (
    '<crowd-form><crowd-classifier name="c" categories="{{ task.input.l | to_json }}"'
    ' header="{{ task.input.h }}"></crowd-classifier></crowd-form>'
)


def request(**extra: Any) -> dict[str, Any]:
    return {
        "Task": {"Input": orjson.dumps({"l": ["a"], "h": "<Q>"}).decode()},
        "RoleArn": ROLE,
        **extra,
    }


def test_inline_template_is_rendered_without_errors(engine: Engine) -> None:
    result = render_ui_template(engine, request(UiTemplate={"Content": TEMPLATE}))
    assert result == {
        "RenderedContent": (
            '<crowd-form><crowd-classifier name="c" categories="[&#34;a&#34;]"'
            ' header="&lt;Q&gt;"></crowd-classifier></crowd-form>'
        ),
        "Errors": [],
    }


def test_stored_task_ui_is_rendered_by_arn(engine: Engine) -> None:
    arn = engine.task_uis.create("classify", TEMPLATE).arn
    result = render_ui_template(engine, request(HumanTaskUiArn=arn))
    assert result["Errors"] == [] and 'header="&lt;Q&gt;"' in result["RenderedContent"]
    with pytest.raises(NotFoundError):
        render_ui_template(
            engine, request(HumanTaskUiArn=arn.replace("classify", "missing"))
        )


def test_template_errors_come_back_in_errors(engine: Engine) -> None:
    result = render_ui_template(
        engine, request(UiTemplate={"Content": "{{ task.input.l | nope }}"})
    )
    assert result == {
        "RenderedContent": "",
        "Errors": [
            {
                "Code": "TemplateError",
                "Message": "task UI template line 1, column 19: unknown filter 'nope'",
            }
        ],
    }


def test_task_input_that_is_not_a_json_object_is_an_error(engine: Engine) -> None:
    params = {**request(UiTemplate={"Content": TEMPLATE}), "Task": {"Input": "[1, 2]"}}
    result = render_ui_template(engine, params)
    assert result["Errors"] == [
        {
            "Code": "InvalidTaskInput",
            "Message": "Task.Input must be a JSON object; got list",
        }
    ]


def test_request_needs_exactly_one_template_source(engine: Engine) -> None:
    with pytest.raises(
        ValidationError, match=r"exactly one of UiTemplate\.Content and HumanTaskUiArn"
    ):
        render_ui_template(engine, request())
    with pytest.raises(ValidationError):
        render_ui_template(engine, {"Task": {"Input": "{}"}})
