"""Triggers start runs on new reviews and audited accuracy drops; monitoring uses the audit sample only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from closedloop.engine import Engine
from closedloop.pipeline.monitoring import Monitoring, wilson_interval
from closedloop.pipeline.project import Project, load_project, starter_project
from closedloop.pipeline.runner import Step
from closedloop.pipeline.setup import setup_project
from closedloop.pipeline.triggers import MIN_AUDITED_LOOPS, Triggers


def _project(tmp_path: Path, triggers: str) -> Project:
    text = starter_project("cards").replace("[triggers]", "[triggers]\n" + triggers)
    path = tmp_path / "closedloop.toml"
    path.write_text(text)
    return load_project(path)


def _review(
    engine: Engine,
    project: Project,
    name: str,
    *,
    model_label: str,
    human_label: str,
    audit: bool,
) -> None:
    content = {
        "features": {"x": 1},
        "prediction": {"label": model_label, "confidence": 0.9},
        "audit": audit,
    }
    engine.loops.start(name, engine.flows.arn(project.review.flow), json.dumps(content))
    worker = engine.workforce.describe_worker("rita")
    task = engine.tasks.claim_next(worker)
    assert task is not None
    engine.tasks.answer(worker, task.task_id, {"category": {"label": human_label}})


@pytest.fixture
def quiet_pipeline(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replace the real steps with one that records the trigger, so these tests train nothing."""
    fired: list[str] = []
    monkeypatch.setattr(
        "closedloop.pipeline.triggers.build_steps",
        lambda project: [Step("noop", lambda c: fired.append("run") or {})],
    )
    return fired


def test_enough_new_reviews_start_a_run_and_the_same_reviews_do_not_start_another(
    engine: Engine, tmp_path: Path, quiet_pipeline: list[str]
) -> None:
    project = _project(tmp_path, "new_reviews = 2")
    setup_project(engine, project)
    engine.workforce.create_worker("rita", [project.review.team])
    triggers = Triggers(engine, project)

    _review(
        engine, project, "l1", model_label="fraud", human_label="fraud", audit=False
    )
    assert triggers.due() is None
    _review(
        engine, project, "l2", model_label="fraud", human_label="legit", audit=False
    )
    assert triggers.due() == "new-reviews"

    report = triggers.check()

    assert (
        report is not None
        and report.trigger == "new-reviews"
        and quiet_pipeline == ["run"]
    )
    assert triggers.due() is None
    statuses = [
        e["detail"]["status"]
        for e in engine.events.list_events()
        if e["source"] == "closedloop.pipeline"
    ]
    assert statuses == ["Succeeded", "Started"]


def test_a_drop_in_audited_accuracy_starts_a_run_but_hard_cases_alone_do_not(
    engine: Engine, tmp_path: Path, quiet_pipeline: list[str]
) -> None:
    project = _project(tmp_path, "audited_accuracy_below = 0.8")
    setup_project(engine, project)
    engine.workforce.create_worker("rita", [project.review.team])
    triggers = Triggers(engine, project)
    for i in range(MIN_AUDITED_LOOPS):
        _review(
            engine,
            project,
            f"hard-{i}",
            model_label="fraud",
            human_label="legit",
            audit=False,
        )
    assert triggers.due() is None

    for i in range(MIN_AUDITED_LOOPS):
        wrong = i % 2 == 0
        _review(
            engine,
            project,
            f"audit-{i}",
            model_label="fraud",
            human_label="legit" if wrong else "fraud",
            audit=True,
        )

    assert triggers.due() == "audited-accuracy"
    accuracy, audited = Monitoring(engine).audited_accuracy(project.review.flow)
    assert (accuracy, audited) == (0.5, MIN_AUDITED_LOOPS)
    day = Monitoring(engine).daily(project.review.flow)[0]
    assert day.reviews == 2 * MIN_AUDITED_LOOPS and day.agreement == pytest.approx(0.25)
    assert day.accuracy_low is not None and day.accuracy_low < 0.5 < (
        day.accuracy_high or 0
    )


def test_a_cron_schedule_is_registered_on_the_scheduler(
    engine: Engine, tmp_path: Path
) -> None:
    project = _project(tmp_path, 'schedule = "0 3 * * 1"')
    triggers = Triggers(engine, project)
    triggers.start()
    try:
        jobs = triggers._scheduler.get_jobs() if triggers._scheduler else []
        assert len(jobs) == 1
        assert jobs[0].next_run_time.weekday() == 0 and jobs[0].next_run_time.hour == 3
    finally:
        triggers.stop()


def test_wilson_interval_matches_known_values() -> None:
    low, high = wilson_interval(45, 50)
    assert (round(low, 4), round(high, 4)) == (0.7864, 0.9565)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(10, 10)[1] == 1.0
