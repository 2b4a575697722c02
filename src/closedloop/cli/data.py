"""``closedloop data``: import, merge, list, show, diff and check dataset versions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from closedloop.cli.common import emit, run
from closedloop.datasets import DatasetVersion
from closedloop.datasets.label_errors import (
    AUTO_TRAINER,
    DEFAULT_FOLDS,
    FlaggedRow,
    LabelCheck,
    check_out_path,
    find_label_errors,
    write_flagged,
)
from closedloop.engine import Engine

__all__ = ["data_app"]

data_app = typer.Typer(help="Versioned training data.", no_args_is_help=True)
JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print one JSON object for scripts.")
]


def _summary(version: DatasetVersion) -> dict[str, object]:
    manifest = version.manifest
    return {
        "name": version.name,
        "version": version.number,
        "id": version.id,
        "parent": manifest.get("parent"),
        "rows": manifest["rows"],
        "created_at": manifest["created_at"],
        "counts": manifest["counts"],
    }


def _line(version: DatasetVersion) -> str:
    m = version.manifest
    return f"{version.ref}\t{version.id}\t{m['rows']} rows\t{m['created_at']}\tparent {m.get('parent') or '-'}"


@data_app.command("import")
def import_(
    name: str,
    file: str,
    label: Annotated[str, typer.Option("--label", help="Column holding the label.")],
    id_column: Annotated[
        str | None, typer.Option("--id", help="Column holding a unique row id.")
    ] = None,
    time_column: Annotated[
        str | None, typer.Option("--time", help="Column holding each row's time.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Make the base version of dataset NAME from a CSV or Parquet FILE."""
    version = run(
        lambda e: e.datasets.import_file(
            name, file, label=label, id_column=id_column, time_column=time_column
        )
    )
    emit(_summary(version), as_json, _line(version))


@data_app.command("merge")
def merge(
    name: str,
    feedback: Annotated[
        str,
        typer.Option(
            "--feedback", help="Feedback table from `closedloop feedback build`."
        ),
    ],
    as_json: JsonFlag = False,
) -> None:
    """Add the accepted rows of a feedback table to the latest version, as the next one."""
    version = run(lambda e: e.datasets.merge(name, feedback))
    emit(
        _summary(version),
        as_json,
        lambda: (
            _line(version)
            + "\n"
            + ", ".join(f"{k}: {v}" for k, v in version.manifest["counts"].items())
        ),
    )


@data_app.command("list")
def list_(
    name: Annotated[
        str | None, typer.Argument(help="Dataset; all when omitted.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List datasets, or the versions of one."""

    def versions(engine: Engine) -> list[DatasetVersion]:
        names = [name] if name else engine.datasets.names()
        return [v for n in names for v in engine.datasets.versions(n)]

    found = run(versions)
    emit(
        {"versions": [_summary(v) for v in found]},
        as_json,
        lambda: "\n".join(_line(v) for v in found),
    )


@data_app.command("show")
def show(ref: str, as_json: JsonFlag = False) -> None:
    """Show one version's manifest (NAME, NAME:NUMBER or NAME:ID)."""
    version = run(lambda e: e.datasets.get(ref))
    emit(
        version.manifest,
        as_json,
        lambda: "\n".join(f"{k}: {v}" for k, v in version.manifest.items()),
    )


@data_app.command("diff")
def diff(old: str, new: str, as_json: JsonFlag = False) -> None:
    """Rows added, relabelled and removed between two versions."""
    result = run(lambda e: e.datasets.diff(old, new))
    value = {
        "added": result.added,
        "removed": result.removed,
        "relabelled": [list(r) for r in result.relabelled],
    }
    emit(
        value,
        as_json,
        lambda: (
            f"added {len(result.added)}, removed {len(result.removed)}, relabelled {len(result.relabelled)}"
            + "".join(f"\n  {i}: {a} -> {b}" for i, a, b in result.relabelled[:20])
        ),
    )


@data_app.command("check")
def check(
    ref: str,
    folds: Annotated[
        int, typer.Option("--folds", help="Cross-validation folds (at least 2).")
    ] = DEFAULT_FOLDS,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the folds and the model.")
    ] = 0,
    trainer: Annotated[
        str,
        typer.Option(
            "--trainer",
            help="auto (text for free text, else logistic tabular), tabular, text or package.module:function.",
        ),
    ] = AUTO_TRAINER,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write every flagged row here (.csv or .parquet)."),
    ] = None,
    limit: Annotated[
        int,
        typer.Option(
            "--limit", min=0, help="Show at most N flagged rows; 0 shows all."
        ),
    ] = 20,
    as_json: JsonFlag = False,
) -> None:
    """Flag rows whose label disagrees with the data (cleanlab); changes no version."""

    def work(engine: Engine) -> LabelCheck:
        if out is not None:
            check_out_path(out)
        version = engine.datasets.get(ref)
        frame = engine.datasets.read(version)
        with _fold_progress(version.ref, folds, quiet=as_json) as on_fold:
            result = find_label_errors(
                frame, version, folds=folds, seed=seed, trainer=trainer, on_fold=on_fold
            )
        if out is not None:
            write_flagged(result, out)
        return result

    result = run(work)
    shown = list(result.flagged[:limit] if limit else result.flagged)
    emit(
        _check_value(result, shown, out),
        as_json,
        lambda: _check_text(result, shown, out),
    )


@contextmanager
def _fold_progress(
    ref: str, folds: int, *, quiet: bool
) -> Iterator[Callable[[int, int], None]]:
    """A Rich bar on stderr that advances once per fold; silent with ``--json``."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    console = Console(stderr=True)
    with Progress(*columns, console=console, transient=True, disable=quiet) as bar:
        task = bar.add_task(f"checking {ref}", total=folds)
        yield lambda number, total: bar.update(task, completed=number, total=total)


def _check_value(
    result: LabelCheck, shown: list[FlaggedRow], out: Path | None
) -> dict[str, Any]:
    return {
        "dataset": result.dataset,
        "trainer": result.trainer,
        "params": result.params,
        "folds": result.folds,
        "seed": result.seed,
        "totals": result.totals(),
        "flagged": [_row_value(row) for row in shown],
        "shown": len(shown),
        "unchecked": list(result.unchecked),
        "notes": list(result.notes),
        "out": str(out) if out is not None else None,
    }


def _row_value(row: FlaggedRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in FlaggedRow.__dataclass_fields__}


_CHECK_HEADER = (
    "row_id",
    "given",
    "suggested",
    "quality",
    "p(suggested)",
    "source",
    "human_loop",
)


def _check_text(result: LabelCheck, shown: list[FlaggedRow], out: Path | None) -> str:
    totals = result.totals()
    lines = [
        f"{result.dataset}: {totals['rows_checked']} rows checked "
        f"({totals['human_rows_checked']} human, {totals['base_rows_checked']} base), "
        f"{result.folds} folds, trainer {_trainer(result)}; {totals['flagged']} flagged "
        f"({totals['flagged_human']} human, {totals['flagged_base']} base)"
    ]
    lines += [f"note: {note}" for note in result.notes]
    if shown:
        lines += _table([_CHECK_HEADER, *(_row_cells(row) for row in shown)])
    if len(shown) < len(result.flagged):
        lines.append(
            f"showing {len(shown)} of {len(result.flagged)} flagged rows; --limit 0 shows all"
        )
    if out is not None:
        lines.append(f"wrote {len(result.flagged)} flagged rows to {out}")
    return "\n".join(lines)


def _trainer(result: LabelCheck) -> str:
    options = " ".join(f"{k}={v}" for k, v in result.params.items())
    return f"{result.trainer} ({options})" if options else result.trainer


def _row_cells(row: FlaggedRow) -> tuple[str, ...]:
    return (
        row.row_id,
        row.given_label,
        row.suggested_label,
        f"{row.quality:.3f}",
        f"{row.suggested_probability:.3f}",
        row.source,
        row.human_loop_name or "-",
    )


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(cells[i]) for cells in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
        for cells in rows
    ]
