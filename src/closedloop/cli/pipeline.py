"""``closedloop init`` and ``closedloop pipeline``: the project file and retraining runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from closedloop.cli.common import emit, fail, run
from closedloop.engine import Engine
from closedloop.pipeline import PipelineRunner, RunReport
from closedloop.pipeline.project import (
    DEFAULT_PROJECT_FILE,
    load_project,
    starter_project,
)
from closedloop.pipeline.setup import setup_project
from closedloop.pipeline.steps import build_steps
from closedloop.pipeline.triggers import Triggers

__all__ = ["register"]

pipeline_app = typer.Typer(
    help="Retraining runs: feedback, merge, train, evaluate, gate, register, deploy.",
    no_args_is_help=True,
)
JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print one JSON object for scripts.")
]
ProjectOption = Annotated[Path, typer.Option("--project", help="Project file.")]


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("scheduler")(scheduler)
    app.add_typer(pipeline_app, name="pipeline")


def scheduler(
    project: ProjectOption = Path(DEFAULT_PROJECT_FILE),
    check_seconds: Annotated[
        float,
        typer.Option(help="How often the count and accuracy triggers are checked."),
    ] = 60.0,
) -> None:
    """Run the project's pipeline triggers (schedule, new reviews, accuracy drop) until stopped."""
    import signal
    import threading

    def work(engine: Engine) -> None:
        triggers = Triggers(engine, load_project(project), check_seconds=check_seconds)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        triggers.start()
        typer.echo(
            f"closedloop scheduler running for {project}; Ctrl-C stops it", err=True
        )
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            triggers.stop()

    run(work)


def init(
    name: Annotated[
        str, typer.Option(help="Project name (lower case, digits, hyphens).")
    ] = "fraud",
    path: Annotated[Path, typer.Option(help="Where to write the project file.")] = Path(
        DEFAULT_PROJECT_FILE
    ),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented closedloop.toml to start from."""
    if path.exists() and not force:
        fail(f"{path} exists; pass --force to overwrite it", 4)
    path.write_text(starter_project(name))
    typer.echo(
        f"wrote {path}; edit it, then run `closedloop pipeline setup` and `closedloop pipeline run`"
    )


def _report(report: RunReport) -> dict[str, Any]:
    return {
        "id": report.id,
        "project": report.project,
        "trigger": report.trigger,
        "status": report.status,
        "resumed": report.resumed,
        "started_at": report.started_at.isoformat(),
        "ended_at": report.ended_at.isoformat() if report.ended_at else None,
        "error": report.error,
        "steps": [
            {"name": s.name, "status": s.status, "outputs": s.outputs, "error": s.error}
            for s in report.steps
        ],
    }


def _text(report: RunReport) -> str:
    lines = [
        f"run {report.id} ({report.project}, {report.trigger}): {report.status}"
        + (" (resumed)" if report.resumed else "")
    ]
    for step in report.steps:
        seconds = step.outputs.get("seconds", "")
        lines.append(
            f"  {step.name:<9} {step.status:<10} {seconds}s"
            + (f"  {step.error}" if step.error else "")
        )
    return "\n".join(lines)


@pipeline_app.command("setup")
def setup(
    project: ProjectOption = Path(DEFAULT_PROJECT_FILE), as_json: JsonFlag = False
) -> None:
    """Create the project's team, task UI and flow definition where missing."""
    spec = load_project(project) if project.exists() else None
    if spec is None:
        fail(
            f"project file {str(project)!r} does not exist; write one with `closedloop init`",
            2,
        )
        return
    made = run(lambda e: setup_project(e, spec))
    emit(made, as_json, "\n".join(f"{k}: {v}" for k, v in made.items()))


@pipeline_app.command("run")
def run_pipeline(
    project: ProjectOption = Path(DEFAULT_PROJECT_FILE),
    trigger: Annotated[
        str, typer.Option(help="What started this run, as recorded.")
    ] = "manual",
    as_json: JsonFlag = False,
) -> None:
    """Run one cycle (or resume an interrupted one)."""

    def work(engine: Engine) -> RunReport:
        spec = load_project(project)
        return PipelineRunner(engine, spec.name, build_steps(spec)).run(trigger)

    report = run(work)
    emit(_report(report), as_json, lambda: _text(report))


@pipeline_app.command("list")
def list_runs(
    project: ProjectOption = Path(DEFAULT_PROJECT_FILE), as_json: JsonFlag = False
) -> None:
    """The project's recent runs, newest first."""
    reports = run(lambda e: PipelineRunner(e, load_project(project).name, []).list())
    emit(
        {"runs": [_report(r) for r in reports]},
        as_json,
        lambda: "\n".join(_text(r).splitlines()[0] for r in reports),
    )


@pipeline_app.command("show")
def show(
    run_id: int,
    project: ProjectOption = Path(DEFAULT_PROJECT_FILE),
    as_json: JsonFlag = False,
) -> None:
    """One run with each step's status, outputs and timing."""
    report = run(
        lambda e: PipelineRunner(e, load_project(project).name, []).show(run_id)
    )
    emit(_report(report), as_json, lambda: _text(report))
