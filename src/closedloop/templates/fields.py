"""Which answer fields a task UI's crowd elements produce, read from its HTML."""

from __future__ import annotations

import ast
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from typing import Any

import orjson

from closedloop.templates.render import render_task_ui

__all__ = ["ELEMENT_KINDS", "AnswerField", "TemplateFields", "template_fields"]

# Element kind -> the shape of its answer (see answers.py for the checks).
ELEMENT_KINDS: dict[str, str] = {
    "crowd-classifier": "label",
    "crowd-image-classifier": "label",
    "crowd-classifier-multi-select": "labels",
    "crowd-image-classifier-multi-select": "labels",
    "crowd-input": "text",
    "crowd-text-area": "text",
    "crowd-checkbox": "switch",
    "crowd-radio-button": "switch",
    "crowd-toggle-button": "switch",
    "crowd-slider": "number",
    "crowd-bounding-box": "boundingBoxes",
    "crowd-keypoint": "keypoints",
    "crowd-polygon": "polygons",
    "crowd-line": "lines",
    "crowd-polyline": "polylines",
    "crowd-entity-annotation": "entities",
    "input": "text",
    "textarea": "text",
    "select": "text",
}
_ALWAYS_REQUIRED = ("label",)
_NOT_FIELDS = ("submit", "button", "reset", "image", "file")
_LABEL_ATTRIBUTES = ("categories", "labels", "label-categories")
DEFAULT_EXCLUSION = "None of the above"
# The tokens of a flat JS object literal, as the elements' script (static/crowd/base.js) splits them.
_LOOSE_TOKEN = re.compile(
    r"""\s+|'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[A-Za-z_$][\w$]*|-?\d+(?:\.\d+)?|[{}:,]""",
    re.ASCII,
)
_LOOSE_WORDS: dict[str, Any] = {"true": True, "false": False, "null": None}
_NO_VALUE = object()
_KEY_STARTS = "'\"_$" + string.ascii_letters


@dataclass(frozen=True)
class AnswerField:
    """One key of answerContent and what its value may be."""

    name: str
    kind: str
    shape: str
    required: bool = False
    labels: tuple[str, ...] | None = None
    switch_keys: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    text_length: int | None = None
    # A text field's length limits (max-length / min-length, or maxlength / minlength).
    min_chars: int | None = None
    max_chars: int | None = None
    # A multi-select's exclusion choice ("None of the above"): it answers no labels.
    exclusion: str | None = None


@dataclass(frozen=True)
class TemplateFields:
    """The answer fields of a task UI; ``scripted`` when its scripts may add more."""

    fields: tuple[AnswerField, ...] = ()
    scripted: bool = False
    problems: tuple[str, ...] = field(default=())
    # Radio buttons of a required crowd-radio-group: one of them must be on.
    required_groups: tuple[tuple[str, ...], ...] = ()

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def get(self, name: str) -> AnswerField | None:
        return next((f for f in self.fields if f.name == name), None)


def template_fields(
    template: str, input_content: Mapping[str, Any] | None = None
) -> TemplateFields:
    """The fields a template produces; with ``input_content`` labels from Liquid are known."""
    html = (
        template if input_content is None else render_task_ui(template, input_content)
    )
    reader = _ElementReader(rendered=input_content is not None)
    reader.feed(html)
    reader.close()
    groups = tuple(tuple(g) for g in reader.groups if g)
    return TemplateFields(
        tuple(reader.fields.values()), reader.scripted, tuple(reader.problems), groups
    )


class _ElementReader(HTMLParser):
    def __init__(self, *, rendered: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.rendered = rendered
        self.fields: dict[str, AnswerField] = {}
        self.scripted = False
        self.problems: list[str] = []
        self.groups: list[list[str]] = []
        self._group: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "script":
            self.scripted = self.scripted or "assets.crowd.aws" not in attributes.get(
                "src", ""
            )
        elif tag == "crowd-radio-group" and "required" in attributes:
            self._group = []
            self.groups.append(self._group)
        elif tag == "input" and attributes.get("type", "").lower() in _NOT_FIELDS:
            return
        elif tag in ELEMENT_KINDS and attributes.get("name"):
            self._add(_field(tag, attributes, self.rendered))
            if tag == "crowd-radio-button" and self._group is not None:
                self._group.append(attributes["name"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "crowd-radio-group":
            self._group = None

    def _add(self, new: AnswerField) -> None:
        old = self.fields.get(new.name)
        if old is None:
            self.fields[new.name] = new
        elif old.shape == new.shape == "switch" or old.kind == new.kind == "input":
            keys = old.switch_keys + tuple(
                k for k in new.switch_keys if k not in old.switch_keys
            )
            self.fields[new.name] = replace(
                old, switch_keys=keys, required=old.required or new.required
            )
        else:
            self.problems.append(
                f"name {new.name!r} is used by both {old.kind} and {new.kind}"
            )


def _field(tag: str, attributes: dict[str, str], rendered: bool) -> AnswerField:
    shape = ELEMENT_KINDS[tag]
    native_type = attributes.get("type", "text").lower() if tag == "input" else ""
    if native_type in ("checkbox", "radio"):
        shape = "choice"
    exclusion = _exclusion(shape, attributes)
    return AnswerField(
        name=attributes["name"],
        kind=tag,
        shape=shape,
        required="required" in attributes
        or shape in _ALWAYS_REQUIRED
        or exclusion is not None,
        labels=_labels(attributes, rendered),
        switch_keys=_switch_keys(shape, attributes),
        minimum=_number(attributes.get("min")),
        maximum=_number(attributes.get("max")),
        text_length=len(attributes["text"]) if "text" in attributes else None,
        min_chars=_length(attributes, "min-length", "minlength")
        if shape == "text"
        else None,
        max_chars=_length(attributes, "max-length", "maxlength")
        if shape == "text"
        else None,
        exclusion=exclusion,
    )


def _length(attributes: dict[str, str], *names: str) -> int | None:
    """A length limit the browser enforces too; one it cannot read is no limit."""
    for name in names:
        value = attributes.get(name, "").strip()
        if value.isdigit():
            return int(value)
    return None


def _exclusion(shape: str, attributes: dict[str, str]) -> str | None:
    raw = attributes.get("exclusion-category")
    return exclusion_text(raw) if shape == "labels" and raw is not None else None


def exclusion_text(raw: str) -> str:
    """The exclusion choice's text, read as the elements' script reads it, so both agree."""
    parsed = parse_loose_object(raw) or {}
    text = parsed.get("text")
    text = text if isinstance(text, str) else parsed.get("label")
    if isinstance(text, str) and text.strip():
        return text.strip()
    raw = raw.strip()
    return raw if raw and raw[0] not in "{[" else DEFAULT_EXCLUSION


def parse_loose_object(text: str) -> dict[str, Any] | None:
    """A flat JSON object or JS object literal (``{ text: 'x' }``), read without eval."""
    tokens = _loose_tokens(text.strip())
    if not tokens or tokens[0] != "{" or tokens[-1] != "}":
        return None
    body, result = tokens[1:-1], {}
    for start in range(0, len(body), 4):
        pair = body[start : start + 4]
        if len(pair) < 3 or pair[1] != ":" or pair[0][0] not in _KEY_STARTS:
            return None
        if len(pair) == 4 and pair[3] != ",":
            return None
        value = _loose_value(pair[2])
        if value is _NO_VALUE:
            return None
        key = _loose_value(pair[0]) if pair[0][0] in "'\"" else pair[0]
        result[str(key)] = value
    return result


def _loose_tokens(text: str) -> list[str] | None:
    tokens, at = [], 0
    while at < len(text):
        match = _LOOSE_TOKEN.match(text, at)
        if match is None:
            return None
        at = match.end()
        if not match.group().isspace():
            tokens.append(match.group())
    return tokens


def _loose_value(token: str) -> Any:
    if token[0] in "'\"":
        return re.sub(r"\\(.)", _unescape, token[1:-1])
    if token[0] == "-" or token[0].isdigit():
        return float(token) if "." in token else int(token)
    return _LOOSE_WORDS.get(token, _NO_VALUE)


def _unescape(match: re.Match[str]) -> str:
    return {"n": "\n", "t": "\t"}.get(match.group(1), match.group(1))


def _switch_keys(shape: str, attributes: dict[str, str]) -> tuple[str, ...]:
    if shape in ("switch", "choice"):
        return (attributes.get("value") or "on",)
    return ()


def _labels(attributes: dict[str, str], rendered: bool) -> tuple[str, ...] | None:
    text = next((attributes[a] for a in _LABEL_ATTRIBUTES if a in attributes), None)
    if text is None or (not rendered and ("{{" in text or "{%" in text)):
        return None
    items = parse_list(text)
    if items is None:
        return None
    labels = [i.get("label") if isinstance(i, dict) else i for i in items]
    return tuple(str(label) for label in labels if label is not None)


def parse_list(text: str) -> list[Any] | None:
    """A JSON array, or the single-quoted form AWS's samples use; None when neither."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return None
    return list(value) if isinstance(value, (list, tuple)) else None


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None
