"""``closedloop data``: import, merge, list, show and diff dataset versions."""

from __future__ import annotations

from typing import Annotated

import typer

from closedloop.cli.common import emit, run
from closedloop.datasets import DatasetVersion
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
