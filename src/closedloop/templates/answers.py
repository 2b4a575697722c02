"""Check a worker's answerContent against the fields and labels of the task UI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, NoReturn

from closedloop.errors import ValidationError
from closedloop.templates.fields import AnswerField, TemplateFields, template_fields

__all__ = ["check_answer", "check_answer_fields"]

# Shapes whose labels a template script may set (the annotators' labels property).
_SCRIPT_LABELLED = frozenset(
    ("boundingBoxes", "keypoints", "polygons", "lines", "polylines", "entities")
)
_VERTEX_COUNTS = {"polygons": (3, None), "lines": (2, 2), "polylines": (2, None)}


def check_answer(
    template: str,
    input_content: dict[str, Any],
    answer: dict[str, Any],
    *,
    scripts_run: bool = False,
) -> None:
    """The engine's AnswerCheck: ValidationError naming the first field that does not fit.

    ``scripts_run`` says that the template's own scripts run in the task frame.
    A template that has scripts in its source may then set its annotators'
    labels (AWS's samples do, ``annotator.labels = [...]``), so those labels
    are checked for shape only; classifiers' categories hold regardless.
    """
    fields = template_fields(template, input_content)
    if scripts_run and template_fields(template).scripted:
        fields = replace(
            fields,
            fields=tuple(
                replace(f, labels=None) if f.shape in _SCRIPT_LABELLED else f
                for f in fields.fields
            ),
        )
    check_answer_fields(fields, answer)


def check_answer_fields(fields: TemplateFields, answer: dict[str, Any]) -> None:
    for item in fields.fields:
        if item.name in answer:
            _check_value(item, answer[item.name])
        elif item.required:
            _fail(item.name, "is required by the task UI and is missing")
    for group in fields.required_groups:
        if not any(_is_on(answer.get(name)) for name in group):
            names = ", ".join(repr(n) for n in group)
            _fail(group[0], f"or another of {names} must be switched on")
    if fields.scripted:
        return
    for name in answer:
        if fields.get(name) is None:
            known = ", ".join(repr(n) for n in fields.names) or "no fields"
            _fail(name, f"is not a field of the task UI, which produces {known}")


def _is_on(value: object) -> bool:
    return isinstance(value, dict) and any(v is True for v in value.values())


def _fail(name: str, rule: str) -> NoReturn:
    raise ValidationError(f"answerContent.{name} {rule}", f"answerContent.{name}")


def _check_value(item: AnswerField, value: object) -> None:
    _CHECKS[item.shape](item, value)


def _label(item: AnswerField, value: object) -> None:
    label = value.get("label") if isinstance(value, dict) else None
    if not isinstance(label, str):
        _fail(
            item.name, f'must be {{"label": "<one of the categories>"}}; got {value!r}'
        )
    _known_label(item, item.name, label)


def _labels(item: AnswerField, value: object) -> None:
    labels = value.get("labels") if isinstance(value, dict) else None
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        _fail(item.name, f'must be {{"labels": ["<category>", ...]}}; got {value!r}')
    for label in labels:
        if label == item.exclusion and (
            item.labels is None or label not in item.labels
        ):
            _fail(
                item.name, f'has label {label!r}; choosing it answers {{"labels": []}}'
            )
        _known_label(item, item.name, label)
    # An empty list is how the exclusion choice ("None of the above") answers.
    if item.required and not labels and item.exclusion is None:
        _fail(item.name, "needs at least one label")


def _known_label(item: AnswerField, where: str, label: object) -> None:
    if item.labels is not None and label not in item.labels:
        allowed = ", ".join(repr(x) for x in item.labels)
        _fail(where, f"has label {label!r}; the task UI allows {allowed}")


def _text(item: AnswerField, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        _fail(item.name, f"must be a string; got {value!r}")
    if item.required and value == "":
        _fail(item.name, "is required by the task UI and is empty")
    length = len(str(value))
    if item.max_chars is not None and length > item.max_chars:
        _fail(
            item.name, f"has {length} characters; the task UI allows {item.max_chars}"
        )
    # An empty optional field is left out, as a browser lets it be.
    if item.min_chars is not None and 0 < length < item.min_chars:
        _fail(item.name, f"has {length} characters; the task UI needs {item.min_chars}")


def _choice(item: AnswerField, value: object) -> None:
    if value not in item.switch_keys:
        allowed = ", ".join(repr(k) for k in item.switch_keys)
        _fail(item.name, f"must be one of {allowed}; got {value!r}")


def _switch(item: AnswerField, value: object) -> None:
    if not isinstance(value, dict) or not value:
        _fail(item.name, f'must be {{"<value>": true|false}}; got {value!r}')
    for key, state in value.items():
        if key not in item.switch_keys or not isinstance(state, bool):
            keys = ", ".join(repr(k) for k in item.switch_keys)
            _fail(item.name, f"must map {keys} to true or false; got {value!r}")
    if item.required and not any(value.values()):
        _fail(item.name, "is required by the task UI and is not switched on")


def _number(item: AnswerField, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(item.name, f"must be a number; got {value!r}")
    low = item.minimum if item.minimum is not None else float("-inf")
    high = item.maximum if item.maximum is not None else float("inf")
    if not low <= value <= high:
        _fail(
            item.name,
            f"must be between {item.minimum} and {item.maximum}; got {value!r}",
        )


def _annotations(item: AnswerField, value: object) -> list[dict[str, Any]]:
    shapes = value.get(item.shape) if isinstance(value, dict) else None
    if not isinstance(shapes, list) or not all(isinstance(s, dict) for s in shapes):
        _fail(item.name, f'must be {{"{item.shape}": [...]}}; got {value!r}')
    image = value.get("inputImageProperties") if isinstance(value, dict) else None
    if image is not None and not _has_numbers(image, ("width", "height")):
        _fail(
            item.name,
            f"inputImageProperties needs numeric width and height; got {image!r}",
        )
    modified = value.get("initialValueModified") if isinstance(value, dict) else None
    if modified is not None and not isinstance(modified, bool):
        _fail(
            item.name, f"initialValueModified must be true or false; got {modified!r}"
        )
    return list(shapes)


def _has_numbers(value: object, keys: tuple[str, ...]) -> bool:
    return isinstance(value, dict) and all(
        isinstance(value.get(k), (int, float)) and not isinstance(value.get(k), bool)
        for k in keys
    )


def _boxes(item: AnswerField, value: object) -> None:
    for index, box in enumerate(_annotations(item, value)):
        where = f"{item.name}.boundingBoxes[{index}]"
        if not _has_numbers(box, ("left", "top", "width", "height")):
            _fail(where, f"needs numeric left, top, width and height; got {box!r}")
        if box["width"] < 0 or box["height"] < 0:
            _fail(where, f"must not have a negative width or height; got {box!r}")
        _known_label(item, where, box.get("label"))


def _keypoints(item: AnswerField, value: object) -> None:
    for index, point in enumerate(_annotations(item, value)):
        where = f"{item.name}.keypoints[{index}]"
        if not _has_numbers(point, ("x", "y")):
            _fail(where, f"needs numeric x and y; got {point!r}")
        _known_label(item, where, point.get("label"))


def _vertex_shapes(item: AnswerField, value: object) -> None:
    low, high = _VERTEX_COUNTS[item.shape]
    for index, shape in enumerate(_annotations(item, value)):
        where = f"{item.name}.{item.shape}[{index}]"
        vertices = shape.get("vertices")
        if not isinstance(vertices, list) or not all(
            _has_numbers(v, ("x", "y")) for v in vertices
        ):
            _fail(
                where, f'needs "vertices": [{{"x": .., "y": ..}}, ...]; got {shape!r}'
            )
        if len(vertices) < low or (high is not None and len(vertices) > high):
            count = f"exactly {low}" if low == high else f"at least {low}"
            _fail(where, f"needs {count} vertices; got {len(vertices)}")
        _known_label(item, where, shape.get("label"))


def _entities(item: AnswerField, value: object) -> None:
    end_limit = item.text_length
    for index, entity in enumerate(_annotations(item, value)):
        where = f"{item.name}.entities[{index}]"
        start, end = entity.get("startOffset"), entity.get("endOffset")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end):
            _fail(
                where,
                f"needs integer offsets with 0 <= startOffset < endOffset; got {entity!r}",
            )
        if end_limit is not None and end > end_limit:
            _fail(where, f"ends at {end}, past the text's {end_limit} characters")
        _known_label(item, where, entity.get("label"))


_CHECKS: dict[str, Callable[[AnswerField, object], None]] = {
    "label": _label,
    "labels": _labels,
    "text": _text,
    "choice": _choice,
    "switch": _switch,
    "number": _number,
    "boundingBoxes": _boxes,
    "keypoints": _keypoints,
    "polygons": _vertex_shapes,
    "lines": _vertex_shapes,
    "polylines": _vertex_shapes,
    "entities": _entities,
}
