"""``closedloop deploy`` and ``closedloop predict`` (batch transform) from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import typer
from serving_helpers import CONFIDENT, MODEL, Models, make_flow, training_frame
from sqlalchemy import func, select
from typer.testing import CliRunner

from closedloop.cli.main import app
from closedloop.engine import Engine
from closedloop.serving.endpoints import Endpoints
from closedloop.store.models import HumanLoop


@pytest.fixture
def cli(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    """The ``closedloop`` command, pointed at the test engine's home and database."""
    monkeypatch.setenv("CLOSEDLOOP_HOME", str(engine.settings.home))
    monkeypatch.setenv("CLOSEDLOOP_DATABASE_URL", engine.settings.resolved_database_url)
    return app


def invoke(cli: typer.Typer, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def loop_count(engine: Engine) -> int:
    with engine.ctx.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(HumanLoop)) or 0)


def rows_file(tmp_path: Path, suffix: str, rows: int = 250) -> Path:
    frame = training_frame(seed=11, rows=rows).drop(columns=["label"])
    frame.insert(0, "txn", [f"t{i}" for i in range(rows)])
    path = tmp_path / f"rows{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def test_deploy_binds_an_endpoint_and_prints_it_as_json(
    engine: Engine, cli: typer.Typer, models: Models, endpoints: Endpoints
) -> None:
    models.register(c=1.0)
    make_flow(engine)

    code, out, _ = invoke(
        cli,
        "deploy",
        f"{MODEL}:1",
        "--endpoint",
        "fraud-live",
        "--flow",
        "fraud-review",
        "--json",
    )

    assert code == 0
    shown = json.loads(out)
    assert shown["EndpointName"] == "fraud-live" and shown["Ref"] == "1"
    assert shown["FlowDefinitionName"] == "fraud-review"
    assert endpoints.describe("fraud-live").model_ref == f"{MODEL}:1"


@pytest.mark.parametrize(
    ("ref", "needle"),
    [("fraud:zero", "MODEL:VERSION"), ("fraud:7", "7"), ("fraud@staging", "staging")],
)
def test_deploy_refuses_a_bad_or_unknown_ref(
    cli: typer.Typer, models: Models, ref: str, needle: str
) -> None:
    models.register(c=1.0)

    code, out, err = invoke(cli, "deploy", ref, "--endpoint", "fraud-live")

    assert code != 0 and out == ""
    assert needle in err


def test_deploy_refuses_an_unknown_flow(cli: typer.Typer, models: Models) -> None:
    models.register(c=1.0)

    code, _, err = invoke(
        cli, "deploy", "fraud:1", "--endpoint", "e1", "--flow", "nope"
    )

    assert code != 0 and "nope" in err


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_predict_writes_label_probabilities_and_version_per_row(
    engine: Engine,
    cli: typer.Typer,
    models: Models,
    endpoints: Endpoints,
    tmp_path: Path,
    suffix: str,
) -> None:
    models.register(c=1.0)
    make_flow(engine)
    endpoints.deploy("fraud-live", MODEL, "1", "fraud-review")
    source = rows_file(tmp_path, suffix)
    target = tmp_path / f"out{suffix}"

    code, out, _ = invoke(
        cli, "predict", "--endpoint", "fraud-live", "--input", str(source),
        "--output", str(target), "--chunk-rows", "64", "--json",
    )  # fmt: skip

    assert code == 0, out
    assert json.loads(out)["Rows"] == 250
    written = pd.read_csv(target) if suffix == ".csv" else pd.read_parquet(target)
    assert list(written["txn"]) == [f"t{i}" for i in range(250)]
    assert set(written["predicted_label"]) <= {"fraud", "legit"}
    total = written["probability_fraud"] + written["probability_legit"]
    assert total.round(6).eq(1).all()
    assert written["model_version"].eq(1).all()
    assert loop_count(engine) == 0


def test_predict_with_route_starts_loops_once_even_when_run_twice(
    engine: Engine,
    cli: typer.Typer,
    models: Models,
    endpoints: Endpoints,
    tmp_path: Path,
) -> None:
    models.register(c=1.0)
    make_flow(engine, below=80)
    endpoints.deploy("fraud-live", MODEL, "1", "fraud-review")
    source = rows_file(tmp_path, ".csv")
    args = ["predict", "--endpoint", "fraud-live", "--input", str(source), "--route"]

    _, first, _ = invoke(cli, *args, "--output", str(tmp_path / "a.csv"), "--json")
    _, second, _ = invoke(cli, *args, "--output", str(tmp_path / "b.csv"), "--json")

    started = json.loads(first)["HumanLoopsStarted"]
    assert 0 < started < 250
    assert json.loads(second)["HumanLoopsStarted"] == started
    assert loop_count(engine) == started
    written = pd.read_csv(tmp_path / "a.csv")
    assert written["human_loop_name"].notna().sum() == started


def test_predict_names_a_missing_feature_column(
    cli: typer.Typer, models: Models, endpoints: Endpoints, tmp_path: Path
) -> None:
    models.register(c=1.0)
    endpoints.deploy("fraud-live", MODEL, "1")
    source = tmp_path / "rows.csv"
    pd.DataFrame([{k: v for k, v in CONFIDENT.items() if k != "age"}]).to_csv(source)

    code, _, err = invoke(
        cli, "predict", "--endpoint", "fraud-live", "--input", str(source),
        "--output", str(tmp_path / "out.csv"),
    )  # fmt: skip

    assert code == 2 and "'age'" in err


def test_predict_names_a_non_numeric_value(
    cli: typer.Typer, models: Models, endpoints: Endpoints, tmp_path: Path
) -> None:
    models.register(c=1.0)
    endpoints.deploy("fraud-live", MODEL, "1")
    source = tmp_path / "rows.csv"
    pd.DataFrame([CONFIDENT, {**CONFIDENT, "amount": "lots"}]).to_csv(source)

    code, _, err = invoke(
        cli, "predict", "--endpoint", "fraud-live", "--input", str(source),
        "--output", str(tmp_path / "out.csv"),
    )  # fmt: skip

    assert code == 2 and "'amount'" in err and "row 2" in err and "'lots'" in err
