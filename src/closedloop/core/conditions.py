"""Human-loop activation conditions: A2I's JSON language, parsed once, evaluated often.

A flow definition's ``HumanLoopActivationConditions`` is a JSON document::

    {"Conditions": [<node>, ...]}           # top-level nodes are OR'ed
    <node> = {"ConditionType": "...", "ConditionParameters": {...}}
           | {"And": [<node>, ...]} | {"Or": [<node>, ...]}

And/Or may nest at most ``MAX_NESTING_DEPTH`` levels, as in A2I. Condition types:

``Sampling``
    ``RandomSamplingPercentage`` (0-100). Deterministic per ``sampling_key`` and
    independent between the Sampling nodes of one tree.
``ModelConfidenceCheck`` (closedloop's extension, for any classifier)
    ``LabelName`` (optional; absent or ``"*"`` means the predicted label) and
    ``ConfidenceEquals``/``LessThan``/``LessThanEquals``/``GreaterThan``/
    ``GreaterThanEquals`` on A2I's 0-100 scale; several bounds are AND'ed.
``ModerationLabelConfidenceCheck`` (Rekognition)
    ``ModerationLabelName`` and the same ``Confidence*`` bounds. Against a
    ``Prediction`` the moderation label is a class: ``"*"`` means the predicted
    label, a named label is checked against that class's probability.
``ImportantFormKeyConfidenceCheck``, ``MissingImportantFormKey`` (Textract)
    Validated and stored, but closedloop has no Textract response to check them
    against: they evaluate to false and say so in ``ActivationResult.notes``.

A confidence threshold ``t`` is compared as ``probability`` against ``t / 100``,
so a probability of 0.29 is neither below nor above ``29``. The evaluation
result has A2I's ``humanTaskActivationConditionResults`` shape: the same tree
with ``"EvaluationResult"`` on every node, And/Or nodes included.
"""

from __future__ import annotations

import hashlib
import logging
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

import orjson

from closedloop.errors import ValidationError

__all__ = [
    "ANY_LABEL",
    "CONDITION_TYPES",
    "DEFAULT_FIELD",
    "MAX_NESTING_DEPTH",
    "ActivationConditions",
    "ActivationResult",
    "Prediction",
    "parse_conditions",
]

logger = logging.getLogger(__name__)

SAMPLING = "Sampling"
MODEL_CONFIDENCE = "ModelConfidenceCheck"
MODERATION_CONFIDENCE = "ModerationLabelConfidenceCheck"
FORM_KEY_CONFIDENCE = "ImportantFormKeyConfidenceCheck"
MISSING_FORM_KEY = "MissingImportantFormKey"
CONDITION_TYPES = (
    FORM_KEY_CONFIDENCE,
    MISSING_FORM_KEY,
    MODEL_CONFIDENCE,
    MODERATION_CONFIDENCE,
    SAMPLING,
)
MAX_NESTING_DEPTH = 2
ANY_LABEL = "*"
DEFAULT_FIELD = "HumanLoopActivationConditions"

_OPERATORS = ("And", "Or")
_LEAF_KEYS = ("ConditionParameters", "ConditionType")
_COMPARISONS = (
    "Equals",
    "LessThan",
    "LessThanEquals",
    "GreaterThan",
    "GreaterThanEquals",
)
_CONFIDENCE = tuple(f"Confidence{c}" for c in _COMPARISONS)
_KEY_VALUE = tuple(f"KeyValueBlockConfidence{c}" for c in _COMPARISONS)
_WORD = tuple(f"WordBlockConfidence{c}" for c in _COMPARISONS)
_FORM_KEY = ("ImportantFormKey", "ImportantFormKeyAliases")
_ALLOWED_PARAMETERS: dict[str, tuple[str, ...]] = {
    SAMPLING: ("RandomSamplingPercentage",),
    MODEL_CONFIDENCE: ("LabelName", *_CONFIDENCE),
    MODERATION_CONFIDENCE: ("ModerationLabelName", *_CONFIDENCE),
    FORM_KEY_CONFIDENCE: (*_FORM_KEY, *_KEY_VALUE, *_WORD),
    MISSING_FORM_KEY: _FORM_KEY,
}
_REQUIRED_PARAMETERS: dict[str, tuple[str, ...]] = {
    SAMPLING: ("RandomSamplingPercentage",),
    MODEL_CONFIDENCE: (),
    MODERATION_CONFIDENCE: ("ModerationLabelName",),
    FORM_KEY_CONFIDENCE: ("ImportantFormKey",),
    MISSING_FORM_KEY: ("ImportantFormKey",),
}
_SHOWN_CHARS = 80


@dataclass(frozen=True)
class Prediction:
    """A classifier's output: its label and every class's probability (0..1)."""

    label: str
    probabilities: Mapping[str, float]

    def __post_init__(self) -> None:
        probabilities = _checked_probabilities(self.probabilities)
        if not isinstance(self.label, str) or self.label not in probabilities:
            classes = sorted(probabilities)
            raise ValidationError(
                f"Prediction.label must be one of the classes in probabilities {classes!r}; got {self.label!r}",
                field="Prediction.label",
            )
        object.__setattr__(self, "probabilities", MappingProxyType(probabilities))

    @property
    def confidence(self) -> float:
        """The probability of the predicted label."""
        return self.probabilities[self.label]


@dataclass(frozen=True)
class ActivationResult:
    """Whether a human loop starts, and A2I's per-node evaluation tree.

    ``notes`` explains nodes that could not be checked (no prediction, no
    Textract response, a label the model does not know); each evaluated to false.
    """

    activated: bool
    results: dict[str, Any]
    notes: tuple[str, ...] = ()


class ActivationConditions:
    """A validated condition tree, compiled into small node objects."""

    __slots__ = ("_roots",)

    def __init__(self, roots: tuple[_Node, ...]) -> None:
        self._roots = roots

    def evaluate(
        self, *, prediction: Prediction | None, sampling_key: str
    ) -> ActivationResult:
        """Evaluate every node; ``sampling_key`` should hash the loop's input."""
        context = _Context(prediction, sampling_key.encode("utf-8"))
        conditions = [root.evaluate(context) for root in self._roots]

        activated = any(result["EvaluationResult"] for result in conditions)
        return ActivationResult(
            activated, {"Conditions": conditions}, tuple(context.notes)
        )

    @property
    def document(self) -> dict[str, Any]:
        """The conditions as a plain JSON-ready document (a fresh copy)."""
        return {"Conditions": [root.describe() for root in self._roots]}

    def to_json(self) -> str:
        """The conditions as the JSON string A2I's CreateFlowDefinition takes."""
        return orjson.dumps(self.document).decode("utf-8")

    def __repr__(self) -> str:
        return f"ActivationConditions({self.to_json()})"


def parse_conditions(
    document: str | Mapping[str, Any], *, field: str = DEFAULT_FIELD
) -> ActivationConditions:
    """Validate a conditions document fully and compile it for evaluation.

    ``field`` names the document in error messages and ``ValidationError.field``.
    """
    parser = _Parser(field)
    roots = parser.document(_load(document, field))
    logger.debug("parsed %d top-level activation conditions", len(roots))
    return ActivationConditions(roots)


def _load(document: str | Mapping[str, Any], field: str) -> Any:
    if isinstance(document, Mapping):
        return document
    if not isinstance(document, str):
        raise ValidationError(
            f"{field} must be a JSON string or an object; got {_show(document)}",
            field=field,
        )
    try:
        return orjson.loads(document)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(
            f"{field} must be valid JSON ({exc}); got {_show(document)}", field=field
        ) from exc


def _show(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= _SHOWN_CHARS else shown[: _SHOWN_CHARS - 3] + "..."


def _checked_probabilities(probabilities: Any) -> dict[str, float]:
    if not isinstance(probabilities, Mapping) or not probabilities:
        raise ValidationError(
            f"Prediction.probabilities must map at least one class to a probability; got {_show(probabilities)}",
            field="Prediction.probabilities",
        )
    checked: dict[str, float] = {}
    for name, value in probabilities.items():
        where = f"Prediction.probabilities[{name!r}]"
        if not isinstance(name, str):
            raise ValidationError(
                f"{where} must be keyed by a class name string; got {name!r}",
                field=where,
            )
        number = float(value) if isinstance(value, numbers.Real) else math.nan
        if isinstance(value, bool) or not 0 <= number <= 1:
            raise ValidationError(
                f"{where} must be a number between 0 and 1; got {value!r}", field=where
            )
        checked[name] = number
    return checked


class _Context:
    """What one evaluation sees, and the notes it collects."""

    __slots__ = ("notes", "prediction", "sampling_key")

    def __init__(self, prediction: Prediction | None, sampling_key: bytes) -> None:
        self.prediction = prediction
        self.sampling_key = sampling_key
        self.notes: list[str] = []


class _Node(Protocol):
    def evaluate(self, context: _Context) -> dict[str, Any]: ...

    def describe(self) -> dict[str, Any]: ...


class _Group:
    """An And or Or node; every child is evaluated so each gets a result."""

    __slots__ = ("_children", "_combine", "_operator")

    def __init__(self, operator: str, children: tuple[_Node, ...]) -> None:
        self._operator = operator
        self._children = children
        self._combine: Callable[[Any], bool] = all if operator == "And" else any

    def evaluate(self, context: _Context) -> dict[str, Any]:
        results = [child.evaluate(context) for child in self._children]
        outcome = self._combine(result["EvaluationResult"] for result in results)
        return {"EvaluationResult": outcome, self._operator: results}

    def describe(self) -> dict[str, Any]:
        return {self._operator: [child.describe() for child in self._children]}


class _Leaf:
    """A node with a ConditionType; subclasses decide whether it matches."""

    __slots__ = ("_condition_type", "_parameters", "_where")

    def __init__(
        self, condition_type: str, parameters: dict[str, Any], where: str
    ) -> None:
        self._condition_type = condition_type
        self._parameters = parameters
        self._where = where

    def evaluate(self, context: _Context) -> dict[str, Any]:
        result = self.describe()
        result["EvaluationResult"] = self._matches(context)
        return result

    def describe(self) -> dict[str, Any]:
        parameters = {
            k: list(v) if isinstance(v, list) else v
            for k, v in self._parameters.items()
        }
        return {
            "ConditionType": self._condition_type,
            "ConditionParameters": parameters,
        }

    def _matches(self, context: _Context) -> bool:
        raise NotImplementedError

    def _unevaluable(self, context: _Context, reason: str) -> bool:
        context.notes.append(
            f"{self._where} ({self._condition_type}) evaluated to false: {reason}"
        )
        return False


class _Sampling(_Leaf):
    """Fires for a fixed share of sampling keys; the node's path salts the hash."""

    __slots__ = ("_hasher", "_threshold")

    def __init__(
        self, parameters: dict[str, Any], where: str, percentage: float
    ) -> None:
        super().__init__(SAMPLING, parameters, where)
        self._hasher = hashlib.blake2b(where.encode("utf-8") + b"\x00", digest_size=8)
        self._threshold = percentage / 100 * 2**64

    def _matches(self, context: _Context) -> bool:
        hasher = self._hasher.copy()
        hasher.update(context.sampling_key)
        return int.from_bytes(hasher.digest(), "big") < self._threshold


@dataclass(frozen=True, slots=True)
class _Range:
    """A confidence interval on the 0..1 scale; the bounds are AND'ed."""

    low: float = -math.inf
    low_inclusive: bool = True
    high: float = math.inf
    high_inclusive: bool = True

    def contains(self, value: float) -> bool:
        above = value > self.low or (self.low_inclusive and value == self.low)
        below = value < self.high or (self.high_inclusive and value == self.high)
        return above and below

    def is_empty(self) -> bool:
        both_inclusive = self.low_inclusive and self.high_inclusive
        return self.low > self.high or (self.low == self.high and not both_inclusive)


class _ConfidenceCheck(_Leaf):
    """Checks one class's probability (or the predicted label's) against a range."""

    __slots__ = ("_label", "_range")

    def __init__(
        self,
        condition_type: str,
        parameters: dict[str, Any],
        where: str,
        label: str | None,
        bounds: _Range,
    ) -> None:
        super().__init__(condition_type, parameters, where)
        self._label = label
        self._range = bounds

    def _matches(self, context: _Context) -> bool:
        prediction = context.prediction
        if prediction is None:
            return self._unevaluable(context, "no prediction was given")
        label = prediction.label if self._label is None else self._label
        probability = prediction.probabilities.get(label)
        if probability is None:
            return self._unevaluable(context, f"the prediction has no class {label!r}")
        return self._range.contains(probability)


class _NeedsTextract(_Leaf):
    """A Textract condition: kept for A2I compatibility, never true here."""

    __slots__ = ()

    def _matches(self, context: _Context) -> bool:
        return self._unevaluable(
            context, "it needs a Textract AnalyzeDocument response and none was given"
        )


class _Parser:
    """Validates a conditions document and builds its node objects."""

    def __init__(self, root: str) -> None:
        self._root = root

    def fail(self, where: str, problem: str) -> ValidationError:
        path = f"{self._root}.{where}" if where else self._root
        return ValidationError(f"{path} {problem}", field=path)

    def document(self, value: Any) -> tuple[_Node, ...]:
        if not isinstance(value, Mapping):
            raise self.fail(
                "", f"must be a JSON object with a Conditions list; got {_show(value)}"
            )
        for key in value:
            if key != "Conditions":
                raise self.fail("", f"has unknown key {key!r}; allowed: Conditions")
        if "Conditions" not in value:
            raise self.fail("Conditions", "is required")
        return self.node_list(value["Conditions"], "Conditions", depth=0)

    def node_list(self, value: Any, where: str, depth: int) -> tuple[_Node, ...]:
        if not isinstance(value, list | tuple):
            raise self.fail(where, f"must be a list of conditions; got {_show(value)}")
        if not value:
            raise self.fail(where, f"must hold at least one condition; got {value!r}")
        return tuple(
            self.node(item, f"{where}[{i}]", depth) for i, item in enumerate(value)
        )

    def node(self, value: Any, where: str, depth: int) -> _Node:
        if not isinstance(value, Mapping):
            raise self.fail(
                where,
                f"must be an object with a ConditionType, And or Or; got {_show(value)}",
            )
        keys = sorted(map(str, value))
        operators = [key for key in _OPERATORS if key in value]
        if operators and "ConditionType" in value:
            raise self.fail(
                where,
                f"must have either ConditionType or {operators[0]}, not both; got keys {keys}",
            )
        if len(operators) > 1:
            raise self.fail(where, f"must have only one of And, Or; got keys {keys}")
        if operators:
            return self.group(value, where, operators[0], depth)
        if "ConditionType" not in value:
            raise self.fail(
                where, f"must have a ConditionType, And or Or; got keys {keys}"
            )
        return self.leaf(value, where)

    def group(
        self, value: Mapping[str, Any], where: str, operator: str, depth: int
    ) -> _Group:
        for key in value:
            if key != operator:
                raise self.fail(
                    where,
                    f"has unknown key {key!r} next to {operator}; an {operator} node has no other keys",
                )
        if depth >= MAX_NESTING_DEPTH:
            raise self.fail(
                f"{where}.{operator}",
                f"nests And/Or {depth + 1} levels deep; at most {MAX_NESTING_DEPTH} allowed",
            )
        children = self.node_list(value[operator], f"{where}.{operator}", depth + 1)
        return _Group(operator, children)

    def leaf(self, value: Mapping[str, Any], where: str) -> _Leaf:
        for key in value:
            if key not in _LEAF_KEYS:
                raise self.fail(
                    where, f"has unknown key {key!r}; allowed: {', '.join(_LEAF_KEYS)}"
                )
        condition_type = value["ConditionType"]
        if condition_type not in CONDITION_TYPES:
            allowed = ", ".join(CONDITION_TYPES)
            raise self.fail(
                f"{where}.ConditionType",
                f"must be one of {allowed}; got {_show(condition_type)}",
            )
        if "ConditionParameters" not in value:
            raise self.fail(
                f"{where}.ConditionParameters",
                f"is required for ConditionType {condition_type!r}",
            )
        parameters = self.parameters(
            value["ConditionParameters"], f"{where}.ConditionParameters", condition_type
        )
        return self.build(condition_type, parameters, where)

    def parameters(self, value: Any, where: str, condition_type: str) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(where, f"must be an object; got {_show(value)}")
        allowed = _ALLOWED_PARAMETERS[condition_type]
        for key in value:
            if key not in allowed:
                names = ", ".join(sorted(allowed))
                raise self.fail(
                    where,
                    f"has unknown key {key!r} for ConditionType {condition_type!r}; allowed: {names}",
                )
        for key in _REQUIRED_PARAMETERS[condition_type]:
            if key not in value:
                raise self.fail(
                    f"{where}.{key}",
                    f"is required for ConditionType {condition_type!r}",
                )
        return dict(value)

    def build(
        self, condition_type: str, parameters: dict[str, Any], where: str
    ) -> _Leaf:
        at = f"{where}.ConditionParameters"
        if condition_type == SAMPLING:
            percentage = self.percentage(
                parameters["RandomSamplingPercentage"], f"{at}.RandomSamplingPercentage"
            )
            return _Sampling(parameters, where, percentage)
        if condition_type in (MODEL_CONFIDENCE, MODERATION_CONFIDENCE):
            label_key = (
                "LabelName"
                if condition_type == MODEL_CONFIDENCE
                else "ModerationLabelName"
            )
            label = self.label(
                parameters.get(label_key, ANY_LABEL), f"{at}.{label_key}"
            )
            bounds = self.required_range(parameters, at, _CONFIDENCE)
            return _ConfidenceCheck(condition_type, parameters, where, label, bounds)
        self.text(parameters["ImportantFormKey"], f"{at}.ImportantFormKey")
        if "ImportantFormKeyAliases" in parameters:
            parameters["ImportantFormKeyAliases"] = self.aliases(
                parameters["ImportantFormKeyAliases"], at
            )
        if condition_type == FORM_KEY_CONFIDENCE:
            ranges = [
                self.range(parameters, at, names) for names in (_KEY_VALUE, _WORD)
            ]
            if ranges == [None, None]:
                raise self.fail(
                    at,
                    f"must set at least one of {', '.join(_KEY_VALUE + _WORD)}; got none",
                )
        return _NeedsTextract(condition_type, parameters, where)

    def required_range(
        self, parameters: Mapping[str, Any], at: str, names: tuple[str, ...]
    ) -> _Range:
        bounds = self.range(parameters, at, names)
        if bounds is None:
            raise self.fail(
                at, f"must set at least one of {', '.join(names)}; got none"
            )
        return bounds

    def range(
        self, parameters: Mapping[str, Any], at: str, names: tuple[str, ...]
    ) -> _Range | None:
        equals, less, less_eq, greater, greater_eq = names
        given = {
            name: self.percentage(parameters[name], f"{at}.{name}") / 100
            for name in names
            if name in parameters
        }
        if not given:
            return None
        for first, second in ((less, less_eq), (greater, greater_eq)):
            if first in given and second in given:
                raise self.fail(at, f"may set only one of {first}, {second}; got both")
        if equals in given and len(given) > 1:
            others = ", ".join(name for name in given if name != equals)
            raise self.fail(
                at, f"may not combine {equals} with {others}; {equals} stands alone"
            )
        if equals in given:
            return _Range(given[equals], True, given[equals], True)
        bounds = _Range(
            low=given.get(greater, given.get(greater_eq, -math.inf)),
            low_inclusive=greater not in given,
            high=given.get(less, given.get(less_eq, math.inf)),
            high_inclusive=less not in given,
        )
        if bounds.is_empty():
            limits = ", ".join(f"{name} {parameters[name]!r}" for name in given)
            raise self.fail(at, f"can never match: no confidence satisfies {limits}")
        return bounds

    def percentage(self, value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(
                where, f"must be a number between 0 and 100; got {_show(value)}"
            )
        if not 0 <= value <= 100:
            raise self.fail(where, f"must be between 0 and 100; got {value!r}")
        return float(value)

    def text(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(where, f"must be a non-empty string; got {_show(value)}")
        return value

    def label(self, value: Any, where: str) -> str | None:
        label = self.text(value, where)
        return None if label == ANY_LABEL else label

    def aliases(self, value: Any, at: str) -> list[str]:
        where = f"{at}.ImportantFormKeyAliases"
        if not isinstance(value, list | tuple):
            raise self.fail(where, f"must be a list of strings; got {_show(value)}")
        return [self.text(alias, f"{where}[{i}]") for i, alias in enumerate(value)]
