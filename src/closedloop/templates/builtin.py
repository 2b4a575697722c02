"""Ready-made task UI templates: single-label, multi-label, free text, confirm-or-correct."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from markupsafe import escape

from closedloop.errors import ValidationError

__all__ = ["BUILTIN_KINDS", "builtin_template"]

BUILTIN_KINDS = ("single-label", "multi-label", "free-text", "confirm-or-correct")
_DEFAULT_HEADERS = {
    "single-label": "Which label fits best?",
    "multi-label": "Which labels apply?",
    "free-text": "Write the answer",
    "confirm-or-correct": "Is the model's label right? Keep it or choose another.",
}
_LIQUID_MARKERS = ("{{", "}}", "{%", "%}")

# What the reviewer looks at: text, an image or document, or the raw input.
_TARGET = """\
    {% assign object = task.input.taskObject %}{% assign head = object | slice: 0, 5 %}
    {% if task.input.text %}<p class="cl-target-text">{{ task.input.text }}</p>{% endif %}
    {% if head == "s3://" or head == "https" %}
    <img class="cl-target-image" src="{{ object | grant_read_access }}" alt="the item to review">
    {% elsif object %}<p class="cl-target-text">{{ object }}</p>{% endif %}
    {% unless task.input.text or object %}
    <pre class="cl-target-json">{{ task.input | to_json }}</pre>
    {% endunless %}"""

_PREDICTION = """\
{% assign prediction = task.input.prediction %}
{% if prediction %}
<crowd-card heading="Model prediction">
  <p>The model says <strong>{{ prediction.label }}</strong>{% if prediction.confidence %}
  with confidence {{ prediction.confidence | times: 100 | round: 1 }}%{% endif %}.</p>
  {% if prediction.probabilities %}<ul class="cl-probabilities">
  {% for pair in prediction.probabilities %}<li>{{ pair[0] }}: {{ pair[1] | times: 100 | round: 1 }}%</li>{% endfor %}
  </ul>{% endif %}
</crowd-card>
{% endif %}
"""

_KEYS = "Number keys pick a label, Enter submits, S skips."
_HOW = {
    "single-label": "Read the item, then choose the one label that fits best.",
    "multi-label": "Read the item, then choose every label that applies.",
    "confirm-or-correct": "The model's label is already chosen: press Enter to keep"
    " it, or pick the right one first.",
}


def builtin_template(
    kind: str, labels: Sequence[str], *, header: str | None = None
) -> str:
    """A Liquid task UI for ``kind`` (one of BUILTIN_KINDS) with the given labels.

    The header may use Liquid (``{{ task.input.title }}``); labels may not.
    """
    if kind not in BUILTIN_KINDS:
        raise ValidationError(
            f"kind must be one of {', '.join(BUILTIN_KINDS)}; got {kind!r}", "kind"
        )
    chosen = _check_labels(kind, labels)
    title = escape(header if header is not None else _DEFAULT_HEADERS[kind])
    if kind == "free-text":
        return _free_text(str(title))
    return _classifier(kind, chosen, str(title))


def _check_labels(kind: str, labels: Sequence[str]) -> list[str]:
    chosen = [str(label).strip() for label in labels]
    if kind != "free-text" and not chosen:
        raise ValidationError(
            f"labels must name at least one label for {kind}", "labels"
        )
    if any(not label for label in chosen) or len(set(chosen)) != len(chosen):
        raise ValidationError(
            f"labels must be distinct and non-empty; got {list(labels)!r}", "labels"
        )
    for label in chosen:
        if any(marker in label for marker in _LIQUID_MARKERS):
            raise ValidationError(
                f"labels must not contain Liquid markup; got {label!r}", "labels"
            )
    return chosen


def _classifier(kind: str, labels: list[str], header: str) -> str:
    element = (
        "crowd-classifier-multi-select" if kind == "multi-label" else "crowd-classifier"
    )
    categories = escape(orjson.dumps(labels).decode())
    preset = (
        ' value="{{ task.input.prediction.label }}"'
        if kind == "confirm-or-correct"
        else ""
    )
    before = _PREDICTION if kind == "confirm-or-correct" else ""
    return f"""<crowd-form>
{before}  <{element} name="category" categories="{categories}" header="{header}"{preset}>
    <classification-target>
{_TARGET}
    </classification-target>
    <short-instructions><p>{_KEYS}</p></short-instructions>
    <full-instructions header="How to answer">
      <p>{_HOW[kind]}</p>
    </full-instructions>
  </{element}>
</crowd-form>
"""


def _free_text(header: str) -> str:
    return f"""<crowd-form>
  <h2 class="cl-header">{header}</h2>
  <div class="cl-target">
{_TARGET}
  </div>
  <crowd-text-area name="text" label="Your answer" rows="4" required></crowd-text-area>
</crowd-form>
"""
