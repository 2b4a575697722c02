"""Versioned training data: immutable, content-addressed dataset versions with lineage."""

from closedloop.datasets.versions import (
    PROVENANCE_COLUMNS,
    DatasetDiff,
    Datasets,
    DatasetVersion,
    Split,
    split,
)

__all__ = [
    "PROVENANCE_COLUMNS",
    "DatasetDiff",
    "DatasetVersion",
    "Datasets",
    "Split",
    "split",
]
