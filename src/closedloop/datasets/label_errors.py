"""Label-error check: rows whose given label disagrees with out-of-sample predictions.

Each row is predicted by a model that never saw it (stratified K-fold
cross-validation with a built-in or named trainer), and cleanlab, an optional
dependency, flags the rows whose given label is unlikely under those
predictions. The check only reports; it never changes a dataset version.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold  # type: ignore[import-untyped]

from closedloop.datasets.versions import DatasetVersion
from closedloop.errors import ClosedloopError, ValidationError
from closedloop.registry import infer_feature_dtypes, prepare_features
from closedloop.training.trainers import TrainingData, fit_trainer, resolve_trainer

__all__ = [
    "AUTO_TRAINER",
    "CLEANLAB_INSTALL",
    "DEFAULT_FOLDS",
    "FlaggedRow",
    "LabelCheck",
    "check_out_path",
    "find_label_errors",
    "write_flagged",
]

logger = logging.getLogger(__name__)
AUTO_TRAINER = "auto"
CLEANLAB_INSTALL = "pip install 'closedloop[cleanlab]'"
DEFAULT_FOLDS = 5
_SOURCE, _LOOP = "_source", "_human_loop_name"
_TEXT_MEAN_WORDS = 3.0
FoldCallback = Callable[[int, int], None]
_Cleanlab = tuple[Callable[..., Any], Callable[..., Any]]


@dataclass(frozen=True)
class FlaggedRow:
    """One row whose label looks wrong; ``quality`` is cleanlab's score, 0 worst, 1 best."""

    row_id: str
    given_label: str
    suggested_label: str
    quality: float
    suggested_probability: float
    source: str
    human_loop_name: str | None


@dataclass(frozen=True)
class LabelCheck:
    """What a check found: flagged rows worst first, and the counts behind them."""

    dataset: str
    trainer: str
    params: dict[str, Any]
    folds: int
    seed: int
    rows_checked: int
    human_rows_checked: int
    flagged: tuple[FlaggedRow, ...]
    unchecked: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def base_rows_checked(self) -> int:
        return self.rows_checked - self.human_rows_checked

    @property
    def flagged_human(self) -> int:
        return sum(row.source == "human" for row in self.flagged)

    @property
    def flagged_base(self) -> int:
        return len(self.flagged) - self.flagged_human

    def totals(self) -> dict[str, int]:
        return {
            "rows_checked": self.rows_checked,
            "human_rows_checked": self.human_rows_checked,
            "base_rows_checked": self.base_rows_checked,
            "flagged": len(self.flagged),
            "flagged_human": self.flagged_human,
            "flagged_base": self.flagged_base,
            "unchecked": len(self.unchecked),
        }

    def to_frame(self) -> pd.DataFrame:
        """Every flagged row, worst first, one column per ``FlaggedRow`` field."""
        columns = list(FlaggedRow.__dataclass_fields__)
        rows = [[getattr(row, c) for c in columns] for row in self.flagged]
        return pd.DataFrame(rows, columns=columns)


def find_label_errors(
    frame: pd.DataFrame,
    version: DatasetVersion,
    *,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
    trainer: str = AUTO_TRAINER,
    params: dict[str, Any] | None = None,
    on_fold: FoldCallback | None = None,
) -> LabelCheck:
    """Flag the rows of ``frame`` (the rows of ``version``) whose label disagrees with the data.

    ``trainer`` is ``auto`` (``text`` when a string feature holds free text,
    else ``tabular`` with ``model=logistic``), a built-in trainer or
    ``package.module:function``; ``params`` go to it. A label with fewer rows than ``folds`` lowers the folds to its
    count; a label with a single row cannot be cross-validated, so its rows are
    left unchecked. Both are said in ``notes``. The same seed gives the same result.
    """
    _check_folds(folds)
    find_issues, quality_scores = _cleanlab()
    _require_columns(frame, version)
    checked, unchecked, notes = _checkable(frame, version)
    folds = _fitting_folds(checked[version.label_column], folds, notes)
    columns = _feature_columns(version)
    dtypes = infer_feature_dtypes(checked, columns)
    features = prepare_features(checked, columns, dtypes)
    name, options = _choose_trainer(trainer, params, features, dtypes)
    labels = checked[version.label_column].astype(str).to_numpy(dtype=object)
    classes = sorted(set(labels))
    position = {label: i for i, label in enumerate(classes)}
    given = np.array([position[label] for label in labels])

    probs = _out_of_sample(
        TrainingData(
            version, features, pd.Series(labels), np.ones(len(labels)), dtypes
        ),
        given,
        classes,
        _Plan(name, options, folds, seed),
        on_fold,
    )
    flagged = _flag(
        checked, version, classes, given, probs, find_issues, quality_scores
    )

    check = LabelCheck(
        dataset=version.ref,
        trainer=name,
        params=options,
        folds=folds,
        seed=seed,
        rows_checked=len(checked),
        human_rows_checked=int((_sources(checked) == "human").sum()),
        flagged=flagged,
        unchecked=tuple(unchecked),
        notes=tuple(notes),
    )
    logger.info(
        "label check of %s: %d of %d rows flagged",
        version.ref,
        len(flagged),
        len(checked),
    )
    return check


def write_flagged(check: LabelCheck, path: str | Path) -> Path:
    """Write every flagged row to ``path``, CSV or Parquet by its extension."""
    target = Path(path)
    suffix = check_out_path(target)
    table = check.to_frame()
    try:
        if suffix == ".csv":
            table.to_csv(target, index=False)
        else:
            table.to_parquet(target, index=False)
    except OSError as exc:
        raise ValidationError(
            f"--out could not write {str(path)!r}: {exc}", "out"
        ) from exc
    return target


def check_out_path(path: str | Path) -> str:
    """The extension of an ``--out`` path, refused unless it is .csv or .parquet."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ValidationError(
            f"--out must end in .csv or .parquet; got {str(path)!r}", "out"
        )
    return suffix


@dataclass(frozen=True)
class _Plan:
    trainer: str
    options: dict[str, Any]
    folds: int
    seed: int


def _check_folds(folds: int) -> None:
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValidationError(
            f"folds must be an integer of at least 2; got {folds!r}", "folds"
        )


def _cleanlab() -> _Cleanlab:
    """cleanlab's two functions, imported only when a check runs."""
    try:
        from cleanlab.filter import (  # type: ignore[import-untyped]
            find_label_issues,
        )
        from cleanlab.rank import (  # type: ignore[import-untyped]
            get_label_quality_scores,
        )
    except ImportError as exc:
        raise ClosedloopError(
            f"the label check needs cleanlab 2.8 or later, which is not installed; install it with: {CLEANLAB_INSTALL}"
        ) from exc
    return find_label_issues, get_label_quality_scores


def _require_columns(frame: pd.DataFrame, version: DatasetVersion) -> None:
    for column in (version.id_column, version.label_column):
        if column not in frame.columns:
            raise ValidationError(
                f"dataset {version.ref} has no column {column!r}; columns: {', '.join(map(str, frame.columns))}",
                "frame",
            )
    if not _feature_columns(version):
        raise ValidationError(
            f"dataset {version.ref} has no feature columns to predict its label from",
            "frame",
        )


def _checkable(
    frame: pd.DataFrame, version: DatasetVersion
) -> tuple[pd.DataFrame, list[str], list[str]]:
    """The rows whose label has at least 2 rows; the ids of the others and why."""
    labels = frame[version.label_column].astype(str)
    counts = labels.value_counts()
    lonely = sorted(str(label) for label in counts[counts < 2].index)
    keep = ~labels.isin(lonely)
    notes = [
        f"label {label!r} has 1 row, too few to cross-validate; that row was not checked"
        for label in lonely
    ]
    if labels[keep].nunique() < 2:
        raise ValidationError(
            f"the label check needs at least 2 labels with 2 or more rows each; dataset {version.ref} has "
            + (", ".join(f"{k!r}: {v}" for k, v in counts.items()) or "no rows"),
            "frame",
        )
    unchecked = frame.loc[~keep, version.id_column].astype(str).tolist()
    return frame[keep].reset_index(drop=True), unchecked, notes


def _fitting_folds(labels: pd.Series, folds: int, notes: list[str]) -> int:
    """``folds``, lowered so every fold holds at least one row of every label."""
    counts = labels.astype(str).value_counts()
    smallest = int(counts.min())
    if smallest >= folds:
        return folds
    label = str(counts.idxmin())
    notes.append(
        f"folds lowered from {folds} to {smallest}: label {label!r} has only {smallest} rows"
    )
    logger.warning("label check: %s", notes[-1])
    return smallest


def _feature_columns(version: DatasetVersion) -> list[str]:
    time_column = version.manifest.get("time_column")
    return [c for c in version.feature_columns if c != time_column]


def _choose_trainer(
    trainer: str,
    params: dict[str, Any] | None,
    features: pd.DataFrame,
    dtypes: dict[str, str],
) -> tuple[str, dict[str, Any]]:
    """``auto``: ``text`` for free text, else a logistic ``tabular`` (boosting costs ~20x more here)."""
    if trainer != AUTO_TRAINER:
        try:
            resolve_trainer(trainer)
        except ValidationError as exc:
            message = f"{exc.message}; the label check also takes {AUTO_TRAINER!r}"
            raise ValidationError(message, "trainer") from exc
        return trainer, dict(params or {})
    strings = [c for c, kind in dtypes.items() if kind == "string"]
    if any(_mean_words(features[c]) >= _TEXT_MEAN_WORDS for c in strings):
        return "text", dict(params or {})
    return "tabular", {"model": "logistic", **(params or {})}


def _mean_words(column: pd.Series) -> float:
    words = [len(str(value).split()) for value in column]
    return float(np.mean(words)) if words else 0.0


def _out_of_sample(
    data: TrainingData,
    given: np.ndarray,
    classes: list[str],
    plan: _Plan,
    on_fold: FoldCallback | None,
) -> np.ndarray:
    """Each row's class probabilities from a model fitted on the other folds."""
    fit = resolve_trainer(plan.trainer)
    probs = np.zeros((len(given), len(classes)))
    splitter = StratifiedKFold(
        n_splits=plan.folds, shuffle=True, random_state=plan.seed
    )
    for number, (train, test) in enumerate(splitter.split(data.X, given), start=1):
        fold = TrainingData(
            data.dataset,
            data.X.iloc[train],
            data.y.iloc[train].reset_index(drop=True),
            np.ones(len(train)),
            data.feature_dtypes,
        )
        estimator = fit_trainer(fit, plan.trainer, fold, dict(plan.options), plan.seed)
        probs[test] = _aligned(estimator, data.X.iloc[test], classes, plan.trainer)
        if on_fold is not None:
            on_fold(number, plan.folds)
    return probs


def _aligned(
    estimator: Any, features: pd.DataFrame, classes: list[str], trainer: str
) -> np.ndarray:
    """Probabilities in ``classes`` order; a class the fold's model never saw gets 0."""
    try:
        raw = np.asarray(estimator.predict_proba(features), dtype=float)
    except (
        Exception
    ) as exc:  # the estimator is the trainer's; any failure is its input's
        raise ValidationError(
            f"trainer {trainer!r}: predict_proba failed during the label check: {type(exc).__name__}: {exc}",
            "trainer",
        ) from exc
    out = np.zeros((len(features), len(classes)))
    for column, label in enumerate(estimator.classes_):
        if str(label) in classes:
            out[:, classes.index(str(label))] = raw[:, column]
    return out


def _flag(
    frame: pd.DataFrame,
    version: DatasetVersion,
    classes: list[str],
    given: np.ndarray,
    probs: np.ndarray,
    find_issues: Callable[..., Any],
    quality_scores: Callable[..., Any],
) -> tuple[FlaggedRow, ...]:
    try:
        issues = np.asarray(find_issues(given, probs, n_jobs=1), dtype=bool)
        quality = np.asarray(quality_scores(given, probs), dtype=float)
    except (ValueError, TypeError) as exc:
        raise ValidationError(
            f"cleanlab could not check dataset {version.ref}: {exc}", "frame"
        ) from exc
    ids = frame[version.id_column].astype(str).to_numpy()
    sources, loops = _sources(frame).to_numpy(), _loops(frame)
    suggested = probs.argmax(axis=1)
    rows = [
        FlaggedRow(
            row_id=str(ids[i]),
            given_label=classes[given[i]],
            suggested_label=classes[suggested[i]],
            quality=round(float(quality[i]), 6),
            suggested_probability=round(float(probs[i, suggested[i]]), 6),
            source=str(sources[i]),
            human_loop_name=loops[i],
        )
        for i in np.flatnonzero(issues)
    ]
    return tuple(sorted(rows, key=lambda row: (row.quality, row.row_id)))


def _sources(frame: pd.DataFrame) -> pd.Series:
    if _SOURCE not in frame.columns:
        return pd.Series(["base"] * len(frame), index=frame.index)
    return frame[_SOURCE].fillna("base").astype(str)


def _loops(frame: pd.DataFrame) -> list[str | None]:
    if _LOOP not in frame.columns:
        return [None] * len(frame)
    return [None if pd.isna(name) else str(name) for name in frame[_LOOP]]
