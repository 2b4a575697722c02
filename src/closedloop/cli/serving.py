"""CLI commands of serving: ``deploy`` an endpoint, ``predict`` over a file, ``undeploy``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from closedloop.cli.common import emit, fail, run
from closedloop.engine import Engine
from closedloop.errors import ValidationError
from closedloop.serving.batch import (
    DEFAULT_CHUNK_ROWS,
    BatchReport,
    Routing,
    count_rows,
    predict_file,
)
from closedloop.serving.endpoints import Endpoints, RegistryLike, parse_model_ref
from closedloop.serving.routing import Route, Router

__all__ = ["register"]

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print one JSON object for scripts.")
]


def _services(engine: Engine) -> tuple[Endpoints, RegistryLike]:
    return engine.endpoints, engine.registry


def deploy(
    model_ref: Annotated[
        str,
        typer.Argument(
            metavar="MODEL[:VERSION|@ALIAS]",
            help="Model and version or alias; a bare MODEL means MODEL@production.",
        ),
    ],
    endpoint: Annotated[
        str, typer.Option("--endpoint", help="Endpoint name, as boto3's EndpointName.")
    ],
    flow: Annotated[
        str | None,
        typer.Option(
            "--flow",
            help="Flow definition whose conditions route predictions to human review.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Serve a model version or alias at /endpoints/NAME/invocations (SageMaker runtime)."""

    def work(engine: Engine) -> dict[str, object]:
        model, ref = parse_model_ref(model_ref)
        return _services(engine)[0].deploy(endpoint, model, ref, flow).as_dict()

    info = run(work)
    routed = (
        f", routing to flow {info['FlowDefinitionName']}"
        if info["FlowDefinitionName"]
        else ""
    )
    emit(info, as_json, f"endpoint {endpoint} serves {model_ref}{routed}")


def undeploy(
    endpoint: Annotated[str, typer.Option("--endpoint", help="Endpoint to remove.")],
) -> None:
    """Remove an endpoint; its model versions stay in the registry."""
    run(lambda e: _services(e)[0].delete(endpoint))
    typer.echo(f"removed endpoint {endpoint}")


def predict(
    endpoint: Annotated[
        str, typer.Option("--endpoint", help="Endpoint whose model (and flow) to use.")
    ],
    input_path: Annotated[
        Path, typer.Option("--input", help="CSV or Parquet file of feature rows.")
    ],
    output_path: Annotated[
        Path,
        typer.Option(
            "--output", help="CSV or Parquet file to write rows with predictions to."
        ),
    ],
    route: Annotated[
        bool,
        typer.Option(
            "--route",
            help="Start human loops where the endpoint's flow conditions fire.",
        ),
    ] = False,
    chunk_rows: Annotated[
        int, typer.Option("--chunk-rows", help="Rows per chunk.")
    ] = DEFAULT_CHUNK_ROWS,
    as_json: JsonFlag = False,
) -> None:
    """Batch transform: label, class probabilities and model version for every row."""
    if input_path.resolve() == output_path.resolve():
        fail(f"--output must differ from --input; both are {str(input_path)!r}", 2)
    report = run(
        lambda e: _batch(e, endpoint, input_path, output_path, route, chunk_rows)
    )
    value = {
        "Rows": report.rows,
        "Model": report.model,
        "ModelVersion": report.version,
        "HumanLoopsStarted": report.loops_started,
        "Output": str(output_path),
    }
    emit(
        value,
        as_json,
        f"wrote {report.rows} rows to {output_path} "
        f"({report.model} version {report.version}, "
        f"{report.loops_started} human loops started)",
    )


def _batch(
    engine: Engine, name: str, source: Path, target: Path, route: bool, chunk_rows: int
) -> BatchReport:
    endpoints, registry = _services(engine)
    info = endpoints.describe(name)
    model = registry.load(info.model, info.registry_ref)
    routing = None
    if route:
        if info.flow_name is None:
            raise ValidationError(
                f"--route needs a flow, and endpoint {name!r} has none; deploy it with --flow",
                "--route",
            )
        flow = engine.flows.describe(info.flow_name)
        routing = Routing(
            Router(engine.loops),
            Route(flow.name, flow.arn, flow.activation_conditions),
            name,
        )
    total = count_rows(source) if source.is_file() else None
    columns = (
        *Progress.get_default_columns()[:1],
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task(f"{info.model} v{model.version}", total=total)
        return predict_file(
            model,
            source,
            target,
            chunk_rows=chunk_rows,
            routing=routing,
            progress=lambda rows: bar.advance(task, rows),
        )


def register(app: typer.Typer) -> None:
    """Add ``deploy``, ``undeploy`` and ``predict`` to the ``closedloop`` command."""
    app.command("deploy")(deploy)
    app.command("undeploy")(undeploy)
    app.command("predict")(predict)
