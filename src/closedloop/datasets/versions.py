"""Dataset versions: Parquet data plus a manifest, kept in the object store.

A version is never changed after it is written. Its id is the first 16 hex
digits of the SHA-256 of its Parquet file, and its manifest records the parent
version, the human loops whose labels it took, the count each rule took, the
file hashes, the schema and the creation time. Versions also carry a number
(1, 2, ...) per dataset, so ``fraud:3`` and ``fraud:4f1c...`` both name one.

Layout: ``s3://closedloop-datasets/<name>/<number>-<id>/{data.parquet,manifest.json}``.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from closedloop.core.context import Context
from closedloop.errors import ConflictError, NotFoundError, StoreError, ValidationError
from closedloop.store.objects import STORAGE_ERRORS, filesystem_for

__all__ = [
    "PROVENANCE_COLUMNS",
    "DatasetDiff",
    "DatasetVersion",
    "Datasets",
    "Split",
    "split",
]

logger = logging.getLogger(__name__)
BUCKET = "s3://closedloop-datasets"
SOURCE, LOOP, CONFIDENCE, AGREEMENT, LABELLED_AT, VERSION = (
    "_source",
    "_human_loop_name",
    "_label_confidence",
    "_agreement",
    "_labelled_at",
    "_version",
)
PROVENANCE_COLUMNS = (SOURCE, LOOP, CONFIDENCE, AGREEMENT, LABELLED_AT, VERSION)
_NAME = re.compile(r"[a-z0-9](-?[a-z0-9]){0,62}")


@dataclass(frozen=True)
class DatasetVersion:
    """One immutable version; ``manifest`` is what manifest.json holds."""

    name: str
    number: int
    id: str
    manifest: dict[str, Any]
    uri: str

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.number}"

    @property
    def label_column(self) -> str:
        return str(self.manifest["label_column"])

    @property
    def id_column(self) -> str:
        return str(self.manifest["id_column"])

    @property
    def feature_columns(self) -> list[str]:
        skip = {self.label_column, self.id_column, *PROVENANCE_COLUMNS}
        skip.update(self.manifest.get("ignore_columns", []))
        return [c["name"] for c in self.manifest["schema"] if c["name"] not in skip]


@dataclass(frozen=True)
class Split:
    """Rows to train on and the held-out rows: the newest human-verified ones plus a base test slice."""

    train: pd.DataFrame
    holdout: pd.DataFrame


@dataclass(frozen=True)
class DatasetDiff:
    added: list[str]
    removed: list[str]
    relabelled: list[tuple[str, str, str]] = field(default_factory=list)


class Datasets:
    """Import, merge, list, show and diff dataset versions."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def import_file(
        self,
        name: str,
        path: str,
        *,
        label: str,
        id_column: str | None = None,
        time_column: str | None = None,
    ) -> DatasetVersion:
        """Make a base version from a CSV or Parquet file."""
        _check_name(name)
        if self.versions(name):
            raise ConflictError(
                f"dataset {name!r} already exists; add rows with `closedloop data merge`"
            )
        frame = _read_table(path)
        _require_column(frame, label, "--label")
        if id_column is None:
            id_column = "row_id"
            frame.insert(0, id_column, [f"row-{i}" for i in range(len(frame))])
        _require_column(frame, id_column, "--id")
        frame[id_column] = frame[id_column].astype(str)
        duplicated = frame[id_column][frame[id_column].duplicated()]
        if not duplicated.empty:
            raise ValidationError(
                f"--id column {id_column!r} must be unique; {duplicated.iloc[0]!r} repeats",
                "id",
            )
        if frame[label].isna().any():
            raise ValidationError(
                f"--label column {label!r} has {int(frame[label].isna().sum())} empty values",
                "label",
            )
        frame[label] = frame[label].astype(str)
        now = self._ctx.clock()
        labelled_at = _times(frame, time_column, now)
        frame[SOURCE] = "base"
        frame[LOOP] = None
        frame[CONFIDENCE] = 1.0
        frame[AGREEMENT] = 1.0
        frame[LABELLED_AT] = labelled_at
        frame[VERSION] = 1
        manifest: dict[str, Any] = {
            "parent": None,
            "source_file": str(path),
            "label_column": label,
            "id_column": id_column,
            "time_column": time_column,
            "source_loops": [],
            "counts": {"base_rows": len(frame)},
        }
        return self._write(name, 1, frame, manifest)

    def merge(
        self, name: str, feedback_path: str, *, parent: str | None = None
    ) -> DatasetVersion:
        """The next version: accepted human labels added, replacing older labels of the same id."""
        base = self.get(parent or name)
        frame = self.read(base)
        feedback = _read_table(feedback_path)
        for column in ("item_id", "input", "label", "status", "human_loop_name"):
            _require_column(feedback, column, "feedback table")
        accepted = feedback[feedback["status"] == "accepted"]
        number = self.latest(name).number + 1
        rows = _human_rows(accepted, base, self._ctx.clock(), number)
        replaced = frame[base.id_column].isin(rows[base.id_column])
        relabelled = int(replaced.sum())
        merged = pd.concat([frame[~replaced], rows], ignore_index=True)
        manifest = {
            "parent": base.id,
            "parent_number": base.number,
            "source_file": str(feedback_path),
            "label_column": base.label_column,
            "id_column": base.id_column,
            "time_column": base.manifest.get("time_column"),
            "source_loops": sorted(set(rows[LOOP].dropna())),
            "counts": {
                "feedback_rows": len(feedback),
                "accepted": len(accepted),
                "not_accepted": len(feedback) - len(accepted),
                "added": len(rows) - relabelled,
                "relabelled": relabelled,
            },
        }
        return self._write(name, number, merged, manifest)

    def _write(
        self, name: str, number: int, frame: pd.DataFrame, manifest: dict[str, Any]
    ) -> DatasetVersion:
        buffer = io.BytesIO()
        table = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(table, buffer, compression="zstd")
        data = buffer.getvalue()
        digest = hashlib.sha256(data).hexdigest()
        version_id = digest[:16]
        prefix = f"{BUCKET}/{name}/{number:06d}-{version_id}"
        manifest.update(
            {
                "name": name,
                "number": number,
                "id": version_id,
                "created_at": self._ctx.clock().isoformat(),
                "rows": len(frame),
                "files": {"data.parquet": {"sha256": digest, "bytes": len(data)}},
                "schema": [{"name": f.name, "type": str(f.type)} for f in table.schema],
            }
        )
        self._ctx.objects.write_atomic(f"{prefix}/data.parquet", data)
        self._ctx.objects.write_atomic(
            f"{prefix}/manifest.json",
            orjson.dumps(manifest, option=orjson.OPT_INDENT_2),
        )
        logger.info(
            "dataset version written: %s:%d (%s, %d rows)",
            name,
            number,
            version_id,
            len(frame),
        )
        return DatasetVersion(name, number, version_id, manifest, prefix)

    def versions(self, name: str) -> list[DatasetVersion]:
        """Every version of ``name``, oldest first."""
        _check_name(name)
        result = []
        for path in sorted(self._ctx.objects.list_prefix(f"{BUCKET}/{name}/")):
            if path.endswith("/manifest.json"):
                uri = path.rsplit("/", 1)[0]
                manifest = orjson.loads(self._ctx.objects.read(path))
                result.append(
                    DatasetVersion(
                        name, manifest["number"], manifest["id"], manifest, uri
                    )
                )
        return result

    def names(self) -> list[str]:
        return sorted(
            {
                p.split("/")[3]
                for p in self._ctx.objects.list_prefix(f"{BUCKET}/")
                if p.endswith("manifest.json")
            }
        )

    def latest(self, name: str) -> DatasetVersion:
        versions = self.versions(name)
        if not versions:
            raise NotFoundError(
                f"dataset {name!r} has no versions; make one with `closedloop data import`"
            )
        return versions[-1]

    def get(self, ref: str) -> DatasetVersion:
        """``NAME`` (latest), ``NAME:NUMBER`` or ``NAME:ID-PREFIX``."""
        name, _, which = ref.partition(":")
        if not which:
            return self.latest(name)
        for version in self.versions(name):
            if which == str(version.number) or (
                len(which) >= 4 and version.id.startswith(which)
            ):
                return version
        raise NotFoundError(f"dataset version {ref!r} does not exist")

    def diff(self, old_ref: str, new_ref: str) -> DatasetDiff:
        old, new = self.get(old_ref), self.get(new_ref)
        a, b = self.read(old), self.read(new)
        key, label = old.id_column, old.label_column
        left = dict(zip(a[key], a[label], strict=True))
        right = dict(zip(b[key], b[label], strict=True))
        relabelled = [
            (k, left[k], right[k]) for k in right if k in left and left[k] != right[k]
        ]
        return DatasetDiff(
            sorted(set(right) - set(left)),
            sorted(set(left) - set(right)),
            sorted(relabelled),
        )

    def read(self, version: DatasetVersion) -> pd.DataFrame:
        """The rows of ``version``; refused when the file does not match the manifest's hash."""
        data = self._ctx.objects.read(f"{version.uri}/data.parquet")
        expected = version.manifest["files"]["data.parquet"]["sha256"]
        if hashlib.sha256(data).hexdigest() != expected:
            raise StoreError(
                f"dataset {version.ref}: data.parquet does not match its manifest's SHA-256; refusing to read it"
            )
        return pq.read_table(io.BytesIO(data)).to_pandas()


def split(
    frame: pd.DataFrame,
    *,
    holdout_human: float = 0.3,
    holdout_base: float = 0.2,
    seed: int = 0,
) -> Split:
    """Hold out the newest human-verified rows (by label time) and a random slice of base rows."""
    human = frame[frame[SOURCE] == "human"].sort_values(LABELLED_AT, kind="stable")
    base = frame[frame[SOURCE] != "human"]
    newest = human.tail(round(len(human) * holdout_human))
    base_test = base.sample(frac=holdout_base, random_state=seed) if len(base) else base
    held = pd.concat([newest, base_test])
    return Split(frame.drop(index=held.index), held)


def _human_rows(
    accepted: pd.DataFrame, base: DatasetVersion, now: datetime, number: int
) -> pd.DataFrame:
    features = [_features(text) for text in accepted["input"]]
    rows = pd.DataFrame(features)
    unknown = sorted(set(rows.columns) - set(base.feature_columns))
    rows = rows.drop(columns=unknown)
    rows[base.id_column] = accepted["item_id"].astype(str).to_numpy()
    rows[base.label_column] = accepted["label"].astype(str).to_numpy()
    rows[SOURCE] = "human"
    rows[LOOP] = accepted["human_loop_name"].to_numpy()
    rows[CONFIDENCE] = accepted.get(
        "confidence", pd.Series([1.0] * len(accepted))
    ).to_numpy()
    rows[AGREEMENT] = accepted.get(
        "agreement", pd.Series([1.0] * len(accepted))
    ).to_numpy()
    rows[LABELLED_AT] = pd.Timestamp(now)
    rows[VERSION] = number
    return rows.drop_duplicates(subset=[base.id_column], keep="last")


def _features(text: str) -> dict[str, Any]:
    """The features of a loop's input: its ``features`` object, or the input less the prediction."""
    value = orjson.loads(text) if isinstance(text, str) else {}
    if isinstance(value.get("features"), dict):
        return dict(value["features"])
    return {k: v for k, v in value.items() if k not in ("prediction", "id")}


_READ_ERRORS: tuple[type[Exception], ...] = (*STORAGE_ERRORS, ValueError)


def _read_table(path: str) -> pd.DataFrame:
    """A CSV or Parquet file, local or at an fsspec URL.

    Read through fsspec, as the object store writes: pandas alone would read
    ``s3://`` with pyarrow's own client, which ignores fsspec's settings
    (``FSSPEC_S3``) and so may look for the bucket somewhere else.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ValidationError(
            f"file must end in .csv or .parquet; got {path!r}", "path"
        )
    fs, target = filesystem_for(path, "path")
    try:
        with fs.open(target, "rb") as file:
            if suffix == ".parquet":
                return pd.read_parquet(file)
            return pd.read_csv(file)
    except _READ_ERRORS as exc:
        raise ValidationError(f"could not read {path!r}: {exc}", "path") from exc


def _require_column(frame: pd.DataFrame, column: str, flag: str) -> None:
    if column not in frame.columns:
        raise ValidationError(
            f"{flag} names column {column!r}, which is not in the file; columns: {', '.join(map(str, frame.columns))}",
            flag,
        )


def _times(frame: pd.DataFrame, time_column: str | None, now: datetime) -> pd.Series:
    if time_column is None:
        return pd.Series([pd.Timestamp(now)] * len(frame), index=frame.index)
    _require_column(frame, time_column, "--time")
    try:
        return pd.to_datetime(frame[time_column], utc=True)
    except (ValueError, TypeError) as exc:
        raise ValidationError(
            f"--time column {time_column!r} must hold dates or times: {exc}", "time"
        ) from exc


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise ValidationError(
            f"dataset name must be 1-63 lower-case letters, digits and single hyphens; got {name!r}",
            "name",
        )
