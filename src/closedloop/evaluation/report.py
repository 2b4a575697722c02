"""Champion against challenger on the same held-out rows, with a decision and an HTML report.

The held-out rows are the challenger's: its dataset version split with its
training run's seed (the newest human-verified rows plus a base test slice).
Reports go to ``s3://closedloop-reports/<model>/<version>-vs-<champion>/`` and,
when asked, to a local folder: report.html, confusion.png, history.png,
evaluation.json.
"""

from __future__ import annotations

import html
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from matplotlib.figure import Figure
from sqlalchemy import select

from closedloop.core.context import Context
from closedloop.datasets import Datasets, split
from closedloop.errors import StoreError
from closedloop.evaluation.metrics import (
    McNemarResult,
    classification_metrics,
    mcnemar,
    predictions,
)
from closedloop.evaluation.policy import Decision, PromotionPolicy, decide
from closedloop.registry import LoadedModel, ModelVersion, Registry
from closedloop.store.models_ml import TrainingRunRow

__all__ = ["BUCKET", "Evaluation", "Evaluator"]

logger = logging.getLogger(__name__)
BUCKET = "s3://closedloop-reports"


@dataclass(frozen=True)
class Evaluation:
    """Both models' metrics on the same rows, McNemar's test and the policy's decision."""

    model: str
    challenger: int
    champion: int | None
    against: str
    dataset: str
    rows: int
    metrics: dict[str, dict[str, Any]]
    mcnemar: McNemarResult | None
    decision: Decision
    policy: PromotionPolicy
    report_uri: str
    out_dir: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "challenger": self.challenger,
            "champion": self.champion,
            "against": self.against,
            "dataset": self.dataset,
            "rows": self.rows,
            "metrics": self.metrics,
            "mcnemar": None if self.mcnemar is None else self.mcnemar.as_dict(),
            "promote": self.decision.promote,
            "reasons": self.decision.reasons,
            "policy": vars(self.policy),
            "report_uri": self.report_uri,
            "out_dir": self.out_dir,
        }


class Evaluator:
    """Scores a challenger version against the champion and writes the report."""

    def __init__(self, ctx: Context, datasets: Datasets, registry: Registry) -> None:
        self._ctx = ctx
        self._datasets = datasets
        self._registry = registry

    def evaluate(
        self,
        model: str,
        version: int,
        against: str = "production",
        *,
        policy: PromotionPolicy | None = None,
        out: str | Path | None = None,
    ) -> Evaluation:
        """Compare ``model:version`` with the version ``against`` names (alias or number)."""
        policy = policy or PromotionPolicy()
        challenger = self._registry.get(model, version)
        champion = self._champion(model, against)
        frame = self._holdout(challenger)
        truth = frame[self._datasets.get(challenger.dataset).label_column]
        truth = truth.astype(str).to_numpy(dtype=object)
        models = [self._registry.load(model, challenger.version)]
        if champion is not None:
            models.append(self._registry.load(model, champion.version))
        labels = sorted({*map(str, truth), *(c for m in models for c in m.classes)})
        probas = [_proba(m, frame) for m in models]
        scores = [
            classification_metrics(truth, p, m.classes, labels)
            for m, p in zip(models, probas, strict=True)
        ]
        test = None
        if champion is not None:
            picks = [
                predictions(p, m.classes) for m, p in zip(models, probas, strict=True)
            ]
            test = mcnemar(truth, picks[0], picks[1])
        decision = self._decide(policy, challenger, champion, scores, test, against)
        evaluation = Evaluation(
            model=model,
            challenger=challenger.version,
            champion=None if champion is None else champion.version,
            against=against,
            dataset=challenger.dataset,
            rows=len(truth),
            metrics=dict(zip(("challenger", "champion"), scores, strict=False)),
            mcnemar=test,
            decision=decision,
            policy=policy,
            report_uri=_report_prefix(model, challenger, champion) + "/report.html",
            out_dir=None if out is None else str(out),
        )
        self._write(evaluation, out)
        logger.info(
            "model evaluated: %s:%d against %s; promote=%s",
            model,
            challenger.version,
            against,
            decision.promote,
        )
        return evaluation

    def _champion(self, model: str, against: str) -> ModelVersion | None:
        if against.isdigit():
            return self._registry.get(model, int(against))
        number = self._registry.alias_version(model, against.lstrip("@"))
        return None if number is None else self._registry.get(model, number)

    def _holdout(self, challenger: ModelVersion) -> Any:
        dataset = self._datasets.get(challenger.dataset)
        with self._ctx.db.read() as session:
            seed = session.scalar(
                select(TrainingRunRow.seed).where(
                    TrainingRunRow.id == challenger.run_id
                )
            )
        holdout = split(self._datasets.read(dataset), seed=seed or 0).holdout
        if holdout.empty:
            raise StoreError(
                f"dataset {dataset.ref} has no held-out rows to evaluate on"
            )
        return holdout

    @staticmethod
    def _decide(
        policy: PromotionPolicy,
        challenger: ModelVersion,
        champion: ModelVersion | None,
        scores: list[dict[str, Any]],
        test: McNemarResult | None,
        against: str,
    ) -> Decision:
        if champion is not None and champion.version == challenger.version:
            return Decision(
                False, [f"version {challenger.version} already is {against}"]
            )
        return decide(policy, scores[0], scores[1] if len(scores) > 1 else None, test)

    def _write(self, evaluation: Evaluation, out: str | Path | None) -> None:
        files = self._files(evaluation)
        prefix = evaluation.report_uri.rsplit("/", 1)[0]
        for name, data in files.items():
            self._ctx.objects.write_atomic(f"{prefix}/{name}", data)
        if out is not None:
            folder = Path(out)
            try:
                folder.mkdir(parents=True, exist_ok=True)
                for name, data in files.items():
                    (folder / name).write_bytes(data)
            except OSError as exc:
                raise StoreError(
                    f"could not write the report to --out {str(out)!r}: {exc}"
                ) from exc

    def _files(self, evaluation: Evaluation) -> dict[str, bytes]:
        history = self._registry.list(evaluation.model)
        return {
            "report.html": _html(evaluation).encode(),
            "confusion.png": _confusion_png(evaluation),
            "history.png": _history_png(evaluation, history),
            "evaluation.json": orjson.dumps(
                evaluation.as_dict(), option=orjson.OPT_INDENT_2, default=str
            ),
        }


def _proba(model: LoadedModel, frame: Any) -> np.ndarray:
    return model.predict_proba(frame)


def _report_prefix(
    model: str, challenger: ModelVersion, champion: ModelVersion | None
) -> str:
    against = "none" if champion is None else str(champion.version)
    return f"{BUCKET}/{model}/{challenger.version:06d}-vs-{against}"


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def _confusion_png(evaluation: Evaluation) -> bytes:
    named = [(f"challenger v{evaluation.challenger}", evaluation.metrics["challenger"])]
    if "champion" in evaluation.metrics:
        named.append(
            (f"champion v{evaluation.champion}", evaluation.metrics["champion"])
        )
    figure = Figure(figsize=(5 * len(named), 4.5))
    for i, (title, scores) in enumerate(named):
        axes = figure.add_subplot(1, len(named), i + 1)
        matrix = np.asarray(scores["confusion_matrix"])
        axes.imshow(matrix, cmap="Blues")
        labels = scores["labels"]
        axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        axes.set_yticks(range(len(labels)), labels)
        axes.set_xlabel("predicted")
        axes.set_ylabel("true")
        axes.set_title(title)
        for (row, col), count in np.ndenumerate(matrix):
            axes.text(col, row, str(count), ha="center", va="center")
    return _png(figure)


def _history_png(evaluation: Evaluation, versions: list[ModelVersion]) -> bytes:
    metric = evaluation.policy.metric
    points = [(v.version, v.metrics.get(metric)) for v in versions]
    shown = [(n, value) for n, value in points if isinstance(value, int | float)]
    figure = Figure(figsize=(6, 4))
    axes = figure.add_subplot(1, 1, 1)
    if shown:
        axes.plot(
            [n for n, _ in shown],
            [value for _, value in shown],
            marker="o",
            label="own validation rows",
        )
    for role in ("challenger", "champion"):
        number = getattr(evaluation, role)
        if (
            role in evaluation.metrics
            and evaluation.metrics[role].get(metric) is not None
        ):
            axes.scatter(
                [number],
                [evaluation.metrics[role][metric]],
                s=80,
                label=f"{role} on shared rows",
            )
    axes.set_xlabel("model version")
    axes.set_ylabel(metric)
    axes.set_title(f"{evaluation.model}: {metric} across versions")
    axes.legend()
    return _png(figure)


def _html(evaluation: Evaluation) -> str:
    esc = html.escape
    roles = [r for r in ("challenger", "champion") if r in evaluation.metrics]
    names = [
        "accuracy",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "roc_auc",
        "ece",
    ]
    header = "".join(f"<th>{esc(r)} v{getattr(evaluation, r)}</th>" for r in roles)
    rows = "".join(
        f"<tr><td>{esc(n)}</td>"
        + "".join(f"<td>{_fmt(evaluation.metrics[r].get(n))}</td>" for r in roles)
        + "</tr>"
        for n in names
    )
    reasons = "".join(
        f"<li>{esc(reason)}</li>" for reason in evaluation.decision.reasons
    )
    verdict = "promote" if evaluation.decision.promote else "do not promote"
    test = evaluation.mcnemar
    mcnemar_line = (
        ""
        if test is None
        else f"<p>McNemar: p = {test.p_value:.4g}; challenger alone right on "
        f"{test.only_a} rows, champion alone on {test.only_b}.</p>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{esc(evaluation.model)} v{evaluation.challenger} evaluation</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.2em .8em;text-align:right}}</style>
</head><body>
<h1>{esc(evaluation.model)}: version {evaluation.challenger} against {esc(evaluation.against)}</h1>
<p>{evaluation.rows} held-out rows of dataset {esc(evaluation.dataset)}.</p>
<h2>Decision: {verdict}</h2><ul>{reasons}</ul>
<table><tr><th>metric</th>{header}</tr>{rows}</table>
{mcnemar_line}
<h2>Confusion matrices</h2><img src="confusion.png" alt="confusion matrices">
<h2>{esc(evaluation.policy.metric)} across versions</h2><img src="history.png" alt="metric across versions">
</body></html>
"""


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4f}"
