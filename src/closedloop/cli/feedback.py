"""``closedloop feedback``: consolidate output files into a feedback table; re-review doubtful items."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer

from closedloop.cli.common import emit, run
from closedloop.engine import Engine
from closedloop.errors import ValidationError
from closedloop.feedback import FeedbackResult, build_feedback, write_feedback

__all__ = ["feedback_app"]

feedback_app = typer.Typer(
    help="From human answers to consolidated labels.", no_args_is_help=True
)
JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print one JSON object for scripts.")
]


@feedback_app.command("build")
def build(
    sources: Annotated[
        list[str] | None,
        typer.Argument(
            help="Folders or fsspec URLs (s3://...) holding output.json files."
        ),
    ] = None,
    out: Annotated[
        str, typer.Option("--out", help="Feedback table to write: .parquet or .csv.")
    ] = "feedback.parquet",
    flow: Annotated[
        str | None,
        typer.Option(
            "--flow", help="Flow definition in this store: its outputs, TaskCount."
        ),
    ] = None,
    label_path: Annotated[
        str | None,
        typer.Option("--label-path", help="Dotted path of the label in answerContent."),
    ] = None,
    labels: Annotated[
        str | None, typer.Option("--labels", help="Allowed labels, comma-separated.")
    ] = None,
    task_count: Annotated[
        int | None, typer.Option("--task-count", help="Answers a complete loop has.")
    ] = None,
    method: Annotated[
        str, typer.Option(help="dawid-skene or majority-vote.")
    ] = "dawid-skene",
    min_confidence: Annotated[
        float, typer.Option(help="Below this, items are marked needs_review.")
    ] = 0.7,
    as_json: JsonFlag = False,
) -> None:
    """Read, consolidate, clean and tag human answers; print how many items each rule took."""

    def work(engine: Engine) -> FeedbackResult:
        paths = list(sources or [])
        count = task_count
        if flow is not None:
            info = engine.flows.describe(flow)
            count = count or info.task_count
            if not paths:
                paths = [
                    engine.ctx.objects.url(
                        f"{info.output_path.rstrip('/')}/{info.name}"
                    )
                ]
        if not paths:
            raise ValidationError(
                "give at least one SOURCE, or --flow to read that flow's outputs",
                "SOURCE",
            )
        label_set = (
            [x.strip() for x in labels.split(",") if x.strip()] if labels else None
        )
        result = build_feedback(
            paths,
            label_path=label_path,
            label_set=label_set,
            task_count=count,
            method=method,
            min_confidence=min_confidence,
        )
        write_feedback(result, out)
        return result

    result = run(work)
    value: dict[str, Any] = {
        "out": out,
        "counts": result.counts,
        "label_path": result.label_path,
        "classes": result.classes,
        "bad_files": [
            {"path": b.path, "reason": b.reason} for b in result.bad_files[:100]
        ],
        "worker_reliability": result.worker_reliability,
    }
    emit(value, as_json, lambda: _text(result, out))


def _text(result: FeedbackResult, out: str) -> str:
    lines = [
        f"wrote {len(result.rows)} items to {out} (label path {result.label_path!r})"
    ]
    lines += [f"  {rule}: {count}" for rule, count in sorted(result.counts.items())]
    lines += [f"  bad file {b.path}: {b.reason}" for b in result.bad_files[:20]]
    return "\n".join(lines)


@feedback_app.command("rereview")
def rereview(
    table: Annotated[str, typer.Argument(help="Feedback table from `feedback build`.")],
    flow: Annotated[
        str, typer.Option("--flow", help="Flow definition that runs the new loops.")
    ],
    as_json: JsonFlag = False,
) -> None:
    """Start a new human loop for every needs_review item of a feedback table."""

    def work(engine: Engine) -> list[str]:
        frame = (
            pd.read_parquet(table)
            if Path(table).suffix == ".parquet"
            else pd.read_csv(table)
        )
        doubtful = frame[frame["status"] == "needs_review"]
        arn = engine.flows.describe(flow).arn
        started = []
        for loop_name, content in zip(
            doubtful["human_loop_name"], doubtful["input"], strict=True
        ):
            name = (
                "rereview-"
                + hashlib.sha256(f"{loop_name}\0{content}".encode()).hexdigest()[:20]
            )
            engine.loops.start(name, arn, str(content))
            started.append(name)
        return started

    started = run(work)
    emit({"started": started}, as_json, f"started {len(started)} loops on {flow}")
