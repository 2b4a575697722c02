"""SageMaker's RenderUiTemplate: preview a task UI template with one task input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from closedloop.engine import Engine
from closedloop.errors import ValidationError
from closedloop.spec import validate_request
from closedloop.templates.fields import template_fields
from closedloop.templates.render import render_task_ui

__all__ = ["render_ui_template"]


def render_ui_template(
    engine: Engine,
    params: dict[str, Any],
    *,
    object_url: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """Render ``UiTemplate.Content`` or the task UI ``HumanTaskUiArn`` names.

    Problems with the template or the input come back in ``Errors``, as in
    SageMaker; a malformed request raises ValidationError.
    """
    validate_request("sagemaker", "RenderUiTemplate", params)
    template = _template(engine, params)
    try:
        task_input = orjson.loads(params["Task"]["Input"])
    except orjson.JSONDecodeError as exc:
        return _errors("InvalidTaskInput", f"Task.Input must be a JSON object: {exc}")
    if not isinstance(task_input, dict):
        kind = type(task_input).__name__
        return _errors(
            "InvalidTaskInput", f"Task.Input must be a JSON object; got {kind}"
        )
    try:
        rendered = render_task_ui(template, task_input, object_url=object_url)
    except ValidationError as exc:
        return _errors("TemplateError", exc.message)
    problems = template_fields(rendered).problems
    errors = [{"Code": "TemplateError", "Message": p} for p in problems]
    return {"RenderedContent": rendered, "Errors": errors}


def _template(engine: Engine, params: dict[str, Any]) -> str:
    content = params.get("UiTemplate", {}).get("Content")
    arn = params.get("HumanTaskUiArn")
    if (content is None) == (arn is None):
        raise ValidationError(
            "exactly one of UiTemplate.Content and HumanTaskUiArn must be given",
            "UiTemplate",
        )
    if content is not None:
        return str(content)
    name = engine.task_uis.name_from_arn(str(arn), "HumanTaskUiArn")
    return engine.task_uis.describe(name).content


def _errors(code: str, message: str) -> dict[str, Any]:
    return {"RenderedContent": "", "Errors": [{"Code": code, "Message": message}]}
