"""Routing: a flow's activation conditions decide which predictions start a human loop."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from closedloop.core.conditions import ActivationConditions, Prediction
from closedloop.core.loops import Loops

__all__ = [
    "Route",
    "Router",
    "loop_input",
    "loop_name",
    "sampling_key",
]

logger = logging.getLogger(__name__)
_NOT_NAME = re.compile(r"[^a-z0-9-]+")
_PREFIX_CHARS = 38  # + "-" + 24 hex digits = 63, the HumanLoopName limit


@dataclass(frozen=True)
class Route:
    """Where an endpoint's predictions may go: a flow and its compiled conditions."""

    flow_name: str
    flow_arn: str
    conditions: ActivationConditions | None


def sampling_key(features: Mapping[str, Any]) -> str:
    """A stable hash of a record's features, whatever the order of its keys."""
    return hashlib.sha256(
        orjson.dumps(features, option=orjson.OPT_SORT_KEYS)
    ).hexdigest()


def loop_name(endpoint: str, model: str, version: int, key: str) -> str:
    """The same record, endpoint and model version always name the same loop."""
    digest = hashlib.sha256(f"{endpoint}\0{model}\0{version}\0{key}".encode())
    prefix = _NOT_NAME.sub("-", endpoint.lower()).strip("-")[:_PREFIX_CHARS]
    return f"{prefix.rstrip('-') or 'endpoint'}-{digest.hexdigest()[:24]}"


def loop_input(
    features: Mapping[str, Any],
    prediction: Prediction,
    model: str,
    version: int,
    endpoint: str,
    activation: Mapping[str, Any] | None = None,
) -> str:
    """The InputContent reviewers and the feedback step see: features and prediction.

    With ``activation`` (A2I's humanTaskActivationConditionResults tree) it also
    says whether the random audit sample picked the record (``audit``), which
    is what an unbiased estimate of production accuracy must be built from.
    """
    document: dict[str, Any] = {
        "features": dict(features),
        "prediction": {
            "label": prediction.label,
            "confidence": prediction.confidence,
            "probabilities": dict(prediction.probabilities),
        },
        "model": {"name": model, "version": version},
        "endpoint": endpoint,
    }
    if activation is not None:
        document["humanTaskActivationConditionResults"] = dict(activation)
        document["audit"] = sampled(activation)
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS).decode()


def sampled(node: Any) -> bool:
    """Whether a Sampling condition fired anywhere in an activation result tree."""
    if isinstance(node, Mapping):
        if (
            node.get("ConditionType") == "Sampling"
            and node.get("EvaluationResult") is True
        ):
            return True
        return any(sampled(value) for value in node.values())
    if isinstance(node, list):
        return any(sampled(item) for item in node)
    return False


class Router:
    """Evaluates a route's conditions per record and starts the loops that fire."""

    def __init__(self, loops: Loops) -> None:
        self._loops = loops

    def decide(
        self,
        route: Route | None,
        records: Sequence[Mapping[str, Any]],
        predictions: Sequence[Prediction],
    ) -> list[str | None]:
        """The sampling key of every record whose conditions fired, else None; starts nothing."""
        if route is None or route.conditions is None:
            return [None] * len(records)
        keys: list[str | None] = []
        for record, prediction in zip(records, predictions, strict=True):
            key = sampling_key(record)
            result = route.conditions.evaluate(prediction=prediction, sampling_key=key)
            keys.append(key if result.activated else None)
        return keys

    def start(
        self,
        route: Route,
        endpoint: str,
        model: str,
        version: int,
        records: Sequence[Mapping[str, Any]],
        predictions: Sequence[Prediction],
        keys: Sequence[str | None],
    ) -> list[str | None]:
        """Start a loop for every fired record; a retried record finds its loop again."""
        names: list[str | None] = []
        for record, prediction, key in zip(records, predictions, keys, strict=True):
            if key is None:
                names.append(None)
                continue
            name = loop_name(endpoint, model, version, key)
            activation = (
                route.conditions.evaluate(prediction=prediction, sampling_key=key)
                if route.conditions
                else None
            )
            results = activation.results if activation is not None else None
            content = loop_input(record, prediction, model, version, endpoint, results)
            self._loops.start(name, route.flow_arn, content)
            names.append(name)
        return names
