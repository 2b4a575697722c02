"""Model files: skops (never pickle) with an allow-list of trusted types, and ONNX where it converts."""

from __future__ import annotations

import hashlib
import logging
import warnings
from typing import Any

import numpy as np
import pandas as pd
import skops.io  # type: ignore[import-untyped]

from closedloop.errors import StoreError

__all__ = [
    "TRUSTED_MODULES",
    "dump_skops",
    "load_skops",
    "onnx_predict_proba",
    "onnx_session",
    "sha256_hex",
    "to_onnx",
    "untrusted_types",
]

logger = logging.getLogger(__name__)

# A type is trusted when its dotted name starts with one of these; everything else
# (a user's own class, builtins.eval, os.system, ...) makes loading fail.
TRUSTED_MODULES = ("sklearn.", "numpy.", "scipy.sparse.")
_UNTRUSTED_MODULES = ("sklearn.datasets.", "sklearn.utils._testing.", "numpy.testing.")
# functools.partial only wraps a function, and that function must pass the check too.
_TRUSTED_NAMES = frozenset({"functools.partial", "builtins.slice", "builtins.complex"})


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dump_skops(estimator: Any) -> bytes:
    """The estimator as skops bytes; an estimator skops cannot write is a StoreError."""
    try:
        data: bytes = skops.io.dumps(estimator)
    except Exception as exc:  # skops raises many kinds for unsupported objects
        raise StoreError(
            f"could not save {type(estimator).__name__} with skops: {exc}"
        ) from exc
    return data


def untrusted_types(data: bytes) -> list[str]:
    """Types named in the file that skops does not trust by default and we do not allow."""
    try:
        names: list[str] = skops.io.get_untrusted_types(data=data)
    except Exception as exc:
        raise StoreError(f"not a readable skops file: {exc}") from exc
    return [n for n in names if not _allowed(n)]


def load_skops(data: bytes) -> Any:
    """Load skops bytes, trusting only allow-listed types; anything else is refused."""
    refused = untrusted_types(data)
    if refused:
        raise StoreError(
            f"model file names types outside the allow-list; refusing to load: {', '.join(refused)}"
        )
    trusted = skops.io.get_untrusted_types(data=data)
    try:
        return skops.io.loads(data, trusted=trusted)
    except Exception as exc:
        raise StoreError(f"could not load the skops model file: {exc}") from exc


def to_onnx(
    estimator: Any,
    feature_columns: list[str],
    feature_dtypes: dict[str, str],
    sample: pd.DataFrame | None = None,
) -> bytes | None:
    """The estimator as ONNX with one input per feature column, or None.

    None when skl2onnx cannot convert it, onnxruntime cannot open the result, or
    (given ``sample`` rows) the ONNX probabilities differ from the estimator's.
    """
    data = _convert(estimator, feature_columns, feature_dtypes)
    if data is None:
        return None
    try:
        session = onnx_session(data)
        if sample is not None and len(sample):
            expected = estimator.predict_proba(sample)
            got = onnx_predict_proba(session, sample, feature_columns, feature_dtypes)
            if got.shape != expected.shape or not np.allclose(got, expected, atol=1e-4):
                logger.info("no ONNX file: its probabilities differ from the model's")
                return None
    except Exception as exc:  # onnxruntime raises its own kinds on a bad graph
        logger.info("no ONNX file: onnxruntime cannot run it: %s", exc)
        return None
    return data


def onnx_session(data: bytes) -> Any:
    """An onnxruntime session over ONNX bytes."""
    import onnxruntime  # type: ignore[import-untyped]

    return onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])


def onnx_predict_proba(
    session: Any,
    frame: pd.DataFrame,
    feature_columns: list[str],
    feature_dtypes: dict[str, str],
) -> np.ndarray:
    """Class probabilities from an ONNX session, columns in the estimator's class order."""
    feeds = {
        column: frame[[column]].to_numpy().astype(np.float32)
        if feature_dtypes[column] == "number"
        else frame[[column]].to_numpy().astype(str)
        for column in feature_columns
    }
    outputs = session.run(["probabilities"], feeds)
    return np.asarray(outputs[0], dtype=float)


def _convert(
    estimator: Any, feature_columns: list[str], feature_dtypes: dict[str, str]
) -> bytes | None:
    try:
        from skl2onnx import convert_sklearn  # type: ignore[import-untyped]
        from skl2onnx.common.data_types import (  # type: ignore[import-untyped]
            FloatTensorType,
            StringTensorType,
        )

        inputs = [
            (
                column,
                FloatTensorType([None, 1])
                if feature_dtypes[column] == "number"
                else StringTensorType([None, 1]),
            )
            for column in feature_columns
        ]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = convert_sklearn(
                estimator, initial_types=inputs, options={"zipmap": False}
            )
    except Exception as exc:  # skl2onnx raises many kinds for unsupported models
        logger.info("no ONNX file for %s: %s", type(estimator).__name__, exc)
        return None
    data: bytes = model.SerializeToString()
    return data


def _allowed(name: str) -> bool:
    if name.startswith(_UNTRUSTED_MODULES):
        return False
    return name.startswith(TRUSTED_MODULES) or name in _TRUSTED_NAMES
