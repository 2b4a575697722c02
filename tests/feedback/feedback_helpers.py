"""Helpers for the feedback tests: write output files and simulate reviewers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson


def answer(worker: str, label: str) -> dict[str, Any]:
    """A current-format answer choosing ``label`` in a crowd-classifier named category."""
    return {
        "acceptanceTime": "2024-05-01T10:00:00.000Z",
        "answerContent": {"category": {"label": label}},
        "submissionTime": "2024-05-01T10:01:00.000Z",
        "timeSpentInSeconds": 60.0,
        "workerId": worker,
        "workerMetadata": {
            "identityData": {"identityProviderType": "Cognito", "sub": f"sub-{worker}"}
        },
    }


def output(
    name: str,
    answers: list[tuple[str, str]],
    *,
    text: str | None = None,
    prediction: dict[str, Any] | None = None,
    item_id: str | None = None,
) -> dict[str, Any]:
    """A current-format output.json document for one loop."""
    content: dict[str, Any] = {
        "taskObject": text if text is not None else f"text of {name}"
    }
    if prediction is not None:
        content["prediction"] = prediction
    if item_id is not None:
        content["id"] = item_id
    return {
        "flowDefinitionArn": "arn:aws:sagemaker:us-east-1:111122223333:flow-definition/test",
        "humanAnswers": [answer(worker, label) for worker, label in answers],
        "humanLoopName": name,
        "inputContent": content,
    }


def write(root: Path, relative: str, document: Any) -> Path:
    """Write ``document`` (JSON, or raw bytes) to ``root/relative``."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        document if isinstance(document, bytes) else orjson.dumps(document)
    )
    return path


def simulate(
    seed: int, n_items: int = 400, n_classes: int = 3, per_item: int = 3
) -> tuple[list[tuple[str, str, str]], dict[str, str]]:
    """Answers from reviewers of mixed quality, including adversarial and lazy ones.

    Returns (item, worker, label) triples and the true label of each item.
    """
    rng = np.random.default_rng(seed)
    classes = [f"class-{c}" for c in range(n_classes)]
    kinds = ["good", "good", "good", "medium", "medium", "poor", "adversarial", "lazy"]
    accuracy = {"good": 0.92, "medium": 0.7, "poor": 0.45}
    triples, truth = [], {}
    for item in range(n_items):
        true = int(rng.integers(n_classes))
        truth[f"item-{item:04d}"] = classes[true]
        for worker in rng.choice(len(kinds), per_item, replace=False):
            kind = kinds[worker]
            if kind == "lazy":
                given = 0
            elif kind == "adversarial":
                given = (true + 1) % n_classes
            elif rng.random() < accuracy[kind]:
                given = true
            else:
                given = int(rng.integers(n_classes))
            triples.append((f"item-{item:04d}", f"{kind}-{worker}", classes[given]))
    return triples, truth
