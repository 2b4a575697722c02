"""``closedloop lineage LOOP``: from a human loop to its answers, dataset versions and models."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer

from closedloop.cli.common import emit, run
from closedloop.core.output import OutputAnswer
from closedloop.datasets import DatasetVersion
from closedloop.registry import LoopLineage, LoopRow, ModelVersion

__all__ = ["lineage", "register", "value"]

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print one JSON object for scripts.")
]


def lineage(
    loop_name: Annotated[
        str, typer.Argument(metavar="LOOP_NAME", help="The human loop to follow.")
    ],
    as_json: JsonFlag = False,
) -> None:
    """Show a loop's answers, the dataset versions that took its label, and the models trained or evaluated on them."""
    found = run(lambda e: e.lineage.of_loop(loop_name))
    emit(value(found), as_json, lambda: _text(found))


def value(found: LoopLineage) -> dict[str, Any]:
    """The ``--json`` object: loop (with answers), datasets, row, models (trained on it), evaluated_by."""
    loop = found.loop
    return {
        "loop": {
            "name": loop.name,
            "arn": loop.arn,
            "flow": loop.flow_name,
            "status": loop.status,
            "created_at": loop.created_at.isoformat(),
            "output_uri": loop.output_uri,
            "task_count": loop.task_count,
            "answers": [_answer(a) for a in found.answers],
        },
        "datasets": [_dataset(v) for v in found.datasets],
        "row": None if found.row is None else _row(found.row),
        "models": [_model(v) for v in found.models],
        "evaluated_by": [_model(v) for v in found.evaluated_by],
    }


def _answer(answer: OutputAnswer) -> dict[str, Any]:
    return {
        "worker_id": answer.worker_id,
        "answer_content": answer.answer_content,
        "acceptance_time": answer.acceptance_time.isoformat(),
        "submission_time": answer.submission_time.isoformat(),
        "time_spent_seconds": answer.time_spent_seconds,
    }


def _dataset(version: DatasetVersion) -> dict[str, Any]:
    return {
        "ref": version.ref,
        "id": version.id,
        "created_at": version.manifest["created_at"],
        "rows": version.manifest["rows"],
        "uri": version.uri,
    }


def _row(row: LoopRow) -> dict[str, Any]:
    return {
        "dataset": row.dataset,
        "item_id": row.item_id,
        "label": row.label,
        "source": row.source,
        "confidence": row.confidence,
        "agreement": row.agreement,
        "labelled_at": None if row.labelled_at is None else row.labelled_at.isoformat(),
    }


def _model(version: ModelVersion) -> dict[str, Any]:
    return {
        "ref": version.ref,
        "status": version.status,
        "aliases": list(version.aliases),
        "dataset": version.dataset,
        "created_at": version.created_at.isoformat(),
    }


def _text(found: LoopLineage) -> str:
    return "\n".join(
        [
            *_loop_lines(found),
            *_dataset_lines(found),
            *_model_lines(found),
            *_evaluation_lines(found),
        ]
    )


def _loop_lines(found: LoopLineage) -> list[str]:
    loop = found.loop
    lines = [
        f"human loop {loop.name}: flow {loop.flow_name}, {loop.status}, created {loop.created_at.isoformat()}",
        f"  output.json  {loop.output_uri}",
        f"  answers      {len(found.answers)} of {loop.task_count}",
    ]
    lines += [
        f"    {a.worker_id}  {a.submission_time.isoformat()}  {a.time_spent_seconds:g}s  "
        + orjson.dumps(a.answer_content).decode()
        for a in found.answers
    ]
    return lines


def _dataset_lines(found: LoopLineage) -> list[str]:
    if not found.datasets:
        return [
            f"dataset versions: none yet (no manifest lists {found.loop.name} in source_loops)"
        ]
    lines = ["dataset versions (oldest first):"]
    lines += [
        f"  {v.ref}  {v.id}  {v.manifest['rows']} rows  created {v.manifest['created_at']}"
        for v in found.datasets
    ]
    row = found.row
    if row is None:
        lines.append(f"  no row of {found.loop.name} in {found.datasets[0].ref}")
    else:
        lines.append(
            f"  row in {row.dataset}: item {row.item_id}, label {row.label}, source {row.source}, "
            f"confidence {_share(row.confidence)}, agreement {_share(row.agreement)}"
        )
    return lines


def _model_lines(found: LoopLineage) -> list[str]:
    name = found.loop.name
    if not found.models:
        return [f"model versions: none trained on data from {name} yet"]
    return [f"model versions trained on data from {name}:", *_versions(found.models)]


def _evaluation_lines(found: LoopLineage) -> list[str]:
    name = found.loop.name
    if not found.evaluated_by:
        return [f"model versions: none evaluated on held-out data from {name}"]
    return [
        f"model versions evaluated on data from {name} (held out from their training):",
        *_versions(found.evaluated_by),
    ]


def _versions(versions: tuple[ModelVersion, ...]) -> list[str]:
    return [
        f"  {v.ref}  {v.status}  {' '.join(f'@{a}' for a in v.aliases) or '-'}  "
        f"dataset {v.dataset}  created {v.created_at.isoformat()}"
        for v in versions
    ]


def _share(number: float | None) -> str:
    return "-" if number is None else f"{number:.3f}"


def register(app: typer.Typer) -> None:
    """Add ``lineage`` to the ``closedloop`` app."""
    app.command("lineage")(lineage)
