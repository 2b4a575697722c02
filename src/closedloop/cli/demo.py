"""The ``closedloop demo`` command: the fraud scenario, end to end, with a report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from closedloop.cli.common import exit_code, state
from closedloop.errors import ClosedloopError
from closedloop.settings import Settings
from closedloop.simulation.fraud import DemoOptions, DemoResult, run_fraud_demo
from closedloop.simulation.report import write_report

__all__ = ["DEMO_FOLDER", "demo", "register"]

DEMO_FOLDER = "fraud-demo"


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to ``app``."""
    app.command("demo")(demo)


def demo(
    weeks: Annotated[int, typer.Option(help="Simulated weeks.")] = 4,
    seed: Annotated[
        int, typer.Option(help="Seed of the stream and the reviewers.")
    ] = 7,
    reviews_per_day: Annotated[
        int, typer.Option(help="Most human loops started per simulated day.")
    ] = 100,
    reviewer_accuracy: Annotated[
        float, typer.Option(help="Chance a simulated reviewer answers right.")
    ] = 0.95,
    task_count: Annotated[
        int, typer.Option(help="Distinct reviewers per item (1 to 10).")
    ] = 1,
    daily_volume: Annotated[
        int, typer.Option(help="Transactions per simulated day.")
    ] = 400,
    out: Annotated[
        Path, typer.Option(help="Folder for report.html, weekly.png, summary.json.")
    ] = Path("demo-out"),
) -> None:
    """Play the fraud scenario: drifting transactions, human review, weekly retraining.

    A week's row shows the model that served it; "promoted" says whether the
    retraining at the end of that week promoted a new version. Runs in a fresh
    embedded installation under HOME/fraud-demo (replaced on every run) and
    writes report.html, weekly.png and summary.json to --out.
    """
    try:
        options = DemoOptions(
            weeks=weeks,
            seed=seed,
            reviews_per_day=reviews_per_day,
            reviewer_accuracy=reviewer_accuracy,
            task_count=task_count,
            daily_volume=daily_volume,
        )
        home = Settings.from_env(home=state.home).home / DEMO_FOLDER
        result = _play(home, options)
        paths = write_report(result, out)
    except ClosedloopError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(exit_code(exc)) from None
    console = Console(
        width=max(Console().width, 110)
    )  # the weekly table needs ~105 columns
    console.print(_table(result))
    console.print(f"{result.loops_completed} human loops completed")
    for path in paths.values():
        console.print(f"wrote {path}")


def _play(home: Path, options: DemoOptions) -> DemoResult:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task("simulated days", total=options.weeks * 7)

        def advance(week: int, day: int) -> None:
            progress.update(
                task, advance=1, description=f"week {week + 1}, day {day + 1}"
            )

        return run_fraud_demo(home, options, on_day=advance)


def _table(result: DemoResult) -> Table:
    table = Table(
        title="Fraud flags by week: retrained weekly vs baseline (never retrained)",
        box=box.SIMPLE,
    )
    for name in (
        "week",
        "prec",
        "recall",
        "acc",
        "reviews",
        "model",
        "promoted",
        "base prec",
        "base recall",
        "base acc",
    ):
        table.add_column(name, justify="right")
    for week, base in zip(result.weeks, result.baseline, strict=True):
        table.add_row(
            str(week.week),
            f"{week.precision:.1%}",
            f"{week.recall:.1%}",
            f"{week.accuracy:.1%}",
            str(week.reviews),
            f"v{week.model_version}",
            "yes" if week.promoted else "no",
            f"{base['precision']:.1%}",
            f"{base['recall']:.1%}",
            f"{base['accuracy']:.1%}",
        )
    return table
