"""Lineage of a human loop: its answers, the dataset versions it fed, the models trained or scored on them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from closedloop.core.loops import LoopInfo, Loops
from closedloop.core.output import OutputAnswer
from closedloop.datasets import Datasets, DatasetVersion
from closedloop.datasets.versions import (
    AGREEMENT,
    CONFIDENCE,
    LABELLED_AT,
    LOOP,
    SOURCE,
)
from closedloop.registry.versions import ModelVersion, Registry

__all__ = ["Lineage", "LoopLineage", "LoopRow"]


@dataclass(frozen=True)
class LoopRow:
    """The row a loop's label became, in the first dataset version that took it."""

    dataset: str
    item_id: str
    label: str
    source: str
    confidence: float | None
    agreement: float | None
    labelled_at: datetime | None


@dataclass(frozen=True)
class LoopLineage:
    """A loop, its stored answers, the dataset versions that list it (oldest first) and its models.

    ``models`` were trained on the loop's rows; ``evaluated_by`` were scored on
    them, held out from their training. A version with several of the loop's
    rows can be in both.
    """

    loop: LoopInfo
    answers: tuple[OutputAnswer, ...]
    datasets: tuple[DatasetVersion, ...]
    row: LoopRow | None
    models: tuple[ModelVersion, ...]
    evaluated_by: tuple[ModelVersion, ...]


class Lineage:
    """Follow a human loop forward: answers, dataset versions, model versions."""

    def __init__(self, loops: Loops, datasets: Datasets, registry: Registry) -> None:
        self._loops = loops
        self._datasets = datasets
        self._registry = registry

    def of_loop(self, name: str) -> LoopLineage:
        """Everything that came of loop ``name``; NotFoundError when there is no such loop."""
        loop = self._loops.describe(name)
        answers = tuple(self._loops.answers(name))

        versions = self.dataset_versions(name)
        row = _row(self._datasets, versions[0], name) if versions else None

        models = tuple(self._registry.list(source_loop=name))
        evaluated_by = tuple(self._registry.list(holdout_loop=name))
        return LoopLineage(loop, answers, versions, row, models, evaluated_by)

    def dataset_versions(self, loop_name: str) -> tuple[DatasetVersion, ...]:
        """Every dataset version whose manifest lists ``loop_name`` in ``source_loops``, oldest first."""
        # TODO(dataset versions recorded in the metadata database): one query by loop.
        # Until then this reads every manifest in the object store.
        found = [
            version
            for dataset in self._datasets.names()
            for version in self._datasets.versions(dataset)
            if loop_name in version.manifest.get("source_loops", [])
        ]
        return tuple(sorted(found, key=_age))


def _age(version: DatasetVersion) -> tuple[datetime, str, int]:
    created = datetime.fromisoformat(str(version.manifest["created_at"]))
    return created, version.name, version.number


def _row(datasets: Datasets, version: DatasetVersion, loop_name: str) -> LoopRow | None:
    frame = datasets.read(version)
    if LOOP not in frame.columns:
        return None
    rows = frame[frame[LOOP] == loop_name]
    if rows.empty:
        return None
    first = rows.iloc[0]
    return LoopRow(
        dataset=version.ref,
        item_id=str(first[version.id_column]),
        label=str(first[version.label_column]),
        source=str(first.get(SOURCE, "")),
        confidence=_number(first.get(CONFIDENCE)),
        agreement=_number(first.get(AGREEMENT)),
        labelled_at=_time(first.get(LABELLED_AT)),
    )


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _time(value: Any) -> datetime | None:
    if value is None or pd.isna(value):
        return None
    stamp: datetime = pd.Timestamp(value).to_pydatetime()
    return stamp
