"""Evaluate a challenger against @production: same rows, decision, HTML report with plots."""

from __future__ import annotations

from pathlib import Path

import orjson

from closedloop.engine import Engine
from closedloop.registry import Registry
from closedloop.training import Training
from ml_data import make_dataset


def test_evaluate_compares_with_production_and_writes_the_report(
    clock_engine: Engine, tmp_path: Path
) -> None:
    make_dataset(clock_engine, tmp_path)
    registry = Registry(clock_engine.ctx)
    training = Training(clock_engine.ctx, clock_engine.datasets, registry)
    weak = training.train("fraud", "fraud", "tabular", {"model": "logistic", "C": 1e-6})
    strong = training.train("fraud", "fraud", "tabular", {"max_iter": 60})
    registry.promote("fraud", weak.model_version or 0)

    result = training.evaluate(
        "fraud", strong.model_version or 0, out=tmp_path / "report"
    )

    assert result.champion == weak.model_version and result.rows > 0
    assert result.metrics["challenger"]["rows"] == result.metrics["champion"]["rows"]
    assert (
        result.metrics["challenger"]["f1_macro"]
        > result.metrics["champion"]["f1_macro"]
    )
    assert result.decision.promote, result.decision.reasons
    assert result.mcnemar is not None and result.mcnemar.only_a > result.mcnemar.only_b
    files = {p.name for p in (tmp_path / "report").iterdir()}
    assert files == {"report.html", "confusion.png", "history.png", "evaluation.json"}
    assert (tmp_path / "report" / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    html = clock_engine.ctx.objects.read(result.report_uri).decode()
    assert "Decision: promote" in html and 'src="confusion.png"' in html

    back = training.evaluate(
        "fraud", weak.model_version or 0, against=str(strong.model_version)
    )
    assert not back.decision.promote
    saved = orjson.loads((tmp_path / "report" / "evaluation.json").read_bytes())
    assert saved["promote"] is True
