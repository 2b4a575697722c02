"""Training runs: fit a trainer on a dataset version, score it, register it, record it all."""

from __future__ import annotations

import logging
import platform
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
from sqlalchemy import select

from closedloop.core.context import Context
from closedloop.datasets import Datasets, DatasetVersion, split
from closedloop.errors import NotFoundError, ValidationError
from closedloop.evaluation import (
    Evaluation,
    Evaluator,
    PromotionPolicy,
    classification_metrics,
)
from closedloop.registry import (
    ModelVersion,
    Registry,
    infer_feature_dtypes,
    prepare_features,
)
from closedloop.store.models_ml import TrainingRunRow
from closedloop.training.trainers import TrainingData, fit_trainer, resolve_trainer
from closedloop.training.weights import WeightPolicy, sample_weights

__all__ = ["LIBRARIES", "Training", "TrainingRun", "weight_policy"]

logger = logging.getLogger(__name__)
LIBRARIES = (
    "scikit-learn",
    "numpy",
    "pandas",
    "scipy",
    "skops",
    "skl2onnx",
    "onnxruntime",
)
_ONNX_CHECK_ROWS = 50


@dataclass(frozen=True)
class TrainingRun:
    """What a run recorded; ``model_version`` is set once the fit is registered."""

    run_id: str
    model: str
    status: str
    dataset: str
    dataset_id: str
    trainer: str
    params: dict[str, Any]
    seed: int
    library_versions: dict[str, str]
    metrics: dict[str, Any]
    artifact_hashes: dict[str, str]
    model_version: int | None
    duration_seconds: float | None
    failure: str | None
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        value = asdict(self)
        value["created_at"] = self.created_at.isoformat()
        return value


def weight_policy(params: dict[str, Any]) -> WeightPolicy:
    """Take ``half_life_days`` (a number, or "none") and ``human_weight`` out of ``params``."""
    half_life = params.pop("half_life_days", WeightPolicy.half_life_days)
    human = params.pop("human_weight", WeightPolicy.human_weight)
    if isinstance(half_life, str) and half_life.lower() in ("none", "off"):
        half_life = None
    try:
        return WeightPolicy(
            None if half_life is None else float(half_life), float(human)
        )
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"half_life_days and human_weight must be numbers; got {half_life!r} and {human!r}",
            "params",
        ) from exc


def library_versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


class Training:
    """Trains, records runs, and evaluates challengers against the champion."""

    def __init__(self, ctx: Context, datasets: Datasets, registry: Registry) -> None:
        self._ctx = ctx
        self._datasets = datasets
        self._registry = registry
        self._evaluator = Evaluator(ctx, datasets, registry)

    def train(
        self,
        model_name: str,
        dataset_ref: str,
        trainer: str = "tabular",
        params: dict[str, Any] | None = None,
        seed: int = 0,
    ) -> TrainingRun:
        """Fit ``trainer`` on the training rows of ``dataset_ref`` and register the result.

        ``params`` go to the trainer, except ``half_life_days`` and
        ``human_weight``, which set the sample weights (defaults 14 days and 5x).
        """
        fit = resolve_trainer(trainer)
        options = dict(params or {})
        weights = weight_policy(options)
        dataset = self._datasets.get(dataset_ref)
        frame = self._datasets.read(dataset)
        parts = split(frame, seed=seed)
        _check_split(dataset, parts.train, parts.holdout)
        columns = _feature_columns(dataset)
        dtypes = infer_feature_dtypes(frame, columns)
        data = TrainingData(
            dataset=dataset,
            X=prepare_features(parts.train, columns, dtypes),
            y=parts.train[dataset.label_column].astype(str),
            sample_weight=sample_weights(parts.train, weights),
            feature_dtypes=dtypes,
        )
        run_id = self._start(model_name, dataset, trainer, params or {}, seed)
        try:
            started = time.perf_counter()
            estimator = fit_trainer(fit, trainer, data, options, seed)
            duration = time.perf_counter() - started
            holdout = prepare_features(parts.holdout, columns, dtypes)
            truth = (
                parts.holdout[dataset.label_column].astype(str).to_numpy(dtype=object)
            )
            classes = [str(c) for c in estimator.classes_]
            metrics = classification_metrics(
                truth, estimator.predict_proba(holdout), classes
            )
            version = self._registry.register(
                model_name,
                estimator,
                dataset=dataset,
                run_id=run_id,
                metrics=metrics,
                feature_columns=columns,
                feature_dtypes=dtypes,
                sample=holdout.head(_ONNX_CHECK_ROWS),
                source_loops=_loops(parts.train),
                holdout_loops=_loops(parts.holdout),
            )
        except Exception as exc:
            self._fail(run_id, getattr(exc, "message", None) or repr(exc))
            raise
        return self._finish(run_id, version, metrics, duration)

    def evaluate(
        self,
        model: str,
        version: int,
        against: str = "production",
        *,
        policy: PromotionPolicy | None = None,
        out: str | Path | None = None,
    ) -> Evaluation:
        """Challenger ``model:version`` against ``against`` (an alias, or a version number)."""
        return self._evaluator.evaluate(model, version, against, policy=policy, out=out)

    def get_run(self, run_id: str) -> TrainingRun:
        with self._ctx.db.read() as session:
            row = session.get(TrainingRunRow, run_id)
            if row is None:
                raise NotFoundError(f"training run {run_id!r} does not exist")
            return _to_run(row)

    def list_runs(self, model: str | None = None) -> list[TrainingRun]:
        """Runs, oldest first (of ``model`` only, when given)."""
        query = select(TrainingRunRow).order_by(TrainingRunRow.created_at)
        if model is not None:
            query = query.where(TrainingRunRow.model == model)
        with self._ctx.db.read() as session:
            return [_to_run(r) for r in session.scalars(query).all()]

    def _start(
        self,
        model: str,
        dataset: DatasetVersion,
        trainer: str,
        params: dict[str, Any],
        seed: int,
    ) -> str:
        run_id = uuid.uuid4().hex
        with self._ctx.db.write() as session:
            session.add(
                TrainingRunRow(
                    id=run_id,
                    model=model,
                    status="InProgress",
                    dataset=dataset.ref,
                    dataset_id=dataset.id,
                    trainer=trainer,
                    params=_json(params),
                    seed=seed,
                    library_versions=_json(library_versions()),
                    metrics="{}",
                    artifact_hashes="{}",
                    created_at=self._ctx.clock(),
                )
            )
        logger.info("training run started: %s (%s on %s)", run_id, trainer, dataset.ref)
        return run_id

    def _fail(self, run_id: str, message: str) -> None:
        with self._ctx.db.write() as session:
            row = session.get(TrainingRunRow, run_id)
            if row is not None:
                row.status, row.failure = "Failed", message
        logger.warning("training run failed: %s: %s", run_id, message)

    def _finish(
        self,
        run_id: str,
        version: ModelVersion,
        metrics: dict[str, Any],
        duration: float,
    ) -> TrainingRun:
        hashes = {"model.skops": version.sha256}
        if version.onnx_sha256 is not None:
            hashes["model.onnx"] = version.onnx_sha256
        with self._ctx.db.write() as session:
            row = session.get(TrainingRunRow, run_id)
            if row is None:
                raise NotFoundError(f"training run {run_id!r} does not exist")
            row.status = "Completed"
            row.metrics = _json(metrics)
            row.artifact_hashes = _json(hashes)
            row.model_version = version.version
            row.duration_seconds = duration
            run = _to_run(row)
        logger.info("training run completed: %s -> %s", run_id, version.ref)
        return run


def _check_split(
    dataset: DatasetVersion, train: pd.DataFrame, holdout: pd.DataFrame
) -> None:
    if train.empty or holdout.empty:
        raise ValidationError(
            f"dataset {dataset.ref} is too small to split into training and held-out rows; "
            f"got {len(train)} and {len(holdout)}",
            "dataset",
        )
    if train[dataset.label_column].nunique() < 2:
        raise ValidationError(
            f"dataset {dataset.ref} must have at least 2 labels among its training rows",
            "dataset",
        )


def _feature_columns(dataset: DatasetVersion) -> list[str]:
    """The dataset's feature columns less its time column, which says when, not what."""
    time_column = dataset.manifest.get("time_column")
    return [c for c in dataset.feature_columns if c != time_column]


def _loops(frame: pd.DataFrame) -> list[str]:
    if "_human_loop_name" not in frame.columns:
        return []
    return sorted({str(name) for name in frame["_human_loop_name"].dropna()})


def _to_run(row: TrainingRunRow) -> TrainingRun:
    return TrainingRun(
        run_id=row.id,
        model=row.model,
        status=row.status,
        dataset=row.dataset,
        dataset_id=row.dataset_id,
        trainer=row.trainer,
        params=orjson.loads(row.params),
        seed=row.seed,
        library_versions=orjson.loads(row.library_versions),
        metrics=orjson.loads(row.metrics),
        artifact_hashes=orjson.loads(row.artifact_hashes),
        model_version=row.model_version,
        duration_seconds=row.duration_seconds,
        failure=row.failure,
        created_at=row.created_at,
    )


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY, default=str).decode()
