"""The fraud demo, small: it runs end to end, reports, and repeats itself for a seed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from closedloop.cli.common import state
from closedloop.cli.demo import DEMO_FOLDER, register
from closedloop.simulation.fraud import DemoOptions, run_fraud_demo

SMALL = ["--weeks", "2", "--daily-volume", "120", "--reviews-per-day", "20"]


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None: ...

    register(app)
    return app


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    home = tmp_path_factory.mktemp("home")
    out = tmp_path_factory.mktemp("out")
    previous, state.home = state.home, home
    try:
        result = CliRunner().invoke(_app(), ["demo", *SMALL, "--out", str(out)])
    finally:
        state.home = previous
    assert result.exit_code == 0, result.output
    return out, result.stdout


def test_demo_writes_report_plot_and_summary(small_run: tuple[Path, str]) -> None:
    out, stdout = small_run
    summary = json.loads((out / "summary.json").read_text())

    assert (out / "report.html").read_text().startswith("<!doctype html>")
    assert (out / "weekly.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(summary) == {"weeks", "baseline", "loops_completed"}
    assert [set(w) for w in summary["weeks"]] == [
        {
            "week",
            "precision",
            "recall",
            "accuracy",
            "reviews",
            "model_version",
            "promoted",
        }
    ] * 2
    assert [set(b) for b in summary["baseline"]] == [
        {"week", "precision", "recall", "accuracy"}
    ] * 2
    assert "human loops completed" in stdout


def test_every_review_is_a_completed_loop_within_the_daily_budget(
    small_run: tuple[Path, str],
) -> None:
    summary = json.loads((small_run[0] / "summary.json").read_text())
    reviews = [w["reviews"] for w in summary["weeks"]]

    assert summary["loops_completed"] == sum(reviews) > 0
    assert all(r <= 20 * 7 for r in reviews)
    assert summary["weeks"][0]["model_version"] == 1


def test_the_same_seed_gives_the_same_summary(
    small_run: tuple[Path, str], tmp_path: Path
) -> None:
    first = json.loads((small_run[0] / "summary.json").read_text())
    options = DemoOptions(weeks=2, daily_volume=120, reviews_per_day=20)

    again = run_fraud_demo(tmp_path / DEMO_FOLDER, options)

    assert again.summary() == first


def test_a_bad_option_is_named_with_its_value(tmp_path: Path) -> None:
    state.home = tmp_path
    try:
        result = CliRunner().invoke(_app(), ["demo", "--reviewer-accuracy", "1.5"])
    finally:
        state.home = None

    assert result.exit_code == 2
    assert "reviewer_accuracy must be between 0.5 and 1; got 1.5" in result.output
