"""The in-process model holder: serves endpoints and swaps in a promoted version live.

Each served endpoint has one immutable :class:`Deployment` (endpoint, loaded
model, route) behind a plain attribute. A request reads that attribute once and
uses the snapshot to the end, so a swap never changes a request half way. At
most every ``poll_seconds`` a request schedules a check on a background thread
(one indexed read of the endpoint, one of the alias); when the target version
changed, that thread loads it and only then replaces the reference.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from closedloop.core.conditions import Prediction
from closedloop.core.flows import Flows
from closedloop.core.loops import Loops
from closedloop.errors import ClosedloopError, NotFoundError, ValidationError
from closedloop.serving.endpoints import (
    EndpointInfo,
    Endpoints,
    LoadedModelLike,
    RegistryLike,
)
from closedloop.serving.routing import Route, Router

__all__ = [
    "DEFAULT_POLL_SECONDS",
    "Deployment",
    "Invocation",
    "ModelFailedError",
    "RecordResult",
    "ServingRuntime",
    "check_record",
    "predict",
]

logger = logging.getLogger(__name__)
DEFAULT_POLL_SECONDS = 0.5
_NUMBER = "number"


class ModelFailedError(ClosedloopError):
    """The model raised while predicting; SageMaker calls this ModelError."""

    status = 424
    aws_code = "ModelError"


@dataclass(frozen=True)
class Deployment:
    """What one request uses from start to end: the endpoint, its model, its route."""

    endpoint: EndpointInfo
    model: LoadedModelLike
    route: Route | None
    predictor: Callable[[Sequence[Mapping[str, Any]]], Any]

    def predict(self, records: Sequence[Mapping[str, Any]]) -> list[Prediction]:
        return _predictions(self.model, _guarded(self.model, self.predictor, records))


@dataclass(frozen=True)
class RecordResult:
    """One record's answer: the prediction and, when conditions fired, the loop."""

    prediction: Prediction
    human_loop_name: str | None

    def as_dict(self, version: int) -> dict[str, Any]:
        return {
            "label": self.prediction.label,
            "confidence": self.prediction.confidence,
            "probabilities": dict(self.prediction.probabilities),
            "model_version": version,
            "human_loop_name": self.human_loop_name,
        }


@dataclass(frozen=True)
class Invocation:
    deployment: Deployment
    results: list[RecordResult]


def check_record(record: Any, model: LoadedModelLike, where: str) -> None:
    """Refuse a record with a missing, unknown or mistyped feature, naming it."""
    if not isinstance(record, dict):
        raise ValidationError(
            f"{where} must be a JSON object of features; got a JSON {type(record).__name__}",
            where,
        )
    columns = model.feature_columns
    for column in columns:
        if column not in record:
            raise ValidationError(
                f"{where} is missing feature {column!r}; the model takes {columns!r}",
                f"{where}.{column}",
            )
        _check_value(
            record[column],
            model.feature_dtypes.get(column, _NUMBER),
            f"{where}.{column}",
        )
    if len(record) != len(columns):
        extra = next(key for key in record if key not in model.feature_dtypes)
        raise ValidationError(
            f"{where} has unknown feature {extra!r}; the model takes {columns!r}",
            f"{where}.{extra}",
        )


def _check_value(value: Any, dtype: str, field: str) -> None:
    if dtype == _NUMBER:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok and math.isfinite(value):
            return
        raise ValidationError(f"{field} must be a finite number; got {value!r}", field)
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string; got {value!r}", field)


def predict(model: LoadedModelLike, frame: pd.DataFrame) -> list[Prediction]:
    """Run ``model`` over ``frame``; a failure inside the model is a ModelFailedError."""
    return _predictions(model, _guarded(model, model.predict_proba, frame))


def _guarded(model: LoadedModelLike, run: Callable[[Any], Any], data: Any) -> Any:
    try:
        return run(data)
    except ClosedloopError:
        raise
    except Exception as exc:  # a model may raise anything; the caller gets ModelError
        raise ModelFailedError(
            f"model {model.model!r} version {model.version} failed to predict: {type(exc).__name__}: {exc}"
        ) from exc


def _predictions(model: LoadedModelLike, probabilities: Any) -> list[Prediction]:
    matrix = np.clip(np.asarray(probabilities, dtype=float), 0.0, 1.0)
    classes = [str(c) for c in model.classes]
    best = matrix.argmax(axis=1)
    return [
        Prediction(classes[index], dict(zip(classes, row.tolist(), strict=True)))
        for index, row in zip(best.tolist(), matrix, strict=True)
    ]


def records_frame(
    model: LoadedModelLike, records: Sequence[Mapping[str, Any]]
) -> pd.DataFrame:
    return pd.DataFrame({c: [r[c] for r in records] for c in model.feature_columns})


class _FramePredictor:
    """Predicts through the estimator itself, one DataFrame per request."""

    def __init__(self, model: LoadedModelLike) -> None:
        self._model = model

    def __call__(self, records: Sequence[Mapping[str, Any]]) -> Any:
        return self._model.predict_proba(records_frame(self._model, records))


class _OnnxPredictor:
    """Predicts through the version's ONNX file: no DataFrame, no estimator overhead."""

    def __init__(self, session: Any, model: LoadedModelLike) -> None:
        self._session = session
        self._columns = [
            (c, np.float32 if model.feature_dtypes.get(c) == _NUMBER else np.str_)
            for c in model.feature_columns
        ]

    def __call__(self, records: Sequence[Mapping[str, Any]]) -> Any:
        feeds = {
            column: np.array([[r[column]] for r in records], dtype=dtype)
            for column, dtype in self._columns
        }
        return self._session.run(["probabilities"], feeds)[0]


def _onnx_session(data: bytes) -> Any:
    import onnxruntime  # type: ignore[import-untyped]

    options = onnxruntime.SessionOptions()
    # One small record at a time: a thread pool per call costs more than it gives.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(
        data, options, providers=["CPUExecutionProvider"]
    )


class _Slot:
    """One endpoint's current deployment and the bookkeeping of its checks."""

    __slots__ = ("checked_at", "current", "lock", "refreshing")

    def __init__(self, current: Deployment, now: float) -> None:
        self.current = current
        self.checked_at = now
        self.lock = threading.Lock()
        self.refreshing = False


class ServingRuntime:
    """Serves endpoints in this process; thread-safe, one instance per server."""

    def __init__(
        self,
        endpoints: Endpoints,
        registry: RegistryLike,
        flows: Flows,
        loops: Loops,
        *,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._endpoints = endpoints
        self._registry = registry
        self._flows = flows
        self._router = Router(loops)
        self._poll = poll_seconds
        self._monotonic = monotonic
        self._slots: dict[str, _Slot] = {}
        self._open_lock = threading.Lock()
        self._checker = ThreadPoolExecutor(1, thread_name_prefix="closedloop-serving")

    def deployment(self, name: str) -> Deployment:
        """The endpoint's current deployment; a stale one is re-checked in the background."""
        slot = self._slots.get(name) or self._open(name)
        if self._monotonic() - slot.checked_at >= self._poll:
            self._schedule(name, slot)
        return slot.current

    def invoke(self, name: str, records: Sequence[Any]) -> Invocation:
        """Validate every record, predict, then start the loops whose conditions fired."""
        deployment = self.deployment(name)
        model = deployment.model
        for index, record in enumerate(records):
            check_record(
                record, model, f"instances[{index}]" if len(records) > 1 else "features"
            )
        predictions = deployment.predict(records)
        keys = self._router.decide(deployment.route, records, predictions)
        names: list[str | None] = [None] * len(records)
        if deployment.route is not None and any(keys):
            names = self._router.start(
                deployment.route,
                name,
                model.model,
                model.version,
                records,
                predictions,
                keys,
            )
        results = [RecordResult(p, n) for p, n in zip(predictions, names, strict=True)]
        return Invocation(deployment, results)

    def refresh(self, name: str) -> Deployment:
        """Check the endpoint now and swap if its target changed; returns the current one."""
        slot = self._slots.get(name)
        if slot is None:
            return self._open(name).current
        self._check(name, slot)
        return slot.current

    def close(self) -> None:
        self._checker.shutdown(wait=True, cancel_futures=True)

    def _open(self, name: str) -> _Slot:
        with self._open_lock:
            slot = self._slots.get(name)
            if slot is None:
                endpoint = self._endpoints.describe(name)
                slot = _Slot(self._build(endpoint, None, None), self._monotonic())
                self._slots[name] = slot
            return slot

    def _schedule(self, name: str, slot: _Slot) -> None:
        with slot.lock:
            if slot.refreshing:
                return
            slot.refreshing = True
        try:
            self._checker.submit(self._check_quietly, name, slot)
        except RuntimeError:  # shut down: keep serving what is loaded
            slot.refreshing = False

    def _check_quietly(self, name: str, slot: _Slot) -> None:
        try:
            self._check(name, slot)
        except ClosedloopError as exc:
            logger.warning(
                "endpoint %s: could not check for a new model: %s", name, exc.message
            )
        finally:
            slot.checked_at = self._monotonic()
            slot.refreshing = False

    def _check(self, name: str, slot: _Slot) -> None:
        try:
            endpoint = self._endpoints.describe(name)
        except NotFoundError:
            self._slots.pop(name, None)
            logger.info("endpoint %s was deleted; it no longer serves", name)
            return
        current = slot.current
        version = self._target_version(endpoint, current)
        same_model = (endpoint.model, version) == (
            current.model.model,
            current.model.version,
        )
        if same_model and endpoint.flow_name == current.endpoint.flow_name:
            return
        slot.current = self._build(endpoint, current if same_model else None, version)
        logger.info(
            "endpoint %s now serves %s version %d (was version %d)",
            name,
            endpoint.model,
            slot.current.model.version,
            current.model.version,
        )

    def _target_version(self, endpoint: EndpointInfo, current: Deployment) -> int:
        if endpoint.alias is None:
            return int(endpoint.ref)
        version = self._registry.alias_version(endpoint.model, endpoint.alias)
        if version is None:
            logger.warning(
                "endpoint %s: alias @%s of model %s is unset; keeping version %d",
                endpoint.name,
                endpoint.alias,
                endpoint.model,
                current.model.version,
            )
            return current.model.version
        return version

    def _build(
        self, endpoint: EndpointInfo, reuse: Deployment | None, version: int | None
    ) -> Deployment:
        route = self._route(endpoint.flow_name)
        if reuse is not None:
            return Deployment(endpoint, reuse.model, route, reuse.predictor)
        ref = endpoint.registry_ref if version is None else version
        model = self._registry.load(endpoint.model, ref)
        return Deployment(endpoint, model, route, self._predictor(model))

    def _predictor(self, model: LoadedModelLike) -> Callable[[Sequence[Any]], Any]:
        """The version's ONNX file when it has one and onnxruntime is here, else the estimator."""
        try:
            data = self._registry.read_onnx(model.model, model.version)
            predictor: Callable[[Sequence[Any]], Any] = _OnnxPredictor(
                _onnx_session(data), model
            )
        except NotFoundError:
            return _FramePredictor(model)
        except ImportError:
            logger.info("onnxruntime is not installed; serving through the estimator")
            return _FramePredictor(model)
        logger.info("serving %s version %d through ONNX", model.model, model.version)
        return predictor

    def _route(self, flow_name: str | None) -> Route | None:
        if flow_name is None:
            return None
        flow = self._flows.describe(flow_name)
        return Route(flow.name, flow.arn, flow.activation_conditions)
