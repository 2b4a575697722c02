"""Batch transform: run one model version over a CSV or Parquet file, in chunks."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from closedloop.errors import ValidationError
from closedloop.serving.endpoints import LoadedModelLike
from closedloop.serving.routing import Route, Router
from closedloop.serving.runtime import predict

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "FORMATS",
    "BatchReport",
    "Routing",
    "count_rows",
    "predict_file",
]

logger = logging.getLogger(__name__)
DEFAULT_CHUNK_ROWS = 10_000
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
LABEL_COLUMN = "predicted_label"
CONFIDENCE_COLUMN = "confidence"
VERSION_COLUMN = "model_version"
LOOP_COLUMN = "human_loop_name"


@dataclass(frozen=True)
class BatchReport:
    rows: int
    model: str
    version: int
    loops_started: int


@dataclass(frozen=True)
class Routing:
    """What ``--route`` needs: the router, the endpoint's route and name."""

    router: Router
    route: Route
    endpoint: str


def file_format(path: Path, flag: str) -> str:
    found = FORMATS.get(path.suffix.lower())
    if found is None:
        raise ValidationError(
            f"{flag} must end in .csv, .parquet or .pq; got {str(path)!r}", flag
        )
    return found


def count_rows(path: Path) -> int:
    """Rows in the file: Parquet's metadata, or a count of CSV lines (for progress)."""
    if file_format(path, "--input") == "parquet":
        return int(pq.ParquetFile(path).metadata.num_rows)
    with path.open("rb") as handle:
        lines = sum(
            block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b"")
        )
    return max(lines - 1, 0)


def predict_file(
    model: LoadedModelLike,
    source: Path,
    target: Path,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    routing: Routing | None = None,
    progress: Callable[[int], None] | None = None,
) -> BatchReport:
    """Write every input row with its label, class probabilities and model version."""
    if chunk_rows < 1:
        raise ValidationError(
            f"--chunk-rows must be at least 1; got {chunk_rows}", "--chunk-rows"
        )
    if not source.is_file():
        raise ValidationError(
            f"--input must be an existing file; got {str(source)!r}", "--input"
        )
    writer = _Writer(target, file_format(target, "--output"))
    rows = loops = 0
    try:
        for start, chunk in _chunks(source, chunk_rows):
            out, started = _transform(model, chunk, start, routing)
            writer.write(out)
            rows += len(chunk)
            loops += started
            if progress is not None:
                progress(len(chunk))
    finally:
        writer.close()
    logger.info(
        "batch transform: %d rows of %s through %s version %d",
        rows,
        source,
        model.model,
        model.version,
    )
    return BatchReport(rows, model.model, model.version, loops)


def _chunks(source: Path, chunk_rows: int) -> Iterator[tuple[int, pd.DataFrame]]:
    start = 0
    if file_format(source, "--input") == "parquet":
        for batch in pq.ParquetFile(source).iter_batches(batch_size=chunk_rows):
            frame = batch.to_pandas()
            yield start, frame
            start += len(frame)
        return
    with pd.read_csv(source, chunksize=chunk_rows) as reader:
        for frame in reader:
            yield start, frame
            start += len(frame)


def _transform(
    model: LoadedModelLike, chunk: pd.DataFrame, start: int, routing: Routing | None
) -> tuple[pd.DataFrame, int]:
    features = _features(model, chunk, start)
    predictions = predict(model, features)
    out = chunk.copy()
    out[LABEL_COLUMN] = [p.label for p in predictions]
    out[CONFIDENCE_COLUMN] = [p.confidence for p in predictions]
    for name in model.classes:
        out[f"probability_{name}"] = [p.probabilities[str(name)] for p in predictions]
    out[VERSION_COLUMN] = model.version
    if routing is None:
        return out, 0
    records = _records(features)
    keys = routing.router.decide(routing.route, records, predictions)
    names = routing.router.start(
        routing.route,
        routing.endpoint,
        model.model,
        model.version,
        records,
        predictions,
        keys,
    )
    out[LOOP_COLUMN] = names
    return out, sum(1 for name in names if name is not None)


def _features(model: LoadedModelLike, chunk: pd.DataFrame, start: int) -> pd.DataFrame:
    """The model's columns, checked: present, numbers where it needs numbers."""
    columns = model.feature_columns
    missing = [c for c in columns if c not in chunk.columns]
    if missing:
        raise ValidationError(
            f"--input is missing feature column {missing[0]!r}; the model takes {columns!r}",
            missing[0],
        )
    features = chunk[columns].copy()
    for column in columns:
        if model.feature_dtypes.get(column, "number") == "number":
            _check_numbers(features[column], column, start)
        else:
            features[column] = features[column].astype("string").astype(object)
    return features


def _check_numbers(values: pd.Series, column: str, start: int) -> None:
    numeric = pd.to_numeric(values, errors="coerce")
    bad = numeric.isna() & values.notna()
    if pd.api.types.is_bool_dtype(values) or bad.any():
        index = int(bad.to_numpy().argmax()) if bad.any() else 0
        value: Any = values.iloc[index]
        raise ValidationError(
            f"feature column {column!r} must hold numbers; row {start + index + 1} has {value!r}",
            column,
        )


def _records(features: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {str(k): (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in features.to_dict(orient="records")
    ]


class _Writer:
    """Appends chunks to a CSV file or a Parquet file, creating it on the first."""

    def __init__(self, target: Path, kind: str) -> None:
        self._target = target
        self._kind = kind
        self._parquet: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        self._started = False

    def write(self, frame: pd.DataFrame) -> None:
        if self._kind == "csv":
            frame.to_csv(
                self._target,
                mode="a" if self._started else "w",
                header=not self._started,
                index=False,
            )
        else:
            table = pa.Table.from_pandas(
                frame, schema=self._schema, preserve_index=False
            )
            if self._parquet is None:
                self._schema = table.schema
                self._parquet = pq.ParquetWriter(self._target, table.schema)
            self._parquet.write_table(table)
        self._started = True

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
