"""Serving test helpers: a scikit-learn model to register, a routed flow, a live server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
from botocore.config import Config
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from closedloop.engine import Engine
from closedloop.registry import Registry, prepare_features
from closedloop.simulation.server import BackgroundServer

MODEL = "fraud"
FEATURES = ["amount", "age", "country"]
DTYPES = {"amount": "number", "age": "number", "country": "string"}
ROLE = "arn:aws:iam::000000000000:role/closedloop"
TEMPLATE = (
    '<crowd-form><crowd-classifier name="category" '
    "categories=\"['fraud', 'legit']\"></crowd-classifier></crowd-form>"
)
CONFIDENT = {"amount": 5000.0, "age": 22, "country": "fr"}


def training_frame(seed: int, rows: int = 400) -> pd.DataFrame:
    """Transactions where large amounts from young customers are mostly fraud."""
    rng = np.random.default_rng(seed)
    amount = rng.uniform(0, 5000, rows)
    age = rng.integers(18, 80, rows)
    country = rng.choice(["fr", "de", "us"], rows)
    score = amount / 1000 - (age - 18) / 15 + rng.normal(0, 0.7, rows)
    label = np.where(score > 1, "fraud", "legit")
    return pd.DataFrame(
        {"amount": amount, "age": age, "country": country, "label": label}
    )


def pipeline(c: float) -> Pipeline:
    encode = ColumnTransformer(
        [
            ("numbers", StandardScaler(), ["amount", "age"]),
            ("country", OneHotEncoder(handle_unknown="ignore"), ["country"]),
        ]
    )
    return Pipeline([("encode", encode), ("model", LogisticRegression(C=c))])


class Models:
    """Trains and registers versions of the ``fraud`` model in the real registry."""

    def __init__(self, engine: Engine, registry: Registry, tmp: Path) -> None:
        frame = training_frame(seed=3)
        path = tmp / "train.csv"
        frame.to_csv(path, index=False)
        self.dataset = engine.datasets.import_file(
            "fraud-train", str(path), label="label"
        )
        self.frame = frame
        self.registry = registry

    def register(self, c: float) -> int:
        estimator = pipeline(c).fit(self.frame[FEATURES], self.frame["label"])
        version = self.registry.register(
            MODEL,
            estimator,
            dataset=self.dataset,
            run_id=f"run-c{c}",
            metrics={},
            feature_columns=FEATURES,
            feature_dtypes=DTYPES,
            sample=prepare_features(self.frame.head(50), FEATURES, DTYPES),
        )
        return version.version

    def uncertain_record(self, version: int) -> dict[str, Any]:
        """A record the version is unsure about (top probability under 0.6)."""
        loaded = self.registry.load(MODEL, version)
        candidates = pd.DataFrame(
            {
                "amount": np.linspace(0, 5000, 501),
                "age": [30] * 501,
                "country": ["de"] * 501,
            }
        )
        top = loaded.predict_proba(candidates).max(axis=1)
        row = candidates.iloc[int(top.argmin())]
        assert top.min() < 0.6
        return {"amount": float(row["amount"]), "age": 30, "country": "de"}


def make_flow(engine: Engine, name: str = "fraud-review", below: float = 70) -> str:
    """A flow whose loops start when the predicted label's confidence is under ``below``%."""
    engine.workforce.create_team("reviewers")
    ui = engine.task_uis.create(name + "-ui", TEMPLATE)
    conditions = {
        "Conditions": [
            {
                "ConditionType": "ModelConfidenceCheck",
                "ConditionParameters": {"ConfidenceLessThan": below},
            }
        ]
    }
    request = {
        "FlowDefinitionName": name,
        "RoleArn": ROLE,
        "OutputConfig": {"S3OutputPath": "s3://reviews/out"},
        "HumanLoopConfig": {
            "WorkteamArn": engine.workforce.team_arn("reviewers"),
            "HumanTaskUiArn": ui.arn,
            "TaskTitle": "Is this fraud?",
            "TaskDescription": "Look at the transaction",
            "TaskCount": 1,
        },
        "HumanLoopActivationConfig": {
            "HumanLoopActivationConditionsConfig": {
                "HumanLoopActivationConditions": json.dumps(conditions)
            }
        },
    }
    return engine.flows.create(request).arn


class ServingServer(BackgroundServer):
    """The serve app, invocations route included, on a loopback port."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine, sweep=False)


def boto_client(service: str, url: str, credentials: dict[str, str]) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        **credentials,
    )
