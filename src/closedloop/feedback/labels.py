"""Find the label in a worker's answerContent and the model's prediction in the input."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from closedloop.errors import ValidationError
from closedloop.feedback.reader import LoopRecord

__all__ = [
    "ModelPrediction",
    "extract_label",
    "guess_label_path",
    "model_prediction",
]

_KNOWN_LEAVES = ("label", "labels", "on")


@dataclass(frozen=True, slots=True)
class ModelPrediction:
    """The model's label and confidence for an item, as sent with the loop."""

    label: str | None
    confidence: float | None


def extract_label(answer_content: Mapping[str, Any], label_path: str) -> str | None:
    """Return the label at the dotted ``label_path`` of one answer, or None.

    The value found there becomes a label this way: a string as is, a boolean
    (a crowd-checkbox's ``on``) as ``"true"``/``"false"``, a number as its
    text, a one-element list (a multi-select with one choice) as its element,
    and an object of booleans or ``{"on": bool}`` (radio buttons) as the one
    key that is on. Anything else (several choices, none, a missing path) is
    None: the answer carries no single label. An empty path means the answer
    content itself.
    """
    value: Any = answer_content
    for key in label_path.split(".") if label_path else ():
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return _as_label(value)


def _as_label(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return _as_label(value[0]) if len(value) == 1 else None
    if isinstance(value, Mapping):
        chosen = [key for key, item in value.items() if _is_on(item)]
        return chosen[0] if len(chosen) == 1 else None
    return None


def _is_on(value: Any) -> bool:
    if isinstance(value, Mapping):
        return value.get("on") is True
    return value is True


def guess_label_path(answer_contents: Iterable[Mapping[str, Any]]) -> str:
    """Guess where the label sits from the first answer contents.

    Tried in order: ``category.label`` and ``category.labels`` (crowd-classifier),
    then a lone top-level key (its ``label``, ``labels`` or ``on`` when it is an
    object), then the whole content when it is a set of radio buttons. The
    first path that gives a label for an answer wins.
    """
    seen: list[str] = []
    for content in answer_contents:
        for path in _candidate_paths(content):
            if extract_label(content, path) is not None:
                return path
        seen.extend(key for key in content if key not in seen)
        if len(seen) > 20:
            break
    raise ValidationError(
        f"label_path must be given: no label found at any guessed path in answerContent keys {seen!r}",
        field="label_path",
    )


def _candidate_paths(content: Mapping[str, Any]) -> list[str]:
    paths = ["category.label", "category.labels"]
    if len(content) == 1:
        key, value = next(iter(content.items()))
        if isinstance(value, Mapping):
            paths += [f"{key}.{leaf}" for leaf in _KNOWN_LEAVES if leaf in value]
        paths.append(key)
    paths.append("")
    return paths


def model_prediction(record: LoopRecord) -> ModelPrediction:
    """Return the model's prediction sent with the loop; fields are None when absent.

    closedloop writes it as ``inputContent.prediction`` =
    ``{"label": ..., "confidence": ..., "probabilities": {...}}``; the simplified
    shape carries it as ``mlResult``. A missing confidence is read from the
    probabilities when they name the label.
    """
    content = record.input_content or {}
    raw = content.get("prediction", record.ml_result)
    if raw is None:
        return ModelPrediction(None, None)
    if not isinstance(raw, Mapping):
        return ModelPrediction(_as_label(raw), None)
    label = _as_label(raw.get("label"))
    confidence = _as_float(raw.get("confidence"))
    probabilities = raw.get("probabilities")
    if confidence is None and label is not None and isinstance(probabilities, Mapping):
        confidence = _as_float(probabilities.get(label))
    return ModelPrediction(label, confidence)


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
