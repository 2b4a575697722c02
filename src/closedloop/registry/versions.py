"""The model registry: versions with lineage and approval, aliases with history, verified loading.

Artifacts live at ``s3://closedloop-models/<model>/<sha256[:16]>/model.{skops,onnx}``
and are written before the version's row, so a row never names a missing file.
"""

from __future__ import annotations

import builtins
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import orjson
import pandas as pd
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session

from closedloop.core.context import Context
from closedloop.datasets import Datasets, DatasetVersion
from closedloop.errors import ConflictError, NotFoundError, StoreError, ValidationError
from closedloop.registry.artifacts import dump_skops, load_skops, sha256_hex, to_onnx
from closedloop.store.models_ml import (
    ModelAliasHistoryRow,
    ModelAliasRow,
    ModelVersionRow,
)

__all__ = [
    "APPROVED",
    "BUCKET",
    "PENDING",
    "REJECTED",
    "LoadedModel",
    "ModelVersion",
    "Registry",
    "infer_feature_dtypes",
    "prepare_features",
]

logger = logging.getLogger(__name__)
BUCKET = "s3://closedloop-models"
PENDING, APPROVED, REJECTED = "PendingManualApproval", "Approved", "Rejected"
_NAME = re.compile(r"[a-z0-9](-?[a-z0-9]){0,62}")
_LOOP_COLUMN = "_human_loop_name"


@dataclass(frozen=True)
class ModelVersion:
    """One registered version as the registry records it.

    ``source_loops`` are the human loops whose rows it was trained on;
    ``holdout_loops`` those whose rows were held out to score it.
    """

    model: str
    version: int
    status: str
    dataset: str
    run_id: str
    aliases: tuple[str, ...]
    created_at: datetime
    metrics: dict[str, Any]
    artifact_uri: str
    sha256: str
    onnx_uri: str | None
    classes: tuple[str, ...]
    feature_columns: tuple[str, ...]
    source_loops: tuple[str, ...]
    onnx_sha256: str | None = None
    feature_dtypes: dict[str, str] = field(default_factory=dict)
    holdout_loops: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.model}:{self.version}"


@dataclass
class LoadedModel:
    """A verified, loaded version; ``predict_proba`` columns follow ``classes``."""

    model: str
    version: int
    classes: list[str]
    feature_columns: list[str]
    feature_dtypes: dict[str, str]
    estimator: Any = field(default=None, repr=False)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.feature_columns if c not in frame.columns]
        if missing:
            raise ValidationError(
                f"model {self.model}:{self.version} needs feature columns {missing!r}; got {list(frame.columns)!r}",
                "features",
            )
        features = prepare_features(frame, self.feature_columns, self.feature_dtypes)
        return np.asarray(self.estimator.predict_proba(features), dtype=float)

    def predict(self, frame: pd.DataFrame) -> list[str]:
        proba = self.predict_proba(frame)
        return [self.classes[i] for i in proba.argmax(axis=1)]


def infer_feature_dtypes(frame: pd.DataFrame, columns: list[str]) -> dict[str, str]:
    """``number`` for numeric (and boolean) columns, ``string`` for everything else."""
    return {
        c: "number" if pd.api.types.is_numeric_dtype(frame[c]) else "string"
        for c in columns
    }


def prepare_features(
    frame: pd.DataFrame, columns: list[str], dtypes: dict[str, str]
) -> pd.DataFrame:
    """The model's input: numbers as float (NaN when missing), strings as str ("" when missing)."""
    out = pd.DataFrame(index=frame.index)
    for column in columns:
        if dtypes[column] == "number":
            values = pd.to_numeric(frame[column], errors="coerce")
            out[column] = values.astype(float)
        else:
            text = frame[column].astype(object).where(frame[column].notna(), "")
            out[column] = text.astype(str).astype(object)
    return out


class Registry:
    """Register, look up, approve, promote, roll back and load model versions."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def register(
        self,
        model: str,
        estimator: Any,
        *,
        dataset: DatasetVersion,
        run_id: str,
        metrics: dict[str, Any],
        feature_columns: list[str],
        feature_dtypes: dict[str, str],
        sample: pd.DataFrame | None = None,
        source_loops: list[str] | None = None,
        holdout_loops: list[str] | None = None,
    ) -> ModelVersion:
        """Save the estimator (skops, and ONNX where it converts) and record a new version.

        ``sample`` (a few prepared feature rows) lets the ONNX file be kept only
        when its probabilities match the estimator's. ``source_loops`` are the
        human loops whose rows the estimator was trained on (by default every loop
        in the dataset's ``_human_loop_name`` column); ``holdout_loops`` those
        whose rows were held out to score it (by default none).
        """
        _check_name(model)
        _check_features(feature_columns, feature_dtypes)
        classes = [str(c) for c in getattr(estimator, "classes_", [])]
        if not classes:
            raise ValidationError(
                f"estimator must be fitted and expose classes_; got {type(estimator).__name__}",
                "estimator",
            )
        data = dump_skops(estimator)
        digest = sha256_hex(data)
        prefix = f"{BUCKET}/{model}/{digest[:16]}"
        self._ctx.objects.write_atomic(f"{prefix}/model.skops", data)
        onnx = to_onnx(estimator, feature_columns, feature_dtypes, sample)
        if onnx is not None:
            self._ctx.objects.write_atomic(f"{prefix}/model.onnx", onnx)
        row = ModelVersionRow(
            model=model,
            status=PENDING,
            dataset=dataset.ref,
            run_id=run_id,
            created_at=self._ctx.clock(),
            metrics=_json(metrics),
            artifact_uri=f"{prefix}/model.skops",
            sha256=digest,
            onnx_uri=None if onnx is None else f"{prefix}/model.onnx",
            onnx_sha256=None if onnx is None else sha256_hex(onnx),
            classes=_json(classes),
            feature_columns=_json(feature_columns),
            feature_dtypes=_json(feature_dtypes),
            source_loops=_json(
                sorted(source_loops)
                if source_loops is not None
                else self._loops(dataset)
            ),
            holdout_loops=_json(sorted(holdout_loops or [])),
        )
        version = self._insert(row)
        logger.info(
            "model version registered: %s:%d (%s)", model, version.version, digest[:16]
        )
        return version

    def _loops(self, dataset: DatasetVersion) -> list[str]:
        frame = Datasets(self._ctx).read(dataset)
        if _LOOP_COLUMN not in frame.columns:
            return []
        return sorted({str(name) for name in frame[_LOOP_COLUMN].dropna()})

    def _insert(self, row: ModelVersionRow) -> ModelVersion:
        for _attempt in range(5):
            try:
                with self._ctx.db.write() as session:
                    latest = session.scalar(
                        select(func.max(ModelVersionRow.version)).where(
                            ModelVersionRow.model == row.model
                        )
                    )
                    row.version = (latest or 0) + 1
                    session.add(row)
                    session.flush()
                    return _to_version(row, ())
            except StoreError as exc:
                # Two registrations raced for the same number; take the next one.
                if not isinstance(exc.__cause__, IntegrityError):
                    raise
                row = _copy(row)
        raise ConflictError(
            f"could not number a new version of model {row.model!r}; retry"
        )

    def get(self, model: str, ref: str | int | None = None) -> ModelVersion:
        """A version by number, ``"@alias"``, or the latest when ``ref`` is None."""
        with self._ctx.db.read() as session:
            row = _find(session, model, ref)
            return _to_version(row, _aliases_of(session, model, row.version))

    def list(
        self,
        model: str | None = None,
        *,
        source_loop: str | None = None,
        holdout_loop: str | None = None,
    ) -> list[ModelVersion]:
        """Every version (of ``model``, or of all models), by model then version.

        ``source_loop`` keeps the versions trained on rows from that human loop;
        ``holdout_loop`` those scored on its rows, held out from their training.
        """
        with self._ctx.db.read() as session:
            query = select(ModelVersionRow).order_by(
                ModelVersionRow.model, ModelVersionRow.version
            )
            if model is not None:
                query = query.where(ModelVersionRow.model == model)
            # TODO(a (version, loop, role) table filled at register): query it by index.
            # Until then LIKE reads every row.
            if source_loop is not None:
                query = query.where(_names(ModelVersionRow.source_loops, source_loop))
            if holdout_loop is not None:
                query = query.where(_names(ModelVersionRow.holdout_loops, holdout_loop))
            rows = session.scalars(query).all()
            aliases = session.scalars(select(ModelAliasRow)).all()
        by_version: dict[tuple[str, int], list[str]] = {}
        for alias in sorted(aliases, key=lambda a: a.alias):
            by_version.setdefault((alias.model, alias.version), []).append(alias.alias)
        versions = [
            _to_version(r, tuple(by_version.get((r.model, r.version), [])))
            for r in rows
        ]
        # LIKE narrows the rows; the whole names in the decoded lists decide.
        return [
            v
            for v in versions
            if _lists(v.source_loops, source_loop)
            and _lists(v.holdout_loops, holdout_loop)
        ]

    def models(self) -> builtins.list[str]:
        with self._ctx.db.read() as session:
            names = session.scalars(select(ModelVersionRow.model).distinct()).all()
        return sorted(names)

    def load(self, model: str, ref: str | int | None = None) -> LoadedModel:
        """Load a version's skops file after checking its SHA-256 against the registry."""
        version = self.get(model, ref)
        data = self._ctx.objects.read(version.artifact_uri)
        if sha256_hex(data) != version.sha256:
            raise StoreError(
                f"model {version.ref}: model.skops does not match the SHA-256 in the registry; refusing to load it"
            )
        return LoadedModel(
            model=version.model,
            version=version.version,
            classes=list(version.classes),
            feature_columns=list(version.feature_columns),
            feature_dtypes=dict(version.feature_dtypes),
            estimator=load_skops(data),
        )

    def read_onnx(self, model: str, ref: str | int | None = None) -> bytes:
        """A version's ONNX bytes, verified against the registry's SHA-256."""
        version = self.get(model, ref)
        if version.onnx_uri is None or version.onnx_sha256 is None:
            raise NotFoundError(
                f"model {version.ref} has no ONNX file; its estimator did not convert"
            )
        data = self._ctx.objects.read(version.onnx_uri)
        if sha256_hex(data) != version.onnx_sha256:
            raise StoreError(
                f"model {version.ref}: model.onnx does not match the SHA-256 in the registry; refusing to load it"
            )
        return data

    def approve(self, model: str, version: int) -> ModelVersion:
        return self._set_status(model, version, APPROVED)

    def reject(self, model: str, version: int) -> ModelVersion:
        return self._set_status(model, version, REJECTED)

    def _set_status(self, model: str, version: int, status: str) -> ModelVersion:
        with self._ctx.db.write() as session:
            row = _find(session, model, version)
            aliases = _aliases_of(session, model, version)
            if status == REJECTED and aliases:
                raise ConflictError(
                    f"model {model}:{version} is @{', @'.join(aliases)}; move the alias before rejecting it"
                )
            row.status = status
            result = _to_version(row, aliases)
        logger.info("model version %s: %s:%d", status.lower(), model, version)
        return result

    def promote(
        self, model: str, version: int, alias: str = "production"
    ) -> ModelVersion:
        """Point ``alias`` at ``version`` and record the move; a rejected version is refused."""
        _check_alias(alias)
        with self._ctx.db.write() as session:
            row = _find(session, model, version)
            if row.status == REJECTED:
                raise ConflictError(
                    f"model {model}:{version} is Rejected; approve it before promoting it to @{alias}"
                )
            previous = self._move(session, model, alias, version, "promote")
            result = _to_version(row, _aliases_of(session, model, version))
        logger.info(
            "model promoted: %s:%d to @%s (was %s)", model, version, alias, previous
        )
        return result

    def rollback(self, model: str, alias: str = "production") -> ModelVersion:
        """Point ``alias`` back at the version it pointed at before the last promotion."""
        _check_alias(alias)
        with self._ctx.db.write() as session:
            stack = _alias_stack(session, model, alias)
            if len(stack) < 2:
                raise ConflictError(
                    f"alias @{alias} of model {model!r} has no earlier version to roll back to"
                )
            target = stack[-2]
            row = _find(session, model, target)
            if row.status == REJECTED:
                raise ConflictError(
                    f"model {model}:{target} was Rejected since; approve it or promote another version to @{alias}"
                )
            self._move(session, model, alias, target, "rollback")
            result = _to_version(row, _aliases_of(session, model, target))
        logger.info("model rolled back: %s @%s to version %d", model, alias, target)
        return result

    def _move(
        self, session: Session, model: str, alias: str, version: int, action: str
    ) -> int | None:
        now = self._ctx.clock()
        current = session.get(ModelAliasRow, (model, alias))
        previous = None if current is None else current.version
        if current is None:
            session.add(
                ModelAliasRow(model=model, alias=alias, version=version, updated_at=now)
            )
        else:
            current.version, current.updated_at = version, now
        session.add(
            ModelAliasHistoryRow(
                model=model,
                alias=alias,
                action=action,
                version=version,
                previous_version=previous,
                changed_at=now,
            )
        )
        return previous

    def alias_version(self, model: str, alias: str) -> int | None:
        """The version ``alias`` points at now, or None; one primary-key read."""
        with self._ctx.db.read() as session:
            row = session.get(ModelAliasRow, (model, alias.lstrip("@")))
            return None if row is None else row.version

    def alias_history(
        self, model: str, alias: str = "production"
    ) -> builtins.list[dict[str, Any]]:
        """Every move of ``alias``, oldest first."""
        with self._ctx.db.read() as session:
            rows = session.scalars(
                select(ModelAliasHistoryRow)
                .where(
                    ModelAliasHistoryRow.model == model,
                    ModelAliasHistoryRow.alias == alias,
                )
                .order_by(ModelAliasHistoryRow.id)
            ).all()
        return [
            {
                "action": r.action,
                "version": r.version,
                "previous_version": r.previous_version,
                "changed_at": r.changed_at.isoformat(),
            }
            for r in rows
        ]


def _find(session: Session, model: str, ref: str | int | None) -> ModelVersionRow:
    query = select(ModelVersionRow).where(ModelVersionRow.model == model)
    label = f"{model}:{ref}" if ref is not None else model
    if ref is None or ref == "latest":
        query = query.order_by(ModelVersionRow.version.desc()).limit(1)
    elif isinstance(ref, str) and ref.startswith("@"):
        alias = session.get(ModelAliasRow, (model, ref[1:]))
        if alias is None:
            raise NotFoundError(f"model {model!r} has no alias {ref!r}")
        query = query.where(ModelVersionRow.version == alias.version)
        label = f"{model}{ref}"
    else:
        query = query.where(ModelVersionRow.version == _number(ref))
    row = session.scalars(query).first()
    if row is None:
        raise NotFoundError(f"model version {label!r} does not exist")
    return row


def _number(ref: str | int) -> int:
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        return int(ref)
    raise ValidationError(
        f"model version must be a number, '@ALIAS' or 'latest'; got {ref!r}", "version"
    )


def _aliases_of(session: Session, model: str, version: int) -> tuple[str, ...]:
    names = session.scalars(
        select(ModelAliasRow.alias)
        .where(ModelAliasRow.model == model, ModelAliasRow.version == version)
        .order_by(ModelAliasRow.alias)
    ).all()
    return tuple(names)


def _alias_stack(session: Session, model: str, alias: str) -> list[int]:
    """Replay the alias history: a promotion pushes a version, a rollback pops one."""
    stack: list[int] = []
    rows = session.scalars(
        select(ModelAliasHistoryRow)
        .where(ModelAliasHistoryRow.model == model, ModelAliasHistoryRow.alias == alias)
        .order_by(ModelAliasHistoryRow.id)
    ).all()
    for row in rows:
        if row.action == "rollback":
            stack.pop()
        else:
            stack.append(row.version)
    return stack


def _to_version(row: ModelVersionRow, aliases: tuple[str, ...]) -> ModelVersion:
    return ModelVersion(
        model=row.model,
        version=row.version,
        status=row.status,
        dataset=row.dataset,
        run_id=row.run_id,
        aliases=aliases,
        created_at=row.created_at,
        metrics=orjson.loads(row.metrics),
        artifact_uri=row.artifact_uri,
        sha256=row.sha256,
        onnx_uri=row.onnx_uri,
        classes=tuple(orjson.loads(row.classes)),
        feature_columns=tuple(orjson.loads(row.feature_columns)),
        source_loops=tuple(orjson.loads(row.source_loops)),
        onnx_sha256=row.onnx_sha256,
        feature_dtypes=dict(orjson.loads(row.feature_dtypes)),
        holdout_loops=tuple(orjson.loads(row.holdout_loops)),
    )


def _names(column: InstrumentedAttribute[str], loop: str) -> ColumnElement[bool]:
    """The JSON list in ``column`` may hold ``loop``: its text contains the quoted name."""
    return column.contains(orjson.dumps(loop).decode(), autoescape=True)


def _lists(loops: tuple[str, ...], loop: str | None) -> bool:
    return loop is None or loop in loops


def _copy(row: ModelVersionRow) -> ModelVersionRow:
    columns = ModelVersionRow.__table__.columns.keys()
    return ModelVersionRow(
        **{c: getattr(row, c) for c in columns if c not in ("id", "version")}
    )


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _check_name(model: str) -> None:
    if not _NAME.fullmatch(model):
        raise ValidationError(
            f"model name must be 1-63 lower-case letters, digits and single hyphens; got {model!r}",
            "model",
        )


def _check_alias(alias: str) -> None:
    if not _NAME.fullmatch(alias):
        raise ValidationError(
            f"alias must be 1-63 lower-case letters, digits and single hyphens; got {alias!r}",
            "alias",
        )


def _check_features(columns: list[str], dtypes: dict[str, str]) -> None:
    for column in columns:
        if dtypes.get(column) not in ("number", "string"):
            raise ValidationError(
                f"feature_dtypes[{column!r}] must be 'number' or 'string'; got {dtypes.get(column)!r}",
                "feature_dtypes",
            )
