"""Task UI templates: Liquid rendering, closedloop's crowd HTML elements, answer checks."""

from __future__ import annotations

from closedloop.core.loops import TemplateCheck
from closedloop.core.tasks import AnswerCheck
from closedloop.templates.answers import check_answer
from closedloop.templates.builtin import BUILTIN_KINDS, builtin_template
from closedloop.templates.fields import AnswerField, TemplateFields, template_fields
from closedloop.templates.objects import ObjectUrlSigner, object_router
from closedloop.templates.render import (
    FRAME_PROTOCOL,
    check_renders,
    crowd_script,
    render_task_page,
    render_task_ui,
    static_dir,
    task_frame_csp,
)

__all__ = [
    "BUILTIN_KINDS",
    "FRAME_PROTOCOL",
    "AnswerField",
    "ObjectUrlSigner",
    "TemplateFields",
    "builtin_template",
    "check_answer",
    "check_renders",
    "crowd_script",
    "object_router",
    "render_task_page",
    "render_task_ui",
    "static_dir",
    "task_frame_csp",
    "template_fields",
]

# The engine's hooks; mypy checks that the signatures still fit.
_TEMPLATE_CHECK: TemplateCheck = check_renders
_ANSWER_CHECK: AnswerCheck = check_answer
