"""The model registry: versions, approval, aliases with history, and verified model files."""

from closedloop.registry.lineage import Lineage, LoopLineage, LoopRow
from closedloop.registry.versions import (
    APPROVED,
    PENDING,
    REJECTED,
    LoadedModel,
    ModelVersion,
    Registry,
    infer_feature_dtypes,
    prepare_features,
)

__all__ = [
    "APPROVED",
    "PENDING",
    "REJECTED",
    "Lineage",
    "LoadedModel",
    "LoopLineage",
    "LoopRow",
    "ModelVersion",
    "Registry",
    "infer_feature_dtypes",
    "prepare_features",
]
