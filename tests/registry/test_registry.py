"""Registry: register, look up by alias, approval, promote and roll back, verified loading."""

from __future__ import annotations

import operator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

from closedloop.datasets import DatasetVersion
from closedloop.engine import Engine
from closedloop.errors import ConflictError, NotFoundError, StoreError
from closedloop.registry import APPROVED, PENDING, REJECTED, Registry, prepare_features
from closedloop.registry.artifacts import load_skops, onnx_predict_proba, onnx_session
from ml_data import make_dataset

DTYPES = {"amount": "number", "country": "string"}
ROWS = pd.DataFrame({"amount": [5.0, 900.0, 40.0], "country": ["US", "BR", "DE"]})


def _fitted(c: float = 1.0) -> Pipeline:
    prep = ColumnTransformer(
        [
            ("num", "passthrough", ["amount"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["country"]),
        ]
    )
    model = Pipeline([("prep", prep), ("clf", LogisticRegression(C=c, max_iter=1000))])
    x = pd.DataFrame(
        {"amount": [1.0, 2.0, 500.0, 800.0], "country": ["US", "DE", "BR", "US"]}
    )
    return model.fit(x, ["no", "no", "yes", "yes"])


def _register(
    registry: Registry, dataset: DatasetVersion, estimator: object = None
) -> int:
    version = registry.register(
        "fraud",
        estimator if estimator is not None else _fitted(),
        dataset=dataset,
        run_id="run-1",
        metrics={"f1_macro": 0.9},
        feature_columns=["amount", "country"],
        feature_dtypes=DTYPES,
        sample=prepare_features(ROWS, ["amount", "country"], DTYPES),
    )
    return version.version


@pytest.fixture
def dataset(engine: Engine, tmp_path: Path) -> DatasetVersion:
    return make_dataset(engine, tmp_path, rows=30)


def test_register_numbers_versions_and_records_lineage(
    engine: Engine, dataset: DatasetVersion
) -> None:
    registry = Registry(engine.ctx)
    assert [_register(registry, dataset), _register(registry, dataset)] == [1, 2]

    latest = registry.get("fraud")
    assert latest.version == 2 and latest.status == PENDING
    assert latest.dataset == "fraud:2" and latest.run_id == "run-1"
    assert latest.source_loops == ("loop-0", "loop-1")
    assert latest.classes == ("no", "yes") and latest.metrics == {"f1_macro": 0.9}
    assert [v.version for v in registry.list("fraud")] == [1, 2]
    with pytest.raises(NotFoundError, match="'fraud:9' does not exist"):
        registry.get("fraud", 9)


def test_loaded_model_predicts_like_the_estimator(
    engine: Engine, dataset: DatasetVersion
) -> None:
    registry = Registry(engine.ctx)
    _register(registry, dataset)
    loaded = registry.load("fraud", 1)
    assert loaded.feature_dtypes == DTYPES
    assert np.allclose(loaded.predict_proba(ROWS), _fitted().predict_proba(ROWS))


def test_onnx_is_written_where_the_estimator_converts_and_matches(
    engine: Engine, dataset: DatasetVersion
) -> None:
    registry = Registry(engine.ctx)
    _register(registry, dataset)
    version = registry.get("fraud", 1)
    assert version.onnx_uri is not None
    session = onnx_session(registry.read_onnx("fraud", 1))
    features = prepare_features(ROWS, ["amount", "country"], DTYPES)
    proba = onnx_predict_proba(session, features, ["amount", "country"], DTYPES)
    assert np.allclose(proba, _fitted().predict_proba(ROWS), atol=1e-4)


def _double(x: pd.DataFrame) -> pd.DataFrame:
    return x


def test_an_estimator_that_does_not_convert_gets_no_onnx(
    engine: Engine, dataset: DatasetVersion
) -> None:
    registry = Registry(engine.ctx)
    x = pd.DataFrame({"amount": [1.0, 2.0, 500.0, 800.0]})
    # skl2onnx has no converter for a function step.
    odd = Pipeline([("f", FunctionTransformer(np.log1p)), ("m", LogisticRegression())])
    odd.fit(x, ["no", "no", "yes", "yes"])
    registry.register(
        "fraud",
        odd,
        dataset=dataset,
        run_id="r",
        metrics={},
        feature_columns=["amount"],
        feature_dtypes={"amount": "number"},
    )
    assert registry.get("fraud").onnx_uri is None
    assert registry.load("fraud").predict_proba(ROWS).shape == (3, 2)


def test_promote_moves_the_alias_and_rollback_returns_to_the_one_before(
    engine: Engine, dataset: DatasetVersion
) -> None:
    registry = Registry(engine.ctx)
    for _ in range(3):
        _register(registry, dataset)
    assert registry.alias_version("fraud", "production") is None
    for n in (1, 2, 3):
        registry.promote("fraud", n)
    assert registry.get("fraud", "@production").version == 3
    assert registry.get("fraud", 3).aliases == ("production",)

    assert registry.rollback("fraud").version == 2
    assert registry.rollback("fraud").version == 1
    assert registry.alias_version("fraud", "production") == 1
    with pytest.raises(ConflictError, match="no earlier version"):
        registry.rollback("fraud")
    actions = [(h["action"], h["version"]) for h in registry.alias_history("fraud")]
    assert actions == [
        ("promote", 1),
        ("promote", 2),
        ("promote", 3),
        ("rollback", 2),
        ("rollback", 1),
    ]


def test_approve_and_reject_set_status_and_a_rejected_version_is_not_promoted(
    engine: Engine, dataset: DatasetVersion
) -> None:
    registry = Registry(engine.ctx)
    _register(registry, dataset)
    _register(registry, dataset)
    assert registry.approve("fraud", 1).status == APPROVED
    assert registry.reject("fraud", 2).status == REJECTED
    with pytest.raises(ConflictError, match="Rejected"):
        registry.promote("fraud", 2)
    registry.promote("fraud", 1)
    with pytest.raises(ConflictError, match="move the alias before rejecting"):
        registry.reject("fraud", 1)


def test_a_model_file_whose_hash_does_not_match_is_refused(
    engine: Engine, dataset: DatasetVersion
) -> None:
    registry = Registry(engine.ctx)
    _register(registry, dataset)
    version = registry.get("fraud")
    engine.ctx.objects.write_atomic(
        version.artifact_uri, skops.io.dumps(_fitted(c=0.01))
    )
    with pytest.raises(StoreError, match="does not match the SHA-256"):
        registry.load("fraud")


def test_a_model_file_naming_an_untrusted_type_is_refused(
    engine: Engine, dataset: DatasetVersion
) -> None:
    registry = Registry(engine.ctx)
    x = pd.DataFrame({"amount": [1.0, 2.0, 500.0, 800.0]})
    custom = Pipeline(
        [("f", FunctionTransformer(_double)), ("m", LogisticRegression())]
    )
    custom.fit(x, ["no", "no", "yes", "yes"])
    registry.register(
        "fraud",
        custom,
        dataset=dataset,
        run_id="r",
        metrics={},
        feature_columns=["amount"],
        feature_dtypes={"amount": "number"},
    )
    with pytest.raises(StoreError, match=r"outside the allow-list.*_double"):
        registry.load("fraud")


def test_a_file_naming_a_non_sklearn_function_is_refused_before_loading() -> None:
    hostile = Pipeline(
        [("f", FunctionTransformer(operator.call)), ("m", LogisticRegression())]
    )
    with pytest.raises(StoreError, match=r"outside the allow-list.*_operator\.call"):
        load_skops(skops.io.dumps(hostile))
