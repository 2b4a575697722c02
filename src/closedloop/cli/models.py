"""``closedloop train``, ``closedloop evaluate`` and ``closedloop models ...``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from closedloop.cli.common import emit, run
from closedloop.engine import Engine
from closedloop.errors import ValidationError
from closedloop.evaluation import Evaluation, PromotionPolicy
from closedloop.registry import ModelVersion, Registry
from closedloop.training import Training

__all__ = ["models_app", "register"]

models_app = typer.Typer(
    help="Registered model versions and their aliases.", no_args_is_help=True
)
JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print one JSON object for scripts.")
]
AliasOption = Annotated[str, typer.Option("--alias", help="Alias to move.")]


def _registry(engine: Engine) -> Registry:
    return engine.registry


def _training(engine: Engine) -> Training:
    return engine.training


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``k=v`` pairs; a value is read as JSON when it parses (numbers, true, null), else text."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ValidationError(
                f"--param must look like KEY=VALUE; got {pair!r}", "param"
            )
        try:
            params[key] = orjson.loads(raw)
        except orjson.JSONDecodeError:
            params[key] = raw
    return params


def parse_ref(ref: str) -> tuple[str, str | None]:
    """``MODEL``, ``MODEL:VERSION`` or ``MODEL@ALIAS`` into (model, ref)."""
    if "@" in ref:
        model, _, alias = ref.partition("@")
        return model, f"@{alias}"
    model, _, version = ref.partition(":")
    return model, version or None


def _numbered(ref: str, flag: str = "MODEL:VERSION") -> tuple[str, int]:
    model, version = parse_ref(ref)
    if version is None or not version.isdigit():
        raise ValidationError(f"{flag} must look like fraud:3; got {ref!r}", flag)
    return model, int(version)


def summary(version: ModelVersion) -> dict[str, Any]:
    return {
        "model": version.model,
        "version": version.version,
        "status": version.status,
        "aliases": list(version.aliases),
        "dataset": version.dataset,
        "run_id": version.run_id,
        "created_at": version.created_at.isoformat(),
        "artifact_uri": version.artifact_uri,
        "sha256": version.sha256,
        "onnx_uri": version.onnx_uri,
        "classes": list(version.classes),
        "feature_columns": list(version.feature_columns),
        "source_loops": list(version.source_loops),
        "holdout_loops": list(version.holdout_loops),
        "metrics": version.metrics,
    }


def _line(version: ModelVersion) -> str:
    aliases = " ".join(f"@{a}" for a in version.aliases) or "-"
    f1 = version.metrics.get("f1_macro")
    score = "-" if f1 is None else f"{f1:.4f}"
    return f"{version.ref}\t{version.status}\t{aliases}\tf1_macro {score}\t{version.dataset}"


def train(
    model: str,
    dataset: Annotated[
        str, typer.Option("--dataset", help="Dataset NAME or NAME:VERSION.")
    ],
    trainer: Annotated[
        str,
        typer.Option("--trainer", help="tabular, text, or package.module:function."),
    ] = "tabular",
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            help="Trainer parameter KEY=VALUE (repeat); also half_life_days, human_weight.",
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed for the split and the trainer.")
    ] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Train MODEL on a dataset version and register the result as a new version."""
    result = run(
        lambda e: _training(e).train(
            model, dataset, trainer, parse_params(param or []), seed
        )
    )
    value = {**result.as_dict(), "version": result.model_version}
    f1 = result.metrics.get("f1_macro", 0.0)
    emit(
        value,
        as_json,
        f"{model}:{result.model_version}\trun {result.run_id}\tf1_macro {f1:.4f}",
    )


def evaluate(
    ref: Annotated[
        str, typer.Argument(metavar="MODEL:VERSION", help="The challenger.")
    ],
    against: Annotated[
        str, typer.Option("--against", help="Champion: an alias or a version number.")
    ] = "production",
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Also write the report into this folder."),
    ] = None,
    metric: Annotated[
        str, typer.Option("--metric", help="Metric the policy compares.")
    ] = "f1_macro",
    min_gain: Annotated[
        float, typer.Option("--min-gain", help="Smallest gain that promotes.")
    ] = 0.0,
    max_recall_drop: Annotated[
        float,
        typer.Option(
            "--max-recall-drop", help="Largest drop allowed in any class's recall."
        ),
    ] = 0.05,
    require_significance: Annotated[
        bool,
        typer.Option(
            "--require-significance", help="Require McNemar's p-value under 0.05."
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Score MODEL:VERSION and the champion on the same held-out rows; decide on promotion."""

    def work(engine: Engine) -> Evaluation:
        model, version = _numbered(ref)
        policy = PromotionPolicy(
            metric, min_gain, max_recall_drop, require_significance
        )
        return _training(engine).evaluate(
            model, version, against, policy=policy, out=out
        )

    result = run(work)
    emit(result.as_dict(), as_json, lambda: _evaluation_text(result))


def _evaluation_text(result: Evaluation) -> str:
    lines = [
        f"{result.model}:{result.challenger} against {result.against} on {result.rows} rows"
    ]
    for role, scores in result.metrics.items():
        lines.append(
            f"  {role}: accuracy {scores['accuracy']:.4f}  f1_macro {scores['f1_macro']:.4f}"
        )
    lines.append(f"promote: {'yes' if result.decision.promote else 'no'}")
    lines.extend(f"  - {reason}" for reason in result.decision.reasons)
    lines.append(f"report: {result.report_uri}")
    return "\n".join(lines)


@models_app.command("list")
def list_(
    model: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List model versions with status, aliases and macro F1."""
    versions = run(lambda e: _registry(e).list(model))
    rows = [summary(v) for v in versions]
    emit({"versions": rows}, as_json, lambda: "\n".join(_line(v) for v in versions))


@models_app.command("show")
def show(
    ref: Annotated[str, typer.Argument(metavar="MODEL[:VERSION|@ALIAS]")],
    as_json: JsonFlag = False,
) -> None:
    """Show one version (the latest when no version is given) with its lineage."""
    model, which = parse_ref(ref)
    version = run(lambda e: _registry(e).get(model, which))
    value = summary(version)
    emit(
        value, as_json, lambda: orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    )


@models_app.command("approve")
def approve(
    ref: Annotated[str, typer.Argument(metavar="MODEL:VERSION")],
    as_json: JsonFlag = False,
) -> None:
    """Mark a version Approved."""
    version = run(lambda e: _registry(e).approve(*_numbered(ref)))
    emit(summary(version), as_json, _line(version))


@models_app.command("reject")
def reject(
    ref: Annotated[str, typer.Argument(metavar="MODEL:VERSION")],
    as_json: JsonFlag = False,
) -> None:
    """Mark a version Rejected; it can no longer be promoted."""
    version = run(lambda e: _registry(e).reject(*_numbered(ref)))
    emit(summary(version), as_json, _line(version))


@models_app.command("promote")
def promote(
    ref: Annotated[str, typer.Argument(metavar="MODEL:VERSION")],
    alias: AliasOption = "production",
    as_json: JsonFlag = False,
) -> None:
    """Point an alias (default production) at a version; servers pick it up."""
    version = run(lambda e: _registry(e).promote(*_numbered(ref), alias))
    emit(summary(version), as_json, f"{version.ref} is now @{alias}")


@models_app.command("rollback")
def rollback(
    model: str,
    alias: AliasOption = "production",
    as_json: JsonFlag = False,
) -> None:
    """Point an alias back at the version it pointed at before the last promotion."""
    version = run(lambda e: _registry(e).rollback(model, alias))
    emit(
        summary(version),
        as_json,
        f"@{alias} of {model} is back at version {version.version}",
    )


def register(app: typer.Typer) -> None:
    """Add ``train``, ``evaluate`` and the ``models`` group to the ``closedloop`` app."""
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.add_typer(models_app, name="models")
