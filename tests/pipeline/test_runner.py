"""Pipeline runs: recorded steps, resume after a kill at each step, and the run lock."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from closedloop.engine import Engine
from closedloop.errors import ClosedloopError, ConflictError
from closedloop.pipeline import PipelineRunner, Step, StepContext
from closedloop.settings import Settings

STEPS = ["feedback", "merge", "train", "deploy"]


def _step(name: str, log: Path, kill_at: str) -> Step:
    def run(context: StepContext) -> dict[str, object]:
        with log.open("a") as handle:
            handle.write(name + "\n")
        marker = log.with_suffix(".killed")
        if name == kill_at and not marker.exists():
            marker.write_text("x")
            os.kill(os.getpid(), signal.SIGKILL)
        return {"step": name, "seen": sorted(context.outputs)}

    return Step(name, run)


def _child(settings: Settings, log: Path, kill_at: str) -> None:
    engine = Engine(settings)
    report = PipelineRunner(
        engine, "demo", [_step(n, log, kill_at) for n in STEPS], lease_seconds=1
    ).run()
    log.with_suffix(".report").write_text(
        f"{report.status} {report.id} {report.resumed}"
    )


def _run_in_process(settings: Settings, tmp_path: Path, kill_at: str) -> int | None:
    """Run the pipeline in a forked process, as a separate `closedloop pipeline run` would."""
    process = multiprocessing.get_context("fork").Process(
        target=_child, args=(settings, tmp_path / "log.txt", kill_at)
    )
    process.start()
    process.join(timeout=120)
    return process.exitcode


@pytest.mark.parametrize("kill_at", STEPS)
def test_a_run_killed_at_a_step_resumes_there_and_never_repeats_finished_steps(
    engine: Engine, settings: Settings, tmp_path: Path, kill_at: str
) -> None:
    engine.close()
    killed = _run_in_process(settings, tmp_path, kill_at)
    time.sleep(1.1)
    resumed = _run_in_process(settings, tmp_path, kill_at)

    assert killed == -signal.SIGKILL
    assert resumed == 0
    status, run_id, was_resumed = (tmp_path / "log.report").read_text().split()
    assert (status, was_resumed) == ("succeeded", "True")
    log = (tmp_path / "log.txt").read_text().split()
    position = STEPS.index(kill_at)
    assert log == STEPS[: position + 1] + STEPS[position:]
    report = PipelineRunner(engine, "demo", []).show(int(run_id))
    assert [s.status for s in report.steps] == ["succeeded"] * len(STEPS)
    assert report.steps[-1].outputs["seen"] == STEPS[:-1]


def test_two_runs_never_overlap(engine: Engine) -> None:
    inner: list[str] = []

    def nested(context: StepContext) -> dict[str, object]:
        try:
            PipelineRunner(engine, "demo", [Step("x", lambda c: {})]).run()
        except ConflictError as exc:
            inner.append(exc.message)
        return {}

    PipelineRunner(engine, "demo", [Step("outer", nested)]).run()

    assert inner and "in progress" in inner[0]
    assert (
        PipelineRunner(engine, "demo", [Step("x", lambda c: {})]).run().status
        == "succeeded"
    )


def test_a_failing_step_fails_the_run_and_releases_the_lock(engine: Engine) -> None:
    def broken(context: StepContext) -> dict[str, object]:
        raise ValueError("training data is empty")

    runner = PipelineRunner(engine, "demo", [Step("train", broken)])
    with pytest.raises(ClosedloopError, match="training data is empty"):
        runner.run()

    report = runner.list()[0]
    assert report.status == "failed" and report.steps[0].status == "failed"
    assert "training data is empty" in (report.steps[0].error or "")
    assert (
        PipelineRunner(engine, "demo", [Step("ok", lambda c: {"fine": True})])
        .run()
        .status
        == "succeeded"
    )
